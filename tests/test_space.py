"""Search spaces: YAML validation, size, extremes, conditional sampling with Optuna."""

from __future__ import annotations

import copy
from pathlib import Path

import optuna
import pytest
import yaml

from nas.errors import InputError
from nas.evaluators.flops import estimate_cost
from nas.search_spaces.space import builtin_spaces, load_space, space_from_dict

MOBILE_YAML = yaml.safe_load(Path(builtin_spaces()["mobile"]).read_text())


def edited(change) -> dict:
    data = copy.deepcopy(MOBILE_YAML)
    change(data)
    return data


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["stages"][2].update(width=[32, "wide"]), r"stages\[2\]\.width\[1\]"),
        (lambda d: d["stages"][1].update(kernel=[3, 9]), r"stages\[1\]\.kernel\[1\]"),
        (lambda d: d["stages"][1].update(depth=[3, 1]), r"stages\[1\]\.depth"),
        (lambda d: d["stages"][1].pop("stride"), r"stages\[1\] lacks field 'stride'"),
        (
            lambda d: d["stages"][1].update(colour="red"),
            r"stages\[1\] has unknown field\(s\) colour",
        ),
        (lambda d: d["block_choices"].update(act=["relu", "gelu"]), r"stages\[1\]\.act\[1\]"),
        (lambda d: d["stages"][3].update(groups=[1, 16]), r"stages\[3\]\.groups.*option 16"),
        (lambda d: d["stem"].update(stride=3), r"stem is invalid: stem stride must be 1 or 2"),
        (lambda d: d.update(stages=[]), r"stages must be a non-empty list"),
        (lambda d: d["head"].update(width=3), r"head has unknown field"),
    ],
)
def test_yaml_errors_name_the_field(change, message: str) -> None:
    with pytest.raises(InputError, match=message):
        space_from_dict(edited(change), source="bad.yaml")


def test_invalid_yaml_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("stages: [\n")
    with pytest.raises(InputError, match="invalid YAML"):
        load_space(path)
    with pytest.raises(InputError, match="unknown search space"):
        load_space(tmp_path / "missing.yaml")


def test_custom_space_from_file_round_trips(tmp_path: Path) -> None:
    space = load_space("tiny")
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(space.to_dict()))
    assert load_space(path) == space


def test_size_counts_every_architecture() -> None:
    tiny = load_space("tiny")
    per_block = 2**5
    expected = 1
    for widths in (2, 1, 2, 1):
        expected *= widths * (per_block + per_block**2)
    assert tiny.size() == expected


def test_default_space_spans_the_150_mflop_budget() -> None:
    space = load_space("mobile")
    assert 30 <= estimate_cost(space.cheapest()).mflops <= 60
    assert 450 <= estimate_cost(space.dearest()).mflops <= 700


def test_optuna_sampling_is_conditional_on_depth() -> None:
    space = load_space("tiny")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen_depths = set()
    for _ in range(30):
        trial = study.ask()
        arch = space.sample(trial)
        for s, blocks in enumerate(arch.stages):
            seen_depths.add(len(blocks))
            assert trial.params[f"s{s}.depth"] == len(blocks)
            assert f"s{s}.b{len(blocks)}.kernel" not in trial.params
            assert f"s{s}.b{len(blocks) - 1}.kernel" in trial.params
        assert "s1.width" not in trial.params  # a single option is never suggested
        study.tell(trial, 0.0)
    assert seen_depths == {1, 2}


def test_zoo_network_outside_the_space_has_no_params() -> None:
    from nas.search_spaces.zoo import ZOO

    assert load_space("mobile").params_of(ZOO["mobilenet_v2"]()) is None


def test_a_stage_of_candidate_blocks() -> None:
    """FBNet's and NAS-Bench-Macro's layer-wise choice: each block takes one of a list of
    candidates, of any kinds, written without the stride and width the stage sets."""
    space = load_space("nasbench-macro")
    assert space.stages[0].choices.templates == ("skip", "mb_e3_k3_re", "mb_e6_k5_re")
    assert space.size() == 3**8
    assert space_from_dict(space.to_dict()) == space
    assert len(space.signatures((3, 32, 32), 10)) == 19  # identities are no operators
    stage = {"depth": 2, "width": 64, "stride": 2}
    base = {"name": "ops", "stem": {"channels": 32}, "head": {"conv_channels": 0}}
    canonical = space_from_dict({**base, "stages": [{**stage, "ops": ["mb_k3_re_e3", "skip"]}]})
    assert canonical.stages[0].choices.templates == ("mb_e3_k3_re", "skip")
    for ops, message in (
        (["mb_e3_k3_s2_re"], r"stages\[0\]\.ops\[0\] is not a block without stride and width"),
        (["sk"], r"stages\[0\]\.ops\[0\] is not a block .*block prefix"),
        (["mb_e3_k3_re", "mb_k3_e3_re"], r"stages\[0\]\.ops lists a block twice"),
        (["mb_e3_k3_g64_re"], r"stages\[0\]\.ops is invalid: .* not divisible by groups=64"),
    ):
        with pytest.raises(InputError, match=message):
            space_from_dict({**base, "stages": [{**stage, "ops": ops}]})
