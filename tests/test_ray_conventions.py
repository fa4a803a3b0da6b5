"""Which Ray the driver joins, how fast a bad address fails, and trials no node can run.

The decisions are tested on `ray.nodes()`-shaped data; each user-facing case also runs once
through the CLI on real Ray: a private one (this machine has no GPU), an address nothing
answers on, and a `ray start` head named by RAY_ADDRESS, as `ray job submit` and KubeRay name
theirs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from nas import ray_cluster
from nas.cli import main
from nas.errors import InputError
from nas.ray_cluster import check_reachable, check_trial_resources, fits, resolve_address

TWO_CPUS = [{"CPU": 2.0, "memory": 1e9}]
SEARCH = ["search", "--space", "tiny", "--budget-mflops", "60", "--no-warm-start"]


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# ---- the decisions, on ray.nodes()-shaped data ----------------------------------------------


def test_a_fraction_of_a_gpu_fits_a_node_with_one() -> None:
    assert fits({"CPU": 4, "GPU": 1}, 1, 0.25)
    assert fits({"CPU": 4, "GPU": 1}, 4, 1)
    assert not fits({"CPU": 4}, 1, 0.25)
    assert not fits({"CPU": 2, "GPU": 8}, 64, 0)


def test_a_trial_must_fit_one_node_not_the_sum_of_them(monkeypatch) -> None:
    monkeypatch.delenv(ray_cluster.NODE_WAIT_ENV, raising=False)
    nodes = [{"CPU": 8.0}, {"CPU": 2.0, "GPU": 1.0}, {"CPU": 2.0, "GPU": 1.0}]
    check_trial_resources(2, 1, can_grow=False, nodes=nodes)  # fits the GPU nodes
    with pytest.raises(InputError) as error:
        check_trial_resources(4, 1, can_grow=False, nodes=nodes)
    message = one_line(error)
    assert "--cpus-per-trial 4 --gpus-per-trial 1" in message
    assert "the largest node of the Ray cluster has 2 CPUs and 1 GPUs" in message


@pytest.mark.parametrize(
    ("cpus", "gpus", "largest"), [(1, 1.0, "2 CPUs and 0 GPUs"), (64, 0.0, "2 CPUs and 0 GPUs")]
)
def test_a_private_ray_that_cannot_run_a_trial_fails_at_once(cpus, gpus, largest) -> None:
    with pytest.raises(InputError) as error:
        check_trial_resources(cpus, gpus, can_grow=False, nodes=TWO_CPUS)
    message = one_line(error)
    assert f"--cpus-per-trial {cpus} --gpus-per-trial {gpus:g}" in message
    assert largest in message and "gains no nodes" in message


def test_a_joined_cluster_fails_at_once_unless_it_can_grow(monkeypatch) -> None:
    monkeypatch.delenv(ray_cluster.NODE_WAIT_ENV, raising=False)
    with pytest.raises(InputError, match=ray_cluster.NODE_WAIT_ENV):
        check_trial_resources(64, 0, can_grow=True, nodes=TWO_CPUS, node_types=[])
    with pytest.raises(InputError, match="none of the autoscaler's node types"):
        check_trial_resources(64, 0, can_grow=True, nodes=TWO_CPUS, node_types=[{"CPU": 32}])


def test_an_autoscaler_that_can_launch_a_node_is_waited_for(monkeypatch) -> None:
    monkeypatch.delenv(ray_cluster.NODE_WAIT_ENV, raising=False)
    waits: list[float] = []
    found = [True]

    def wait_for_node(cpus, gpus, wait_s, say) -> bool:
        waits.append(wait_s)
        return found[0]

    monkeypatch.setattr(ray_cluster, "wait_for_node", wait_for_node)
    said: list[str] = []
    gpu_type = [{"CPU": 8, "GPU": 1}]
    check_trial_resources(1, 1, can_grow=True, say=said.append, nodes=TWO_CPUS, node_types=gpu_type)
    assert waits == [ray_cluster.AUTOSCALER_WAIT_S]
    assert "waiting up to 900 s for the autoscaler to launch one" in said[0]

    found[0] = False
    with pytest.raises(InputError) as error:
        check_trial_resources(
            1, 1, can_grow=True, say=said.append, nodes=TWO_CPUS, node_types=gpu_type
        )
    assert "joined within 900 s" in one_line(error)

    monkeypatch.setenv(ray_cluster.NODE_WAIT_ENV, "30")  # the user's word wins, either way
    with pytest.raises(InputError, match="within 30 s"):
        check_trial_resources(64, 0, can_grow=True, say=said.append, nodes=TWO_CPUS, node_types=[])
    monkeypatch.setenv(ray_cluster.NODE_WAIT_ENV, "soon")
    with pytest.raises(InputError, match="not a number of seconds"):
        check_trial_resources(64, 0, can_grow=True, nodes=TWO_CPUS, node_types=[])


def test_more_than_one_gpu_must_be_whole() -> None:
    with pytest.raises(InputError, match="whole number"):
        check_trial_resources(1, 1.5, can_grow=False, nodes=[{"CPU": 4, "GPU": 2}])


def test_the_flag_then_ray_address_then_a_private_ray(monkeypatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert resolve_address("10.0.0.9:6379") == ("10.0.0.9:6379", "--ray-address")
    assert resolve_address(None) == ("10.0.0.5:6379", "RAY_ADDRESS")
    assert resolve_address("local") == (None, "private")
    monkeypatch.setenv("RAY_ADDRESS", "local")
    assert resolve_address(None) == (None, "private")
    monkeypatch.delenv("RAY_ADDRESS")
    assert resolve_address(None) == (None, "private")


def test_addresses_that_cannot_be_a_cluster_are_one_line() -> None:
    with pytest.raises(InputError, match="ray job submit --address http://h:8265"):
        check_reachable("http://h:8265", "RAY_ADDRESS")
    with pytest.raises(InputError, match="not HOST:PORT"):
        check_reachable("10.0.0.5", "--ray-address")


def test_a_port_that_answers_but_is_not_ray_fails_within_the_handshake(monkeypatch) -> None:
    monkeypatch.setattr(ray_cluster, "HANDSHAKE_S", 2.0)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(InputError) as error:
            check_reachable(f"127.0.0.1:{port}", "--ray-address")
        assert time.monotonic() - started < 10
    assert "no Ray GCS did within 2 s" in one_line(error)


# ---- through the CLI, on real Ray -------------------------------------------------------------


def study_names(db: Path) -> list[str]:
    if not db.exists():
        return []
    return optuna.study.get_all_study_names(storage=f"sqlite:///{db}")


def _never_started() -> None:
    """A private Ray's node is known before it starts: a request it cannot run starts nothing."""
    raise AssertionError("a private Ray was started for a trial it can never run")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (
            ["--gpus-per-trial", "1"],
            "--cpus-per-trial 1 --gpus-per-trial 1: the largest node of the private Ray on this machine has 2",
        ),
        (
            ["--cpus-per-trial", "64"],
            "--cpus-per-trial 64 --gpus-per-trial 0: the largest node of the private Ray on this machine",
        ),
    ],
)
def test_a_trial_this_machine_cannot_run_is_exit_2_before_the_study(
    flags, says, tmp_path: Path, capsys, monkeypatch
) -> None:
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray_cluster, "start_local_ray", _never_started)
    assert not ray.is_initialized()
    db = tmp_path / "nas.db"
    with pytest.raises(SystemExit) as exited:
        main([*SEARCH, *flags, "--storage", f"sqlite:///{db}"])
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert err.count("\n") == 1 and err.startswith("nas: error: ") and says in err, err
    assert study_names(db) == [] and not ray.is_initialized()


