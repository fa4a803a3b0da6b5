"""Known hand-designed networks expressed as `Arch`, faithful to torchvision's definitions.

They anchor the search (warm start, comparison in reports) and they prove the builder and the
multiply-add counts: at 224x224x3 with 1000 classes their parameter counts equal torchvision's.
Channel counts come from the same `make_divisible` rule torchvision applies to width multipliers.
"""

from __future__ import annotations

from collections.abc import Callable

from nas.errors import InputError
from nas.search_spaces.arch import Arch, Block, BlockSpec, Head, Stem, make_divisible
from nas.search_spaces.blocks.fire import FireBlock
from nas.search_spaces.blocks.ghost import DIVISOR as GHOST_DIVISOR
from nas.search_spaces.blocks.ghost import GhostBlock
from nas.search_spaces.blocks.maxpool import MaxPoolBlock
from nas.search_spaces.blocks.separable import SeparableBlock
from nas.search_spaces.blocks.shufflev1 import ShuffleV1Block
from nas.search_spaces.blocks.shufflev2 import ShuffleV2Block
from nas.search_spaces.signatures import InputShape, arch_signatures


def mobilenet_v2(width: float = 1.0) -> Arch:
    """MobileNetV2 (Sandler et al. 2018), torchvision's `mobilenet_v2(width_mult=width)`."""
    settings = [  # expansion, channels, repeats, stride
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]
    stages = []
    for expansion, channels, repeats, stride in settings:
        out = make_divisible(channels * width)
        stages.append(
            tuple(
                Block(expansion, 3, stride if i == 0 else 1, out, act="relu6")
                for i in range(repeats)
            )
        )
    return Arch(
        stem=Stem(make_divisible(32 * width), 3, 2, "relu6"),
        stages=tuple(stages),
        head=Head(make_divisible(1280 * max(1.0, width)), act="relu6", dropout=0.2),
    )


# MobileNetV3 rows: input, kernel, expanded, output, SE, activation, stride (torchvision bneck_conf)
_V3_LARGE = [
    [(16, 3, 16, 16, False, "relu", 1)],
    [(16, 3, 64, 24, False, "relu", 2), (24, 3, 72, 24, False, "relu", 1)],
    [
        (24, 5, 72, 40, True, "relu", 2),
        (40, 5, 120, 40, True, "relu", 1),
        (40, 5, 120, 40, True, "relu", 1),
    ],
    [
        (40, 3, 240, 80, False, "hswish", 2),
        (80, 3, 200, 80, False, "hswish", 1),
        (80, 3, 184, 80, False, "hswish", 1),
        (80, 3, 184, 80, False, "hswish", 1),
    ],
    [(80, 3, 480, 112, True, "hswish", 1), (112, 3, 672, 112, True, "hswish", 1)],
    [
        (112, 5, 672, 160, True, "hswish", 2),
        (160, 5, 960, 160, True, "hswish", 1),
        (160, 5, 960, 160, True, "hswish", 1),
    ],
]
_V3_SMALL = [
    [(16, 3, 16, 16, True, "relu", 2)],
    [(16, 3, 72, 24, False, "relu", 2), (24, 3, 88, 24, False, "relu", 1)],
    [
        (24, 5, 96, 40, True, "hswish", 2),
        (40, 5, 240, 40, True, "hswish", 1),
        (40, 5, 240, 40, True, "hswish", 1),
    ],
    [(40, 5, 120, 48, True, "hswish", 1), (48, 5, 144, 48, True, "hswish", 1)],
    [
        (48, 5, 288, 96, True, "hswish", 2),
        (96, 5, 576, 96, True, "hswish", 1),
        (96, 5, 576, 96, True, "hswish", 1),
    ],
]


def _expansion_for(in_c: int, mid_c: int, divisor: int = 8) -> float:
    """The shortest ratio whose `make_divisible(in_c * ratio, divisor)` gives exactly `mid_c`
    channels."""
    if in_c == mid_c:
        return 1.0
    for digits in range(1, 8):
        ratio = round(mid_c / in_c, digits)
        if make_divisible(in_c * ratio, divisor) == mid_c:
            return ratio
    raise ValueError(f"no expansion ratio maps {in_c} to {mid_c} channels")


