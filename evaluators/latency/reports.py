"""What the `nas lut` commands tell a person, made from the latency library's own results.

Each function here turns one result (a build, an adaptation, a bundle, an import, a validation,
the tables there are, one table) into `Part`s: lines with rich markup and `TableView`s, in the
order a terminal shows them. `nas lut` parses flags, calls the library and prints these parts;
a notebook or another front end can print the same ones. `--json` output comes from the same
objects (`TableListing.to_dict`, `TableSummary.to_dict`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.evaluators.latency.metadata import AdaptedFrom, Calibration, TableMetadata
from nas.evaluators.latency.table import LatencyTable, available_tables, load_table, shipped_tables
from nas.evaluators.latency.trust import TableTrust, identity_line, table_trust

if TYPE_CHECKING:
    from nas.evaluators.latency.adapt import AdaptReport
    from nas.evaluators.latency.build import BuildReport
    from nas.evaluators.latency.device_import import ImportReport
    from nas.evaluators.latency.validate import ValidationReport


@dataclass(frozen=True)
class TableView:
    """A table to print: a title, column names and one list of cells per row."""

    title: str
    columns: list[str]
    rows: list[list[Any]]


Part = str | TableView
"""One thing to print: a line (rich markup) or a table."""


def build_summary(report: BuildReport) -> list[Part]:
    """What a `nas lut build` run measured, fitted, and whether it has to be rerun."""
    parts: list[Part] = [
        f"{report.path}: {report.measured} operators measured, {report.skipped} "
        f"already there, {report.total} in the space ({report.seconds / 60:.1f} min)"
    ]
    if report.calibration and report.table is not None:
        parts.append(_calibrated(report.calibration, report.table))
    if report.interrupted:
        parts.append("interrupted: rerun the same command to resume")
    return parts


def adapt_summary(report: AdaptReport) -> list[Part]:
    """What `nas lut adapt` timed here, the speed it found and how well its fit holds."""
    if report.interrupted:
        return [
            f"{report.path}: interrupted after {report.operators_measured} operators: rerun "
            f"the same command to resume"
        ]
    done = report.adaptation
    table = report.table
    origin = table.metadata.adapted_from or AdaptedFrom()
    calibration = table.metadata.calibration or Calibration()
    low, high = done.speed_ratio_p10_p90 or (math.nan, math.nan)
    by_ridge = done.cv_operator_mape_pct_by_ridge or {}
    return [
        f"{report.path}: {len(table.entries)} entries adapted from {origin.target!r} "
        f"({done.operators} operators over {done.variants} variants and "
        f"{len(done.networks or ())} networks timed here, {done.measurement_seconds:.0f} s)",
        f"operators here take {done.speed_ratio_median:.2f}x the source's time (10-90%: "
        f"{low:.2f}-{high:.2f}); per-term factors with ridge {done.ridge}: "
        f"{by_ridge[done.ridge]:.1f}% error on held-out operators "
        f"({by_ridge['overall ratio only']:.1f}% with the overall ratio alone)",
        f"cold feature maps cost {table.cold_ms_per_mb:.4f} ms/MB; error on the timed networks "
        f"{calibration.mape_without_pct:.1f}% -> {calibration.mape_fitted_pct:.1f}%",
        f"judge it on other networks: nas lut validate --target {report.path}",
    ]


def bundle_summary(manifest: Mapping[str, Any], out: Path, target: str) -> list[Part]:
    """What `nas lut bundle` wrote, and the two commands that come next."""
    models = manifest["models"]
    operators = sum(m["role"] == "operator" for m in models)
    return [
        f"{out}: {operators} operators and {len(models) - operators - 1} networks as "
        f"{manifest['format']} ({manifest['exporter']}), {len(manifest['runs'])} runs for "
        f"{manifest['tool']} ({manifest['export_seconds'] / 60:.1f} min of export)",
        f"next: python {out / 'run.py'} --bench PATH/TO/{manifest['tool']} (phone on adb) "
        f"or --local (this machine); then nas lut import {out} --target {target}",
    ]


def import_summary(report: ImportReport, folder: Path) -> list[Part]:
    """Where the imported table's entries and terms came from, and how to judge it."""
    table = report.table
    meta = table.metadata
    parts: list[Part] = [
        f"{report.path}: {report.operators} operators measured on {meta.device} "
        f"with {meta.benchmark_tool}, {meta.threads} thread(s)",
        f"call overhead {table.per_op_overhead_ms:.4f} ms per operator (the probe's "
        f"{meta.probe_overhead_ms:.4f} ms, the rest fitted on the calibration networks)",
    ]
    if report.held_out_mape_pct is not None:
        parts.append(
            f"cost model for operators outside the space: {report.held_out_mape_pct:.1f}% "
            f"error on held-out entries (5-fold)"
        )
    if report.calibration:
        parts.append(_calibrated(report.calibration, table))
    parts.append(f"judge it: nas lut validate --target {report.path} --timings {folder}")
    return parts


