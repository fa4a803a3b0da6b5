"""Published per-operator ARM phone latencies, read into `OpSignature` samples.

The shipped ``armv8`` table is fitted to measurements nobody can repeat on an x86 build machine:
the Samsung Note10 tables published with Once-for-All (four input resolutions of a
MobileNetV3-style space) and the Google Pixel 1 table published with ProxylessNAS. Each published
key is mapped to the signature of the module our builder would build for it, so that the cost
model is fitted on exactly the quantities it later prices. Where the publication's operator is
not one of our signatures (ProxylessNAS's ``Logits`` is pooling plus classifier), the sample keeps
the list of signatures whose times add up to it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from nas.errors import InputError
from nas.search_spaces.blocks.mbconv import MBCONV, Block
from nas.search_spaces.notation import make_divisible
from nas.search_spaces.signatures import OpSignature

NOTE10 = "note10"
PIXEL1 = "pixel1"
NOTE10_RESOLUTIONS = (160, 176, 192, 208)

DEVICES: dict[str, dict[str, str]] = {
    NOTE10: {
        "device": "Samsung Galaxy Note10",
        "cpu": "ARMv8.2-A phone CPU (chip variant not named by the publication)",
        "source": "Once-for-All (Cai et al., ICLR 2020), per-operator latency tables for its "
        "MobileNetV3-style space at input 160/176/192/208",
    },
    PIXEL1: {
        "device": "Google Pixel 1",
        "cpu": "Qualcomm Snapdragon 821 (ARMv8-A)",
        "source": "ProxylessNAS (Cai et al., ICLR 2019), per-operator latency table "
        "mobile_trim.yaml for MobileNetV2-style blocks at input 224",
    },
}
"""What each publication says about its device; nothing here is inferred."""

_SHAPE = r"(\d+)x(\d+)x(\d+)"
_KEY = re.compile(rf"^(?P<op>[A-Za-z_0-9]+)-input:{_SHAPE}-output:(?P<out>[0-9x]+)(?P<rest>.*)$")


@dataclass(frozen=True)
class Sample:
    """One published measurement: the operators it times, their mean and spread in ms.

    ``mid_c`` is the published middle width of an inverted-residual block; it equals the
    block's own (``sigs[0].block.mid_channels``) whenever the expansion ratio reproduces it
    through our rounding, and the cost model prices the published width either way.
    """

    device: str
    resolution: int
    key: str
    sigs: tuple[OpSignature, ...]
    ms: float
    std: float
    count: int
    mid_c: int | None = None

    @property
    def kind(self) -> str:
        return "+".join(sig.kind for sig in self.sigs)

    @property
    def op(self) -> OpSignature | tuple[OpSignature, ...]:
        """What the cost model prices: the signature, or the signatures summed."""
        return self.sigs[0] if len(self.sigs) == 1 else self.sigs


def default_data_dir() -> Path:
    """Where the published tables live: ``$NAS_ARM_LATENCY_DATA`` or ``../shared/latency``."""
    env = os.environ.get("NAS_ARM_LATENCY_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "latency"


def _dims(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("x"))


def _options(rest: str) -> dict[str, int]:
    """``-expand:144-kernel:5-...`` -> {"expand": 144, "kernel": 5, ...}."""
    options = {}
    for part in filter(None, rest.split("-")):
        name, _, value = part.partition(":")
        options[name] = int(value)
    return options


def parse_key(key: str, device: str) -> tuple[tuple[OpSignature, ...], int | None]:
    """Signatures timed by one published key, and the published middle width of a block.

    Raises `InputError` for a key that does not follow the publication's format, so a changed or
    corrupted data file is noticed instead of silently dropped.
    """
    match = _KEY.match(key)
    if not match:
        raise InputError(f"unrecognised published latency key {key!r}")
    op = match["op"]
    in_h, in_w, in_c = (int(match[i]) for i in (2, 3, 4))
    out = _dims(match["out"])
    options = _options(match["rest"])
    head_act = "hswish" if device == NOTE10 else "relu6"
    if op == "Conv":
        stride = -(-in_h // out[0])
        return (
            OpSignature("stem", in_h, in_w, in_c, out[2], stride=stride, kernel=3, act=head_act),
        ), None
    if op == "Conv_1":
        return (OpSignature("head", in_h, in_w, in_c, out[2], act=head_act),), None
    if op == "Conv_2":
        return (OpSignature("fc", 1, 1, in_c, out[2], act=head_act),), None
    if op == "AvgPool2D":
        return (OpSignature("pool", in_h, in_w, in_c, in_c),), None
    if op == "Logits":
        classifier = OpSignature("classifier", 1, 1, in_c, out[-1])
        if in_h == 1 and in_w == 1:
            return (classifier,), None
        # ProxylessNAS times everything after the final 1x1 conv as one operator.
        return (OpSignature("pool", in_h, in_w, in_c, in_c), classifier), None
    if op == "expanded_conv":
        return _block(in_h, in_w, in_c, out, options, device, key)
    raise InputError(f"unknown operator {op!r} in published latency key {key!r}")


def _block(
    in_h: int,
    in_w: int,
    in_c: int,
    out: tuple[int, ...],
    options: dict[str, int],
    device: str,
    key: str,
) -> tuple[tuple[OpSignature, ...], int]:
    stride, kernel = options["stride"], options["kernel"]
    if device == NOTE10:
        mid = options["expand"]
        expansion = mid / in_c
        se_ratio = 0.25 if options["se"] else 0.0
        act = "hswish" if options["hs"] else "relu"
    else:
        expansion = float(options["expand"])
        mid = in_c if expansion == 1 else make_divisible(in_c * expansion)
        se_ratio, act = 0.0, "relu6"
    sig = OpSignature(
        MBCONV,
        in_h,
        in_w,
        in_c,
        out[2],
        stride=stride,
        expansion=expansion,
        kernel=kernel,
        se_ratio=se_ratio,
        act=act,
    )
    if (sig.out_h, sig.out_w) != out[:2]:
        raise InputError(
            f"published key {key!r}: output size {out[:2]} does not follow from "
            f"input {in_h}x{in_w} at stride {stride}"
        )
    block = sig.block
    assert isinstance(block, Block)
    shortcut = block.has_shortcut(in_c)
    if "idskip" in options and bool(options["idskip"]) != shortcut:
        raise InputError(
            f"published key {key!r}: idskip={options['idskip']} contradicts "
            f"stride {stride} and channels {in_c}->{out[2]}"
        )
    return (sig,), mid


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read published latency table {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"published latency table {path} is not a mapping of keys to timings")
    return data


def _samples(path: Path, device: str, resolution: int) -> list[Sample]:
    samples = []
    for key, timing in _read_yaml(path).items():
        sigs, mid = parse_key(key, device)
        # ProxylessNAS publishes a variance, Once-for-All a standard deviation.
        std = timing["std"] if "std" in timing else float(timing["var"]) ** 0.5
        samples.append(
            Sample(
                device,
                resolution,
                key,
                sigs,
                float(timing["mean"]),
                float(std),
                int(timing["count"]),
                mid,
            )
        )
    return samples


def load_note10(
    data_dir: Path | None = None, resolutions: tuple[int, ...] = NOTE10_RESOLUTIONS
) -> list[Sample]:
    """Every Once-for-All Note10 measurement at the given network input resolutions."""
    root = (data_dir or default_data_dir()) / NOTE10
    samples = []
    for resolution in resolutions:
        samples += _samples(root / f"{resolution}_lookup_table.yaml", NOTE10, resolution)
    return samples


def load_pixel1(data_dir: Path | None = None) -> list[Sample]:
    """Every ProxylessNAS Pixel 1 measurement (network input 224)."""
    return _samples((data_dir or default_data_dir()) / PIXEL1 / "mobile_trim.yaml", PIXEL1, 224)