def _mobilenet_v3(rows: list[list[tuple]], last_conv_factor: int, fc: int, width: float) -> Arch:
    def adjust(channels: int) -> int:
        return make_divisible(channels * width)

    stages = []
    for stage_rows in rows:
        stages.append(
            tuple(
                Block(
                    _expansion_for(adjust(cin), adjust(mid)),
                    kernel,
                    stride,
                    adjust(cout),
                    se_ratio=0.25 if se else 0.0,
                    act=act,
                )
                for cin, kernel, mid, cout, se, act, stride in stage_rows
            )
        )
    last_c = adjust(rows[-1][-1][3])
    return Arch(
        stem=Stem(adjust(16), 3, 2, "hswish"),
        stages=tuple(stages),
        head=Head(last_conv_factor * last_c, fc_channels=adjust(fc), act="hswish", dropout=0.2),
    )


def mobilenet_v3_large(width: float = 1.0) -> Arch:
    """MobileNetV3-Large (Howard et al. 2019), torchvision's `mobilenet_v3_large`."""
    return _mobilenet_v3(_V3_LARGE, 6, 1280, width)


def mobilenet_v3_small(width: float = 1.0) -> Arch:
    """MobileNetV3-Small (Howard et al. 2019), torchvision's `mobilenet_v3_small`."""
    return _mobilenet_v3(_V3_SMALL, 6, 1024, width)


def mnasnet(alpha: float = 1.0) -> Arch:
    """MnasNet-B1 (Tan et al. 2019), torchvision's `mnasnet{alpha}` (no squeeze-and-excitation).

    torchvision's separable "first layer" (depthwise 3x3 + linear 1x1, no shortcut) is exactly an
    expansion-1 block, so it becomes the first stage here.
    """
    depths = [make_divisible(d * alpha) for d in (32, 16, 24, 40, 80, 96, 192, 320)]
    settings = [  # kernel, stride, expansion, repeats
        (3, 2, 3, 3),
        (5, 2, 3, 3),
        (5, 2, 6, 3),
        (3, 1, 6, 2),
        (5, 2, 6, 4),
        (3, 1, 6, 1),
    ]
    stages = [(Block(1, 3, 1, depths[1], act="relu"),)]
    for (kernel, stride, expansion, repeats), out in zip(settings, depths[2:]):
        stages.append(
            tuple(
                Block(expansion, kernel, stride if i == 0 else 1, out, act="relu")
                for i in range(repeats)
            )
        )
    return Arch(
        stem=Stem(depths[0], 3, 2, "relu"),
        stages=tuple(stages),
        head=Head(1280, act="relu", dropout=0.2),
    )


def mobilenet_v1(width: float = 1.0) -> Arch:
    """MobileNetV1 (Howard et al. 2017) at width multiplier `width`: thirteen depthwise-separable
    blocks, pooling and the classifier (timm's `mobilenetv1_100` has the same layers)."""
    settings = [  # channels, stride
        (64, 1),
        (128, 2),
        (128, 1),
        (256, 2),
        (256, 1),
        (512, 2),
        *[(512, 1)] * 5,
        (1024, 2),
        (1024, 1),
    ]
    blocks = [
        SeparableBlock(3, stride, make_divisible(channels * width), "relu")
        for channels, stride in settings
    ]
    stages = [tuple(blocks[0:1]), tuple(blocks[1:3]), tuple(blocks[3:5]), tuple(blocks[5:11])]
    return Arch(
        stem=Stem(make_divisible(32 * width), 3, 2, "relu"),
        stages=(*stages, tuple(blocks[11:])),
        head=Head(0, act="relu", dropout=0.0),
    )


_SHUFFLENET_V2_WIDTHS = {  # torchvision's stages_out_channels
    "0_5": (24, 48, 96, 192, 1024),
    "1_0": (24, 116, 232, 464, 1024),
    "1_5": (24, 176, 352, 704, 1024),
    "2_0": (24, 244, 488, 976, 2048),
}