def _calibrated(calibration: Calibration, table: LatencyTable) -> str:
    return (
        f"calibrated on {calibration.networks} networks: cold feature maps cost "
        f"{table.cold_ms_per_mb:.4f} ms/MB; table error on them "
        f"{calibration.mape_without_pct:.1f}% -> {calibration.mape_fitted_pct:.1f}%"
    )


# ---- validation ---------------------------------------------------------------------------


PREDICTIONS = (
    ("table", "metrics"),
    ("table x speed ratio", "speed_scaled_metrics"),
    ("plain sum", "plain_sum_metrics"),
)
"""The predictions a validation compares, as a row label and the report's method for it."""


def validation_summary(
    report: ValidationReport, source: str, written: tuple[Path, Path]
) -> list[Part]:
    """How the table's sums compare with whole networks, and what to do when they miss.

    `source` is the table as the user named it (the adapt command it suggests starts from it);
    `written` the report's JSON and PNG files.
    """
    rows = []
    for group in ("random", "zoo"):
        for label, method in PREDICTIONS:
            metrics = getattr(report, method)(group)
            if metrics:
                rows.append(
                    [
                        group,
                        label,
                        metrics.n,
                        f"{metrics.mape_pct:.1f}%",
                        f"{metrics.within_pct:.0f}%",
                        f"{metrics.kendall_tau:.3f}",
                        f"{metrics.max_abs_error_pct:.1f}%",
                    ]
                )
    parts: list[Part] = [
        TableView(
            f"{report.target}: table sum against end-to-end time "
            f"({report.settings['runtime']}, {report.settings['threads']} thread(s))",
            ["networks", "prediction", "n", "MAPE", "within ±10%", "Kendall tau", "worst"],
            rows,
        ),
        "table = entries - call overhead + cold feature maps (what the search uses); "
        "x speed ratio = the table scaled by the operator speed measured below; "
        "plain sum = entries alone",
    ]
    speed = report.speed
    if speed is not None:
        parts.append(speed.describe())
        if speed.changed:
            parts.append(
                f"[yellow]this machine takes {speed.ratio:.2f}x the time the "
                f"table recorded for its operators, so the sums above miss for that "
                f"reason first: adapt the table to this machine in a minute ('nas lut "
                f"adapt --from {source} --target NAME') or rebuild it here ('nas lut build "
                f"--target {report.target} --out FILE')[/yellow]"
            )
    unpriced = [row.name for row in report.rows if row.predicted_ms is None]
    if unpriced:
        parts.append(f"not priced by the table (no entry, no cost model): {', '.join(unpriced)}")
    if report.trust is not None:
        parts += trust_parts(report.trust, validated=True)
    json_path, png_path = written
    parts.append(f"wrote {json_path} and {png_path}")
    return parts


# ---- how far to trust a table ------------------------------------------------------------------


def trust_parts(trust: TableTrust, validated: bool = False, identity: bool = True) -> list[Part]:
    """What the table is (unless `identity` is False), the error it states, and per operator
    kind what its price rests on.

    `validated`: the kinds were counted over the networks `nas lut validate` judged, and each
    row gets the error of those that contain the kind.
    """
    error = trust.error.text() if trust.error else "none stated"
    parts: list[Part] = []
    if identity:
        parts.append("; ".join(f"{name}: {value}" for name, value in trust.identity.items()))
    parts.append(f"stated error: {error}")
    shown = [k for k in trust.kinds if k.priced or k.evidence is not None]
    columns = ["kind", "price", "why", "priced", "measured (n: shapes)", "held-out error"]
    if validated:
        columns += ["networks", "their error"]
    rows = []
    for k in shown:
        evidence = k.evidence
        row = [
            k.kind,
            k.price,
            k.why,
            k.priced,
            f"{evidence.n}: {evidence.range_text()}" if evidence else "none",
            _pct(evidence.held_out_mape_pct if evidence else None),
        ]
        if validated:
            row += [k.networks, _pct(k.network_mape_pct)]
        rows.append(row)
    parts.append(TableView(f"Operator kinds: {trust.priced}", columns, rows))
    parts.append(
        "measured: every use is in an operator the table timed itself; fitted: priced by a "
        "cost model within the shapes its data measured; extrapolated: no measurement of the "
        f"kind, or shapes beyond them. Measured by: {'; '.join(trust.evidence.sources) or 'nothing'}"
        + (
            f"; held-out error: {'; '.join(trust.evidence.held_out)}"
            if trust.evidence.held_out
            else ""
        )
    )
    if trust.unmeasured:
        parts.append(
            f"[yellow]no measurement behind: {', '.join(trust.unmeasured)}: priced by rates "
            f"fitted to other kinds of work[/yellow]"
        )
    if trust.beyond_range:
        parts.append(f"priced beyond the shapes measured: {', '.join(trust.beyond_range)}")
    unused = [k.kind for k in trust.kinds if not k.priced and k.evidence is None]
    if unused:
        parts.append(f"never measured, not priced here: {', '.join(unused)}")
    return parts


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}%"


