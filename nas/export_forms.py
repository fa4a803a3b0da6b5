"""Equivalent forms of layers that a converter mishandles, swapped in before it sees the model.

The shuffle-only block's channel aggregation (`nas.search_spaces.builder.ChannelAggregate`)
views its input as five dimensions and reduces the third. pnnx turns that view and reduction
into an ncnn Reshape and Reduction, but where the feature map is 2x2 and the aggregation ratio
is 2 it drops the Reshape and ncnn reduces the wrong axis (wrong outputs, or a crash at larger
inputs). The same reduction written as a pooling of the channels-and-width plane, between two
transposes, stays in four dimensions and computes bit for bit what the view does, at every
map size.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from nas.search_spaces.builder import ChannelAggregate


class PooledChannelAggregate(nn.Module):
    """Every `ratio` neighbouring channels reduced to one by a (ratio x 1) max or average pool
    over the (channels, width) plane: no tensor of more than four dimensions."""

    def __init__(self, mode: str, ratio: int) -> None:
        super().__init__()
        self.mode = mode
        self.ratio = ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window = (self.ratio, 1)
        planes = x.transpose(1, 2)  # batch, height, channels, width
        pool = F.max_pool2d if self.mode == "max" else F.avg_pool2d
        return pool(planes, window, window).transpose(1, 2)


def four_dimensional(model: nn.Module) -> nn.Module:
    """`model` itself when nothing in it needs another form, else a copy with the forms swapped
    (the caller's model, which the check compares against, is left as it was)."""
    if not any(isinstance(module, ChannelAggregate) for module in model.modules()):
        return model
    model = copy.deepcopy(model)
    _swap(model)
    return model


def _swap(parent: nn.Module) -> None:
    for name, child in parent.named_children():
        if isinstance(child, ChannelAggregate):
            setattr(parent, name, PooledChannelAggregate(child.mode, child.ratio))
        else:
            _swap(child)
