"""Adapting a latency table: how close `nas lut adapt` gets on whole networks, and for how much timing.

A table made on one machine is adapted to this one from a small sample, then judged on whole
networks it never saw, timed here end to end (`nas lut validate`'s networks: seed 0, plus the
zoo). Every table is judged on the same timings, so they differ only in their predictions:

- the source as it is, and scaled by the one operator-speed ratio `nas lut validate` measures;
- `nas lut adapt` with the overall speed ratio alone (`ridge=inf`), and with per-term factors
  and the ridge chosen by cross-validation (the default);
- the same default adaptation from a source of another kind (`armv8`, a phone's cost model);
- the default adaptation at a deployment input it was not built at (`--input-size`), priced by
  its cost model and judged on networks timed at that size.

Measurement time is the adaptation's own (operators, call overhead and networks), against the
time a full `nas lut build` of the space would take here, estimated from the operators timed:
their mean time per operator times the space's operator count, which is what a build spends.
Each step's figures go into the results file as soon as they exist, and a rerun resumes there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from _report import write_section

from nas.evaluators.latency.adapt import AdaptOptions, adapt_table
from nas.evaluators.latency.build import BuildOptions, build_table
from nas.evaluators.latency.calibrate import fit_cold_term
from nas.evaluators.latency.metadata import Calibration
from nas.evaluators.latency.table import LatencyTable, load_table
from nas.evaluators.latency.timing import get_backend
from nas.evaluators.latency.validate import (
    Metrics,
    Row,
    SpeedCheck,
    check_operator_speed,
    validate_table,
)
from nas.search_spaces.arch import Arch
from nas.search_spaces.space import load_space

RESULTS = Path(__file__).resolve().parent / "results" / "lut_adapt.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default="x86_64", help="table to adapt to this machine")
    parser.add_argument("--other-source", default="armv8", help="a table of another kind")
    parser.add_argument("--space", default="mobile")
    parser.add_argument("--operators", type=int, default=100)
    parser.add_argument("--networks", type=int, default=10)
    parser.add_argument("--archs", type=int, default=30, help="random networks that judge")
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds of those networks")
    parser.add_argument("--other-size", type=int, default=192)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/nas-bench/lut_adapt"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--full-build",
        action="store_true",
        help="also build the space's full table here (nas lut build) and judge it on the same "
        "timings: what the minutes a build takes buy over adapting",
    )
    parser.add_argument(
        "--machine",
        default=None,
        help="label of this machine's figures: they go to results/lut_adapt_LABEL.json and "
        "their own BENCHMARKS.md section, beside another machine's [default: the unlabelled "
        "file and section]",
    )
    args = parser.parse_args()
    if args.machine and args.results == RESULTS:
        args.results = RESULTS.with_name(f"lut_adapt_{args.machine}.json")

    results: dict[str, Any] = (
        json.loads(args.results.read_text()) if args.results.exists() else {"steps": {}}
    )
    steps = results["steps"]

    def done(name: str, value: dict[str, Any]) -> None:
        steps[name] = value
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1) + "\n")

    args.work_dir.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        tables = {
            "adapted": _adapt(args, args.source, "adapted", None, steps, done),
            "adapted_ratio": _adapt(args, args.source, "adapted_ratio", float("inf"), steps, done),
            "adapted_other": _adapt(args, args.other_source, "adapted_other", None, steps, done),
        }
        if "validate" not in steps:
            source = load_table(args.source)
            # The source's own operators re-timed here, as `nas lut validate --target SOURCE`
            # does: the one speed ratio a user would scale the source by.
            source_speed = check_operator_speed(
                source, load_space(args.space), get_backend(str(source.metadata.runtime), 1)
            )
            report = validate_table(
                tables["adapted"], load_space(args.space), n_archs=args.archs, rounds=args.rounds
            )
            done("validate", _judge(report, tables, source, source_speed))
        if "validate_other_size" not in steps:
            report = validate_table(
                tables["adapted"],
                load_space(args.space),
                n_archs=args.archs,
                rounds=args.rounds,
                input_size=args.other_size,
                speed_check=0,
            )
            done("validate_other_size", _judge(report, {"adapted": tables["adapted"]}, None))
        if args.full_build and "full_build" not in steps:
            done("full_build", _full_build(args, steps))
    section, title = "lut-adapt", "Adapting a latency table to this machine"
    if args.machine:
        section, title = f"lut-adapt-{args.machine}", f"{title} ({args.machine})"
    write_section(section, title, _body(args, steps))
    print(_body(args, steps))


def _adapt(
    args: argparse.Namespace,
    source: str,
    name: str,
    ridge: float | None,
    steps: dict[str, Any],
    done,
) -> LatencyTable:
    """Run `nas lut adapt` (or resume it); the ratio-only variant refits the default's timings."""
    out = args.work_dir / f"{name}.json"
    if name == "adapted_ratio" and not out.exists():
        shutil.copy(args.work_dir / "adapted.json", out)  # same timings, another fit
    started = time.perf_counter()
    report = adapt_table(
        AdaptOptions(
            source=source,
            target=name,
            space=args.space,
            operators=args.operators,
            networks=args.networks,
            out=out,
            ridge=ridge,
        )
    )
    if name not in steps:
        adaptation = report.adaptation
        done(
            name,
            {
                "source": source,
                "wall_seconds": round(time.perf_counter() - started, 1),
                **{key: value for key, value in adaptation.to_dict().items() if key != "networks"},
                "full_build_estimate_seconds": _full_build_seconds(report.table, args.space),
                "cold_ms_per_mb": report.table.cold_ms_per_mb,
                "per_op_overhead_ms": report.table.per_op_overhead_ms,
            },
        )
    return report.table


