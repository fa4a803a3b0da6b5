"""Proxy training: the recipe, a real one-epoch run, determinism, every failure path, the
streaming protocol, checkpoints and the `nas train` command."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from nas.cli import app, main
from nas.errors import InputError
from nas.evaluators import training
from nas.evaluators.checkpoint import load_checkpoint
from nas.evaluators.datasets import Dataset, load_dataset
from nas.evaluators.recipe import Recipe, final_map
from nas.evaluators.results import EpochRecord, TrialResult
from nas.evaluators.training import build_proxy_model, evaluate, iter_training, learning_rate, train
from nas.search_spaces.arch import Arch
from nas.train import TrainOptions, train_arch

TINY = Arch.from_string(
    "stem_c8_k3_s2_re:mb_e1_k3_s1_c8_re:mb_e3_k3_s2_c16_hs,"
    "mb_e3_k5_s1_c16_se0.25_hs:head_c32_re_d0.1"
)
FAST = Recipe(epochs=1, batch_size=32, threads=1, eval_batch_size=64)


def synthetic(
    n_train: int = 128, n_val: int = 64, classes: int = 4, size: int = 12, seed: int = 0
) -> Dataset:
    """A learnable toy problem: each class is a bright square in its own corner."""
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % classes
        images = torch.randint(0, 60, (n, 1, size, size), generator=g, dtype=torch.uint8)
        half = size // 2
        for c in range(classes):
            r, q = divmod(c, 2)
            images[labels == c, :, r * half : (r + 1) * half, q * half : (q + 1) * half] += 180
        return images, labels

    (tx, ty), (vx, vy), (sx, sy) = split(n_train), split(n_val), split(n_val)
    return Dataset(
        name="synthetic",
        train_images=tx,
        train_labels=ty,
        val_images=vx,
        val_labels=vy,
        test_images=sx,
        test_labels=sy,
        num_classes=classes,
        channels=1,
        resolution=(size, size),
        class_names=tuple(f"c{i}" for i in range(classes)),
        mean=(0.3,),
        std=(0.3,),
        hflip_ok=False,
        provenance="synthetic",
    )  # a flip swaps corners


@pytest.fixture(scope="module")
def toy() -> Dataset:
    return synthetic()


@pytest.fixture(scope="module")
def mini() -> Dataset:
    return load_dataset("fashion-mnist-mini", limit_train=320, val_count=100)


# ---- recipe -----------------------------------------------------------------------------------


def test_recipe_round_trips_through_json():
    recipe = Recipe(epochs=3, lr=0.05, schedule="cosine", max_seconds=None)
    assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe


@pytest.mark.parametrize(
    "changes",
    [
        {"epochs": 0},
        {"batch_size": 1},
        {"lr": -1.0},
        {"lr": float("nan")},
        {"schedule": "step"},
        {"momentum": 1.0},
        {"threads": 0},
        {"max_seconds": 0},
        {"augment": "yes"},
        {"bn_momentum": 0.0},
    ],
)
def test_recipe_rejects_bad_values_with_input_error(changes):
    with pytest.raises(InputError, match="recipe: "):
        Recipe(**changes)


def test_recipe_from_dict_names_unknown_fields():
    with pytest.raises(InputError, match="unknown field.*epoch_count"):
        Recipe.from_dict({"epoch_count": 3})


def test_replace_ignores_none_so_cli_flags_pass_straight_through():
    assert Recipe().replace(lr=None, epochs=7) == Recipe(epochs=7)


def test_stem_rule_applies_below_the_threshold_only():
    recipe = Recipe(stem_stride1_below=64)
    assert recipe.proxy_arch(TINY, (1, 28, 28)).stem.stride == 1
    assert recipe.proxy_arch(TINY, (3, 64, 64)) == TINY
    assert Recipe(stem_stride1_below=0).proxy_arch(TINY, (1, 28, 28)) == TINY


def test_stride_plan_frees_the_leading_strides_only_as_far_as_needed():
    assert final_map(TINY, 28) == 7  # stem and one block of stride 2
    freed = Recipe(min_final_map=14).proxy_arch(TINY, (1, 28, 28))
    assert freed.stem.stride == 1 and freed.blocks[1].stride == 2  # stem first, one step
    assert final_map(freed, 28) == 14
    everything = Recipe(min_final_map=100).proxy_arch(TINY, (1, 28, 28))
    assert [everything.stem.stride, *(b.stride for b in everything.blocks)] == [1, 1, 1, 1]
    assert Recipe(min_final_map=7).proxy_arch(TINY, (1, 28, 28)) == TINY


def test_resolution_sets_the_input_the_stride_plan_and_the_model_see():
    recipe = Recipe(resolution=16, min_final_map=8)
    assert recipe.proxy_input((1, 28, 28)) == (1, 16, 16)
    assert recipe.proxy_arch(TINY, (1, 28, 28)).stem.stride == 1  # 16 -> 8 -> 4 otherwise
    model = build_proxy_model(TINY, synthetic(size=12), recipe)
    assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 4)


def test_resized_dataset_keeps_labels_and_recomputes_statistics():
    data = synthetic(size=12)
    small = data.resized((6, 6))
    assert small.input_shape == (1, 6, 6) and data.input_shape == (1, 12, 12)
    assert torch.equal(small.train_labels, data.train_labels)
    assert small.val_images.shape[-2:] == (6, 6) and small.test_images.shape[-2:] == (6, 6)
    assert "resized to 6x6" in small.provenance
    assert data.resized((12, 12)) is data


def test_training_at_a_proxy_resolution_runs_and_is_recorded(toy):
    result = train(TINY, toy, FAST.replace(resolution=8, min_final_map=2))
    assert result.status.value == "ok" and result.input_shape[-2:] == (8, 8)


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_schedules_warm_up_peak_and_anneal_to_almost_zero(schedule):
    recipe = Recipe(epochs=4, lr=0.4, warmup_epochs=1.0, schedule=schedule)
    lrs = [learning_rate(recipe, step, 10) for step in range(40)]
    peak = max(range(40), key=lrs.__getitem__)
    assert 9 <= peak <= 10 and lrs[peak] == pytest.approx(0.4, rel=0.05)
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1 : peak + 1]))
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))
    assert lrs[-1] < 0.01 * 0.4


def test_warm_up_never_takes_the_whole_of_a_one_epoch_run():
    recipe = Recipe(epochs=1, warmup_epochs=1.0)
    lrs = [learning_rate(recipe, step, 30) for step in range(30)]
    assert lrs[-1] < 0.05 * max(lrs)


def test_no_weight_decay_on_norms_and_biases(toy):
    model = build_proxy_model(TINY, toy, FAST)
    decay, no_decay = training._param_groups(model, 1e-4)
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    assert any(p is bn.weight for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize("pad, flip", [(4, True), (2, False), (0, True)])
def test_batch_augmentation_matches_per_image_crop_and_flip(pad, flip):
    """The single-gather augmentation equals cropping and flipping each image by hand."""
    from nas.evaluators.datasets import augment_batch

    images = torch.randn(16, 3, 10, 10)
    ours = augment_batch(images, torch.Generator().manual_seed(3), pad=pad, flip=flip)
    generator = torch.Generator().manual_seed(3)  # the same draws, in the same order
    dy = torch.randint(0, 2 * pad + 1, (16, 1), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (16, 1), generator=generator)
    flipped = (
        torch.rand(16, 1, generator=generator) < 0.5
        if flip
        else torch.zeros(16, 1, dtype=torch.bool)
    )
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    for i in range(16):
        columns = torch.arange(9, -1, -1) if flipped[i, 0] else torch.arange(10)
        rows = padded[i, :, dy[i, 0] : dy[i, 0] + 10, :]
        assert torch.equal(ours[i], rows[..., dx[i, 0] + columns])


# ---- training ---------------------------------------------------------------------------------


def test_one_epoch_on_the_shipped_subset(mini):
    result = train(TINY, mini, FAST)
    assert result.status == "ok" and result.error is None
    assert len(result.curve) == 1 and result.curve[0].epoch == 1
    assert 0.0 <= result.accuracy <= 1.0 and result.accuracy == result.curve[0].val_accuracy
    assert math.isfinite(result.curve[0].val_loss) and math.isfinite(result.curve[0].train_loss)
    assert result.images_per_second > 0 and result.train_seconds > 0
    assert result.input_shape == (1, 28, 28) and result.threads == 1 and result.host
    assert (
        result.recipe == FAST.to_dict()
        and result.arch == FAST.proxy_arch(TINY, mini.input_shape).to_string()
    )
    text = json.dumps(result.to_dict())
    assert TrialResult.from_dict(json.loads(text)) == result


def test_learns_the_toy_problem(toy):
    result = train(TINY, toy, Recipe(epochs=8, batch_size=16, threads=1))
    assert result.ok and result.accuracy >= 0.9, result.curve


def test_same_seed_same_result_other_seed_other_result(toy):
    recipe = Recipe(epochs=2, batch_size=16, threads=1)
    first, second = train(TINY, toy, recipe), train(TINY, toy, recipe)
    assert first.accuracy == second.accuracy
    assert [r.train_loss for r in first.curve] == [r.train_loss for r in second.curve]
    assert [r.val_loss for r in first.curve] == [r.val_loss for r in second.curve]
    other = train(TINY, toy, recipe.replace(seed=1))
    assert [r.train_loss for r in other.curve] != [r.train_loss for r in first.curve]


def test_caller_rng_and_threads_are_left_alone(toy):
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(TINY, toy, FAST.replace(threads=max(1, threads - 1) if threads > 1 else 2))
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_huge_learning_rate_fails_with_a_reason(toy):
    result = train(
        TINY, toy, Recipe(epochs=2, batch_size=16, lr=1e6, threads=1, label_smoothing=0.0)
    )
    assert result.status == "failed" and result.accuracy is None
    assert "lower the learning rate" in result.error
    assert "nan" in result.error or "inf" in result.error


def test_nan_loss_ends_the_run_before_the_step(toy, monkeypatch):
    real = training.F.cross_entropy
    calls = []

    def poisoned(*args, **kwargs):
        loss = real(*args, **kwargs)
        calls.append(1)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(training.F, "cross_entropy", poisoned)
    result = train(TINY, toy, FAST.replace(batch_size=16))
    assert result.status == "failed"
    assert result.error.startswith("training loss became nan at epoch 1, step 3")
    assert result.curve == []


def test_wall_time_limit_fails_the_run(toy):
    result = train(TINY, toy, FAST.replace(max_seconds=1e-4))
    assert result.status == "failed" and "wall-time limit of 0.0001 s" in result.error


def test_an_error_in_the_model_becomes_a_failed_result(toy, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory\nmore detail")

    monkeypatch.setattr(training, "build_model", broken)
    result = train(TINY, toy, FAST)
    assert result.status == "failed"
    assert result.error == "building the model failed: RuntimeError: out of memory"


def test_empty_validation_split_fails_with_a_reason(toy):
    empty = Dataset(
        **{
            **{f: getattr(toy, f) for f in toy.__dataclass_fields__},
            "val_images": toy.val_images[:0],
            "val_labels": toy.val_labels[:0],
        }
    )
    result = train(TINY, empty, FAST)
    assert result.status == "failed" and "validation split is empty" in result.error


def test_on_epoch_true_stops_the_run(toy):
    seen: list[EpochRecord] = []
    result = train(
        TINY,
        toy,
        FAST.replace(epochs=3),
        on_epoch=lambda record: seen.append(record) or record.epoch == 2,
    )
    assert result.status == "stopped" and len(result.curve) == 2 == len(seen)
    assert result.accuracy == seen[-1].val_accuracy


def test_generator_streams_records_and_returns_the_result(toy):
    run = iter_training(TINY, toy, FAST.replace(epochs=2))
    records = [next(run), next(run)]
    with pytest.raises(StopIteration) as finished:
        next(run)
    result = finished.value.value
    assert [r.epoch for r in records] == [1, 2] and result.curve == records
    assert all(r.seconds > 0 and math.isfinite(r.val_loss) for r in records)


def test_trained_model_is_returned_through_the_model_argument(toy):
    model = build_proxy_model(TINY, toy, FAST)
    result = train(TINY, toy, FAST, model=model)
    accuracy, _ = evaluate(model, toy.val_images, toy.val_labels, toy)
    assert accuracy == pytest.approx(result.accuracy)
    # Same seed with or without a caller's model: initialisation has its own stream.
    assert train(TINY, toy, FAST).accuracy == result.accuracy


# ---- nas train ---------------------------------------------------------------------------------


def test_nas_train_writes_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "run"
    arch_file = tmp_path / "tiny.json"
    arch_file.write_text(TINY.to_json())
    outcome = CliRunner().invoke(
        app,
        [
            "train",
            str(arch_file),
            "--epochs",
            "1",
            "--limit-train",
            "300",
            "--batch-size",
            "50",
            "--threads",
            "1",
            "--out",
            str(out),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert {p.name for p in out.iterdir()} == {
        "model.safetensors",
        "arch.json",
        "recipe.json",
        "metrics.json",
    }
    model, metrics = load_checkpoint(out)
    assert metrics["status"] == "ok" and metrics["train_images"] == 300
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["test_images"] == 2000
    assert json.loads((out / "recipe.json").read_text())["epochs"] == 1
    # The same data as the run, so the same normalisation statistics (they come from its split).
    data = load_dataset("fashion-mnist-mini", limit_train=300)
    accuracy, _ = evaluate(model, data.test_images, data.test_labels, data, channels_last=False)
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-6)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "mobilenet_v3_small", "--dataset", "mnist"], "unknown dataset 'mnist'"),
        (
            ["train", "mobilenet_v3_small", "--dataset", "cifar10", "--data-dir", "/nonexistent/x"],
            "does not exist",
        ),
        (
            ["train", "mobilenet_v3_small", "--dataset", "imagefolder", "--data-dir", "{tmp}"],
            "nas: error: ",
        ),
        (["train", "mobilenet_v3_small", "--limit-train", "5"], "nas: error: "),
        (["train", "not_a_net"], "neither a zoo name"),
        (["train", "mobilenet_v3_small", "--epochs", "0"], "--epochs"),
    ],
)
def test_nas_train_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_nas_train_trains_and_tests_at_the_proxy_geometry(tmp_path):
    out = tmp_path / "run"
    arch_file = tmp_path / "tiny.json"
    arch_file.write_text(TINY.to_json())
    args = ["train", str(arch_file), "--epochs", "1", "--limit-train", "200", "--threads", "1"]
    args += ["--proxy-resolution", "16", "--min-final-map", "8", "--out", str(out)]
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    model, metrics = load_checkpoint(out)
    assert metrics["input_shape"] == [1, 16, 16] and metrics["test_images"] > 0
    assert Arch.from_json((out / "arch.json").read_text()).stem.stride == 1
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


def test_train_arch_is_nas_train_as_a_library_function(tmp_path):
    out = tmp_path / "run"
    options = TrainOptions(epochs=1, limit_train=100, batch_size=50, threads=1, out=str(out))
    seen: list[EpochRecord] = []
    outcome = train_arch(TINY.to_string(), options, on_epoch=seen.append)
    assert outcome.ok and [record.epoch for record in seen] == [1]
    assert outcome.plan.recipe.epochs == 1 and outcome.plan.out_dir == out
    _, metrics = load_checkpoint(out)
    assert metrics["test_accuracy"] == outcome.test_accuracy
    assert metrics["test_images"] == outcome.test_count == 2000
    assert metrics["test_interval"] == list(outcome.test_interval)


def test_nas_train_that_fails_to_train_exits_1_in_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", TINY.to_string(), "--epochs", "1", "--limit-train", "100", "--threads", "1"]
    with pytest.raises(SystemExit) as exited:
        main([*args, "--max-seconds", "1e-9", "--out", str(out)])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("nas: training failed: wall-time limit") and err.count("\n") == 1
    assert not (out / "model.safetensors").exists()
