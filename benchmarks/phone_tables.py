"""Tables made with a phone's runtime on this machine (ncnn, ExecuTorch/XNNPACK) against the
onnxruntime table of the same space: do they agree on the same networks, and does each predict
its own runtime?

For each phone format the product's own commands run as a user would run them with a phone,
in the runner's local mode (this machine in the phone's place, the runtime's Python binding as
the benchmark tool): `nas lut bundle`, `python BUNDLE/run.py --local`, `nas lut import`,
`nas lut validate --timings`. The reference is `nas lut build` (onnxruntime) on the same space
and input, judged by `nas lut validate` on the same networks (seed 0, and the zoo). All tables
time with one thread.

Figures, all on the same networks:

- each table against its own runtime end to end (MAPE, share within ±10%, Kendall tau);
- each phone-format table against the onnxruntime table (Kendall tau of the two tables'
  predictions, MAPE taking onnxruntime as the reference, median ratio);
- the onnxruntime table as a stand-in for the other runtime: Kendall tau of its predictions
  against that runtime's end-to-end times (does ranking by one runtime's table rank for the
  other?).

Every step resumes from the work folder; raw results go to benchmarks/results/phone_tables.json.

    nohup nice -n 5 python benchmarks/phone_tables.py > /tmp/nas-bench/phone_tables.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _report import write_section
from scipy.stats import kendalltau

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "phone_tables.json"
DEFAULT_WORK = Path("/tmp/nas-bench/phone_tables")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--formats", default="ncnn,executorch")
    parser.add_argument("--space", default="tiny")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--validate", type=int, default=20, help="random networks judged")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved network rounds")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args(argv)
    args.formats = [name for name in args.formats.split(",") if name]
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def nas(*args: str) -> None:
    """One `nas` command, as a user runs it; its output goes to this script's log."""
    command = [str(Path(sys.executable).parent / "nas"), *args]
    log(" ".join(command[1:]))
    subprocess.run(command, check=True)


def timed(figures: dict[str, Any], step: str, run) -> None:
    """Run a step once; its wall time is kept, and a rerun skips a step already done."""
    if step in figures["seconds"]:
        return
    started = time.monotonic()
    run()
    figures["seconds"][step] = round(time.monotonic() - started, 1)
    save(figures)


def save(figures: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=1) + "\n")


def reference(args: argparse.Namespace, figures: dict[str, Any]) -> Path:
    """The onnxruntime table of the space, built and validated here."""
    table = args.work_dir / "local-onnxruntime.json"
    common = ("--input-size", str(args.input_size))
    timed(
        figures,
        "onnxruntime: nas lut build",
        lambda: nas("lut", "build", "--target", "local-onnxruntime", "--space", args.space,
                    *common, "--out", str(table)),
    )  # fmt: skip
    timed(
        figures,
        "onnxruntime: nas lut validate",
        lambda: nas("lut", "validate", "--target", str(table), "--archs", str(args.validate),
                    "--seed", "0", "--rounds", str(args.rounds), "--out",
                    str(args.work_dir / "validate-onnxruntime")),
    )  # fmt: skip
    return args.work_dir / "validate-onnxruntime" / "validate_local-onnxruntime.json"


def phone_format(args: argparse.Namespace, fmt: str, figures: dict[str, Any]) -> Path:
    """Bundle, run locally, import and validate one phone format's table."""
    bundle = args.work_dir / fmt
    table = args.work_dir / f"local-{fmt}.json"
    target = f"local-{fmt}"
    timed(
        figures,
        f"{fmt}: nas lut bundle",
        lambda: nas("lut", "bundle", "--target", target, "--space", args.space, "--format", fmt,
                    "--input-size", str(args.input_size), "--validate", str(args.validate),
                    "--rounds", str(args.rounds), "--out", str(bundle)),
    )  # fmt: skip

    def run_locally() -> None:
        log(f"python {bundle / 'run.py'} --local")
        subprocess.run([sys.executable, str(bundle / "run.py"), "--local"], check=True)

    timed(figures, f"{fmt}: run.py --local", run_locally)
    timed(
        figures,
        f"{fmt}: nas lut import",
        lambda: nas("lut", "import", str(bundle), "--target", target, "--out", str(table)),
    )
    timed(
        figures,
        f"{fmt}: nas lut validate --timings",
        lambda: nas("lut", "validate", "--target", str(table), "--timings", str(bundle),
                    "--out", str(args.work_dir / f"validate-{fmt}")),
    )  # fmt: skip
    return args.work_dir / f"validate-{fmt}" / f"validate_{target}.json"


def own_runtime(report: dict[str, Any]) -> dict[str, Any]:
    """A table against its own runtime's end-to-end times, per network group."""
    found = {}
    for group in ("random", "zoo"):
        metrics = report["metrics"].get(group)
        if metrics:
            found[group] = {
                key: round(metrics[key], 3)
                for key in ("n", "mape_pct", "within_pct", "kendall_tau", "max_abs_error_pct")
            }
    return found


