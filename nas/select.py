"""Find what a user asked to report or export: the storage, the study, the trial.

Reading commands must never create anything: pointed at a SQLite file that is not there, Optuna
would silently make an empty database, and the user would be told "no studies" about a typo.
Everything a user can get wrong here is an `InputError` naming what exists instead.
"""

from __future__ import annotations

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from nas.errors import InputError
from nas.front import pareto_rows
from nas.storage import list_studies, load_study, mask_password, open_storage, sqlite_path
from nas.study_attrs import StudyAttrs
from nas.trials import Outcome, TrialAttrs


def open_existing_storage(url: str, outage_window_s: float = 0.0) -> RDBStorage:
    """Open the storage at `url`, refusing a SQLite file that does not exist yet.

    `outage_window_s`: how long calls wait out a lost connection (`open_storage`)."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise InputError(
            f"no study database at {path}: run `nas search` first, or pass "
            f"--storage with the URL the search used"
        )
    return open_storage(url, outage_window_s=outage_window_s)


def pick_study(storage: RDBStorage, name: str | None) -> optuna.Study:
    """The study called `name`, or the storage's only study when no name is given."""
    if name is not None:
        return load_study(storage, name)
    names = [
        info.name
        for info in list_studies(storage)
        if not StudyAttrs.from_dict(info.user_attrs).is_companion
    ]
    where = mask_password(storage.url)
    if not names:
        raise InputError(f"{where} holds no studies yet: run `nas search` first")
    if len(names) > 1:
        shown = ", ".join(names[:20]) + (
            f", ... ({len(names) - 20} more)" if len(names) > 20 else ""
        )
        raise InputError(f"{where} holds {len(names)} studies; pass --study NAME (one of: {shown})")
    return load_study(storage, names[0])


def pick_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """Trial `number`, provided it is a candidate that was trained."""
    trials = study.get_trials(deepcopy=False)
    found = next((trial for trial in trials if trial.number == number), None)
    if found is None:
        span = f"trials 0-{len(trials) - 1}" if trials else "no trials"
        raise InputError(f"study {study.study_name!r} has no trial {number} ({span})")
    check_exportable(found)
    return found


def best_trial(study: optuna.Study, max_ms: float | None = None) -> FrozenTrial:
    """The most accurate trial on the Pareto front, optionally no slower than `max_ms`."""
    rows = pareto_rows(study)
    if not rows:
        raise InputError(f"study {study.study_name!r} has no trained trials yet")
    fitting = [row for row in rows if max_ms is None or row.latency_ms <= max_ms]
    if not fitting:
        fastest = min(rows, key=lambda row: row.latency_ms)
        raise InputError(
            f"no trained trial of {study.study_name!r} runs in {max_ms:g} ms or "
            f"less; the fastest on the front is trial {fastest.number} at "
            f"{fastest.latency_ms:.2f} ms"
        )
    best = max(fitting, key=lambda row: (row.front_accuracy, -row.latency_ms))
    return pick_trial(study, best.number)


def check_exportable(trial: FrozenTrial) -> None:
    """Refuse trials whose model would mean nothing: never priced, over budget, or failed."""
    attrs = TrialAttrs.of(trial)
    if not attrs.arch:
        raise InputError(
            f"trial {trial.number} has no architecture recorded (state "
            f"{trial.state.name}): it was never priced, so there is nothing to "
            f"export"
        )
    if attrs.outcome is None and trial.state == TrialState.COMPLETE:
        return  # written by hand or by an older version: complete is good enough
    if attrs.outcome is None or not attrs.outcome.has_model:
        why = {
            Outcome.INFEASIBLE: "it is over budget and was never trained",
            Outcome.FAILED: f"its training failed ({attrs.error or 'no reason recorded'})",
            Outcome.INTERRUPTED: "its training was interrupted",
        }.get(attrs.outcome, f"it is {trial.state.name.lower()} and was not trained")
        raise InputError(
            f"trial {trial.number} cannot be exported: {why}; pick a trained "
            f"trial (`nas report` lists the front), or pass its arch string to "
            f"`nas arch show` to price it"
        )
