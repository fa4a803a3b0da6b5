"""Storage against real databases: SQLite files in tmp_path and the PostgreSQL test server."""

from __future__ import annotations

import multiprocessing
import pickle
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from nas.errors import InputError
from nas.storage import (
    DEFAULT_STORAGE_URL,
    artifact_store_for,
    download,
    list_studies,
    load_study,
    mask_password,
    normalize_storage_url,
    open_storage,
    sqlite_path,
    upload,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sqlite_url(tmp_path: Path, name: str = "nas.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def _study_name() -> str:
    return f"test-storage-{uuid.uuid4().hex[:12]}"


def _pragma(storage: optuna.storages.RDBStorage, name: str) -> object:
    with storage.engine.connect() as connection:
        return connection.exec_driver_sql(f"PRAGMA {name}").scalar()


# --- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (DEFAULT_STORAGE_URL, "sqlite:///nas.db"),
        ("sqlite:////abs/dir/nas.db", "sqlite:////abs/dir/nas.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("runs/nas.db", "sqlite:///runs/nas.db"),
        ("/abs/dir/nas.db", "sqlite:////abs/dir/nas.db"),
        ("postgresql://u:pw@db.example:5433/nas", "postgresql+psycopg://u:pw@db.example:5433/nas"),
        ("postgres://u:pw@db.example/nas", "postgresql+psycopg://u:pw@db.example/nas"),
        ("postgresql+psycopg://u@db.example/nas", "postgresql+psycopg://u@db.example/nas"),
        ("postgresql://u:p%40ss@h/nas", "postgresql+psycopg://u:p%40ss@h/nas"),
    ],
)
def test_normalize_storage_url(url: str, expected: str) -> None:
    assert normalize_storage_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "nas",
        "sqlite:/nas.db",
        "sqlite://",
        "sqlite://nas.db",
        "mysql://u:secret@h/nas",
        "postgresql+psycopg2://u:secret@h/nas",
        "postgresql+asyncpg://u:secret@h/nas",
        "postgresql://u:secret@h:port/nas",
        "postgresql://u:sec@ret@h/nas",
        "http://u:secret@h/nas",
    ],
)
def test_malformed_or_unsupported_url_is_input_error(url: str) -> None:
    with pytest.raises(InputError) as info:
        normalize_storage_url(url)
    message = str(info.value)
    assert "secret" not in message and "ret@" not in message
    assert "\n" not in message
    assert "postgresql+psycopg://" in message or "percent-encode" in message  # how to fix it


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://u:secret@h:5432/nas", "postgresql+psycopg://u:***@h:5432/nas"),
        ("postgresql://u:s%40cret@h/nas", "postgresql://u:***@h/nas"),
        ("postgresql://u@h/nas?password=secret", "postgresql://u@h/nas?password=***"),
        ("postgresql://u:secret@h:port/nas", "postgresql://u:***@h:port/nas"),
        ("postgresql://u:sec@ret@h/nas", "postgresql://u:***@h/nas"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite:////tmp/nas.db", "sqlite:////tmp/nas.db"),
        ("postgresql://u@h/nas", "postgresql://u@h/nas"),
    ],
)
def test_mask_password(url: str, expected: str) -> None:
    assert mask_password(url) == expected


def test_sqlite_path() -> None:
    assert sqlite_path("sqlite:////abs/nas.db") == Path("/abs/nas.db")
    assert sqlite_path("runs/nas.db") == Path("runs/nas.db")
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql://u@h/nas") is None


# --- SQLite ----------------------------------------------------------------------------------


def test_sqlite_wal_busy_timeout_and_parent_dirs(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path / "runs" / "deep", "nas.db")
    storage = open_storage(url, timeout_s=7.5)
    try:
        assert (tmp_path / "runs" / "deep" / "nas.db").is_file()
        assert _pragma(storage, "journal_mode") == "wal"
        assert _pragma(storage, "busy_timeout") == 7500
        copy = pickle.loads(pickle.dumps(storage))  # how Optuna ships storages to processes
        assert _pragma(copy, "busy_timeout") == 7500
        copy.engine.dispose()
    finally:
        storage.engine.dispose()


