"""Known hand-designed networks expressed as `Arch`, faithful to torchvision's definitions.

They anchor the search (warm start, comparison in reports) and they prove the builder and the
multiply-add counts: at 224x224x3 with 1000 classes their parameter counts equal torchvision's.
Channel counts come from the same `make_divisible` rule torchvision applies to width multipliers.
"""

from __future__ import annotations

from collections.abc import Callable

from nas.search_spaces.arch import Arch, Block, Head, Stem, make_divisible


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


def _expansion_for(in_c: int, mid_c: int) -> float:
    """The shortest ratio whose `make_divisible(in_c * ratio)` gives exactly `mid_c` channels."""
    if in_c == mid_c:
        return 1.0
    for digits in range(1, 8):
        ratio = round(mid_c / in_c, digits)
        if make_divisible(in_c * ratio) == mid_c:
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
}
"""Zoo name (torchvision's where it has one) -> factory."""
