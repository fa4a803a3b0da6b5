"""Bounds on an architecture and its input, checked arithmetically before anything is built.

An arch string or JSON file is user input: ``stem_c99999999_...`` or a file of 10,000 blocks
parses fine and then asks the allocator for gigabytes (or, at ``2**70`` channels, overflows in
C++) once a model is built or a cost is counted. Every such mistake is refused here, with one
line naming the limit and the value, while the architecture is still plain data.

The limits are meant never to bind on a mobile network, only on mistakes. For scale: the widest
layer of every zoo network and built-in space is 1280 channels, the deepest has 20 blocks, the
largest expansion is 6, the dearest (the default space's widest, deepest corner) has 8.5 M
parameters and writes 48 MiB of float32 activations per 224x224 image (1000 MiB at 1024x1024);
MobileNetV3-Large has 5.5 M parameters and 21 MiB at 224x224.

Two kinds of check:

- structural (`check_channels`, `check_expansion`, `check_blocks`): what an `Arch` may hold at
  all, applied when one is constructed, so every arch string, JSON file or space sample passes
  them;
- at an input (`nas.search_spaces.footprint.check_arch_fits`): parameters and activation
  memory, which depend on the input shape and classes; applied before a model is built
  (`nas.search_spaces.builder.build_model`, hence every count, training run and export) and
  where an input size enters (`nas arch show`, a search's deployment input).
"""

from __future__ import annotations

from nas.errors import InputError

MAX_CHANNELS = 16_384
"""Channels of any one layer (stem, block output or expanded width, head): 12.8x the widest
layer of any zoo network or built-in space (1280); a 1x1 convolution this wide on both sides
alone holds 268 M weights."""

MAX_BLOCKS = 256
"""Blocks in a whole architecture: the built-in spaces have at most 20, MobileNetV3-Large 15,
EfficientNet-B7 (no mobile network) 55."""

MAX_EXPANSION = 16.0
"""A block's expansion ratio: MobileNetV2/V3, MnasNet and every built-in space use at most 6."""

MIN_INPUT_SIZE = 8
"""Side of the deployment input every command accepts at least: the stride-2 stages of a mobile
network leave less than one pixel of a smaller input."""

MAX_INPUT_SIZE = 1024
"""Side of the input: 4.6x the 224 deployment side, 21x its pixels; mobile networks deploy at
512 or less."""

MAX_INPUT_CHANNELS = 64
"""Channels of the network input: images have 1, 3 or 4."""

MAX_PARAMS = 100_000_000
"""Trainable parameters (400 MB in float32): 12x the default space's dearest architecture at
224x224 (8.5 M) and 18x MobileNetV3-Large (5.5 M)."""

MAX_ACTIVATION_BYTES = 2 * 2**30
"""Float32 bytes of every feature map one image's forward pass writes (what training keeps for
the backward pass): twice the default space's dearest architecture at 1024x1024 (1000 MiB),
43x it at 224x224 (48 MiB), 100x MobileNetV3-Large at 224x224 (21 MiB)."""


def limit_name(name: str) -> str:
    return f"nas.search_spaces.limits.{name}"


def check_channels(what: str, channels: int) -> None:
    """`channels` of the layer `what` (e.g. "stem channels") at most `MAX_CHANNELS`."""
    if channels > MAX_CHANNELS:
        raise InputError(
            f"{what} {channels:,} are over the limit of {MAX_CHANNELS:,} channels per layer "
            f"({limit_name('MAX_CHANNELS')}): use a narrower layer"
        )


def check_expansion(expansion: float) -> None:
    """A block's expansion ratio at most `MAX_EXPANSION`."""
    if expansion > MAX_EXPANSION:
        raise InputError(
            f"block expansion {expansion:g} is over the limit of {MAX_EXPANSION:g} "
            f"({limit_name('MAX_EXPANSION')}): use a smaller expansion ratio"
        )


def check_blocks(count: int) -> None:
    """Blocks of a whole architecture at most `MAX_BLOCKS`."""
    if count > MAX_BLOCKS:
        raise InputError(
            f"the architecture has {count:,} blocks, over the limit of {MAX_BLOCKS} "
            f"({limit_name('MAX_BLOCKS')}): use fewer blocks"
        )


def check_input_size(side: int, flag: str = "--input-size") -> None:
    """One side of an input at most `MAX_INPUT_SIZE`; `flag` is what the user set it with."""
    if side > MAX_INPUT_SIZE:
        raise InputError(
            f"{flag} {side:,} is over the limit of {MAX_INPUT_SIZE:,} pixels a side "
            f"({limit_name('MAX_INPUT_SIZE')}): use a smaller one"
        )


def check_input(input_shape: tuple[int, int, int]) -> None:
    """An input (channels, height, width) of positive sizes within the limits."""
    channels, height, width = input_shape
    if min(channels, height, width) < 1:
        raise InputError(f"input {channels}x{height}x{width} must have positive sizes")
    check_input_size(max(height, width), "input side")
    if channels > MAX_INPUT_CHANNELS:
        raise InputError(
            f"input channels {channels:,} are over the limit of {MAX_INPUT_CHANNELS} "
            f"({limit_name('MAX_INPUT_CHANNELS')}): give images of 1 to 4 channels"
        )
