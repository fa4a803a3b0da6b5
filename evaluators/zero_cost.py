"""Zero-cost scores: a network judged at initialisation, from one minibatch, with no training.

Each score costs about one forward and backward pass, against hundreds for the shortest proxy
training, so if one ranked networks as well as training does it could filter or order
candidates before any is trained. Whether any does on the product's spaces is measured, not
assumed (`benchmarks/proxy_truth.py` judges them against NAS-Bench-Macro's published
accuracies; the figures are in BENCHMARKS.md). The four chosen are those the comparative
studies keep returning to:

- ``synflow`` (Tanaka et al. 2020, used as a NAS score by Abdelfattah et al. 2021): the sum
  over weights of |w * dR/dw| where R is the output sum of the network with every weight made
  positive, batch norm removed, fed an all-ones input. Data-free; best of Abdelfattah's set
  on NAS-Bench-201.
- ``naswot`` (Mellor et al. 2021): log |det K| of the Hamming-similarity kernel between the
  binary activation patterns of the minibatch's images; networks that tell images apart at
  initialisation tend to train well.
- ``grad_norm`` (Abdelfattah et al. 2021): the sum of the gradient norms of the cross-entropy
  loss, the simplest gradient score and a common baseline.
- ``zico`` (Li et al. 2023): per layer, the log of the summed ratio of each weight's mean
  absolute gradient to its standard deviation across batches (the minibatch is split in two);
  reported to beat parameter count consistently, which most zero-cost scores do not.

Every score is computed on its own copy of the model, so the caller's model and the order in
which scores run change nothing, and all are "higher is better". ``synflow`` is returned as a
natural logarithm: the raw value spans hundreds of orders of magnitude across networks.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU)
"""Modules whose outputs' signs are NASWOT's activation pattern (positive: the unit fired)."""


def synflow(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """log of the synaptic-flow score; `images` give only the input shape (data-free)."""
    net = _without_batch_norm(copy.deepcopy(model)).double().eval()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.abs_()
    ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64)
    net.zero_grad(set_to_none=True)
    net(ones).sum().backward()
    total = sum(
        float((p.detach() * p.grad).abs().sum())
        for p in net.parameters()
        if p.grad is not None and p.dim() > 1
    )
    return math.log(total) if total > 0 else float("-inf")


def naswot(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """log |det K|, K[i, j] the count of activation units on which images i and j agree."""
    net = copy.deepcopy(model).train()
    n = len(images)
    kernel = torch.zeros((n, n), dtype=torch.float64)

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        codes = (output.detach().reshape(n, -1) > 0).to(torch.float64)
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, ACTIVATIONS)]
    try:
        with torch.no_grad():
            net(images)
    finally:
        for handle in handles:
            handle.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if float(sign) != 0 else float("-inf")


def grad_norm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Sum over weight tensors of the norm of the loss gradient at initialisation."""
    net = copy.deepcopy(model).train()
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(images), labels).backward()
    return sum(float(p.grad.norm()) for p in _weights(net) if p.grad is not None)


def zico(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, splits: int = 2) -> float:
    """Sum over layers of log(sum of mean |gradient| / gradient std across `splits` batches)."""
    if len(images) < 2 * splits:
        raise ValueError(f"zico needs at least {2 * splits} images for {splits} batches")
    net = copy.deepcopy(model).train()
    weights = _weights(net)
    grads: list[list[torch.Tensor]] = [[] for _ in weights]
    for x, y in zip(images.chunk(splits), labels.chunk(splits)):
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        for store, p in zip(grads, weights):
            store.append(p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
    score = 0.0
    for store in grads:
        stacked = torch.stack(store)
        std = stacked.std(dim=0)
        mean_abs = stacked.abs().mean(dim=0)
        kept = std > 0
        ratio = float((mean_abs[kept] / std[kept]).sum())
        if ratio > 0:
            score += math.log(ratio)
    return score


SCORES: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], float]] = {
    "synflow": synflow,
    "naswot": naswot,
    "grad_norm": grad_norm,
    "zico": zico,
}
"""Every zero-cost score by name, each taking (model, float images, labels)."""


def zero_cost_scores(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    names: tuple[str, ...] = tuple(SCORES),
) -> dict[str, float]:
    """The scores `names` of `model` (untouched) on one normalised float minibatch."""
    unknown = [name for name in names if name not in SCORES]
    if unknown:
        raise ValueError(
            f"unknown zero-cost score(s) {', '.join(unknown)}; known: {', '.join(SCORES)}"
        )
    return {name: SCORES[name](model, images, labels) for name in names}


def _weights(net: nn.Module) -> list[torch.Tensor]:
    """Convolution and linear weights: the tensors the scores are defined over (not norms, biases)."""
    return [p for p in net.parameters() if p.requires_grad and p.dim() > 1]


def _without_batch_norm(net: nn.Module) -> nn.Module:
    """`net` with every batch norm replaced by an identity, as synflow is defined."""
    for name, child in net.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            _without_batch_norm(child)
    return net
