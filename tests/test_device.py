"""Training on a GPU, tested without one: device selection and its refusals, the device loop
(resident data, on-device non-finite guard, mixed precision) run on the CPU, Ray's GPU
resources as the search counts them, and the imports the GPU check needs."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_training import FAST, TINY, synthetic

from nas.cli import main
from nas.config import SearchConfig
from nas.errors import InputError
from nas.evaluators import device as device_module
from nas.evaluators import training
from nas.evaluators.datasets import ResidentSplit, augment_batch, crop_flip, draw_crop_flip
from nas.evaluators.device import (
    describe_device,
    ray_task_device,
    resolve_device,
    resolve_precision,
)
from nas.evaluators.precision import MixedPrecision, NonFiniteGuard, zero_momentum
from nas.evaluators.recipe import Recipe
from nas.ray_cluster import alive_nodes, trial_slots
from nas.recipes import recipe_for
from nas.worker import WorkerMessage, check_gpu_training, train_candidate

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def device_loop_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `iter_training` run the GPU loop on the CPU."""
    monkeypatch.setattr(training, "_loop_class", lambda device, recipe: training._DeviceLoop)


# ---- which device -----------------------------------------------------------------------------


def test_auto_and_cpu_resolve_to_the_cpu_without_a_gpu(no_cuda: None) -> None:
    assert resolve_device("auto") == CPU
    assert resolve_device(None) == CPU
    assert resolve_device("CPU") == CPU


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:1"])
def test_a_gpu_that_is_not_there_is_one_line(no_cuda: None, spec: str) -> None:
    with pytest.raises(InputError) as raised:
        resolve_device(spec)
    message = str(raised.value)
    assert "\n" not in message and spec in message and "--device cpu" in message


def test_a_cpu_build_of_torch_says_so(no_cuda: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(InputError, match="build without CUDA"):
        resolve_device("cuda")


def test_a_gpu_index_beyond_the_visible_ones_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    with pytest.raises(InputError, match="torch sees 1 GPU"):
        resolve_device("cuda:1")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "tpu"])
def test_an_unknown_device_is_refused(spec: str) -> None:
    with pytest.raises(InputError, match="choose auto, cpu, cuda or cuda:N"):
        resolve_device(spec)


def test_a_ray_task_trains_on_the_gpu_it_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ray_task_device([]) == CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    # Ray narrowed CUDA_VISIBLE_DEVICES to the task's GPU: it is torch's first.
    assert ray_task_device(["3"]) == torch.device("cuda", 0)


def test_a_ray_task_given_a_gpu_torch_cannot_use_fails_saying_why(no_cuda: None) -> None:
    with pytest.raises(InputError, match="Ray gave this trial GPU 0"):
        ray_task_device([0])


def test_the_cpu_is_described_and_auto_precision_is_float32_there() -> None:
    assert describe_device(CPU) == {"type": "cpu", "torch": torch.__version__}
    assert resolve_precision("auto", CPU) == "float32"
    assert resolve_precision("bfloat16", CPU) == "bfloat16"
    assert device_module.mixed_precision_for(8) == "bfloat16"
    assert device_module.mixed_precision_for(7) == "float16"
    assert device_module._cudnn_version(90800) == "9.8.0"
    assert device_module._cudnn_version(8902) == "8.9.2"


# ---- the recipe ---------------------------------------------------------------------------------


def test_precision_is_checked_and_old_recipes_compare_as_float32() -> None:
    with pytest.raises(InputError, match="precision must be one of"):
        Recipe(precision="float8")
    recorded = {k: v for k, v in Recipe().to_dict().items() if k != "precision"}
    assert Recipe().changes_from(recorded) == []
    assert Recipe(precision="auto").changes_from(recorded) == ["precision 'float32' -> 'auto'"]


