"""The docker-compose cluster without Docker: the same topology as processes on this machine.

A Ray head and a second Ray node run as separate `ray start` processes, each with its own
ports, temp dir and resources, the way a head container and a worker container (or two hosts)
do; the study lives in the PostgreSQL server on 127.0.0.1:5432; and `nas search --ray-address`
drives them from a subprocess, as the `search` service does. A first search checks that
candidates really train on the second node; the study is then continued with `--resume`, the
second node is killed while a candidate trains on it, and the search must still finish with
every trial accounted for: the candidates it was training fail, are retried on the head, and
none is lost.

Two facts of Ray shape the setup:

* `ray start --node-ip-address 127.0.0.1` is silently replaced by the machine's outward
  address, so the nodes use 127.0.0.2: still the loopback interface, which keeps all of the
  cluster's traffic on this machine.
* Ray turns token authentication on for a head when ~/.ray/auth_token exists (any earlier
  local `ray.init()` writes one) but never for a process that joins an explicit address, which
  then cannot connect. Every process here gets RAY_AUTH_MODE=token and one fresh token, as
  every container in docker-compose.yml does.

Everything the test starts is stopped by process id, even when an assertion fails: the process
groups of the `ray start` commands and of the drivers, and every process that carries the
test's mark in its environment. `ray stop` is never used, because it would also stop Ray
instances that other tests or the user are running.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from nas.trials import OUTCOME_ATTR
from nas.worker import train_candidate

pytestmark = pytest.mark.slow

NODE_IP = "127.0.0.2"
FIRST, TOTAL = 2, 5
"""Candidates trained with both nodes up, and in all once the study is continued."""
SEARCH_ARGS = [
    "--space",
    "tiny",
    "--budget-mflops",
    "60",
    "--limit-train",
    "400",
    "--epochs",
    "1",
    "--batch-size",
    "64",
    "--no-warm-start",
    "--no-early-stopping",
    "--max-retries",
    "2",
    "--confirm-seeds",
    "0",
]
# How the driver records a candidate lost with its node (the Ray error's class name).
RAY_NODE_LOSS = ("NodeDiedError", "WorkerCrashedError", "ObjectLostError", "OwnerDiedError")
STARTUP_S = 90.0
SEARCH_S = 180.0
MARK_VAR = "NAS_TEST_CLUSTER"

# Run as its own driver: waits until the cluster has `expected` live nodes and prints them.
LIST_NODES = """
import json, sys, time
import ray
address, expected = sys.argv[1], int(sys.argv[2])
ray.init(address=address, logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + float(sys.argv[3])
while True:
    nodes = [n for n in ray.nodes() if n["Alive"]]
    if len(nodes) >= expected or time.monotonic() > deadline:
        break
    time.sleep(0.5)
print(json.dumps([{"id": n["NodeID"], "resources": n["Resources"]} for n in nodes]))
"""


def free_ports(count: int) -> list[int]:
    """Ports no one listens on, on any address (Ray binds most of its servers to all of them).

    All sockets stay open until every port is chosen, so the ports are distinct.
    """
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def marked(mark: str) -> list[int]:
    """Live processes whose environment holds MARK_VAR=`mark`..., read from /proc.

    Every process a node runs inherits the mark given to its `ray start`, including Ray's
    workers, which put themselves in process groups of their own and outlive their raylet for
    a few seconds, and which killing the node's process group therefore misses. (Processes
    that rewrite their title, such as Ray's agents, lose the mark, but they stay in the
    node's process group.)
    """
    needle = f"{MARK_VAR}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # ended while we looked, or not ours to read
        if any(var.startswith(needle) for var in environ.split(b"\0")):
            found.append(int(entry.name))
    return found


def kill(process: subprocess.Popen, mark: str) -> None:
    """SIGKILL a process started with start_new_session: its group, then everything marked.

    SIGKILL, not SIGTERM: it is what a crashed machine looks like to the rest of the cluster,
    and Ray's orderly shutdown takes many seconds on two cores.
    """
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 30
    while pids := marked(mark):
        assert time.monotonic() < deadline, f"processes {pids} survived SIGKILL"
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    process.wait(timeout=30)


@dataclass
class RayNode:
    """One `ray start --block` process and what the test needs to find and stop it."""

    process: subprocess.Popen
    mark: str
    temp_dir: Path
    log: Path
    gcs_port: int | None = None
    node_id: str | None = None

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-15:])


@dataclass
class Cluster:
    """The processes of one test cluster; every one of them carries MARK_VAR=`mark`/..."""

    env: dict[str, str]
    mark: str = field(default_factory=lambda: uuid.uuid4().hex)
    nodes: list[RayNode] = field(default_factory=list)
    drivers: list[subprocess.Popen] = field(default_factory=list)

    def env_for(self, role: str) -> dict[str, str]:
        return {**self.env, MARK_VAR: f"{self.mark}/{role}"}

    @property
    def address(self) -> str:
        return f"{NODE_IP}:{self.nodes[0].gcs_port}"

    def start_node(self, *, head: bool, cpus: int, resources: dict[str, float]) -> RayNode:
        """Start a node on ports of its own; a head waits until its GCS accepts connections."""
        temp_dir = Path(tempfile.mkdtemp(prefix="nas-ray-"))  # short: Ray's socket paths
        ports = free_ports(9 + 24)
        command = [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--block",
            "--node-ip-address",
            NODE_IP,
            "--num-cpus",
            str(cpus),
            "--resources",
            json.dumps(resources),
            "--temp-dir",
            str(temp_dir),
            "--node-manager-port",
            str(ports[0]),
            "--object-manager-port",
            str(ports[1]),
            "--dashboard-agent-listen-port",
            str(ports[2]),
            "--dashboard-agent-grpc-port",
            str(ports[3]),
            "--runtime-env-agent-port",
            str(ports[4]),
            "--metrics-export-port",
            str(ports[5]),
            "--worker-port-list",
            ",".join(map(str, ports[9:])),
            "--disable-usage-stats",
        ]
        if head:
            command += [
                "--head",
                "--port",
                str(ports[6]),
                "--ray-client-server-port",
                str(ports[7]),
                "--include-dashboard",
                "false",
                "--dashboard-port",
                str(ports[8]),
            ]
        else:
            command += ["--address", self.address]
        log = temp_dir / "ray-start.log"
        mark = f"node{len(self.nodes)}"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                env=self.env_for(mark),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        node = RayNode(
            process, f"{self.mark}/{mark}", temp_dir, log, gcs_port=ports[6] if head else None
        )
        self.nodes.append(node)
        if head:
            self._wait_for_port(node)
        return node

    def _wait_for_port(self, node: RayNode) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            assert node.alive(), f"the Ray head exited:\n{node.tail()}"
            try:
                socket.create_connection((NODE_IP, node.gcs_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"the Ray head did not open port {node.gcs_port}:\n{node.tail()}")

    def list_nodes(self, expected: int) -> list[dict]:
        listed = subprocess.run(
            [sys.executable, "-c", LIST_NODES, self.address, str(expected), str(STARTUP_S)],
            check=False,
            env=self.env_for("driver"),
            capture_output=True,
            text=True,
            timeout=STARTUP_S + 60,
        )
        assert listed.returncode == 0, listed.stderr[-3000:]
        return json.loads(listed.stdout.strip().splitlines()[-1])

    def start_driver(self, command: list[str], log: Path) -> subprocess.Popen:
        with log.open("wb") as out:
            driver = subprocess.Popen(
                command,
                env=self.env_for("driver"),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.drivers.append(driver)
        return driver

    def kill_node(self, node: RayNode) -> None:
        kill(node.process, node.mark)

    def stop(self) -> None:
        """Everything this cluster started, drivers first, by process id; then its files."""
        for driver in self.drivers:
            kill(driver, f"{self.mark}/driver")
        for node in reversed(self.nodes):
            kill(node.process, node.mark)
        for pid in marked(self.mark):  # nothing should be left; make sure
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for node in self.nodes:
            shutil.rmtree(node.temp_dir, ignore_errors=True)


def isolated_env() -> dict[str, str]:
    """This environment without RAY_ settings, plus a token of its own, so that no other Ray on
    this machine can interfere with a cluster started in it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(24),
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A head and a second node with 1 CPU each (the second also has a `second` resource).

    One CPU each keeps two cores' worth of training and Ray's own processes from starving
    one another, and still lets the head finish alone what the second node leaves.
    """
    cluster = Cluster(isolated_env())
    try:
        head = cluster.start_node(head=True, cpus=1, resources={})
        second = cluster.start_node(head=False, cpus=1, resources={"second": 1})
        nodes = cluster.list_nodes(expected=2)
        assert len(nodes) == 2, f"the second node did not join:\n{second.tail()}"
        second.node_id = next(n["id"] for n in nodes if "second" in n["resources"])
        head.node_id = next(n["id"] for n in nodes if n["id"] != second.node_id)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def study_name(postgres_url: str) -> Iterator[str]:
    name = f"test-cluster-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        optuna.delete_study(study_name=name, storage=postgres_url)
    except KeyError:
        pass  # the search failed before creating it


def poll_trials(storage: optuna.storages.BaseStorage, name: str) -> list[FrozenTrial]:
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []  # the driver has not created the study yet


def training_on(node: RayNode) -> bool:
    """Whether a candidate is training on `node` now: Ray names a busy worker after its task."""
    title = f"ray::{train_candidate.__name__}".encode()
    for pid in marked(node.mark):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == title:
                return True
        except OSError:
            continue
    return False


# Fixture order matters: the cluster (and the driver it holds) stops before the study goes.
@pytest.mark.timeout(300)
def test_search_on_two_nodes_survives_losing_one(
    postgres_url: str, study_name: str, cluster: Cluster, tmp_path: Path
) -> None:
    head, second = cluster.nodes
    storage = optuna.storages.RDBStorage(postgres_url)

    def start_search(log: Path, *flags: str) -> subprocess.Popen:
        return cluster.start_driver(
            [
                sys.executable,
                "-m",
                "nas.cli",
                "search",
                "--ray-address",
                cluster.address,
                "--storage",
                postgres_url,
                "--study",
                study_name,
                "--out",
                str(tmp_path / "out"),
                *SEARCH_ARGS,
                *flags,
            ],
            log,
        )

    def finish(driver: subprocess.Popen, log: Path, deadline: float) -> list[FrozenTrial]:
        try:
            driver.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"the search did not finish:\n{tail(log)}")
        assert driver.returncode == 0, tail(log)
        return optuna.load_study(study_name=study_name, storage=storage).get_trials()

    # 1. Both nodes train. The driver trains two candidates at once (the cluster's CPUs) and
    # the head has one CPU, so one of the first two goes to the second node, and the search
    # cannot end before it is done.
    log = tmp_path / "search-1.log"
    trials = finish(start_search(log, "--trials", str(FIRST)), log, time.monotonic() + SEARCH_S)
    trained = [t for t in trials if t.user_attrs.get(OUTCOME_ATTR) == "trained"]
    assert len(trained) == FIRST
    assert {t.user_attrs["worker_node"] for t in trained} == {head.node_id, second.node_id}

    # 2. Continue the study to TOTAL candidates and take the second node away, as a crashed
    # machine goes, while a candidate is training on it.
    log = tmp_path / "search-2.log"
    driver = start_search(log, "--trials", str(TOTAL), "--resume")
    deadline = time.monotonic() + SEARCH_S
    while not training_on(second):
        assert driver.poll() is None, f"the search ended before the node was killed:\n{tail(log)}"
        assert time.monotonic() < deadline, f"no candidate started on the second node:\n{tail(log)}"
        time.sleep(0.2)
    cluster.kill_node(second)
    killed_at = time.time()
    trials = finish(driver, log, deadline)
    storage.engine.dispose()
    by_number = {t.number: t for t in trials}
    trained = [t for t in trials if t.user_attrs.get(OUTCOME_ATTR) == "trained"]
    failed = [t for t in trials if t.state == TrialState.FAIL]

    # Nothing lost: exactly --trials candidates trained, nothing left running or queued.
    assert len(trained) == TOTAL
    assert all(t.state == TrialState.COMPLETE for t in trained)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]

    # Once the second node was gone, only the head could train.
    assert {t.user_attrs["worker_node"] for t in trained} == {head.node_id, second.node_id}
    for trial in trained:
        if trial.datetime_start.timestamp() > killed_at:
            assert trial.user_attrs["worker_node"] == head.node_id, trial.number

    # The candidates on the second node failed with Ray's reason and were retried: each failed
    # trial has exactly one retry, with the same architecture, and every chain of retries ends
    # in a trained candidate.
    assert failed, "killing the second node failed no trial"
    for trial in failed:
        assert trial.user_attrs.get(OUTCOME_ATTR) == "failed"
        assert trial.user_attrs.get("error", "").startswith(RAY_NODE_LOSS), trial.user_attrs
        retries = [t for t in trials if t.user_attrs.get("retry_of") == trial.number]
        assert len(retries) == 1, (trial.number, [t.number for t in retries])
        assert retries[0].user_attrs["arch"] == trial.user_attrs["arch"]
        assert retries[0].user_attrs["attempt"] == trial.user_attrs.get("attempt", 1) + 1
        last = retries[0]
        while last.state == TrialState.FAIL:
            last = next(t for t in trials if t.user_attrs.get("retry_of") == last.number)
        assert last.user_attrs.get(OUTCOME_ATTR) == "trained", last.number
    retried = [by_number[t.user_attrs["retry_of"]] for t in trials if "retry_of" in t.user_attrs]
    assert all(t.state == TrialState.FAIL for t in retried)

    # The head and the driver outlived the second node; the second node is gone for good.
    assert head.alive() and not second.alive()


def tail(log: Path, lines: int = 25) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
