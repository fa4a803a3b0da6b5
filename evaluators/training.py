"""Short proxy training of one candidate, on a CPU or a GPU, streamed one epoch at a time.

    for record in (run := iter_training(arch, data, recipe)): ...   # a generator of EpochRecord
    result = train(arch, data, recipe, on_epoch=lambda r: r.val_accuracy < 0.3)

`iter_training` is what a Ray worker runs: it yields an `EpochRecord` after every epoch and
returns a `TrialResult` (the generator's return value). Sending a true value into it (`send(True)`)
ends the run after that epoch with status ``stopped``; `train` drives it with a callback.

Nothing escapes as an exception for a bad candidate: a NaN or infinite loss, the wall-time limit,
or an error inside the model ends the run with status ``failed`` and the reason, keeping the
epochs already done. Only the caller's own interrupts (KeyboardInterrupt, generator close)
propagate.

Speed matters more here than anywhere else in the search, so the loop keeps images as uint8 until
a batch is drawn, normalises and augments whole batches with tensor ops, runs in channels_last
(oneDNN's fast layout on CPU), steps SGD with the fused kernel, and evaluates under
`torch.inference_mode`.

On a GPU (`device="cuda"`), or in mixed precision, the same recipe runs in `_DeviceLoop`: every
split resident on the device as uint8, batches gathered, standardised and augmented there from
the random numbers the CPU loop draws, autocast in the recipe's precision, cuDNN autotuning,
and no wait for the device inside an epoch but every `NONFINITE_CHECK_STEPS` steps, when it
reads the on-device record of non-finite losses (`nas.evaluators.precision`). The CPU loop in
float32 is unchanged by all of this.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.evaluators.datasets import (
    Dataset,
    ResidentSplit,
    augment_batch,
    iterate_batches,
    to_float,
)
from nas.evaluators.device import resolve_device, resolve_precision
from nas.evaluators.precision import MixedPrecision, NonFiniteGuard, zero_momentum
from nas.evaluators.recipe import Recipe
from nas.evaluators.results import EpochRecord, Status, TrialResult
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import build_model

__all__ = [
    "EpochRecord",
    "Recipe",
    "TrialResult",
    "build_proxy_model",
    "evaluate",
    "evaluate_resident",
    "iter_training",
    "proxy_data",
    "train",
]

EpochCallback = Callable[[EpochRecord], "bool | None"]

NONFINITE_CHECK_STEPS = 25
"""How often (training steps) the device loop waits for the device to read its non-finite-loss
record. Between reads a non-finite loss skips its update on the device, so it never reaches the
weights; the read only decides when the run fails."""


class _Abort(Exception):
    """Ends a run with status failed; the message is the reason recorded on the trial."""


def build_proxy_model(arch: Arch, data: Dataset, recipe: Recipe) -> nn.Module:
    """`arch` built for the dataset's input and classes, initialised from `recipe.seed`.

    The recipe's resolution and stride plan are applied first (`Recipe.proxy_arch`). Initialisation draws
    from its own seeded stream, so the same seed gives the same weights whoever builds the model.
    """
    proxy = recipe.proxy_arch(arch, data.input_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_stream_seed(recipe.seed, 0))
        model = build_model(proxy, recipe.proxy_input(data.input_shape), data.num_classes)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def train(
    arch: Arch,
    data: Dataset,
    recipe: Recipe | None = None,
    on_epoch: EpochCallback | None = None,
    model: nn.Module | None = None,
    device: str | torch.device | None = None,
) -> TrialResult:
    """Train `arch` and return its result; `on_epoch` returning True stops the run (``stopped``).

    `device`: cpu (the default), cuda, cuda:N or auto (a GPU where torch sees one).
    """
    run = iter_training(arch, data, recipe or Recipe(), model=model, device=device)
    try:
        record = next(run)
        while True:
            stop = bool(on_epoch(record)) if on_epoch is not None else False
            record = run.send(stop)
    except StopIteration as finished:
        return finished.value


# Long: a generator, so the epoch loop and every way a run ends (built, stopped, failed) share it.
def iter_training(
    arch: Arch,
    data: Dataset,
    recipe: Recipe,
    model: nn.Module | None = None,
    *,
    validate: bool = True,
    score_test: bool = False,
    device: str | torch.device | None = None,
) -> Generator[EpochRecord, bool | None, TrialResult]:
    """Train `arch` on `data`, yielding an `EpochRecord` per epoch; return the `TrialResult`.

    Pass `model` (from `build_proxy_model`) to keep the trained weights: it is trained in place.
    Global torch state (RNG, thread count) is switched to the run's own only while the run is
    executing, and restored whenever it yields, so a caller can interleave several runs.

    A search validates after every epoch and never reads the test split. A final training
    (`validate=False, score_test=True`) trains on a dataset loaded without a validation split
    and scores the test split once, after the last epoch, so nothing chose it by its test score.

    `device` (cpu by default; cuda, cuda:N, auto) is where it trains; a GPU that is not there
    raises `InputError` at the first `next`. The model is moved there and left there. The
    recipe's ``auto`` precision is resolved for the device, and the result's recipe records
    the precision used.
    """
    started = time.perf_counter()
    where = resolve_device(device or "cpu")
    recipe = recipe.replace(precision=resolve_precision(recipe.precision, where))
    proxy = recipe.proxy_arch(arch, data.input_shape)
    data = proxy_data(data, recipe)
    globals_ = _RunGlobals(recipe, where)
    curve: list[EpochRecord] = []
    steps_done = [0, 0.0]  # training images, training seconds

    def result(
        status: Status, error: str | None = None, test: tuple[float, int] | None = None
    ) -> TrialResult:
        final = curve[-1].val_accuracy if curve and status is not Status.FAILED else None
        return TrialResult(
            status=status,
            accuracy=final,
            curve=list(curve),
            train_seconds=round(time.perf_counter() - started, 3),
            images_per_second=round(steps_done[0] / steps_done[1], 1) if steps_done[1] else 0.0,
            host=socket.gethostname(),
            error=error,
            recipe=recipe.to_dict(),
            seed=recipe.seed,
            threads=recipe.threads,
            input_shape=data.input_shape,
            arch=proxy.to_string(),
            best_accuracy=max(
                (r.val_accuracy for r in curve if r.val_accuracy is not None), default=None
            ),
            test_accuracy=test[0] if test else None,
            test_count=test[1] if test else 0,
            val_count=curve[-1].val_count if final is not None else 0,
        )

    try:
        with globals_.active():
            loop = _loop_class(where, recipe)(
                proxy, data, recipe, model, started, validate, score_test, where
            )
    except _Abort as abort:
        return result(Status.FAILED, str(abort))
    except Exception as error:  # a candidate that cannot even be built is a failed trial
        return result(Status.FAILED, f"building the model failed: {_describe(error)}")

    for epoch in range(1, recipe.epochs + 1):
        try:
            with globals_.active():
                record = loop.run_epoch(epoch)
        except _Abort as abort:
            return result(Status.FAILED, str(abort))
        except Exception as error:
            return result(Status.FAILED, f"epoch {epoch}: {_describe(error)}")
        finally:
            steps_done[0], steps_done[1] = loop.images_seen, loop.step_seconds
        curve.append(record)
        stop = yield record
        if stop and epoch < recipe.epochs:
            return result(Status.STOPPED)
    if not score_test:
        return result(Status.OK)
    try:
        with globals_.active():
            test = loop.score_test()
    except _Abort as abort:
        return result(Status.FAILED, str(abort))
    except Exception as error:
        return result(Status.FAILED, f"scoring the test split: {_describe(error)}")
    return result(Status.OK, test=test)


def proxy_data(data: Dataset, recipe: Recipe) -> Dataset:
    """`data` at the resolution `recipe` trains at (every split resized; itself if no change)."""
    _, height, width = recipe.proxy_input(data.input_shape)
    return data.resized((height, width))


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    data: Dataset,
    batch_size: int = 500,
    channels_last: bool = True,
    *,
    device: torch.device | None = None,
    precision: str = "float32",
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of `model` on uint8 `images`, in eval mode.

    The model is put back in training mode afterwards if it was in it. With a `device` other
    than the CPU, or a mixed `precision`, the images are copied to `device` (where the model
    must be) and scored there (`evaluate_resident`).
    """
    if (device is not None and device.type != "cpu") or precision != "float32":
        split = ResidentSplit(images, labels, data.mean, data.std, device or torch.device("cpu"))
        return evaluate_resident(model, split, batch_size, channels_last, precision)
    was_training = model.training
    model.eval()
    correct, loss_sum = 0, 0.0
    try:
        with torch.inference_mode():
            for x, y in iterate_batches(images, labels, batch_size):
                logits = model(_prepare(x, data, channels_last))
                loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(1) == y).sum())
    finally:
        model.train(was_training)
    n = max(len(labels), 1)
    return correct / n, loss_sum / n