def shufflenet_v2(width: str = "1_0") -> Arch:
    """ShuffleNetV2 (Ma et al. 2018), torchvision's `shufflenet_v2_x{width}`: the stem, a 3x3
    stride-2 max pooling, stages of 4, 8 and 4 units, a 1x1 convolution and the classifier."""
    stem, *stage_widths, last = _SHUFFLENET_V2_WIDTHS[width]
    stages: list[tuple[BlockSpec, ...]] = [(MaxPoolBlock(3, 2, stem),)]
    for repeats, channels in zip((4, 8, 4), stage_widths):
        stages.append(
            tuple(ShuffleV2Block(3, 2 if i == 0 else 1, channels, "relu") for i in range(repeats))
        )
    return Arch(
        stem=Stem(stem, 3, 2, "relu"),
        stages=tuple(stages),
        head=Head(last, act="relu", dropout=0.0),
    )


def shufflenet_v1_g3(width: str = "1_0") -> Arch:
    """ShuffleNetV1 with 3 groups (Zhang et al. 2018) at `width` 0.5x or 1.0x, as megvii's
    ShuffleNet-Series builds it: the stem, a 3x3 stride-2 max pooling, stages of 4, 8 and 4
    units (the first unit's first 1x1 ungrouped), pooling and the classifier."""
    stem, *stage_widths = {"0_5": (12, 120, 240, 480), "1_0": (24, 240, 480, 960)}[width]
    stages: list[tuple[BlockSpec, ...]] = [(MaxPoolBlock(3, 2, stem),)]
    for index, (repeats, channels) in enumerate(zip((4, 8, 4), stage_widths)):
        stages.append(
            tuple(
                ShuffleV1Block(3, 2 if i == 0 else 1, channels, 3, 1 if index == i == 0 else 0)
                for i in range(repeats)
            )
        )
    return Arch(
        stem=Stem(stem, 3, 2, "relu"),
        stages=tuple(stages),
        head=Head(0, act="relu", dropout=0.0),
    )


# GhostNet rows: kernel, middle, output, SE ratio, stride (ghostnet.pytorch's cfgs, by stage)
_GHOSTNET = [
    [(3, 16, 16, 0, 1)],
    [(3, 48, 24, 0, 2), (3, 72, 24, 0, 1)],
    [(5, 72, 40, 0.25, 2), (5, 120, 40, 0.25, 1)],
    [
        (3, 240, 80, 0, 2),
        (3, 200, 80, 0, 1),
        (3, 184, 80, 0, 1),
        (3, 184, 80, 0, 1),
        (3, 480, 112, 0.25, 1),
        (3, 672, 112, 0.25, 1),
    ],
    [
        (5, 672, 160, 0.25, 2),
        (5, 960, 160, 0, 1),
        (5, 960, 160, 0.25, 1),
        (5, 960, 160, 0, 1),
        (5, 960, 160, 0.25, 1),
    ],
]


def ghostnet(width: float = 1.0) -> Arch:
    """GhostNet (Han et al. 2020) at width multiplier `width`, as huawei-noah's ghostnet.pytorch
    and timm's `ghostnet_*` build it: widths rounded to multiples of 4, a 1x1 convolution to
    960 x width, pooling, a 1280-wide linear layer with ReLU and the classifier."""

    def adjust(channels: int) -> int:
        return make_divisible(channels * width, GHOST_DIVISOR)

    in_c = adjust(16)
    stages = []
    for rows in _GHOSTNET:
        stage = []
        for kernel, mid, out, se, stride in rows:
            expansion = _expansion_for(in_c, adjust(mid), GHOST_DIVISOR)
            stage.append(GhostBlock(expansion, kernel, stride, adjust(out), se, "relu"))
            in_c = adjust(out)
        stages.append(tuple(stage))
    return Arch(
        stem=Stem(adjust(16), 3, 2, "relu"),
        stages=tuple(stages),
        head=Head(adjust(960), fc_channels=1280, act="relu", dropout=0.2),
    )


