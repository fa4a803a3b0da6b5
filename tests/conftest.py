"""Shared pytest fixtures."""

from __future__ import annotations

import os
import time

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
    """One local Ray with two CPUs for the module; the driver joins it instead of starting one.

    A start that misses Ray's deadline on a busy machine is tried again after a pause, as the
    driver's own start is (`nas.ray_cluster.start_local_ray`), rather than failing the module.
    """
    import ray

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
    yield
    ray.shutdown()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests for pytest-xdist's ``--dist loadgroup`` (pyproject.toml).

    A module's tests share module-scoped fixtures (a local Ray, trained models), which every
    process that ran one of them would build again, so a module is one group. Every test that
    uses the PostgreSQL server is in one group, whatever its module: the outage tests stop and
    restart that server, which would fail a PostgreSQL test running beside them.
    """
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
