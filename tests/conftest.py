"""Shared pytest fixtures."""

from __future__ import annotations

import os
import sys
import time
from types import ModuleType

import pytest

POSTGRES_URL = os.environ.get(
    "NAS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the test PostgreSQL server; skips locally when it is down, fails under CI."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    try:
        psycopg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname=url.database,
            connect_timeout=3,
        ).close()
    except psycopg.OperationalError as exc:
        reason = str(exc).splitlines()[0]
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is required under CI but unreachable: {reason}")
        pytest.skip(f"PostgreSQL unreachable: {reason}")
    return POSTGRES_URL


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with two CPUs in this test process; the driver joins it instead of starting one.

    One Ray serves every module of a test process that asks for it: started by the first such
    module, it is stopped when a module that never asks for it begins (`_no_ray_from_elsewhere`:
    there a search starts its own private Ray, as it does for a user) and when the process's
    tests end (`_stop_the_shared_ray`). Each start costs seconds that every module would
    otherwise pay again.

    A start that misses Ray's deadline on a busy machine is tried again after a pause, as the
    driver's own start is (`nas.ray_cluster.start_local_ray`), rather than failing the module.
    """
    import ray

    if not ray.is_initialized():
        _start_local_ray(ray)
    yield


def _start_local_ray(ray: ModuleType) -> None:
    for attempt in range(1, 4):
        try:
            ray.init(
                address="local",
                num_cpus=2,
                include_dashboard=False,
                logging_level="ERROR",
                log_to_driver=False,
            )
            break
        except Exception:  # Ray raises a bare Exception when its node starts too slowly
            ray.shutdown()
            if attempt == 3:
                raise
            time.sleep(10 * attempt)


@pytest.fixture(scope="session", autouse=True)
def _stop_the_shared_ray():
    yield
    _stop_ray()


@pytest.fixture(scope="module", autouse=True)
def _no_ray_from_elsewhere(request: pytest.FixtureRequest) -> None:
    """A module none of whose tests asks for `local_ray` starts without one in its process."""
    if request.module.__name__ not in request.config.stash[_RAY_MODULES]:
        _stop_ray()


def _stop_ray() -> None:
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


_RAY_MODULES = pytest.StashKey[set[str]]()
"""Names of the test modules that have a test asking for `local_ray`."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests for pytest-xdist's ``--dist loadgroup`` (pyproject.toml).

    A module's tests share module-scoped fixtures (a local Ray, trained models), which every
    process that ran one of them would build again, so a module is one group. Every test that
    uses the PostgreSQL server is in one group, whatever its module: the outage tests stop and
    restart that server, which would fail a PostgreSQL test running beside them.
    """
    config.stash[_RAY_MODULES] = {
        item.module.__name__
        for item in items
        if isinstance(item, pytest.Function) and "local_ray" in item.fixturenames
    }
    for item in items:
        group = "postgresql" if _uses_postgresql(item) else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))


def _uses_postgresql(item: pytest.Item) -> bool:
    """Whether a test asks for the server: as a fixture argument, or as a `backend` parameter
    whose test looks the fixture up only for that value (`request.getfixturevalue`)."""
    if "postgres_url" in getattr(item, "fixturenames", ()):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("backend") == "postgresql"