def evaluate_resident(
    model: nn.Module,
    split: ResidentSplit,
    batch_size: int = 500,
    channels_last: bool = True,
    precision: str = "float32",
) -> tuple[float, float]:
    """`evaluate` on a split resident on the model's device: one wait for the device, at the end.

    Sums are kept as the CPU path keeps them (per-batch float32 loss sums added in float64), so
    on a CPU in float32 both give the same numbers.
    """
    was_training = model.training
    model.eval()
    amp = MixedPrecision(precision, split.device)
    correct = torch.zeros((), dtype=torch.int64, device=split.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=split.device)
    try:
        with torch.inference_mode(), amp.autocast():
            for x, y in split.batches_in_order(batch_size, channels_last=channels_last):
                logits = model(x)
                loss = F.cross_entropy(logits.float(), y, reduction="sum")
                loss_sum += loss.to(torch.float64)
                correct += (logits.argmax(1) == y).sum()
        n = max(len(split), 1)
        return int(correct) / n, float(loss_sum) / n
    finally:
        model.train(was_training)


# ---- the loop -----------------------------------------------------------------------------------


def _loop_class(device: torch.device, recipe: Recipe) -> type[_Loop]:
    """The CPU loop for float32 on a CPU; the device loop on a GPU or in mixed precision."""
    if device.type == "cpu" and recipe.precision == "float32":
        return _Loop
    return _DeviceLoop