def against(reference_rows: dict[str, dict], rows: dict[str, dict]) -> dict[str, Any]:
    """Agreement of two validations on the networks both priced and timed."""
    names = [n for n in rows if n in reference_rows and rows[n]["predicted_ms"] is not None]
    names = [n for n in names if reference_rows[n]["predicted_ms"] is not None]
    ours = [rows[n]["predicted_ms"] for n in names]
    theirs = [reference_rows[n]["predicted_ms"] for n in names]
    measured_ours = [rows[n]["measured_ms"] for n in names]
    measured_theirs = [reference_rows[n]["measured_ms"] for n in names]
    return {
        "networks": len(names),
        "tables_kendall_tau": round(kendalltau(ours, theirs).statistic, 3),
        "tables_mape_pct_vs_onnxruntime": round(
            statistics.fmean(abs(a - b) / b * 100 for a, b in zip(ours, theirs)), 1
        ),
        "tables_median_ratio": round(statistics.median(a / b for a, b in zip(ours, theirs)), 3),
        "end_to_end_kendall_tau": round(kendalltau(measured_ours, measured_theirs).statistic, 3),
        "end_to_end_median_ratio": round(
            statistics.median(a / b for a, b in zip(measured_ours, measured_theirs)), 3
        ),
        "onnxruntime_table_vs_this_runtime_kendall_tau": round(
            kendalltau(theirs, measured_ours).statistic, 3
        ),
    }


def report(args: argparse.Namespace, figures: dict[str, Any], reports: dict[str, Path]) -> None:
    loaded = {name: json.loads(path.read_text()) for name, path in reports.items()}
    rows = {name: {row["name"]: row for row in data["rows"]} for name, data in loaded.items()}
    figures["own_runtime"] = {name: own_runtime(data) for name, data in loaded.items()}
    figures["against_onnxruntime"] = {
        fmt: against(rows["onnxruntime"], rows[fmt]) for fmt in reports if fmt != "onnxruntime"
    }
    figures["tables"] = {
        name: {
            "per_op_overhead_ms": data["per_op_overhead_ms"],
            "cold_ms_per_mb": data["cold_ms_per_mb"],
        }
        for name, data in loaded.items()
    }
    save(figures)
    lines = [
        "| table | networks | MAPE | within ±10% | Kendall tau | worst |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, groups in figures["own_runtime"].items():
        for group, m in groups.items():
            lines.append(
                f"| {name} | {group} ({m['n']}) | {m['mape_pct']:.1f}% | {m['within_pct']:.0f}% "
                f"| {m['kendall_tau']:.3f} | {m['max_abs_error_pct']:.1f}% |"
            )
    lines += [
        "",
        "| table | networks | tau, table vs onnxruntime table | MAPE vs onnxruntime table "
        "| median ratio | tau, end to end vs onnxruntime | end-to-end median ratio "
        "| tau, onnxruntime table vs this runtime |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for fmt, a in figures["against_onnxruntime"].items():
        lines.append(
            f"| {fmt} | {a['networks']} | {a['tables_kendall_tau']:.3f} | "
            f"{a['tables_mape_pct_vs_onnxruntime']:.1f}% | {a['tables_median_ratio']:.2f} | "
            f"{a['end_to_end_kendall_tau']:.3f} | {a['end_to_end_median_ratio']:.2f} | "
            f"{a['onnxruntime_table_vs_this_runtime_kendall_tau']:.3f} |"
        )
    steps = ", ".join(
        f"{step} {seconds / 60:.1f} min" for step, seconds in figures["seconds"].items()
    )
    untimed = sorted(
        {step.split(":")[0] for step in figures["seconds"]} - set(reports) - {"onnxruntime"}
    )
    if untimed:
        steps += (
            f". Bundled but not timed in this run: {', '.join(untimed)} (`--formats` names the "
            f"formats timed; an ExecuTorch local run starts Python with torch and ExecuTorch for "
            f"every model, seconds each, so its 748 runs take over an hour on two cores)"
        )
    body = (
        f"The `{args.space}` space at {args.input_size}x{args.input_size}, one thread. Phone "
        f"formats through `nas lut bundle` and the runner's local mode (the runtime's Python "
        f"binding timing each model with `nas lut build`'s loop), then `nas lut import` and "
        f"`nas lut validate --timings`; onnxruntime through `nas lut build` and `nas lut "
        f"validate`. All judged on the same {args.validate} random networks (seed 0, "
        f"{args.rounds} interleaved rounds) and the zoo.\n\n"
        + "\n".join(lines)
        + f"\n\nWall time of each step: {steps}.\n"
    )
    print(body)
    write_section("phone-tables", "Phone runtimes' tables on this machine", body,
                  ("torch", "onnxruntime", "ncnn", "executorch"))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    figures = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    figures.setdefault("seconds", {})
    if not (args.work_dir / "local-onnxruntime.json").exists():
        figures["seconds"] = {}  # another machine's work folder: start over
    reports = {"onnxruntime": reference(args, figures)}
    for fmt in args.formats:
        reports[fmt] = phone_format(args, fmt, figures)
    report(args, figures, reports)


if __name__ == "__main__":
    main()