def _full_build(args: argparse.Namespace, steps: dict[str, Any]) -> dict[str, Any]:
    """Build the whole table here, as a user would instead of adapting, and add its figures to
    the validation steps: their networks' timings are kept, so they are not timed again."""
    out = args.work_dir / "full_build.json"
    out.unlink(missing_ok=True)  # its calibration timings are needed, so the build runs whole
    started = time.perf_counter()
    report = build_table(BuildOptions(target="full_build", space=args.space, out=out))
    table = report.table
    # The same build with the per-operator overhead fitted jointly with the cold term, on the
    # same calibration timings: the two differ only in that fit.
    joint = LatencyTable.from_dict(json.loads(table.to_json()))
    timings = report.calibration_timings
    joint_fit = fit_cold_term(joint, list(timings.archs), list(timings.measured_ms), True)
    for step_name in ("validate", "validate_other_size"):
        step = steps[step_name]
        shape = tuple(step["input"])
        for name, judged in (("full_build", table), ("full_build_joint", joint)):
            rows = [
                Row(
                    r["name"],
                    "random" if r["name"].startswith("random_") else "zoo",
                    r["arch"],
                    judged.predict(Arch.from_string(r["arch"]), shape).total_ms,
                    measured_ms=r["measured_ms"],
                )
                for r in step["rows"]
            ]
            step["tables"][name] = {
                group: _metrics([row for row in rows if row.group == group])
                for group in ("random", "zoo")
            }
    return {
        "wall_seconds": round(time.perf_counter() - started, 1),
        "build_seconds": table.metadata.build_seconds,
        "calibration_seconds": (table.metadata.calibration or Calibration()).seconds,
        "operators": report.total,
        "cold_ms_per_mb": table.cold_ms_per_mb,
        "per_op_overhead_ms": table.per_op_overhead_ms,
        "joint": {
            "cold_ms_per_mb": joint.cold_ms_per_mb,
            "per_op_overhead_ms": joint.per_op_overhead_ms,
            "calibration_mape_pct": joint_fit.mape_fitted_pct,
        },
        "calibration_mape_pct": (table.metadata.calibration or Calibration()).mape_fitted_pct,
    }


def _full_build_seconds(table: LatencyTable, space: str) -> float:
    """What `nas lut build` would spend timing every operator of the space here.

    Adapt times its operators exactly as a build does (same repeats, warm-up and minimum
    time), so the mean time per sampled operator times the space's count is a build's cost,
    without the build's calibration networks.
    """
    adaptation = table.metadata.adaptation
    per_op = adaptation.operator_seconds / adaptation.operators
    return round(per_op * len(load_space(space).signatures((3, *table.input_hw))), 1)


def _judge(
    report,
    tables: dict[str, LatencyTable],
    source: LatencyTable | None,
    source_speed: SpeedCheck | None = None,
) -> dict:
    """Every table's figures on the one set of networks the report timed."""
    shape = tuple(report.settings["input"])
    timed = [row for row in report.rows if row.measured_ms is not None]
    judged: dict[str, Any] = {
        "input": list(shape),
        "networks": {group: sum(r.group == group for r in timed) for group in ("random", "zoo")},
        "operator_speed": report.speed.__dict__ if report.speed else None,
        "source_operator_speed": source_speed.__dict__ if source_speed else None,
        "rows": [{"name": r.name, "arch": r.arch, "measured_ms": r.measured_ms} for r in timed],
        "tables": {},
    }
    candidates = dict(tables)
    if source is not None:
        candidates["source"] = source
    for name, table in candidates.items():
        rows = [
            Row(
                r.name,
                r.group,
                r.arch,
                table.predict(Arch.from_string(r.arch), shape).total_ms,
                measured_ms=r.measured_ms,
            )
            for r in timed
        ]
        judged["tables"][name] = {
            group: _metrics([row for row in rows if row.group == group])
            for group in ("random", "zoo")
        }
        if name == "source" and source_speed is not None:
            for row in rows:
                row.predicted_ms *= source_speed.ratio
            judged["tables"]["source_x_speed_ratio"] = {
                group: _metrics([row for row in rows if row.group == group])
                for group in ("random", "zoo")
            }
    return judged


