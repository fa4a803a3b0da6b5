"""The vocabulary every part of an arch string shares: activations, numbers, field tokens.

A stem, a head and every block kind write themselves as ``<prefix>_<letters><number>_..._<act>``
(timm's block-string style). Reading and writing those fields lives here once, so a new block
kind declares which fields it has and gets parsing, formatting and error messages for free.
"""

from __future__ import annotations

from typing import Any

from nas.errors import InputError

ACTIVATIONS: dict[str, str] = {"relu": "re", "relu6": "r6", "hswish": "hs", "swish": "sw"}
"""Activation name -> its token in arch strings."""

ACT_BY_TOKEN = {token: name for name, token in ACTIVATIONS.items()}
MIN_KERNEL, MAX_KERNEL = 2, 7

PADDINGS = ("same", "valid", "ceil")
"""How a strided window meets the border of its input (`out_size`): ``same`` pads it so that
the output is the input divided by the stride, rounded up, whatever the kernel (what every
mobile network does); ``valid`` pads nothing and drops a last window that would run past the
end (torch's ``padding=0``); ``ceil`` pads nothing but keeps a last window that starts inside
the input and runs past its end (torch's ``ceil_mode=True``, how SqueezeNet pools)."""


def out_size(size: int, kernel: int, stride: int, padding: str = "same") -> int:
    """Output side of a k x k window at `stride` over `size` pixels under `padding` (`PADDINGS`).

    Less than 1 means that nothing is left of the input: the caller refuses such an input.
    """
    if padding == "same":
        return -(-size // stride)
    if padding == "valid":
        return (size - kernel) // stride + 1
    out = -(-(size - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= size else out  # a window must start in the input


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round `value` to the nearest multiple of `divisor`, never dropping more than 10%.

    This is the rounding of the TensorFlow MobileNet reference code that torchvision and timm
    copy; using the same rule is what lets the zoo reproduce published channel counts exactly.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def format_number(value: float) -> str:
    """Shortest text that parses back to exactly `value` (``6`` rather than ``6.0``)."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def format_value(value: Any) -> str:
    """A field's value in a token: floats as `format_number`, anything else as text."""
    return format_number(value) if isinstance(value, float) else str(value)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)


def split_token(token: str, prefix: str) -> list[str]:
    pieces = token.strip().split("_")
    if pieces[0] != prefix:
        raise InputError(f"arch token {token!r} should start with '{prefix}_'")
    return pieces[1:]


def take_fields(
    token: str, pieces: list[str], allowed: dict[str, type], needs_act: bool = True
) -> tuple[dict[str, Any], str | None]:
    """Read ``<letters><number>`` fields and the activation token; reject anything else."""
    fields: dict[str, Any] = {}
    act: str | None = None
    for piece in pieces:
        if piece in ACT_BY_TOKEN:
            if act is not None:
                raise InputError(f"arch token {token!r} names two activations")
            act = ACT_BY_TOKEN[piece]
            continue
        key = next((k for k in sorted(allowed, key=len, reverse=True) if piece.startswith(k)), None)
        if key is None:
            raise InputError(
                f"arch token {token!r}: unknown field {piece!r} (expected one of "
                f"{', '.join(sorted(allowed))} followed by a number, or an activation "
                f"{'/'.join(ACT_BY_TOKEN)})"
            )
        if key in fields:
            raise InputError(f"arch token {token!r}: field {key!r} given twice")
        try:
            fields[key] = allowed[key](piece[len(key) :])
        except ValueError:
            raise InputError(
                f"arch token {token!r}: {piece!r} is not '{key}' followed by a "
                f"{allowed[key].__name__}"
            ) from None
    if act is None and needs_act:
        raise InputError(f"arch token {token!r} lacks an activation ({'/'.join(ACT_BY_TOKEN)})")
    return fields, act


def require(token: str, fields: dict, names: str) -> None:
    missing = [name for name in names.split() if name not in fields]
    if missing:
        raise InputError(f"arch token {token!r} lacks field(s) {', '.join(missing)}")