def test_sqlite_study_round_trip(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path)
    storage = open_storage(url)
    study = optuna.create_study(
        study_name="rt", storage=storage, directions=["maximize", "minimize"]
    )
    study.set_user_attr("target", "armv8")
    for accuracy, latency in [(0.5, 12.0), (0.7, 20.0)]:
        trial = study.ask()
        trial.suggest_int("depth", 1, 4)
        trial.set_user_attr("arch", f"mb_e6_k5_s2_c{int(latency)}")
        study.tell(trial, [accuracy, latency])
    storage.engine.dispose()

    reopened = open_storage(url)
    try:
        [info] = list_studies(reopened)
        assert (info.name, info.n_trials, info.directions) == ("rt", 2, ("maximize", "minimize"))
        assert info.user_attrs == {"target": "armv8"}
        trials = load_study(reopened, "rt").trials
        assert [t.values for t in trials] == [[0.5, 12.0], [0.7, 20.0]]
        assert trials[1].user_attrs["arch"] == "mb_e6_k5_s2_c20"
        assert all(t.state == TrialState.COMPLETE for t in trials)
    finally:
        reopened.engine.dispose()


def _write_trials(url: str, study_name: str, n_trials: int, start: Any) -> None:
    storage = open_storage(url, timeout_s=20)
    study = optuna.load_study(study_name=study_name, storage=storage)
    start.wait(timeout=30)  # both writers begin together, after their slow imports
    for i in range(n_trials):
        trial = study.ask()
        trial.set_user_attr("i", i)
        study.tell(trial, trial.suggest_float("x", 0.0, 1.0))


def test_two_processes_write_one_sqlite_file(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path)
    storage = open_storage(url)
    optuna.create_study(study_name="shared", storage=storage)
    storage.engine.dispose()  # no SQLite connection may cross a fork
    # fork skips re-importing optuna in each child, which dominates this test under spawn.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    start = context.Event()
    workers = [
        context.Process(target=_write_trials, args=(url, "shared", 25, start)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=60)
    try:
        assert [worker.exitcode for worker in workers] == [0, 0]  # no "database is locked"
        trials = optuna.load_study(study_name="shared", storage=storage).trials
        assert len(trials) == 50
        assert {t.state for t in trials} == {TrialState.COMPLETE}
        assert sorted(t.number for t in trials) == list(range(50))
        assert sorted(t.user_attrs["i"] for t in trials) == sorted(list(range(25)) * 2)
    finally:
        storage.engine.dispose()


def test_unwritable_sqlite_location_is_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(InputError, match="cannot open SQLite storage"):
        open_storage(_sqlite_url(blocker, "nas.db"))


def test_missing_study_lists_available_names(tmp_path: Path) -> None:
    storage = open_storage(_sqlite_url(tmp_path))
    try:
        with pytest.raises(InputError, match="no studies yet"):
            load_study(storage, "nope")
        for name in ("alpha", "beta"):
            optuna.create_study(study_name=name, storage=storage)
        with pytest.raises(InputError) as info:
            load_study(storage, "gamma")
        assert "'gamma'" in str(info.value) and "alpha, beta" in str(info.value)
        assert load_study(storage, "beta").study_name == "beta"
    finally:
        storage.engine.dispose()


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def pg_storage(postgres_url: str) -> Iterator[optuna.storages.RDBStorage]:
    storage = open_storage(postgres_url)
    yield storage
    storage.engine.dispose()


def test_postgres_study_round_trip(pg_storage: optuna.storages.RDBStorage) -> None:
    name = _study_name()
    try:
        study = optuna.create_study(study_name=name, storage=pg_storage, direction="maximize")
        study.set_user_attr("budget_mflops", 150)
        trial = study.ask()
        trial.suggest_categorical("act", ["relu", "hswish"])
        trial.set_user_attr("latency_ms", 21.5)
        study.tell(trial, 0.625)

        loaded = load_study(pg_storage, name)
        [frozen] = loaded.trials
        assert frozen.value == 0.625 and frozen.user_attrs == {"latency_ms": 21.5}
        assert frozen.params["act"] in ("relu", "hswish")
        [info] = [s for s in list_studies(pg_storage.url) if s.name == name]
        assert (info.n_trials, info.directions) == (1, ("maximize",))
        assert info.user_attrs == {"budget_mflops": 150}
    finally:
        optuna.delete_study(study_name=name, storage=pg_storage)
    assert name not in [s.name for s in list_studies(pg_storage)]


def test_postgres_pool_is_checked_and_recycled(pg_storage: optuna.storages.RDBStorage) -> None:
    pool = pg_storage.engine.pool
    assert pg_storage.engine.dialect.driver == "psycopg"
    assert pool._pre_ping is True
    assert 0 < pool._recycle <= 3600
    assert pool.size() <= 8
    with pg_storage.engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("select 1")).scalar() == 1


