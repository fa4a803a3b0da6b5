"""Turn an `Arch` into a `torch.nn.Module`, one module per operator signature.

The network is assembled from `arch_signatures`, and `build_op` builds any single signature on
its own: `nas lut build` times exactly the modules that the full network contains. Modules are
made from the signature's `op_layers`, the same layers every count is a sum over.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from nas.search_spaces import layers as ops
from nas.search_spaces.arch import Arch
from nas.search_spaces.footprint import check_arch_fits
from nas.search_spaces.kinds import block_kind, is_block_kind
from nas.search_spaces.ops import op_layers
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


def _modules(layers: Iterable[ops.Layer]) -> list[nn.Module]:
    """One module per layer, except that a zero pad goes into the module of the conv it pads.

    A conv's module is an `nn.Sequential` of [pad,] conv, batch norm[, activation] (a conv
    classifier's dropout before its conv): trained weights are stored under those positions
    (``features.1.layers.0.0.weight``), so the nesting must stay as it has always been.
    """
    modules: list[nn.Module] = []
    pad: list[nn.Module] = []
    for layer in layers:
        if isinstance(layer, ops.ZeroPad):
            pad = [nn.ZeroPad2d((layer.before, layer.after, layer.before, layer.after))]
        elif isinstance(layer, ops.Conv):
            modules.append(nn.Sequential(*pad, *_conv_bn(layer)))
            pad = []
        elif isinstance(layer, ops.ChannelShuffle):
            modules.append(ChannelShuffle(layer.groups))
        elif isinstance(layer, ops.SqueezeExcite):
            modules.append(SqueezeExcite(layer))
        elif isinstance(layer, ops.GlobalPool):
            modules.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1)))
        elif isinstance(layer, ops.Linear):
            modules.append(Linear(layer.in_c, layer.out_c, act=layer.act, dropout=layer.dropout))
        elif isinstance(layer, ops.Pool):
            pool = nn.MaxPool2d if layer.mode == "max" else nn.AvgPool2d
            ceil = layer.pad == "ceil"
            modules.append(pool(layer.kernel, layer.stride, layer.padding, ceil_mode=ceil))
        elif isinstance(layer, ops.Branches):
            modules.append(Branches(layer))
        elif isinstance(layer, ops.ChannelAggregate):
            modules.append(ChannelAggregate(layer.mode, layer.ratio))
        else:
            raise TypeError(f"no module for layer {layer!r}")
    return modules


def _conv_bn(conv: ops.Conv) -> list[nn.Module]:
    modules: list[nn.Module] = [nn.Dropout(conv.dropout)] if conv.dropout else []
    modules.append(_conv2d(conv))
    if conv.bn:
        modules.append(nn.BatchNorm2d(conv.out_c, eps=_BN_EPS, momentum=_BN_MOMENTUM))
    if conv.act:
        modules.append(make_activation(conv.act))
    return modules


def _conv2d(conv: ops.Conv) -> nn.Conv2d:
    return nn.Conv2d(
        conv.in_c,
        conv.out_c,
        conv.kernel,
        conv.stride,
        conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias,
    )


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

    def __init__(self, layer: ops.SqueezeExcite) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = _conv2d(layer.reduce)
        self.act = make_activation(layer.reduce.act)
        self.expand = _conv2d(layer.expand)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * scale


class ChannelAggregate(nn.Module):
    """Every `ratio` neighbouring channels reduced to one by their maximum or mean."""

    def __init__(self, mode: str, ratio: int) -> None:
        super().__init__()
        self.mode = mode
        self.ratio = ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        x = x.view(batch, channels // self.ratio, self.ratio, height, width)
        return x.amax(2) if self.mode == "max" else x.mean(2)


class Branches(nn.Module):
    """Paths side by side on (parts of) one input, concatenated, summed, or summed hierarchically
    and concatenated (`ops.Branches`), then batch norm and activation where the layer has them.

    An empty path is the identity. Parameters live under ``paths.<i>``, one `nn.Sequential` per
    path built like any other run of layers; a merge's batch norm under ``bn``.
    """

    def __init__(self, layer: ops.Branches) -> None:
        super().__init__()
        self.paths = nn.ModuleList(nn.Sequential(*_modules(path)) for path in layer.paths)
        self.split = list(layer.split)
        self.merge = layer.merge
        self.keep = layer.out_c if layer.sliced else 0
        self.bn = (
            nn.BatchNorm2d(layer.out_c, eps=_BN_EPS, momentum=_BN_MOMENTUM) if layer.bn else None
        )
        self.act = make_activation(layer.act) if layer.act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.split, dim=1) if self.split else [x] * len(self.paths)
        outs = [path(part) for path, part in zip(self.paths, parts)]
        if self.merge == "add":
            out = outs[0]
            for other in outs[1:]:
                out = out + other
        else:
            if self.merge == "hierarchical":
                for i in range(1, len(outs)):
                    outs[i] = outs[i] + outs[i - 1]
            out = torch.cat(outs, dim=1)
            out = out[:, : self.keep] if self.keep else out
        if self.bn is not None:
            out = self.bn(out)
        return self.act(out)


class LayerBlock(nn.Module):
    """A block whose layers run in sequence, plus its input when the last layer is a shortcut.

    Every kind that declares no module of its own is built this way (MBConv among them).
    """

    def __init__(self, sig: OpSignature) -> None:
        super().__init__()
        layers = op_layers(sig)
        self.use_shortcut = bool(layers) and isinstance(layers[-1], ops.ShortcutAdd)
        self.layers = nn.Sequential(*_modules(layers[:-1] if self.use_shortcut else layers))

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
    """The module for one signature. ``fc`` and ``classifier`` expect a flattened input.

    Only a block gets a wrapper module (its kind's own, or `LayerBlock`); every other operator
    is the module of its one layer, as it always was.
    """
    if is_block_kind(sig.kind):
        kind = block_kind(sig.kind)
        return kind.build(sig) if kind.build is not None else LayerBlock(sig)
    (module,) = _modules(op_layers(sig, dropout=dropout))
    return module


_CLASSIFIERS = ("classifier", "conv_classifier")
"""The operators the head's dropout goes in front of."""


class Network(nn.Module):
    """A built `Arch`: feature extractor (stem, blocks, head conv) then pooling and classifier."""

    def __init__(self, arch: Arch, input_shape: InputShape, num_classes: int) -> None:
        super().__init__()
        self.arch = arch
        self.input_shape = input_shape
        sigs = arch_signatures(arch, input_shape, num_classes)
        pooled = next(i for i, sig in enumerate(sigs) if sig.kind == "pool")

        def module(sig: OpSignature) -> nn.Module:
            return build_op(sig, dropout=arch.head.dropout if sig.kind in _CLASSIFIERS else 0.0)

        self.features = nn.Sequential(*(module(sig) for sig in sigs[:pooled]))
        self.pool = build_op(sigs[pooled])
        # Empty where the classifier is a convolution before the pooling (SqueezeNet).
        self.classifier = nn.Sequential(*(module(sig) for sig in sigs[pooled + 1 :]))
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


def build_model(
    arch: Arch, input_shape: InputShape = (3, 224, 224), num_classes: int = 1000
) -> Network:
    """Build `arch` for inputs of `input_shape` (channels, height, width) and `num_classes`.

    The limits are checked first (`check_arch_fits`), so that a mistake is one clear line rather
    than gigabytes allocated, even on the meta device the counts build on.
    """
    check_arch_fits(arch, input_shape, num_classes)
    return Network(arch, input_shape, num_classes)
