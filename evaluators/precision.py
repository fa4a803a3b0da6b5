"""Mixed-precision training steps that never wait for the device, and a guard that still sees
every non-finite loss.

    amp = MixedPrecision("bfloat16", device)
    with amp.autocast():
        loss = F.cross_entropy(model(x), y)
    amp.step(loss, optimizer, guard.record(loss, step))   # queued; nothing synchronises

A GPU runs ahead of the Python loop that feeds it; reading a loss (`loss.item()`) each step to
check it for NaN stalls that queue every step. Here the check happens on the device instead:
`NonFiniteGuard.record` notes the first non-finite loss in device tensors, and the optimizer
step of a non-finite loss is skipped on the device (the `found_inf` tensor fused SGD honours,
as under torch's GradScaler; an optimizer without it is asked on the host), so such a loss
never changes the weights. The loop reads the
guard every few steps (`NonFiniteGuard.first`) and fails the run then, naming the step where it
happened.

float16 trains with dynamic loss scaling (torch's GradScaler): its gradients underflow
otherwise. A step whose scaled gradients overflow is skipped and the scale halved, which is
loss scaling at work, not a failure; a non-finite *loss* is computed in float32 under autocast
and makes every gradient non-finite, so the scaler skips that step too, and the guard fails the
run. bfloat16 has float32's range and needs no scaling.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


class MixedPrecision:
    """Autocast and the optimizer step for one of "float32", "bfloat16", "float16"."""

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision not in ("float32", *_DTYPES):
            raise ValueError(f"precision must be float32, bfloat16 or float16, got {precision!r}")
        self.precision = precision
        self.device = device
        self.dtype = _DTYPES.get(precision)
        self.scaler = torch.amp.GradScaler(device.type) if precision == "float16" else None

    def autocast(self) -> AbstractContextManager:
        """Where the forward pass and the loss run: autocast to the dtype, or nothing."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def step(
        self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, nonfinite: torch.Tensor
    ) -> None:
        """Backward and update, skipped on the device when `nonfinite` (a 0-d bool) is true.

        The optimizer's gradients must have been zeroed. Momentum buffers must exist before the
        first step (`zero_momentum`): fused SGD leaves them uninitialised when it skips the
        step that would have created them.
        """
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
            return
        loss.backward()
        if not getattr(optimizer, "_step_supports_amp_scaling", False):
            # Only fused optimizers read `found_inf`; any other must be asked on the host.
            if not bool(nonfinite):
                optimizer.step()
            return
        optimizer.found_inf = nonfinite.to(torch.float32)  # type: ignore[attr-defined]
        try:
            optimizer.step()
        finally:
            del optimizer.found_inf  # type: ignore[attr-defined]


def zero_momentum(optimizer: torch.optim.Optimizer) -> None:
    """Create every momentum buffer as zeros, before the first step.

    With zero buffers the first step updates exactly as SGD's first step does (buffer = grad,
    since the dampening is zero), and a skipped first step leaves them zero, not garbage.
    """
    for group in optimizer.param_groups:
        if not group.get("momentum"):
            continue
        for parameter in group["params"]:
            state = optimizer.state[parameter]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(
                    parameter, memory_format=torch.preserve_format
                )


class NonFiniteGuard:
    """The first step whose loss was NaN or infinite, and that loss, kept on the device."""

    def __init__(self, device: torch.device) -> None:
        self.step = torch.zeros((), dtype=torch.int64, device=device)  # 0: none yet
        self.value = torch.zeros((), dtype=torch.float32, device=device)

    def record(self, loss: torch.Tensor, step: int) -> torch.Tensor:
        """Note `loss` of training step `step` (1-based); returns whether it was non-finite."""
        loss = loss.detach().to(torch.float32)
        nonfinite = ~torch.isfinite(loss)
        first = nonfinite & (self.step == 0)
        self.step = torch.where(first, step, self.step)
        self.value = torch.where(first, loss, self.value)
        return nonfinite

    def first(self) -> tuple[int, float] | None:
        """(step, loss) of the first non-finite loss, or None. Waits for the device."""
        step = int(self.step)
        return (step, float(self.value)) if step else None
