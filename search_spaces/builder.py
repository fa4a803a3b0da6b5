"""Turn an `Arch` into a `torch.nn.Module`, one module per operator signature.

The network is assembled from `arch_signatures`, and `build_op` builds any single signature on
its own: `nas lut build` times exactly the modules that the full network contains.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.search_spaces.arch import Arch
from nas.search_spaces.signatures import InputShape, OpSignature, arch_signatures

_BN_MOMENTUM = 0.01  # torch convention (0.99 in TF terms), as in MobileNetV3 and MnasNet
_BN_EPS = 1e-3


def make_activation(name: str) -> nn.Module:
    return {
        "relu": nn.ReLU,
        "relu6": nn.ReLU6,
        "hswish": nn.Hardswish,
        "swish": nn.SiLU,
    }[name](inplace=True)


def conv_bn(in_c: int, out_c: int, kernel: int = 1, stride: int = 1, groups: int = 1,
            act: str | None = None) -> nn.Sequential:
    """Conv (no bias) + batch norm + optional activation, with "same" padding for any kernel.

    Even kernels cannot be padded symmetrically; like TensorFlow's "same" padding they get the
    extra row and column on the right and bottom, so a 2x2 kernel keeps the spatial size at
    stride 1 and halves it (rounding up) at stride 2, exactly like odd kernels.
    """
    layers: list[nn.Module] = []
    if kernel % 2 == 0:
        before = (kernel - 1) // 2
        after = kernel - 1 - before
        layers.append(nn.ZeroPad2d((before, after, before, after)))
        padding = 0
    else:
        padding = kernel // 2
    layers += [
        nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False),
        nn.BatchNorm2d(out_c, eps=_BN_EPS, momentum=_BN_MOMENTUM),
    ]
    if act:
        layers.append(make_activation(act))
    return nn.Sequential(*layers)


class ChannelShuffle(nn.Module):
    """Interleave channels across groups so grouped 1x1 convs still mix information (ShuffleNet)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        x = x.view(batch, self.groups, channels // self.groups, height, width)
        return x.transpose(1, 2).reshape(batch, channels, height, width)


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-and-excitation: pool, 1x1 reduce + ReLU, 1x1 expand, hard-sigmoid gate."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * scale


class MBConv(nn.Module):
    """Inverted-residual block; see `nas.search_spaces.arch.Block` for the structure."""

    def __init__(self, sig: OpSignature) -> None:
        super().__init__()
        block = sig.block
        mid = sig.mid_c
        layers: list[nn.Module] = []
        if block.expansion != 1.0:
            layers.append(conv_bn(sig.in_c, mid, 1, groups=block.groups, act=block.act))
        if block.groups > 1:
            layers.append(ChannelShuffle(block.groups))
        layers.append(conv_bn(mid, mid, block.kernel, block.stride, groups=mid, act=block.act))
        if block.se_ratio:
            layers.append(SqueezeExcite(mid, block.se_channels(sig.in_c)))
        layers.append(conv_bn(mid, sig.out_c, 1, groups=block.groups))
        self.layers = nn.Sequential(*layers)
        self.use_shortcut = block.has_shortcut(sig.in_c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return out + x if self.use_shortcut else out


class Linear(nn.Sequential):
    """A linear layer on the pooled vector, optionally with dropout before and activation after."""

    def __init__(self, in_c: int, out_c: int, act: str = "", dropout: float = 0.0) -> None:
        layers: list[nn.Module] = []
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(in_c, out_c))
        if act:
            layers.append(make_activation(act))
        super().__init__(*layers)


def build_op(sig: OpSignature, dropout: float = 0.0) -> nn.Module:
    """The module for one signature. ``fc`` and ``classifier`` expect a flattened input."""
    if sig.kind == "stem":
        return conv_bn(sig.in_c, sig.out_c, sig.kernel, sig.stride, act=sig.act)
    if sig.kind == "mbconv":
        return MBConv(sig)
    if sig.kind == "head":
        return conv_bn(sig.in_c, sig.out_c, 1, act=sig.act)
    if sig.kind == "pool":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    if sig.kind == "fc":
        return Linear(sig.in_c, sig.out_c, act=sig.act)
    if sig.kind == "classifier":
        return Linear(sig.in_c, sig.out_c, dropout=dropout)
    raise ValueError(f"unknown operator kind {sig.kind!r}")


class Network(nn.Module):
    """A built `Arch`: feature extractor (stem, blocks, head conv) then pooling and classifier."""

    def __init__(self, arch: Arch, input_shape: InputShape, num_classes: int) -> None:
        super().__init__()
        self.arch = arch
        self.input_shape = input_shape
        sigs = arch_signatures(arch, input_shape, num_classes)
        pooled = next(i for i, sig in enumerate(sigs) if sig.kind == "pool")
        self.features = nn.Sequential(*(build_op(sig) for sig in sigs[:pooled]))
        self.pool = build_op(sigs[pooled])
        self.classifier = nn.Sequential(
            *(build_op(sig, dropout=arch.head.dropout if sig.kind == "classifier" else 0.0)
              for sig in sigs[pooled + 1:])
        )
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def _init_weights(model: nn.Module) -> None:
    """torchvision's MobileNet initialisation, so short proxy training starts where theirs does."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


def build_model(arch: Arch, input_shape: InputShape = (3, 224, 224),
                num_classes: int = 1000) -> Network:
    """Build `arch` for inputs of `input_shape` (channels, height, width) and `num_classes`."""
    return Network(arch, input_shape, num_classes)


def count_params(arch: Arch, input_shape: InputShape = (3, 224, 224),
                 num_classes: int = 1000) -> int:
    """Trainable parameters, computed from the genotype alone (no model is built).

    Cheap enough for the search to reject a candidate over a parameter budget before building
    it; the tests hold it equal to the built model's count.
    """
    return sum(op_params(sig) for sig in arch_signatures(arch, input_shape, num_classes))


def op_params(sig: OpSignature) -> int:
    def conv_bn_params(cin: int, cout: int, kernel: int, groups: int) -> int:
        return cin // groups * cout * kernel * kernel + 2 * cout

    if sig.kind == "stem":
        return conv_bn_params(sig.in_c, sig.out_c, sig.kernel, 1)
    if sig.kind == "head":
        return conv_bn_params(sig.in_c, sig.out_c, 1, 1)
    if sig.kind in ("fc", "classifier"):
        return sig.in_c * sig.out_c + sig.out_c
    if sig.kind == "pool":
        return 0
    block, mid = sig.block, sig.mid_c
    total = 0
    if block.expansion != 1.0:
        total += conv_bn_params(sig.in_c, mid, 1, block.groups)
    total += conv_bn_params(mid, mid, block.kernel, mid)
    squeeze = block.se_channels(sig.in_c)
    if squeeze:
        total += mid * squeeze + squeeze + squeeze * mid + mid
    total += conv_bn_params(mid, sig.out_c, 1, block.groups)
    return total