@pytest.mark.slow
def test_an_address_nothing_answers_on_is_exit_2_at_once(tmp_path: Path, capsys) -> None:
    db = tmp_path / "nas.db"
    started = time.monotonic()
    with pytest.raises(SystemExit) as exited:
        main([*SEARCH, "--ray-address", "127.0.0.1:1", "--storage", f"sqlite:///{db}"])
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1, err
    assert "cannot join the Ray cluster at 127.0.0.1:1 (from --ray-address)" in err
    assert took < ray_cluster.PROBE_S + ray_cluster.HANDSHAKE_S, took
    assert study_names(db) == []  # so the corrected command needs no --resume


@pytest.mark.slow
def test_ray_address_names_the_cluster_to_join(tmp_path: Path) -> None:
    """A `ray start` head with one CPU, named by RAY_ADDRESS only: the search joins it."""
    from test_cluster import Cluster, isolated_env

    cluster = Cluster(isolated_env())
    try:
        cluster.start_node(head=True, cpus=1, resources={})
        env = {**cluster.env_for("driver"), "RAY_ADDRESS": cluster.address}
        env.pop(ray_cluster.NODE_WAIT_ENV, None)
        db = tmp_path / "nas.db"
        base = [sys.executable, "-m", "nas.cli", *SEARCH, "--storage", f"sqlite:///{db}"]
        base += ["--limit-train", "200", "--epochs", "1", "--batch-size", "64"]

        # One CPU: a trial asking for two fails at once, or after the wait it was told to allow.
        too_big = run(base + ["--cpus-per-trial", "2"], env)
        assert too_big.returncode == 2, too_big.stderr
        where = f"the cluster at {cluster.address} (from RAY_ADDRESS)"
        assert (
            f"the largest node of {where} has 1 CPUs and 0 GPUs"
            in (too_big.stderr.splitlines()[-1])
        ), too_big.stderr
        waited = run(base + ["--cpus-per-trial", "2"], {**env, ray_cluster.NODE_WAIT_ENV: "3"})
        assert waited.returncode == 2, waited.stderr
        assert "waiting up to 3 s for one to join" in waited.stderr
        assert "joined within 3 s" in waited.stderr.splitlines()[-1]
        assert study_names(db) == []

        once = ["--trials", "1", "--workers", "1", "--confirm-seeds", "0", "--out", str(tmp_path)]
        searched = run(base + once, env)
        assert searched.returncode == 0, searched.stderr[-3000:]
        said = " ".join(searched.stderr.split())  # the console wraps long lines
        assert f"Ray: joined {where}: 1 node, 1 CPUs, 0 GPUs" in said, said
        assert "private Ray" not in said
        trials = optuna.load_study(study_name=study_names(db)[0], storage=f"sqlite:///{db}")
        assert len(trials.get_trials()) >= 1
    finally:
        cluster.stop()


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        start_new_session=True,
        cwd=os.getcwd(),
    )


@pytest.mark.slow
def test_finalize_checks_its_trial_resources_the_same_way(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """`nas finalize --gpus-per-trial 1` here: one line, exit 2, before any final run."""
    import ray

    from nas import finalize as finalize_module

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray_cluster, "start_local_ray", _never_started)
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    optuna.create_study(study_name="searched", storage=storage, directions=["maximize"] * 2)
    # What is picked does not matter: the request is refused before anything trains.
    monkeypatch.setattr(finalize_module, "prepare", lambda study, options: object())
    with pytest.raises(SystemExit) as exited:
        main(["finalize", "--storage", storage, "--gpus-per-trial", "1"])
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2, err
    assert err.splitlines()[-1].startswith("nas: error: no Ray node can run a trial with")
    assert "--gpus-per-trial 1: the largest node of the private Ray" in err
    assert study_names(tmp_path / "nas.db") == ["searched"] and not ray.is_initialized()
