"""Studies shaped like a finished `nas search`, made with Optuna directly (no Ray, no training).

The report, export and dashboard tests read what the driver writes: the same user attributes,
outcomes and states, priced for real (MFLOPs and the armv8 table), with accuracies invented by
a seeded rule that rewards cost, so there is a trade-off to draw.
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState
from safetensors.torch import save

from nas.artifacts import save_trial_weights
from nas.evaluators.flops import estimate_cost
from nas.evaluators.latency import load_table
from nas.evaluators.recipe import Recipe
from nas.evaluators.uncertainty import wilson_interval
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import build_model
from nas.search_spaces.space import load_space
from nas.search_spaces.zoo import ZOO
from nas.storage import artifact_store_for, open_storage

PROXY_INPUT = (1, 28, 28)
PROXY_CLASSES = 10
VAL_COUNT = 1000  # validation images every trained trial is scored on
BUDGET_MFLOPS = 150.0


@dataclass
class MadeStudy:
    url: str
    name: str
    numbers: dict[str, int | list[int]] = field(default_factory=dict)


def make_search_study(
    db: Path, name: str = "demo", weights_for: tuple[str, ...] = (), n_sampled: int = 5
) -> MadeStudy:
    """A pareto-mode study at 150 MFLOPs on armv8 over the tiny space, in SQLite at `db`.

    Trials, in order: mobilenet_v3_small (zoo, trained), mnasnet0_5 (trained, recognised by its
    arch string only), `n_sampled` tiny-space candidates (trained), mobilenet_v2 (over budget),
    one failed, one stopped early, one never priced. `weights_for` names kinds ("sampled",
    "zoo") whose trials get a trained-weights artifact, as a search that keeps weights would.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{db}"
    storage = open_storage(url)  # WAL, as the driver opens it
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=1),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "latency_ms"])
    config = {
        "storage": url,
        "target": "armv8",
        "budget_mflops": BUDGET_MFLOPS,
        "budget_params": None,
        "budget_ms": None,
        "space": "tiny",
        "dataset": "fashion-mnist-mini",
        "input_size": 224,
        "objective": "pareto",
        "sampler": "random",
        "seed": 0,
        "trials": n_sampled + 2,
    }
    study.set_user_attr("config", config)
    study.set_user_attr(
        "dataset",
        {
            "name": "fashion-mnist-mini",
            "input_shape": list(PROXY_INPUT),
            "num_classes": PROXY_CLASSES,
        },
    )
    study.set_user_attr("recipe", Recipe().to_dict())
    table = load_table("armv8")
    rng = random.Random(0)
    store = None
    if weights_for:
        store = artifact_store_for(url)
    made = MadeStudy(url=url, name=name)

    def priced(trial: optuna.Trial, arch: Arch) -> tuple[float, float]:
        cost = estimate_cost(arch)
        ms = table.predict(arch).total_ms
        trial.set_user_attr("arch", arch.to_string())
        trial.set_user_attr("arch_json", arch.to_dict())
        for key, value in {
            "mflops": cost.mflops,
            "params": cost.params,
            "latency_ms": ms,
            "target": "armv8",
            "cost_input": [3, 224, 224],
            "proxy_input": list(PROXY_INPUT),
            "violations": [cost.mflops - BUDGET_MFLOPS, 0.0, 0.0],
        }.items():
            trial.set_user_attr(key, value)
        return cost.mflops, ms

    space = load_space("tiny")

    def trained(kind: str, zoo: str | None = None, tag_zoo: bool = True) -> int:
        trial = study.ask()  # sampled candidates record their choices as Optuna params
        arch = ZOO[zoo]() if zoo else space.sample(trial)
        if zoo and tag_zoo:
            trial.set_user_attr("zoo", zoo)
        mflops, ms = priced(trial, arch)
        accuracy = round(0.62 + 0.05 * math.log(mflops) + rng.uniform(-0.02, 0.02), 4)
        curve = [
            {"epoch": e, "val_accuracy": round(accuracy * e / 3, 4), "seconds": 4.0}
            for e in (1, 2, 3)
        ]
        correct = round(accuracy * VAL_COUNT)
        accuracy = correct / VAL_COUNT
        interval = [round(bound, 6) for bound in wilson_interval(correct, VAL_COUNT)]
        for key, value in {
            "accuracy": accuracy,
            "val_count": VAL_COUNT,
            "val_correct": correct,
            "accuracy_interval": interval,
            "curve": curve,
            "recipe": Recipe().to_dict(),
            "seed": 0,
            "train_seconds": 12.0,
            "images_per_second": 900.0,
            "worker_host": "test-host",
            "outcome": "trained",
        }.items():
            trial.set_user_attr(key, value)
        if store is not None and kind in weights_for:
            model = trained_model(arch, seed=trial.number)
            # As a worker would send them back: the model, its state dict, or safetensors bytes.
            weights = [model, model.state_dict(), save(model.state_dict())][trial.number % 3]
            save_trial_weights(trial, weights, store)
        study.tell(trial, [accuracy, ms])
        return trial.number

    made.numbers["zoo"] = trained("zoo", zoo="mobilenet_v3_small")
    made.numbers["zoo_by_arch"] = trained("zoo", zoo="mnasnet0_5", tag_zoo=False)
    made.numbers["sampled"] = [trained("sampled") for _ in range(n_sampled)]

    trial = study.ask()
    priced(trial, ZOO["mobilenet_v2"]())
    trial.set_user_attr("zoo", "mobilenet_v2")
    trial.set_user_attr("outcome", "infeasible")
    study.tell(trial, state=TrialState.PRUNED)
    made.numbers["infeasible"] = trial.number

    trial = study.ask()
    priced(trial, space.sample(trial))
    trial.set_user_attr("outcome", "failed")
    trial.set_user_attr("error", "RuntimeError: the worker died")
    study.tell(trial, state=TrialState.FAIL)
    made.numbers["failed"] = trial.number

    trial = study.ask()
    priced(trial, space.sample(trial))
    trial.set_user_attr("outcome", "stopped_early")
    trial.set_user_attr("accuracy", 0.5)
    study.tell(trial, state=TrialState.PRUNED)
    made.numbers["stopped"] = trial.number

    trial = study.ask()
    study.tell(trial, state=TrialState.FAIL)
    made.numbers["unpriced"] = trial.number
    storage.engine.dispose()
    return made


def trained_model(arch: Arch, seed: int) -> torch.nn.Module:
    """A proxy-shaped model whose weights and batch-norm statistics differ from a fresh one."""
    torch.manual_seed(seed)
    model = build_model(arch, PROXY_INPUT, PROXY_CLASSES)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_mean"):
                tensor.normal_(0, 0.1)
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            elif tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor) * 0.05)
    return model