class _Loop:
    """Model, optimiser, schedule and data stream of one run; `run_epoch` does the work."""

    def __init__(
        self,
        arch: Arch,
        data: Dataset,
        recipe: Recipe,
        model: nn.Module | None,
        started: float,
        validate: bool = True,
        score_test: bool = False,
        device: torch.device | None = None,
    ) -> None:
        n_train, n_val = len(data.train_labels), len(data.val_labels)
        if n_train < 2:
            raise _Abort(f"the training split has {n_train} image(s); at least 2 are needed")
        if validate and n_val == 0:
            raise _Abort(
                "the validation split is empty; load the dataset with a validation "
                "fraction or count above zero"
            )
        if score_test and len(data.test_labels) == 0:
            raise _Abort("the test split is empty: there is nothing to score the run on")
        self.data, self.recipe, self.started = data, recipe, started
        self.validate = validate
        self.batch_size = min(recipe.batch_size, n_train)
        self.steps_per_epoch = n_train // self.batch_size
        self.total_steps = self.steps_per_epoch * recipe.epochs
        self.device = device or torch.device("cpu")
        self.model = model if model is not None else build_proxy_model(arch, data, recipe)
        if self.device.type != "cpu":
            self.model.to(self.device)  # before the optimizer: fused SGD runs where its params are
        for module in self.model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.momentum = recipe.bn_momentum
        self.model.train()
        self.optimizer = _sgd(self.model, recipe)
        self.generator = torch.Generator().manual_seed(_stream_seed(recipe.seed, 1))
        self.pad = (
            (recipe.crop_padding if recipe.crop_padding is not None else data.resolution[0] // 8)
            if recipe.augment
            else 0
        )
        self.flip = recipe.flip and data.hflip_ok
        self.step = 0
        self.images_seen = 0
        self.step_seconds = 0.0

    def run_epoch(self, epoch: int) -> EpochRecord:
        recipe, model, optimizer = self.recipe, self.model, self.optimizer
        epoch_start = time.perf_counter()
        loss_sum = 0.0
        images = 0
        lr = 0.0
        for x, y in self._batches():
            lr = learning_rate(recipe, self.step, self.steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = F.cross_entropy(model(x), y, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            value = loss.item()
            if not math.isfinite(value):
                raise _Abort(
                    f"training loss became {value} at epoch {epoch}, step "
                    f"{self.step + 1} (lr {lr:.4g}); lower the learning rate"
                )
            optimizer.step()
            loss_sum += value * len(y)
            images += len(y)
            self.step += 1
            self._check_time(f"epoch {epoch}, step {self.step}")
        train_seconds = time.perf_counter() - epoch_start
        self.images_seen += images
        self.step_seconds += train_seconds
        val_accuracy = val_loss = None
        if self.validate:
            val_accuracy, val_loss = self._score("val", f"validation after epoch {epoch}")
            self._check_time(f"the validation of epoch {epoch}")
        return EpochRecord(
            epoch=epoch,
            val_accuracy=round(val_accuracy, 6) if val_accuracy is not None else None,
            val_loss=round(val_loss, 6) if val_loss is not None else None,
            train_loss=round(loss_sum / max(images, 1), 6),
            seconds=round(time.perf_counter() - epoch_start, 3),
            images_per_second=round(images / train_seconds, 1) if images else 0.0,
            lr=round(lr, 8),
            val_count=len(self.data.val_labels) if self.validate else 0,
        )

    def score_test(self) -> tuple[float, int]:
        """(accuracy, image count) of the trained model on the test split."""
        accuracy, _ = self._score("test", "the test split")
        return round(accuracy, 6), len(self.data.test_labels)

    def _score(self, split: str, where: str) -> tuple[float, float]:
        accuracy, loss = self._evaluate(split)
        if not math.isfinite(loss):
            raise _Abort(
                f"the loss on {where} became {loss} (the weights or batch-norm statistics "
                f"overflowed); lower the learning rate"
            )
        return accuracy, loss

    def _evaluate(self, split: str) -> tuple[float, float]:
        images, labels = self.data.split(split)
        return evaluate(
            self.model,
            images,
            labels,
            self.data,
            self.recipe.eval_batch_size,
            self.recipe.channels_last,
        )

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        data = self.data
        batches = iterate_batches(
            data.train_images,
            data.train_labels,
            self.batch_size,
            generator=self.generator,
            drop_last=True,
        )
        for x, y in batches:
            x = to_float(x, data.mean, data.std)
            if self.pad or self.flip:
                x = augment_batch(x, self.generator, pad=self.pad, flip=self.flip)
            if self.recipe.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y

    def _check_time(self, where: str) -> None:
        limit = self.recipe.max_seconds
        if limit is None:
            return
        elapsed = time.perf_counter() - self.started
        if elapsed > limit:
            raise _Abort(
                f"wall-time limit of {limit:g} s reached during {where} "
                f"({elapsed:.1f} s elapsed); raise the limit (`nas search --trial-timeout-s`, "
                f"`nas train --max-seconds`) or train fewer epochs"
            )


class _DeviceLoop(_Loop):
    """The loop for a GPU or mixed precision: data on the device, no wait for it per step.

    Same recipe, schedule and random streams as `_Loop`: the batches, crops and flips are drawn
    from the same CPU generator in the same order, and the initial weights are built on the CPU
    from the same seed, then moved. On a CPU in float32 it computes what `_Loop` computes.
    """

    def __init__(
        self,
        arch: Arch,
        data: Dataset,
        recipe: Recipe,
        model: nn.Module | None,
        started: float,
        validate: bool = True,
        score_test: bool = False,
        device: torch.device | None = None,
    ) -> None:
        super().__init__(arch, data, recipe, model, started, validate, score_test, device)
        self.amp = MixedPrecision(self.recipe.precision, self.device)
        self.guard = NonFiniteGuard(self.device)
        zero_momentum(self.optimizer)
        self.train_split = ResidentSplit.of(self.data, "train", self.device)
        self.resident: dict[str, ResidentSplit] = {}

    def run_epoch(self, epoch: int) -> EpochRecord:
        recipe, model, optimizer = self.recipe, self.model, self.optimizer
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        images = 0
        lr = 0.0
        batches = self.train_split.training_batches(
            self.batch_size,
            self.generator,
            pad=self.pad,
            flip=self.flip,
            channels_last=recipe.channels_last,
        )
        for x, y in batches:
            lr = learning_rate(recipe, self.step, self.steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with self.amp.autocast():
                loss = F.cross_entropy(model(x), y, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            self.step += 1
            self.amp.step(loss, optimizer, self.guard.record(loss, self.step))
            loss_sum += loss.detach().to(torch.float64) * len(y)
            images += len(y)
            if self.step % NONFINITE_CHECK_STEPS == 0:
                self._check_loss()
            self._check_time(f"epoch {epoch}, step {self.step}")
        self._check_loss()
        train_loss = float(loss_sum) / max(images, 1)  # waits for the epoch's last step
        train_seconds = time.perf_counter() - epoch_start
        self.images_seen += images
        self.step_seconds += train_seconds
        val_accuracy = val_loss = None
        if self.validate:
            val_accuracy, val_loss = self._score("val", f"validation after epoch {epoch}")
            self._check_time(f"the validation of epoch {epoch}")
        return EpochRecord(
            epoch=epoch,
            val_accuracy=round(val_accuracy, 6) if val_accuracy is not None else None,
            val_loss=round(val_loss, 6) if val_loss is not None else None,
            train_loss=round(train_loss, 6),
            seconds=round(time.perf_counter() - epoch_start, 3),
            images_per_second=round(images / train_seconds, 1) if images else 0.0,
            lr=round(lr, 8),
            val_count=len(self.data.val_labels) if self.validate else 0,
        )

    def _check_loss(self) -> None:
        """Fail the run if a step's loss was not finite (that step's update was skipped)."""
        first = self.guard.first()
        if first is None:
            return
        step, value = first
        epoch = (step - 1) // self.steps_per_epoch + 1
        lr = learning_rate(self.recipe, step - 1, self.steps_per_epoch)
        raise _Abort(
            f"training loss became {value} at epoch {epoch}, step {step} (lr {lr:.4g}); "
            f"lower the learning rate"
        )

    def _evaluate(self, split: str) -> tuple[float, float]:
        if split not in self.resident:
            self.resident[split] = ResidentSplit.of(self.data, split, self.device)
        return evaluate_resident(
            self.model,
            self.resident[split],
            self.recipe.eval_batch_size,
            self.recipe.channels_last,
            self.recipe.precision,
        )


def learning_rate(recipe: Recipe, step: int, steps_per_epoch: int) -> float:
    """The learning rate of `step` (0-based) under the recipe's schedule, per step not per epoch.

    Per-step schedules matter for proxies of a few epochs: per-epoch steps would spend a whole
    epoch of four at a warm-up learning rate.
    """
    total = max(recipe.epochs * steps_per_epoch, 1)
    warmup = min(int(round(recipe.warmup_epochs * steps_per_epoch)), total // 3)
    peak = recipe.lr
    if recipe.schedule == "cosine":
        if step < warmup:
            return peak * (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return peak * 0.5 * (1.0 + math.cos(math.pi * progress))
    # onecycle: as torch's OneCycleLR with div_factor 25, final_div_factor 1e4, cosine anneal.
    low, final = peak / 25.0, peak / 25.0 / 1e4
    if step < warmup:
        return low + (peak - low) * 0.5 * (1.0 - math.cos(math.pi * step / warmup))
    progress = (step - warmup) / max(total - 1 - warmup, 1)
    return final + (peak - final) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _sgd(model: nn.Module, recipe: Recipe) -> torch.optim.SGD:
    """SGD with the fused CPU kernel where this torch has one, else the multi-tensor one.

    The per-parameter default is the slow choice on CPU, a sizeable share of a small
    candidate's training step (docs/training.md has the measurement).
    """
    groups = _param_groups(model, recipe.weight_decay)
    options = dict(lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
    try:
        return torch.optim.SGD(groups, fused=True, **options)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.SGD(groups, foreach=True, **options)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv and linear weights only: norms and biases are exempt."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim > 1 else no_decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _prepare(x: torch.Tensor, data: Dataset, channels_last: bool) -> torch.Tensor:
    x = to_float(x, data.mean, data.std)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _stream_seed(seed: int, stream: int) -> int:
    """Independent seeds per purpose (init, data order, dropout) derived from one recipe seed."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def _describe(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


class _RunGlobals:
    """The run's own global torch state, swapped in while it executes: the RNG (dropout) and
    thread count, and on a GPU that GPU's RNG and cuDNN autotuning."""

    def __init__(self, recipe: Recipe, device: torch.device | None = None) -> None:
        self.threads = recipe.threads
        self.gpu = device if device is not None and device.type == "cuda" else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_stream_seed(recipe.seed, 2))
            self.rng_state = torch.get_rng_state()
        if self.gpu is not None:
            outer = torch.cuda.get_rng_state(self.gpu)
            torch.cuda.default_generators[_index(self.gpu)].manual_seed(
                _stream_seed(recipe.seed, 2)
            )
            self.gpu_rng_state = torch.cuda.get_rng_state(self.gpu)
            torch.cuda.set_rng_state(outer, self.gpu)

    @contextmanager
    def active(self) -> Iterator[None]:
        outer_rng, outer_threads = torch.get_rng_state(), torch.get_num_threads()
        torch.set_rng_state(self.rng_state)
        if outer_threads != self.threads:
            torch.set_num_threads(self.threads)
        if self.gpu is not None:
            outer_gpu_rng = torch.cuda.get_rng_state(self.gpu)
            outer_benchmark = torch.backends.cudnn.benchmark
            torch.cuda.set_rng_state(self.gpu_rng_state, self.gpu)
            # Autotuning: a proxy repeats the same few shapes hundreds of times.
            torch.backends.cudnn.benchmark = True
        try:
            yield
        finally:
            self.rng_state = torch.get_rng_state()
            torch.set_rng_state(outer_rng)
            if torch.get_num_threads() != outer_threads:
                torch.set_num_threads(outer_threads)
            if self.gpu is not None:
                self.gpu_rng_state = torch.cuda.get_rng_state(self.gpu)
                torch.cuda.set_rng_state(outer_gpu_rng, self.gpu)
                torch.backends.cudnn.benchmark = outer_benchmark


def _index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()
