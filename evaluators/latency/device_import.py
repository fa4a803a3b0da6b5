"""`nas lut import`: a table from a bundle's raw outputs, as `nas lut build` would have made it.

The runner (`phone_runner`, run.py in the bundle) left one output file per timed run and the
device's properties; `bench_output` reads each file in its tool's format. From them this module
makes what a build makes: every operator's fastest run as a measured entry, the call
overhead (the probe's, plus what the calibration networks show the runtime pays per call on
real feature maps: `calibrate.fit_cold_term`), the cost model fitted to the
entries (held-out error recorded), and the cold-feature-map term fitted on the same networks.
The networks the bundle set aside for judging (another seed, the zoo) become the whole-network
timings `nas lut validate --timings` compares the table with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from nas.errors import InputError
from nas.evaluators.latency.bench_output import BenchOutputError, RunTiming, parse_output
from nas.evaluators.latency.build import attach_cost_model
from nas.evaluators.latency.bundle import MANIFEST, PHONE_FORMATS
from nas.evaluators.latency.bundle_files import check_timing, read_device, read_manifest
from nas.evaluators.latency.calibrate import fit_cold_term
from nas.evaluators.latency.metadata import BundleRecord, Calibration, TableMetadata
from nas.evaluators.latency.table import LatencyTable, default_table_path
from nas.search_spaces.arch import Arch
from nas.search_spaces.space import load_space


@dataclass
class Bundle:
    """A bundle folder's manifest, device record and the timings its raw outputs hold."""

    folder: Path
    manifest: dict[str, Any]
    device: dict[str, Any]
    timings: dict[str, list[RunTiming]] = field(default_factory=dict)
    """Model id -> one timing per finished run of it (networks: one per round)."""

    def fastest_ms(self, model_id: str) -> float:
        return min(t.ms for t in self.timings[model_id])

    def spread_ms(self, model_id: str) -> float:
        values = [t.ms for t in self.timings[model_id]]
        return max(values) - min(values)


def read_bundle(folder: Path, require_complete: bool = True) -> Bundle:
    """Parse every finished run of the bundle in `folder`.

    With `require_complete`, runs not yet done are an `InputError` that says how many and how
    to finish them; a run whose output holds no timing is one too, naming the file.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder} is not a latency bundle (no {MANIFEST}): see 'nas lut bundle'")
    manifest = read_manifest(path)
    if manifest["format"] not in PHONE_FORMATS:
        raise InputError(
            f"{path}: the bundle's format {manifest['format']!r} is none of "
            f"{', '.join(PHONE_FORMATS)}: make the bundle again with 'nas lut bundle'"
        )
    if not manifest.get("complete", True):
        raise InputError(f"{folder}: its export was interrupted: rerun the same 'nas lut bundle'")
    raw = folder / "raw"
    device = read_device(raw / "device.json")
    # The binary may be renamed (benchncnn-arm64); only the local tool prints another format.
    tool = "nas-local-bench" if device.get("tool") == "nas-local-bench" else manifest["tool"]
    bundle = Bundle(folder, manifest, device)
    missing = []
    for run in manifest["runs"]:
        output = raw / f"{run['run']}.txt"
        if not output.is_file():
            missing.append(run["run"])
            continue
        try:
            timing = check_timing(output, parse_output(tool, output.read_text(errors="replace")))
        except BenchOutputError as error:
            raise InputError(f"{output}: {error}") from None
        bundle.timings.setdefault(run["model"], []).append(timing)
    if missing and require_complete:
        failed = sorted(raw.glob("*.failed.txt"))
        hint = f" ({len(failed)} failed, e.g. {failed[0]})" if failed else ""
        raise InputError(
            f"{folder}: {len(missing)} of {len(manifest['runs'])} runs have no output yet"
            f"{hint}: run 'python {folder / 'run.py'}' again (it resumes), then import"
        )
    return bundle


@dataclass
class ImportReport:
    path: Path
    table: LatencyTable
    operators: int
    calibration: Calibration | None
    held_out_mape_pct: float | None


def import_bundle(folder: Path, target: str, out: Path | None = None) -> ImportReport:
    """Make and save the table of a fully timed bundle; returns what was made."""
    bundle = read_bundle(folder)
    manifest = bundle.manifest
    space = load_space(manifest.get("space_file") or manifest["space"])
    size = int(manifest["input_size"])
    num_classes = int(manifest["num_classes"])
    table = LatencyTable(_metadata(bundle, target))
    operators = [m for m in manifest["models"] if m["role"] == "operator"]
    for model in operators:
        timings = bundle.timings[model["id"]]
        fastest = min(timings, key=lambda t: t.ms)
        table.set_entry(model["key"], fastest.ms, max(0.0, fastest.typical_ms - fastest.ms))
    table.metadata = table.metadata.replace(
        per_op_overhead_ms=round(bundle.fastest_ms("overhead"), 5)
    )
    sigs = space.signatures((3, size, size), num_classes)
    known = {sig.key for sig in sigs}
    if {m["key"] for m in operators} != known:
        raise InputError(
            f"{folder}: its operators are not those of the space {space.name!r} as installed "
            f"here (the space changed since the bundle was made): bundle it again"
        )
    attach_cost_model(table, sigs)
    calibration = [m for m in manifest["models"] if m["role"] == "calibration"]
    summary = None
    if calibration:
        archs = [Arch.from_string(m["arch"]) for m in calibration]
        measured = [bundle.fastest_ms(m["id"]) for m in calibration]
        summary = fit_cold_term(table, archs, measured, fit_overhead=True).replace(
            seed=manifest["calibration_seed"],
            space=space.name,
            rounds=manifest["network_rounds"],
            date=table.metadata.date,
        )
        table.metadata = table.metadata.replace(calibration=summary)
    path = Path(out) if out else default_table_path(target)
    table.save(path)
    return ImportReport(path, table, len(operators), summary, _held_out(table))


def _held_out(table: LatencyTable) -> float | None:
    """The cost model's error on entries it was not fitted to, as `attach_cost_model` kept it."""
    found = (table.cost_model or {}).get("fit", {}).get("held_out_mape_percent_5_fold")
    return float(found) if found is not None else None