def test_postgres_scheme_is_rewritten_to_psycopg(postgres_url: str) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    storage = open_storage(plain)
    try:
        assert storage.url.startswith("postgresql+psycopg://")
    finally:
        storage.engine.dispose()


def test_unreachable_postgres_fails_fast_without_leaking_password() -> None:
    url = "postgresql+psycopg://user:secret@127.0.0.1:1/db"
    start = time.monotonic()
    with pytest.raises(InputError) as info:
        open_storage(url, timeout_s=2)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "secret" not in message and "user:***@127.0.0.1:1/db" in message
    assert "\n" not in message and "127.0.0.1:1" in message
    cause: BaseException | None = info.value
    while cause is not None:  # nothing in the chain a traceback would print
        assert "secret" not in str(cause) and "secret" not in repr(cause)
        cause = cause.__cause__


def test_missing_postgres_database_is_input_error(postgres_url: str) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/nas_no_such_database"
    with pytest.raises(InputError, match='"nas_no_such_database" does not exist.*createdb'):
        open_storage(url)


# --- Artifacts -------------------------------------------------------------------------------


def test_artifact_round_trip_next_to_sqlite(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path / "run")
    storage = open_storage(url)
    store = artifact_store_for(url)
    assert (tmp_path / "run" / "artifacts").is_dir()

    study = optuna.create_study(storage=storage)
    trial = study.ask()
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x08\x07onnx-bytes\x00\xff")
    trial_artifact = upload(trial, store, model)
    frozen_artifact = upload(study.trials[0], store, model, storage=storage)
    study.tell(trial, 1.0)
    study_artifact = upload(study, store, model)
    # Optuna attaches artifacts to running trials only; a finished one takes none.
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        upload(study.trials[0], store, model, storage=storage)

    for i, artifact_id in enumerate([trial_artifact, frozen_artifact, study_artifact]):
        copy = download(store, artifact_id, tmp_path / "out" / f"{i}.onnx")
        assert copy.read_bytes() == model.read_bytes()
    meta = optuna.artifacts.get_all_artifact_meta(study.trials[0], storage=storage)
    assert {m.artifact_id for m in meta} == {trial_artifact, frozen_artifact}
    assert {m.filename for m in meta} == {"model.onnx"}
    with pytest.raises(InputError, match="already exists"):
        download(store, trial_artifact, tmp_path / "out" / "0.onnx")
    with pytest.raises(InputError, match="no artifact"):
        download(store, "no-such-id", tmp_path / "out" / "x.onnx")
    with pytest.raises(InputError, match="no such file"):
        upload(study, store, tmp_path / "missing.onnx")
    storage.engine.dispose()


def test_artifact_dir_for_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+psycopg://u:secret@db.example/nas"
    monkeypatch.chdir(tmp_path)
    default = artifact_store_for(url)
    assert (tmp_path / "artifacts").is_dir()
    explicit = artifact_store_for(url, base_dir=tmp_path / "shared" / "artifacts")
    assert (tmp_path / "shared" / "artifacts").is_dir()
    assert default._base_path == tmp_path.resolve() / "artifacts"
    assert explicit._base_path == (tmp_path / "shared" / "artifacts").resolve()
