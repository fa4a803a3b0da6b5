"""Latency lookup tables: what an architecture costs in milliseconds on a target device.

Everything outside this package uses only the names below; the modules behind them are the
subsystem's own and may change shape freely:

    table        `LatencyTable` (JSON file, `predict`), where tables live, `load_table`
    metadata     `TableMetadata`: what a table says about itself, one typed record
    cost_model   the readable per-operator model a table prices unmeasured operators with
    arm_data     the published ARM measurements the shipped armv8 model is fitted to
    timing       how one module is timed (backends, the timing loop, the machine's identity)
    networks     random networks of a space, timed end to end
    calibrate    the cold-feature-map term, fitted on networks `nas lut build` times
    build        `nas lut build`: measure every operator of a space, resumably
    adapt        `nas lut adapt`: another table rescaled from a sample timed here, resumably
    validate     `nas lut validate`: whole networks against the table's sum
    bundle       `nas lut bundle`: the space's operators as model files for a phone's own tool
    phone_runner the bundle's run.py: times them over adb (or here, with --local)
    local_bench  the local mode's tool: a model file timed in its Python runtime
    bench_output the benchmark tools' outputs, read back
    device_import `nas lut import`: a table from a timed bundle
    op_kinds     the kinds of work inside an operator (depthwise, split, ...) and their shapes
    evidence     per kind, the measurements a table rests on and their shapes
    trust        what a table is, the error it states, and per kind measured or extrapolated
    reports      what the `nas lut` commands print, made from the results above

Building and validating need torch, onnxruntime and scipy; they load on first use, so pricing a
candidate from a table stays a plain-Python lookup.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from nas.evaluators.latency.metadata import TableMetadata
from nas.evaluators.latency.table import (
    LatencyEstimate,
    LatencyTable,
    OpLatency,
    available_tables,
    default_table_path,
    load_table,
    shipped_tables,
    user_tables_dir,
)

if TYPE_CHECKING:
    from nas.evaluators.latency.adapt import AdaptOptions, adapt_table
    from nas.evaluators.latency.build import BuildOptions, build_table
    from nas.evaluators.latency.bundle import BUNDLE_FORMATS, BundleOptions, write_bundle
    from nas.evaluators.latency.cost_model import OpCostModel
    from nas.evaluators.latency.device_import import import_bundle
    from nas.evaluators.latency.networks import NETWORK_ROUNDS
    from nas.evaluators.latency.reports import (
        TableListing,
        TableSummary,
        TableView,
        adapt_summary,
        build_summary,
        bundle_summary,
        import_summary,
        list_tables,
        listing_view,
        validation_summary,
    )
    from nas.evaluators.latency.timing import BACKENDS
    from nas.evaluators.latency.trust import StatedError, stated_error
    from nas.evaluators.latency.validate import (
        ValidationReport,
        validate_table,
        validate_with_timings,
        write_report,
    )

_LAZY = {
    "AdaptOptions": "adapt",
    "adapt_table": "adapt",
    "BuildOptions": "build",
    "build_table": "build",
    "BUNDLE_FORMATS": "bundle",
    "BundleOptions": "bundle",
    "write_bundle": "bundle",
    "import_bundle": "device_import",
    "OpCostModel": "cost_model",
    "NETWORK_ROUNDS": "networks",
    "TableListing": "reports",
    "TableSummary": "reports",
    "TableView": "reports",
    "adapt_summary": "reports",
    "build_summary": "reports",
    "bundle_summary": "reports",
    "import_summary": "reports",
    "list_tables": "reports",
    "listing_view": "reports",
    "validation_summary": "reports",
    "BACKENDS": "timing",
    "StatedError": "trust",
    "stated_error": "trust",
    "ValidationReport": "validate",
    "validate_table": "validate",
    "validate_with_timings": "validate",
    "write_report": "validate",
}

__all__ = [
    "AdaptOptions",
    "adapt_table",
    "BACKENDS",
    "NETWORK_ROUNDS",
    "BuildOptions",
    "BUNDLE_FORMATS",
    "BundleOptions",
    "import_bundle",
    "write_bundle",
    "validate_with_timings",
    "LatencyEstimate",
    "LatencyTable",
    "OpLatency",
    "TableMetadata",
    "TableListing",
    "TableSummary",
    "TableView",
    "adapt_summary",
    "build_summary",
    "bundle_summary",
    "import_summary",
    "list_tables",
    "listing_view",
    "validation_summary",
    "available_tables",
    "default_table_path",
    "load_table",
    "shipped_tables",
    "OpCostModel",
    "StatedError",
    "stated_error",
    "ValidationReport",
    "build_table",
    "user_tables_dir",
    "validate_table",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