def test_a_search_on_gpus_trains_in_auto_precision_and_on_cpus_in_float32() -> None:
    assert recipe_for(SearchConfig()).precision == "float32"
    assert recipe_for(SearchConfig(gpus_per_trial=0.25)).precision == "auto"
    assert recipe_for(SearchConfig(gpus_per_trial=1, precision="float16")).precision == "float16"


@pytest.mark.parametrize(
    "gpus, message",
    [(0.00001, "steps of 0.0001"), (1.5, "whole number"), (-1, ">= 0")],
)
def test_gpus_per_trial_is_what_ray_accepts(gpus: float, message: str) -> None:
    with pytest.raises(InputError, match=message):
        SearchConfig(gpus_per_trial=gpus)


# ---- the device loop, on the CPU --------------------------------------------------------------


def test_augmentation_drawn_apart_is_the_same_augmentation() -> None:
    images = torch.randint(0, 255, (16, 3, 8, 8), dtype=torch.uint8).float()
    for pad, flip in ((1, True), (2, False), (0, True)):
        expected = augment_batch(images, torch.Generator().manual_seed(5), pad=pad, flip=flip)
        draws = draw_crop_flip(16, torch.Generator().manual_seed(5), pad=pad, flip=flip)
        assert torch.equal(crop_flip(images, *draws, pad=pad), expected)


def test_resident_batches_are_the_cpu_loops_batches() -> None:
    data = dataclasses.replace(synthetic(n_train=100, size=12), hflip_ok=True)
    recipe = FAST.replace(batch_size=32)
    cpu_loop = training._Loop(TINY, data, recipe, None, 0.0)
    split = ResidentSplit.of(data, "train", CPU)
    generator = torch.Generator().manual_seed(training._stream_seed(recipe.seed, 1))
    for _ in range(2):  # two epochs: the streams stay in step
        resident = split.training_batches(
            32, generator, pad=cpu_loop.pad, flip=cpu_loop.flip, channels_last=True
        )
        pairs = list(zip(cpu_loop._batches(), resident, strict=True))
        assert len(pairs) == 3
        for (x, y), (rx, ry) in pairs:
            assert torch.equal(x, rx) and torch.equal(y, ry)
            assert rx.is_contiguous(memory_format=torch.channels_last)


