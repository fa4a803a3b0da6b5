"""Where confirm seeds go, replayed on studies whose every front member and baseline was confirmed.

`nas search --confirm-where uncertain` (the default) trains confirm seeds only for the front
members and baselines within the noise of a neighbour (`nas.confirm_choice`); ``all`` trains
them for every one. A study confirmed with ``all`` holds the answer to what ``uncertain`` would
have done: this script replays the rounds of ``uncertain`` on it, revealing to each round only
the confirm runs of the members chosen so far, and compares what the user is told at the end
with what ``all`` told them: the front on seed means, each member's verdict against the next
cheaper one, and each baseline's verdict against the best searched candidate at no more
latency. It also measures the ratio behind `nas.confirm_choice.SAMPLING_FACTOR`: the spread of
repeated trainings of one network against the validation split's sampling noise.

    python benchmarks/confirm_choice.py            # prints, and writes its BENCHMARKS.md section
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

from nas.confirm import MAX_ROUNDS  # noqa: E402
from nas.confirm_choice import place_rows, run_noise  # noqa: E402
from nas.front import TrainedRow, compare_rows, mark_ties, pareto_front  # noqa: E402
from nas.study import companion  # noqa: E402
from nas.trials import Outcome, TrialAttrs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STUDIES = (
    ("benchmarks/results/end_to_end/study.db", "e2e-mobile-armv8-150mflops-cifar10"),
    ("benchmarks/results/end_to_end/study.db", "e2e-mobile-armv8-150mflops-cifar10-asha"),
)
RESULTS = ROOT / "benchmarks" / "results" / "confirm_choice.json"


def replay(study: optuna.Study) -> dict[str, Any]:
    """What ``uncertain`` would have trained and told, against what ``all`` did."""
    trials = [
        trial
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if TrialAttrs.of(trial).outcome is Outcome.TRAINED
    ]
    confirm = companion(study)
    assert confirm is not None, f"{study.study_name} has no confirm study"
    confirms = [
        trial
        for trial in confirm.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if TrialAttrs.of(trial).accuracy is not None
    ]
    by_member: dict[int, list[FrozenTrial]] = {}
    for trial in confirms:
        by_member.setdefault(TrialAttrs.of(trial).confirms, []).append(trial)

    def rows(revealed: set[int]) -> list[TrainedRow]:
        return [
            TrainedRow.of(
                trial,
                [TrialAttrs.of(run).accuracy for run in by_member.get(trial.number, [])]
                if trial.number in revealed
                else None,
            )
            for trial in trials
        ]

    revealed: set[int] = set()
    rounds = []
    for _ in range(MAX_ROUNDS):
        shown = rows(revealed)
        seen = [run for number in revealed for run in by_member.get(number, [])]
        noise = run_noise(shown, study.get_trials(deepcopy=False), seen)
        placement = place_rows(shown, noise)
        new = set(placement.uncertain) - revealed
        if not new:
            break
        rounds.append({"noise": noise, "confirmed": sorted(new)})
        revealed |= new
    everything = set(by_member)
    chosen, full = told(rows(revealed)), told(rows(everything))
    return {
        "study": study.study_name,
        "runs_all": sum(len(by_member[n]) for n in everything),
        "runs_uncertain": sum(len(by_member[n]) for n in revealed),
        "members_all": len(everything),
        "members_uncertain": len(revealed),
        "rounds": rounds,
        "told_uncertain": chosen,
        "told_all": full,
        "same": chosen == full,
        "spread": spread(rows(everything)),
    }


def told(rows: Sequence[TrainedRow]) -> dict[str, Any]:
    """What the output says: the front with each member's verdict, and each baseline's."""
    front = mark_ties(pareto_front(rows))
    searched = pareto_front(row for row in rows if not row.baseline)
    baselines = {}
    for baseline in (row for row in rows if row.baseline):
        rivals = [row for row in searched if row.latency_ms <= baseline.latency_ms]
        if not rivals:
            baselines[baseline.baseline] = None
            continue
        best = max(rivals, key=lambda row: row.front_accuracy)
        comparison = compare_rows(best, baseline)
        ahead = best.front_accuracy > baseline.front_accuracy
        verdict = "tie"
        if comparison is not None and comparison.distinguishable:
            verdict = "searched better" if ahead else "baseline better"
        baselines[baseline.baseline] = {"best": best.number, "verdict": verdict}
    return {
        "front": [[row.number, row.vs_cheaper] for row in front],
        "baselines": baselines,
    }


def spread(rows: Sequence[TrainedRow]) -> dict[str, float]:
    """Pooled standard deviation of repeated trainings, and the mean sampling noise of one."""
    repeated = [row for row in rows if len(row.seed_accuracies or ()) > 1]
    squares = sum(float(np.var(row.seed_accuracies, ddof=1)) * (row.seeds - 1) for row in repeated)
    pooled = math.sqrt(squares / sum(row.seeds - 1 for row in repeated))
    sampling = float(
        np.mean([math.sqrt(row.accuracy * (1 - row.accuracy) / row.val_count) for row in repeated])
    )
    return {"pooled_seed_std": pooled, "sampling_std": sampling, "ratio": pooled / sampling}


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "Each study below was confirmed with `--confirm-where all` (every front member and "
        "baseline trained with more seeds). The replay gives each round of `uncertain` only "
        "the confirm runs of the members it chose so far, then compares what the output says "
        "at the end: the front on seed means with each member's verdict against the next "
        "cheaper one, and each baseline's verdict against the best searched candidate at no "
        "more latency.",
        "",
        "| study | members confirmed (uncertain / all) | confirm runs | rounds | run noise used "
        "| same front and verdicts | seed spread / sampling noise |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        noise = ", ".join(f"{r['noise']:.4f}" for r in result["rounds"]) or "none"
        spread_ = result["spread"]
        lines.append(
            f"| {result['study']} | {result['members_uncertain']} / {result['members_all']} "
            f"| {result['runs_uncertain']} / {result['runs_all']} | {len(result['rounds'])} "
            f"| {noise} | {'yes' if result['same'] else 'no'} "
            f"| {spread_['pooled_seed_std']:.4f} / {spread_['sampling_std']:.4f} "
            f"= {spread_['ratio']:.2f} |"
        )
    for result in results:
        if not result["same"]:
            lines += [
                "",
                f"{result['study']}: uncertain told {json.dumps(result['told_uncertain'])}; "
                f"all told {json.dumps(result['told_all'])}",
            ]
    lines += [
        "",
        "Run noise used: the surrogate's noise term where fewer than three networks had been "
        "trained twice, else their pooled spread, each floored at `SAMPLING_FACTOR` (2) times "
        "the validation split's sampling noise; the last column is what that factor rests on, "
        "and it was read off these same studies, so the replay is not an independent test of "
        "it. Two studies of one benchmark are little evidence: the replay says the rule lost "
        "no verdict there, not that it never will. Raw: benchmarks/results/confirm_choice.json.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", default="confirm-choice", help="'' to print only")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for path, name in STUDIES:
            copy = Path(scratch) / Path(path).name  # the committed file is never opened to write
            if not copy.exists():
                shutil.copyfile(ROOT / path, copy)
            study = optuna.load_study(study_name=name, storage=f"sqlite:///{copy}")
            results.append(replay(study))
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    text = report(results)
    print(text)
    if args.section:
        write_section(args.section, "Where confirm seeds go", text, ("optuna", "scikit-learn"))


if __name__ == "__main__":
    main()
