"""The end-to-end benchmark's editions: each names its own study, work copy and snapshot, so that a
new edition never writes over the record of an earlier one, and a resumed edition 2 trains the
proxy its study was started with, whatever the defaults have become since."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest

from nas.config import DEFAULT_SAMPLER
from nas.study_attrs import write_study_attrs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import end_to_end  # noqa: E402


def test_edition_1_keeps_the_study_and_snapshot_of_its_report() -> None:
    args = end_to_end.parse_args(["--edition", "1"])
    assert args.study == end_to_end.STUDY
    assert end_to_end.snapshot_path(args) == end_to_end.RESULTS / "study.db"
    assert end_to_end.section_name(args) == "end-to-end"
    assert (args.top, args.final_epochs, args.final_seeds, args.trials) == (3, 10, 2, 40)
    assert end_to_end.search_settings(args, resume=True) == {
        "sampler": "nsga2",
        "epochs": end_to_end.PROXY_EPOCHS,
        "proxy_resolution": 0,
        "min_final_map": 0,
    }
    asha = end_to_end.parse_args(["--edition", "1", "--scheduler", "asha"])
    assert asha.study == f"{end_to_end.STUDY}-asha" and asha.trials == 80
    assert end_to_end.snapshot_path(asha) == end_to_end.snapshot_path(args)


def test_edition_2_is_the_default_and_lives_beside_edition_1(tmp_path: Path) -> None:
    args = end_to_end.parse_args(["--work-dir", str(tmp_path)])
    old = end_to_end.parse_args(["--edition", "1"])
    assert args.edition == end_to_end.LATEST == 2
    assert args.study != old.study and args.study.startswith(end_to_end.STUDY)
    assert end_to_end.snapshot_path(args) != end_to_end.snapshot_path(old)
    assert end_to_end.command_file(args) != end_to_end.command_file(old)
    assert end_to_end.figure_path(args) != end_to_end.figure_path(old)
    assert end_to_end.section_name(args) != end_to_end.section_name(old)
    assert args.final_seeds >= 3
    assert end_to_end.default_work_dir(2) != end_to_end.default_work_dir(1)
    fresh = end_to_end.search_settings(args, resume=False)
    assert fresh == {
        "sampler": DEFAULT_SAMPLER,
        "epochs": None,
        "proxy_resolution": None,
        "min_final_map": None,
    }


def test_a_resumed_edition_2_trains_what_its_study_recorded(tmp_path: Path) -> None:
    args = end_to_end.parse_args(["--work-dir", str(tmp_path)])
    url = end_to_end.storage_url(end_to_end.work_database(args))
    study = optuna.create_study(study_name=args.study, storage=url)
    recipe = {"epochs": 3, "resolution": 24, "min_final_map": 4}
    write_study_attrs(study, config={"sampler": "nsga2"}, recipe=recipe)
    assert end_to_end.search_settings(args, resume=True) == {
        "sampler": "nsga2",
        "epochs": 3,
        "proxy_resolution": 24,
        "min_final_map": 4,
    }
    config = end_to_end.search_config(args, resume=True)
    assert (config.epochs, config.proxy_resolution, config.min_final_map) == (3, 24, 4)
    assert config.study == args.study and config.trial_timeout_s == end_to_end.TRIAL_TIMEOUT_S


@pytest.mark.parametrize("flag", [["--scheduler", "asha"], ["--compare-schedulers"]])
def test_the_scheduler_arms_belong_to_edition_1(flag: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        end_to_end.parse_args(flag)
    assert exited.value.code == 2
    assert "--edition 1" in capsys.readouterr().err
