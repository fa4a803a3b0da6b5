#!/usr/bin/env python3
"""Time a latency bundle's models on an Android phone over adb (or on this machine with --local).

Copied into every bundle as run.py by `nas lut bundle`; with a phone it needs only Python's
standard library on the computer the phone is plugged into (--local needs nas itself), and
nothing but the runtime's benchmark binary on the phone. For each run of the manifest it
pushes the model, runs the tool in `adb shell`, and keeps the tool's output in raw/<run>.txt.
A finished run is never repeated: after a disconnect, a reboot or Ctrl-C the same command goes
on where it stopped. The device's properties (`getprop`), the tool's checksum and the
runtime's version go to raw/device.json; a rerun on another device is refused, so one table
never mixes two phones.

    python run.py --bench ~/ncnn/build-android/benchmark/benchncnn [--serial SERIAL]
    python run.py --local             # this machine, the runtime's Python binding as the tool

Then, on the computer: nas lut import DIR --target NAME
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REMOTE_DIR = "/data/local/tmp/nas-lut"
RUN_TIMEOUT_S = 900
EXIT_MARKER = "__nas_exit="
GETPROP = (
    "ro.product.manufacturer",
    "ro.product.model",
    "ro.product.device",
    "ro.soc.manufacturer",
    "ro.soc.model",
    "ro.board.platform",
    "ro.hardware",
    "ro.product.cpu.abi",
    "ro.build.version.release",
    "ro.build.version.sdk",
    "ro.build.fingerprint",
)


class DeviceGone(Exception):
    """adb lost the device (unplugged, rebooted, unauthorised): stop, keep what is done."""


class Device:
    """Where the models run: an Android phone over adb."""

    def __init__(self, adb: str, serial: str | None, remote: str) -> None:
        self.adb = [adb, *(["-s", serial] if serial else [])]
        self.remote = remote.rstrip("/")

    def _adb(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        try:
            done = subprocess.run(
                [*self.adb, *args], capture_output=True, text=True, timeout=timeout
            )
        except FileNotFoundError:
            raise SystemExit(f"adb not found ({self.adb[0]}): install platform-tools or --adb")
        except subprocess.TimeoutExpired:
            raise DeviceGone(f"adb {' '.join(args[:2])} did not answer in {timeout:.0f} s")
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise DeviceGone(lines[-1] if lines else f"adb exit {done.returncode}")
        return done

    def properties(self) -> dict[str, str]:
        found = {"serial": self._adb("get-serialno").stdout.strip()}
        for name in GETPROP:
            found[name] = self._adb("shell", "getprop", name).stdout.strip()
        return found

    def prepare(self) -> None:
        self._adb("shell", "mkdir", "-p", f"{self.remote}/models")

    def push(self, local: Path, remote_name: str) -> None:
        self._adb("push", str(local), f"{self.remote}/{remote_name}", timeout=600)

    def make_executable(self, remote_name: str) -> None:
        self._adb("shell", "chmod", "755", f"{self.remote}/{remote_name}")

    def run(self, command: list[str]) -> tuple[int, str]:
        """The tool's exit status and output (stdout and stderr, as the tool printed them)."""
        line = f"cd {shlex.quote(self.remote)} && {shlex.join(command)} 2>&1; echo {EXIT_MARKER}$?"
        done = self._adb("shell", line, timeout=RUN_TIMEOUT_S)
        return _split_exit(done.stdout)