# ---- the tables there are, and one table ----------------------------------------------------


@dataclass(frozen=True)
class TableListing:
    """One row of `nas lut list`: a table and how it was made."""

    target: str
    origin: str
    """"shipped" with nas, or "user" (built, adapted or imported here)."""
    path: str
    device: str
    runtime: str
    threads: int | None
    input_size: int | list[int]
    space: str | None
    date: str | None

    @classmethod
    def of(cls, target: str, path: Path, origin: str) -> TableListing:
        meta = load_table(str(path)).metadata
        size = meta.input_size
        return cls(
            target=target,
            origin=origin,
            path=str(path),
            device=meta.device or "",
            runtime=_runtime(meta),
            threads=meta.threads,
            input_size=list(size) if isinstance(size, tuple) else size,
            space=meta.space,
            date=meta.date,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_tables() -> list[TableListing]:
    """Every table a target name finds, user tables shadowing shipped ones of the same name."""
    shipped = shipped_tables()
    return [
        TableListing.of(target, path, "shipped" if shipped.get(target) == path else "user")
        for target, path in sorted(available_tables().items())
    ]


def listing_view(listings: list[TableListing]) -> TableView:
    columns = ["target", "origin", "device", "runtime", "threads", "input", "space", "date"]
    return TableView(
        "Latency tables",
        columns,
        [
            [r.target, r.origin, r.device, r.runtime, r.threads, r.input_size, r.space, r.date]
            for r in listings
        ],
    )


def _runtime(meta: TableMetadata) -> str:
    """Runtime and version; a table that says it does not know its runtime shows None."""
    runtime = "None" if meta.is_unknown("runtime") else (meta.runtime or "")
    version = "None" if meta.is_unknown("runtime_version") else (meta.runtime_version or "")
    return f"{runtime} {version}".strip()


@dataclass(frozen=True)
class KindSpan:
    """A table's entries of one operator kind: how many, and their fastest and slowest."""

    n: int
    min_ms: float
    max_ms: float


@dataclass(frozen=True)
class TableSummary:
    """`nas lut show`: a table's metadata and what its entries are made of."""

    table: LatencyTable
    counts: dict[str, int]
    """Entries by source: measured, model."""
    kinds: dict[str, KindSpan]
    trust: TableTrust | None = None
    """Per operator kind, what the prices rest on (`trust.table_trust`)."""

    @classmethod
    def of(cls, table: LatencyTable, space: str | None = None) -> TableSummary:
        """The summary of `table`, with the trust of its prices over the operators of its
        spaces (or `space`) and the zoo networks."""
        counts = {
            source: sum(1 for e in table.entries.values() if e["source"] == source)
            for source in ("measured", "model")
        }
        times: dict[str, list[float]] = {}
        for key, entry in table.entries.items():
            times.setdefault(key.split(":")[0], []).append(entry["ms"])
        kinds = {
            kind: KindSpan(len(v), round(min(v), 4), round(max(v), 4))
            for kind, v in sorted(times.items())
        }
        return cls(table, counts, kinds, table_trust(table, space))

    def to_dict(self) -> dict[str, Any]:
        table = self.table
        return {
            "target": table.target,
            "path": str(table.path),
            "metadata": table.metadata.to_dict(),
            "entries": len(table.entries),
            **{f"n_{k}": v for k, v in self.counts.items()},
            "has_cost_model": table.cost_model is not None,
            "kinds": {kind: asdict(span) for kind, span in self.kinds.items()},
            "trust": self.trust.to_dict() if self.trust else None,
        }

    def parts(self) -> list[Part]:
        table = self.table
        lines: list[Part] = [
            f"[bold]{table.target}[/bold] ({table.path})",
            identity_line(table.metadata),
        ]
        lines += [f"  {name}: {value}" for name, value in sorted(table.metadata.to_dict().items())]
        lines.append(
            f"{len(table.entries)} entries ({self.counts['measured']} measured, "
            f"{self.counts['model']} model), cost model: "
            f"{'yes' if table.cost_model is not None else 'no'}"
        )
        lines.append(
            TableView(
                "Entries by operator kind",
                ["kind", "n", "min ms", "max ms"],
                [[k, v.n, v.min_ms, v.max_ms] for k, v in self.kinds.items()],
            )
        )
        if self.trust is not None:
            lines += trust_parts(self.trust, identity=False)
        return lines