# SqueezeNet stages: each a ceil-mode 3x3 stride-2 max pooling, then Fire modules as
# (squeeze, expand) with expand channels from each of the 1x1 and 3x3 convolutions (torchvision's
# Fire(in, squeeze, expand, expand)).
_SQUEEZENET = {
    "1_0": (
        (96, 7),
        [
            [(16, 64), (16, 64), (32, 128)],
            [(32, 128), (48, 192), (48, 192), (64, 256)],
            [(64, 256)],
        ],
    ),
    "1_1": (
        (64, 3),
        [
            [(16, 64), (16, 64)],
            [(32, 128), (32, 128)],
            [(48, 192), (48, 192), (64, 256), (64, 256)],
        ],
    ),
}


def squeezenet(version: str = "1_0") -> Arch:
    """SqueezeNet (Iandola et al. 2016), torchvision's `squeezenet{version}`: an unpadded stem
    convolution with bias and no batch norm, stages of a ceil-mode max pooling and Fire modules,
    and a classifier that is a 1x1 convolution with ReLU before the global pooling (after
    dropout 0.5)."""
    (stem_c, kernel), stage_rows = _SQUEEZENET[version]
    stages = []
    channels = stem_c
    for rows in stage_rows:
        stage: list[BlockSpec] = [MaxPoolBlock(3, 2, channels, padding="ceil")]
        for squeeze, expand in rows:
            stage.append(FireBlock(squeeze, 2 * expand, act="relu"))
            channels = 2 * expand
        stages.append(tuple(stage))
    return Arch(
        stem=Stem(stem_c, kernel, 2, "relu", padding="valid", bn=False),
        stages=tuple(stages),
        head=Head(0, act="relu", dropout=0.5, classifier="conv"),
    )


ZOO: dict[str, Callable[[], Arch]] = {
    "mobilenet_v2": lambda: mobilenet_v2(1.0),
    "mobilenet_v2_0.75": lambda: mobilenet_v2(0.75),
    "mobilenet_v2_0.5": lambda: mobilenet_v2(0.5),
    "mobilenet_v3_large": lambda: mobilenet_v3_large(1.0),
    "mobilenet_v3_large_0.75": lambda: mobilenet_v3_large(0.75),
    "mobilenet_v3_small": lambda: mobilenet_v3_small(1.0),
    "mnasnet1_0": lambda: mnasnet(1.0),
    "mnasnet0_75": lambda: mnasnet(0.75),
    "mnasnet0_5": lambda: mnasnet(0.5),
    "mobilenet_v1": lambda: mobilenet_v1(1.0),
    "mobilenet_v1_0.75": lambda: mobilenet_v1(0.75),
    "mobilenet_v1_0.5": lambda: mobilenet_v1(0.5),
    "mobilenet_v1_0.25": lambda: mobilenet_v1(0.25),
    "shufflenet_v2_x0_5": lambda: shufflenet_v2("0_5"),
    "shufflenet_v2_x1_0": lambda: shufflenet_v2("1_0"),
    "shufflenet_v2_x1_5": lambda: shufflenet_v2("1_5"),
    "shufflenet_v2_x2_0": lambda: shufflenet_v2("2_0"),
    "shufflenet_v1_g3_x0_5": lambda: shufflenet_v1_g3("0_5"),
    "shufflenet_v1_g3_x1_0": lambda: shufflenet_v1_g3("1_0"),
    "ghostnet_050": lambda: ghostnet(0.5),
    "ghostnet_100": lambda: ghostnet(1.0),
    "ghostnet_130": lambda: ghostnet(1.3),
    "squeezenet1_0": lambda: squeezenet("1_0"),
    "squeezenet1_1": lambda: squeezenet("1_1"),
}
"""Zoo name (torchvision's where it has one, else timm's) -> factory."""


def zoo_at(input_shape: InputShape) -> dict[str, Arch]:
    """The zoo networks that can take an input of `input_shape`, by name.

    Every network with "same" padding takes any input; an unpadded window leaves nothing of an
    input that is small enough (SqueezeNet 1.0 needs 21 pixels a side, 1.1 needs 17), and such
    a network is left out rather than failing what lists, prices or measures the rest.
    """
    found = {}
    for name, factory in ZOO.items():
        arch = factory()
        try:
            arch_signatures(arch, input_shape)
        except InputError:
            continue
        found[name] = arch
    return found