class LocalDevice(Device):
    """This machine in the phone's place: a folder for the device's storage, a local shell."""

    def __init__(self, folder: Path) -> None:
        self.remote = str(folder)
        self.folder = folder

    def properties(self) -> dict[str, str]:
        from nas.evaluators.latency.timing import cpu_model  # local mode runs where nas is

        return {
            "serial": f"local:{platform.node()}",
            "ro.product.model": cpu_model(),
            "ro.product.cpu.abi": platform.machine(),
            "ro.build.version.release": f"{platform.system()} {platform.release()}",
        }

    def prepare(self) -> None:
        (self.folder / "models").mkdir(parents=True, exist_ok=True)

    def push(self, local: Path, remote_name: str) -> None:
        shutil.copyfile(local, self.folder / remote_name)

    def make_executable(self, remote_name: str) -> None:
        (self.folder / remote_name).chmod(0o755)

    def run(self, command: list[str]) -> tuple[int, str]:
        try:
            done = subprocess.run(
                command,
                cwd=self.folder,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=RUN_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return 124, f"timed out after {RUN_TIMEOUT_S} s"
        return done.returncode, done.stdout


def _split_exit(output: str) -> tuple[int, str]:
    """The tool's output and its status, from the marker `Device.run` echoes after it."""
    head, marker, tail = output.rpartition(EXIT_MARKER)
    if not marker:
        raise DeviceGone("the shell ended before the tool did (device disconnected?)")
    return int(tail.strip() or 1), head


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a run cut short by a disconnect must not look finished."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.replace(temporary, path)


def _shape_whc(shape: list[int]) -> str:
    """benchncnn's input shape: width, height, channels (a vector: its length)."""
    dims = shape[1:]
    return ",".join(str(d) for d in (dims[::-1] if len(dims) == 3 else dims))


def _command(
    manifest: dict, run: dict, model: dict, tool: list[str], local_tool: bool
) -> list[str]:
    template = manifest["local_command"] if local_tool else manifest["command"]
    values = {
        "model": model["file"],
        "threads": manifest["threads"],
        "loops": run["loops"],
        "shape_whc": _shape_whc(model["shape"]),
        "shape_csv": ",".join(str(d) for d in model["shape"]),
        "format": manifest["format"],
    }
    return [*tool, *(part.format(**values) for part in template)]


def _check_same_device(path: Path, found: dict) -> None:
    if not path.exists():
        return
    kept = json.loads(path.read_text())
    for name in ("serial", "ro.product.model", "tool_sha256"):
        if kept.get(name) != found.get(name):
            raise SystemExit(
                f"raw/ holds runs from {name}={kept.get(name)!r}, this device has "
                f"{found.get(name)!r}: one table is one device; copy the bundle without raw/ "
                f"to time another"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", type=Path, help="the runtime's benchmark binary for the phone")
    parser.add_argument("--local", action="store_true", help="run on this machine instead")
    parser.add_argument("--serial", help="adb serial of the phone (adb devices)")
    parser.add_argument("--adb", default="adb", help="adb executable [default: adb on PATH]")
    parser.add_argument("--remote-dir", default=REMOTE_DIR, help="working folder on the phone")
    parser.add_argument("--runtime-version", help="the runtime's version, for the table's record")
    parser.add_argument("--max-runs", type=int, help="stop after this many runs (resume later)")
    args = parser.parse_args(argv)
    manifest = json.loads((HERE / "manifest.json").read_text())
    if not manifest.get("complete", True):
        parser.error("the bundle's export was interrupted: rerun the same 'nas lut bundle' first")
    if not args.local and args.bench is None:
        parser.error(f"give --bench (the phone's {manifest['tool']}) or --local")
    if args.bench is not None and not args.bench.is_file():
        parser.error(f"--bench {args.bench}: no such file")
    raw = HERE / "raw"
    raw.mkdir(exist_ok=True)
    if args.local:
        device: Device = LocalDevice(HERE / ".local-device")
    else:
        device = Device(args.adb, args.serial, args.remote_dir)
    local_tool = args.local and args.bench is None
    tool_name = Path(args.bench).name if args.bench else "nas-local-bench"
    try:
        found = device.properties()
        found["tool"] = tool_name
        found["tool_sha256"] = _sha256(args.bench) if args.bench else None
        if args.runtime_version:
            found["runtime_version"] = args.runtime_version
        elif local_tool:
            found["runtime_version"] = _local_runtime_version(manifest["format"])
        found["threads"] = manifest["threads"]
        found["mode"] = "local" if args.local else "adb"
        _check_same_device(raw / "device.json", found)
        _record_device(raw / "device.json", found)
        device.prepare()
        if args.bench:
            device.push(args.bench, tool_name)
            device.make_executable(tool_name)
        tool = [sys.executable] if local_tool else [f"./{tool_name}"]
        if args.local and args.bench:
            tool = [str(Path(device.remote) / tool_name)]
        return _run_all(manifest, device, raw, tool, local_tool, args.max_runs)
    except DeviceGone as gone:
        print(f"the device went away ({gone}): reconnect it and run the same command to resume",
              file=sys.stderr)  # fmt: skip
        return 3
    except KeyboardInterrupt:
        print("interrupted: run the same command to resume", file=sys.stderr)
        return 130


def _record_device(path: Path, found: dict) -> None:
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    kept = json.loads(path.read_text()) if path.exists() else {}
    record = {**kept, **found, "started": kept.get("started", now), "last_run": now}
    _write(path, json.dumps(record, indent=1) + "\n")


def _local_runtime_version(fmt: str) -> str:
    """Local mode runs where nas is installed: its tool names the runtime it times with."""
    from importlib.metadata import PackageNotFoundError

    from nas.evaluators.latency.local_bench import runtime_version

    try:
        return runtime_version(fmt)
    except PackageNotFoundError as missing:
        raise SystemExit(f"--local with format {fmt} needs {missing}: pip install 'nas[phone]'")


def _run_all(manifest: dict, device: Device, raw: Path, tool: list[str], local_tool: bool,
             max_runs: int | None) -> int:  # fmt: skip
    models = {model["id"]: model for model in manifest["models"]}
    runs = manifest["runs"]
    todo = [run for run in runs if not (raw / f"{run['run']}.txt").exists()]
    print(f"{len(runs) - len(todo)} of {len(runs)} runs already done; {len(todo)} to go",
          file=sys.stderr)  # fmt: skip
    pushed: set[str] = set()
    failed = 0
    started = time.monotonic()
    for done, run in enumerate(todo[:max_runs] if max_runs is not None else todo, 1):
        model = models[run["model"]]
        if model["id"] not in pushed:
            for path in sorted((HERE / "models").glob(f"{model['id']}.*")):
                device.push(path, f"models/{path.name}")
            pushed.add(model["id"])
        status, output = device.run(_command(manifest, run, model, tool, local_tool))
        if status == 0:
            _write(raw / f"{run['run']}.txt", output)
            (raw / f"{run['run']}.failed.txt").unlink(missing_ok=True)
        else:
            failed += 1
            _write(raw / f"{run['run']}.failed.txt", f"exit {status}\n{output}")
        if done % 25 == 0 or done == len(todo):
            elapsed = time.monotonic() - started
            print(f"{done}/{len(todo)} runs in {elapsed / 60:.1f} min, "
                  f"eta {elapsed / done * (len(todo) - done) / 60:.1f} min", file=sys.stderr)  # fmt: skip
    left = sum(not (raw / f"{run['run']}.txt").exists() for run in runs)
    if failed:
        print(f"{failed} runs failed (their output is in raw/*.failed.txt); a rerun retries them",
              file=sys.stderr)  # fmt: skip
        return 1
    if left:
        print(f"{left} runs left: run the same command to go on", file=sys.stderr)
        return 0
    print(f"all {len(runs)} runs done: nas lut import {HERE} --target NAME", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