def _metrics(rows: list[Row]) -> dict[str, float] | None:
    metrics = Metrics.of(rows)
    return None if metrics is None else {k: round(v, 4) for k, v in metrics.__dict__.items()}


LABELS = {
    "source": "source table as it is",
    "source_x_speed_ratio": "source x measured speed ratio",
    "adapted_ratio": "adapted, overall ratio only",
    "adapted": "adapted, per-term factors (default)",
    "adapted_other": "adapted from the other source",
    "full_build": "full build here (nas lut build)",
    "full_build_joint": "full build here, overhead and cold term fitted jointly",
}


def _body(args: argparse.Namespace, steps: dict[str, Any]) -> str:
    lines = []
    for name in ("adapted", "adapted_ratio", "adapted_other"):
        step = steps.get(name)
        if not step:
            continue
        lines.append(
            f"- `{name}` from `{step['source']}`: {step['operators']} operators over "
            f"{step['variants']} variants and {args.networks} networks timed in "
            f"{step['measurement_seconds']:.0f} s (a full build of the space here: about "
            f"{step['full_build_estimate_seconds'] / 60:.0f} min, estimated from the same "
            f"operators); operators here at {step['speed_ratio_median']:.2f}x the source "
            f"(10-90%: {step['speed_ratio_p10_p90'][0]:.2f}-{step['speed_ratio_p10_p90'][1]:.2f}); "
            f"ridge {step['ridge']}, held-out operator error by ridge "
            + ", ".join(f"{k}: {v}%" for k, v in step["cv_operator_mape_pct_by_ridge"].items())
        )
    if build := steps.get("full_build"):
        lines.append(
            f"- `full_build`: `nas lut build` of all {build['operators']} operators here, "
            f"{build['build_seconds'] / 60:.1f} min of operator timing and "
            f"{build['calibration_seconds'] / 60:.1f} min of calibration networks"
            + (
                ""
                if "joint" not in build
                else f"; cold term alone {build['cold_ms_per_mb']:.4g} ms/MB with the probe's "
                f"overhead {build['per_op_overhead_ms']:.4g} ms per operator (calibration "
                f"networks' MAPE {build['calibration_mape_pct']}%), jointly "
                f"{build['joint']['cold_ms_per_mb']:.4g} ms/MB and "
                f"{build['joint']['per_op_overhead_ms']:.4g} ms per operator "
                f"({build['joint']['calibration_mape_pct']}%)"
            )
        )
    for step_name, title in (
        ("validate", "Whole networks at the tables' own input"),
        ("validate_other_size", f"Whole networks at {args.other_size}x{args.other_size}"),
    ):
        step = steps.get(step_name)
        if not step:
            continue
        lines += [
            "",
            f"{title} ({step['networks']['random']} random of seed 0 and "
            f"{step['networks']['zoo']} zoo networks, {args.rounds} rounds, timed here):",
            "",
            "| table | networks | MAPE | within +/-10% | Kendall tau | worst |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name, by_group in step["tables"].items():
            for group in ("random", "zoo"):
                m = by_group.get(group)
                if m:
                    lines.append(
                        f"| {LABELS.get(name, name)} | {group} ({m['n']}) | "
                        f"{m['mape_pct']:.1f}% | {m['within_pct']:.0f}% | "
                        f"{m['kendall_tau']:.3f} | {m['max_abs_error_pct']:.1f}% |"
                    )
        speed = step.get("source_operator_speed")
        if speed:
            lines.append(
                f"\nThe source's operators, timed again here as `nas lut validate` does, ran at "
                f"{speed['ratio']:.2f}x their entries (10-90%: {speed['low']:.2f}-"
                f"{speed['high']:.2f}): the ratio of the row 'source x measured speed ratio'."
            )
        speed = step.get("operator_speed")
        if speed:
            lines.append(
                f"\nThe adapted table's own operators, timed again before the networks, ran at "
                f"{speed['ratio']:.2f}x their entries (10-90%: {speed['low']:.2f}-"
                f"{speed['high']:.2f})."
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