def test_the_device_loop_on_a_cpu_computes_what_the_cpu_loop_computes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = synthetic()
    recipe = FAST.replace(epochs=2)
    cpu_model = training.build_proxy_model(TINY, data, recipe)
    cpu = training.train(TINY, data, recipe, model=cpu_model)
    monkeypatch.setattr(training, "_loop_class", lambda device, recipe: training._DeviceLoop)
    device_model = training.build_proxy_model(TINY, data, recipe)
    on_device = training.train(TINY, data, recipe, model=device_model)
    assert cpu.ok and on_device.ok
    strip = [
        {k: v for k, v in r.to_dict().items() if k not in ("seconds", "images_per_second")}
        for r in (*cpu.curve, *on_device.curve)
    ]
    assert strip[:2] == strip[2:]
    for a, b in zip(cpu_model.state_dict().values(), device_model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_trains_on_the_cpu_and_is_recorded(precision: str) -> None:
    result = training.train(TINY, synthetic(), FAST.replace(epochs=2, precision=precision))
    assert result.ok, result.error
    assert result.recipe["precision"] == precision
    assert all(r.train_loss == r.train_loss for r in result.curve)  # finite, not NaN


def test_auto_precision_trains_in_float32_on_the_cpu() -> None:
    result = training.train(TINY, synthetic(), FAST.replace(precision="auto"))
    assert result.ok and result.recipe["precision"] == "float32"


def test_a_gpu_that_is_not_there_fails_the_call_not_the_candidate(no_cuda: None) -> None:
    with pytest.raises(InputError, match="--device cuda"):
        training.train(TINY, synthetic(), FAST, device="cuda")


class _PoisonAt(torch.nn.Module):
    """`model`, whose training forward returns NaN logits at call `at` (1-based)."""

    def __init__(self, model: torch.nn.Module, at: int) -> None:
        super().__init__()
        self.model, self.at, self.calls = model, at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                return logits * float("nan")
        return logits


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_a_nonfinite_loss_never_reaches_the_weights_and_fails_the_run(
    device_loop_on_cpu: None, monkeypatch: pytest.MonkeyPatch, precision: str
) -> None:
    data = synthetic(n_train=32 * 30)  # 30 steps: the guard is read after step 25 and at the end
    recipe = FAST.replace(precision=precision)
    model = _PoisonAt(training.build_proxy_model(TINY, data, recipe), at=3)
    reads: list[int] = []
    first = NonFiniteGuard.first
    monkeypatch.setattr(NonFiniteGuard, "first", lambda self: reads.append(1) or first(self))
    result = training.train(TINY, data, recipe, model=model)
    assert result.status == "failed"
    assert result.error.startswith("training loss became nan at epoch 1, step 3 (lr ")
    assert len(reads) == 1  # no wait per step: the first read (step 25) found it
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_the_guard_skips_exactly_the_nonfinite_step() -> None:
    parameter = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([parameter], lr=0.1, momentum=0.9, nesterov=True, fused=True)
    zero_momentum(optimizer)
    amp, guard = MixedPrecision("float32", CPU), NonFiniteGuard(CPU)
    for step, scale in enumerate((float("nan"), 1.0), start=1):
        loss = (parameter * scale).sum()
        optimizer.zero_grad(set_to_none=True)
        amp.step(loss, optimizer, guard.record(loss, step))
        if step == 1:
            assert torch.equal(parameter.detach(), torch.ones(3))  # skipped
            assert torch.equal(optimizer.state[parameter]["momentum_buffer"], torch.zeros(3))
    # The second step is SGD's first step on a clean buffer: p - lr * (g + 0.9 * g).
    assert torch.allclose(parameter.detach(), torch.full((3,), 1 - 0.1 * 1.9))
    assert guard.first() == (1, pytest.approx(float("nan"), nan_ok=True))


# ---- the search on GPUs -------------------------------------------------------------------------


def test_slots_follow_gpus_and_fractions_pack_trials_on_one() -> None:
    gpu_node = {"CPU": 16.0, "GPU": 2.0}
    assert trial_slots([gpu_node], 1, 1) == 2
    assert trial_slots([gpu_node], 1, 0.25) == 8
    assert trial_slots([gpu_node], 1, 0.3) == 6  # three per GPU, not 6.67
    assert trial_slots([gpu_node], 4, 0.125) == 4  # the CPUs run out first
    assert trial_slots([gpu_node, {"CPU": 64.0}], 1, 0.5) == 4  # a CPU-only node adds none
    assert trial_slots([{"CPU": 8.0, "GPU": 4.0}], 1, 2) == 2
    assert trial_slots([{"CPU": 8.0}], 1, 1) == 1  # at least one, so a search always asks


def test_nas_train_with_a_gpu_that_is_not_there_exits_2_in_one_line(
    no_cuda: None, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["train", "mnasnet0_5", "--device", "cuda", "--out", str(tmp_path / "out")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--device cuda" in err
    assert not (tmp_path / "out").exists()


def test_the_gpu_check_runs_where_only_torch_numpy_and_this_package_are() -> None:
    """benchmarks/gpu_check.py imports nothing of Ray, Optuna, SQLAlchemy, Pillow or fvcore."""
    absent = ("ray", "optuna", "sqlalchemy", "PIL", "fvcore", "yaml", "click", "rich", "onnx")
    code = (
        "import runpy, sys\n"
        f"for name in {absent!r}:\n"
        "    sys.modules[name] = None  # importing it now raises ImportError\n"
        "sys.argv = ['gpu_check.py', '--help']\n"
        "try:\n"
        "    runpy.run_path('benchmarks/gpu_check.py', run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    sys.exit(done.code)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert "--pack-trials" in ran.stdout


# ---- Ray workers and GPUs ------------------------------------------------------------------------


def test_a_worker_reports_the_device_it_trained_on() -> None:
    messages = [
        WorkerMessage.from_dict(item)
        for item in train_candidate(TINY.to_string(), synthetic(), FAST.to_dict())
    ]
    assert messages[-1].result is not None and messages[-1].result.ok
    cpu = {**describe_device(CPU), "precision": "float32"}
    assert all(message.device == cpu for message in messages)
    assert check_gpu_training(1, 0) is None  # no GPUs asked for: nothing to check


@pytest.fixture(scope="module")
def ray_with_a_gpu_torch_cannot_use():
    """A local Ray that offers one GPU on this machine, whose torch has no CUDA: what a GPU
    node with the CPU build of torch looks like to the driver."""
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        num_gpus=1,
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
    )
    yield
    ray.shutdown()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch that cannot use a GPU")
def test_gpu_trials_where_torch_cannot_use_the_gpu(
    ray_with_a_gpu_torch_cannot_use: None, tmp_path
) -> None:
    import ray
    from tiny_search import TINY_SEARCH

    from nas.search import search
    from nas.worker import error_line, remote_trainer

    # The slots follow the GPUs: two halves of the one GPU.
    assert trial_slots(alive_nodes(), 1, 0.5) == 2
    # A trial that got there anyway fails with the reason, not with a search that hangs.
    stream = remote_trainer(1, 0.5).remote(TINY.to_string(), synthetic(), FAST.to_dict())
    with pytest.raises(ray.exceptions.RayTaskError) as failed:
        ray.get(next(stream))
    assert "Ray gave this trial GPU 0" in error_line(failed.value)
    # The search's probe task gets the GPU (Ray narrows CUDA_VISIBLE_DEVICES to it), finds that
    # torch there cannot use it, and the search stops before any study exists, in one line.
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    config = SearchConfig(**TINY_SEARCH, gpus_per_trial=0.5, trials=2, storage=storage)
    with pytest.raises(
        InputError, match=r"^--gpus-per-trial 0.5: Ray gave this trial GPU 0 on "
    ) as refused:
        search(config)
    assert "build without CUDA" in str(refused.value) and "\n" not in str(refused.value)
    import optuna

    assert optuna.get_all_study_names(storage) == []


def test_an_optimizer_without_found_inf_still_skips_the_nonfinite_step() -> None:
    parameter = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([parameter], lr=0.1, foreach=True)  # not fused
    loss = (parameter * float("inf")).sum()
    MixedPrecision("float32", CPU).step(loss, optimizer, ~torch.isfinite(loss))
    assert torch.equal(parameter.detach(), torch.ones(2))


def test_each_trial_records_the_device_it_trained_on(
    ray_with_a_gpu_torch_cannot_use: None, tmp_path
) -> None:
    import optuna
    from tiny_search import TINY_SEARCH

    from nas.search import search

    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    config = SearchConfig(**TINY_SEARCH, trials=2, storage=storage, out=str(tmp_path / "out"))
    result = search(config)
    study = optuna.load_study(study_name=result.study_name, storage=storage)
    trained = [t for t in study.trials if t.user_attrs.get("outcome") == "trained"]
    assert trained
    for trial in trained:
        assert trial.user_attrs["worker_device"] == {**describe_device(CPU), "precision": "float32"}
        assert trial.user_attrs["recipe"]["precision"] == "float32"


def test_nas_train_on_the_cpu_in_mixed_precision_records_both(tmp_path) -> None:
    import json

    out = tmp_path / "run"
    args = ["train", TINY.to_string(), "--epochs", "1", "--limit-train", "64"]
    with pytest.raises(SystemExit) as exited:
        main([*args, "--device", "cpu", "--precision", "bfloat16", "--out", str(out)])
    assert exited.value.code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["device"] == describe_device(CPU)
    assert json.loads((out / "recipe.json").read_text())["precision"] == "bfloat16"
    assert 0 <= metrics["test_accuracy"] <= 1