def _metadata(bundle: Bundle, target: str) -> TableMetadata:
    """The same fields `nas lut build` records, from the manifest and the device's record."""
    manifest, device = bundle.manifest, bundle.device
    maker = " ".join(
        part
        for part in (device.get("ro.product.manufacturer"), device.get("ro.product.model"))
        if part
    )
    soc = device.get("ro.soc.model") or device.get("ro.board.platform") or device.get("ro.hardware")
    system = device.get("ro.build.version.release", "")
    if device.get("mode") == "adb" and system:
        system = f"Android {system}"
    fmt = PHONE_FORMATS[manifest["format"]]
    tool = device.get("tool") or fmt.tool
    described = ", ".join(part for part in (soc, system) if part)
    return TableMetadata.create(
        target=target,
        device=f"{maker or 'unknown device'} ({described})" if described else maker,
        cpu_model=soc or maker,
        machine=device.get("ro.product.cpu.abi", ""),
        system=system,
        serial=device.get("serial"),
        device_properties={k: v for k, v in device.items() if k.startswith("ro.")},
        runtime=fmt.runtime,
        runtime_version=device.get("runtime_version", "not given (run.py --runtime-version)"),
        benchmark_tool=tool,
        benchmark_tool_sha256=device.get("tool_sha256"),
        threads=int(manifest["threads"]),
        precision=fmt.precision if tool != "nas-local-bench" else "float32",
        input_size=int(manifest["input_size"]),
        num_classes=int(manifest["num_classes"]),
        space=manifest["space"],
        clock="thread_cpu" if tool == "nas-local-bench" and manifest["threads"] == 1 else "wall",
        method=(
            f"nas lut bundle + import: each operator exported alone ({manifest['exporter']}) "
            f"with random weights at batch 1 and timed on the device by {tool} "
            f"({manifest['operator_loops']} runs, networks {manifest['network_loops']} runs in "
            f"{manifest['network_rounds']} interleaved rounds), {manifest['threads']} thread(s); "
            f"each entry is the fastest run, its std the tool's mean (median) minus that"
        ),
        bundle=BundleRecord.create(
            folder=str(bundle.folder),
            format=manifest["format"],
            created=manifest["created"],
            runs=len(manifest["runs"]),
            timed=device.get("started"),
            last_run=device.get("last_run"),
        ),
        date=date.today().isoformat(),
    )
