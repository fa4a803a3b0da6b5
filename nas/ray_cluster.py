"""Joining Ray the way Ray users expect, and refusing trials that no Ray node can ever run.

Where the driver's Ray comes from, in order:

1. a Ray this process has already joined (a library caller's, a benchmark's, a test's);
2. ``--ray-address`` (``HOST:PORT`` of the head's GCS, ``ray://HOST:PORT`` for Ray Client, or
   ``auto`` for the cluster ``ray start`` left on this machine);
3. the ``RAY_ADDRESS`` environment variable: how ``ray job submit`` hands its entrypoint the
   cluster it runs on, and how KubeRay points the processes in its pods at theirs;
4. otherwise (or given ``local``) a private Ray on this machine, stopped when the command ends.

A named address is probed first (a TCP connect, then a GCS handshake, each bounded), because
`ray.init` on an address nothing answers retries for minutes; the driver connects before the
study is created, so a typo fails in seconds and the corrected command needs no ``--resume``.

Ray queues a task whose resources no node has, silently and forever. So before the first trial
the per-trial request is compared with every alive node (a trial runs on one node, so the
request must fit one node, not the cluster's sum). On a cluster that can grow, the driver waits
for a node that fits, saying so, and gives up after a deadline:

* an autoscaler that reports its node types to the GCS (Ray's autoscaler v2, as KubeRay and
  ``ray up`` run it) says which nodes it can launch: the driver waits ``AUTOSCALER_WAIT_S``
  when one of them fits, and fails at once when none does;
* ``NAS_RAY_NODE_WAIT_S=SECONDS`` says nodes will join (autoscaler v1, workers started by
  hand or by Compose after the driver): the driver waits that long on any joined cluster.

A private Ray never grows, and neither does a joined cluster that says neither: both fail at
once with one line. A private Ray's one node is known before it starts (every CPU, and the GPUs
Ray's own detection finds), so a trial it could never run is refused without starting it.

A private Ray's ports listen on every interface (Ray binds them so), and whoever can reach a
Ray can run code on it. So a private Ray always requires Ray's token (``~/.ray/auth_token``,
made on first use), even where ``RAY_AUTH_MODE=disabled`` was set for a trusted cluster:
nothing but this process and the workers it starts ever needs to join it.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import click
import ray

from nas.errors import InputError, SearchFailed
from nas.worker import error_line

PROBE_S = 5.0
"""TCP connect to the head's port: a head answers in milliseconds; a dropped packet waits."""

HANDSHAKE_S = 15.0
"""A GCS handshake once the port answers (something else may listen there): seconds on a busy
machine, where `ray.init` would retry for minutes."""

AUTOSCALER_WAIT_S = 900.0
"""How long to wait for an autoscaler to launch a node that fits: cloud VMs and pods with GPUs
take minutes to provision, pull an image and join."""

NODE_WAIT_ENV = "NAS_RAY_NODE_WAIT_S"
"""Seconds to wait for a node that fits on a joined cluster (overrides AUTOSCALER_WAIT_S)."""

PROGRESS_S = 60.0
"""How often a wait for a node says that it is still waiting."""

Say = Callable[[str], None]

PRIVATE_RAY = "the private Ray on this machine"
"""How messages name a Ray this process starts for itself."""


def _echo(message: str) -> None:
    click.echo(message, err=True)


@dataclass(frozen=True)
class RayConnection:
    """Which Ray the driver uses, and whether it is the driver's to stop."""

    started: bool
    """This process started a private Ray (so it must shut it down)."""
    source: str
    """Where the address came from: --ray-address, RAY_ADDRESS, this process, or private."""
    address: str | None = None

    def where(self) -> str:
        """The Ray this is, for messages."""
        if self.started:
            return PRIVATE_RAY
        if self.address is None:
            return f"the Ray this process already joined at {_gcs_address()}"
        return f"the cluster at {self.address} (from {self.source})"

    def close(self) -> None:
        """Stop the private Ray this process started; a joined cluster keeps running."""
        if self.started:
            ray.shutdown()


def join_ray(
    address: str | None, cpus: float, gpus: float, say: Say | None = None
) -> RayConnection:
    """Connect (see the module docstring) and check that one trial fits a node.

    `say` tells of a wait for a node; `describe` makes the line that says which Ray was
    joined, for the caller to print where its output begins. Anything that fails here leaves
    no private Ray running.
    """
    if not ray.is_initialized() and resolve_address(address)[0] is None:
        node = private_node()
        if node is not None:  # refused before Ray starts: a private Ray never grows
            check_trial_resources(
                cpus, gpus, can_grow=False, say=say, where=PRIVATE_RAY, nodes=[node]
            )
    connection = connect_ray(address)
    try:
        check_trial_resources(
            cpus, gpus, can_grow=not connection.started, say=say, where=connection.where()
        )
    except BaseException:
        connection.close()
        raise
    return connection


def connect_ray(address: str | None) -> RayConnection:
    """Join the cluster that `address`, RAY_ADDRESS or this process names, or start a private one."""
    if ray.is_initialized():
        return RayConnection(started=False, source="this process")
    address, source = resolve_address(address)
    if address is None:
        start_local_ray()
        return RayConnection(started=True, source="private")
    check_reachable(address, source)
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as error:
        ray.shutdown()
        raise InputError(_cannot_join(address, source, error_line(error))) from None
    return RayConnection(started=False, source=source, address=address)


def resolve_address(flag: str | None) -> tuple[str | None, str]:
    """The address to join and where it came from; None means start a private Ray."""
    if flag:
        return (None, "private") if flag == "local" else (flag, "--ray-address")
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env != "local":
        return env, "RAY_ADDRESS"
    return None, "private"


def check_reachable(address: str, source: str) -> None:
    """Fail within PROBE_S + HANDSHAKE_S, with one line, when no Ray head answers at `address`."""
    scheme, _, rest = address.rpartition("://")
    if scheme in ("http", "https"):
        raise InputError(
            f"{source} {address} is the address of Ray's dashboard and job server, not of a "
            f"cluster to join: submit the search there with `ray job submit --address "
            f"{address} -- nas search ...`, or pass the head's GCS address (HOST:6379)"
        )
    if rest == "auto":
        from ray._private.services import canonicalize_bootstrap_address_or_die

        try:
            rest = canonicalize_bootstrap_address_or_die("auto")
        except ConnectionError as error:
            raise InputError(_cannot_join(address, source, error_line(error))) from None
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise InputError(
            f"{source} {address!r} is not HOST:PORT (the head's GCS port, 6379 unless "
            f"`ray start --head --port` chose another)"
        )
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_S).close()
    except OSError as error:
        timed_out = isinstance(error, TimeoutError)
        why = f"no answer within {PROBE_S:g} s" if timed_out else error.strerror or str(error)
        raise InputError(_cannot_join(address, source, f"{host}:{port}: {why}")) from None
    if not scheme:  # Ray Client (ray://) speaks another protocol than the GCS
        _handshake(f"{host}:{port}", address, source)


def _handshake(gcs_address: str, address: str, source: str) -> None:
    """Ask the GCS for its cluster id, bounded: a port that answers may not be Ray's."""
    from ray._raylet import GcsClient

    outcome: list[str | None] = []

    def ask() -> None:
        try:
            GcsClient(address=gcs_address)
            outcome.append(None)
        except Exception as error:  # Ray raises its own RpcError and bare Exceptions here
            outcome.append(error_line(error))

    # A daemon thread: if the handshake hangs, the driver fails and exits without it.
    thread = threading.Thread(target=ask, name="nas-gcs-handshake", daemon=True)
    thread.start()
    thread.join(HANDSHAKE_S)
    if not outcome:
        why = f"the port answers, but no Ray GCS did within {HANDSHAKE_S:g} s"
        raise InputError(_cannot_join(address, source, why))
    if outcome[0] is not None:
        raise InputError(_cannot_join(address, source, outcome[0]))


def _cannot_join(address: str, source: str, why: str) -> str:
    fix = (
        "is a Ray head running there? (or unset RAY_ADDRESS for a private Ray on this machine)"
        if source == "RAY_ADDRESS"
        else "is a Ray head running there, on that port?"
    )
    return (
        f"cannot join the Ray cluster at {address} (from {source}): {why}; {fix} A cluster "
        f"with token authentication needs RAY_AUTH_MODE=token and its RAY_AUTH_TOKEN in this "
        f"environment."
    )


def start_local_ray(attempts: int = 3, wait_s: float = 20.0) -> None:
    """Start a private Ray on this machine, retrying a start that times out.

    On a machine whose cores are busy (another training run, a test suite) Ray's node can miss
    its start-up deadline and `ray.init` raises a bare Exception; a second try after a pause
    usually succeeds. After `attempts` the search fails with one line instead of a traceback.
    """
    require_token_auth()
    for attempt in range(1, attempts + 1):
        try:
            ray.init(
                address="local",
                num_cpus=os.cpu_count(),
                include_dashboard=False,
                logging_level="ERROR",
                log_to_driver=False,
            )
            return
        except Exception as error:  # Ray raises a bare Exception when its node starts too slowly
            ray.shutdown()
            if attempt == attempts:
                raise SearchFailed(
                    f"local Ray did not start after {attempts} attempts "
                    f"({error_line(error)}); is the machine overloaded?"
                ) from None
            time.sleep(wait_s * attempt)


AUTH_MODE_ENV = "RAY_AUTH_MODE"


def require_token_auth() -> None:
    """Make the Ray this process starts (and the workers it spawns) require Ray's token.

    Ray turns token authentication on for a new local cluster unless `RAY_AUTH_MODE` says
    otherwise; here it is turned on whatever that says. Ray reads the mode into its cached
    configuration, which is reloaded after the variable changes.
    """
    if os.environ.get(AUTH_MODE_ENV, "").lower() == "token":
        return
    os.environ[AUTH_MODE_ENV] = "token"
    try:
        from ray._raylet import Config
    except ImportError:  # a Ray without token authentication has no mode to reload
        return
    reload = getattr(Config, "initialize", None)
    if reload is not None:
        reload("")


# ---- what the cluster offers ------------------------------------------------------------------


def private_node() -> dict[str, float] | None:
    """The CPUs and GPUs the one node of a private Ray will have, known before it starts
    (`start_local_ray` gives it every CPU; its GPUs are what Ray's own detection finds and this
    process may see), or None where Ray's detection cannot be asked: the check then waits for
    the started node."""
    try:
        from ray._private.accelerators import get_accelerator_manager_for_resource

        manager = get_accelerator_manager_for_resource("GPU")
        gpus = manager.get_current_node_num_accelerators()
        visible = manager.get_current_process_visible_accelerator_ids()
    except Exception:  # a private API that may move between Ray releases
        return None
    if visible is not None:
        gpus = min(gpus, len(visible))
    return {"CPU": float(os.cpu_count() or 1), "GPU": float(gpus)}


def alive_nodes() -> list[dict[str, float]]:
    """Each alive node's total resources (`ray.nodes()` "Resources": CPU, GPU, memory, ...)."""
    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]


def describe(connection: RayConnection) -> str:
    """One console line: which Ray the driver uses and how big it is."""
    nodes = alive_nodes()
    cpus = sum(node.get("CPU", 0.0) for node in nodes)
    gpus = sum(node.get("GPU", 0.0) for node in nodes)
    size = f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}, {cpus:g} CPUs, {gpus:g} GPUs"
    if connection.started:
        return (
            f"Ray: started a private Ray on this machine ({size}); set RAY_ADDRESS or "
            f"--ray-address to use a cluster"
        )
    return f"Ray: joined {connection.where()}: {size}"


def _gcs_address() -> str:
    try:
        return str(ray.get_runtime_context().gcs_address)
    except Exception:  # Ray Client has no GCS address to show
        return "an unknown address"


def fits(node: Mapping[str, float], cpus: float, gpus: float) -> bool:
    """Whether one trial's request fits this node's totals (a fraction of a GPU fits one GPU)."""
    return node.get("CPU", 0.0) >= cpus - 1e-9 and node.get("GPU", 0.0) >= gpus - 1e-9


def largest(nodes: list[Mapping[str, float]], gpus: float) -> Mapping[str, float]:
    """The node closest to fitting: the most GPUs first when GPUs are asked for, else CPUs."""
    if not nodes:
        return {}
    if gpus > 0:
        return max(nodes, key=lambda node: (node.get("GPU", 0.0), node.get("CPU", 0.0)))
    return max(nodes, key=lambda node: (node.get("CPU", 0.0), node.get("GPU", 0.0)))


def shape(node: Mapping[str, float]) -> str:
    return f"{node.get('CPU', 0.0):g} CPUs and {node.get('GPU', 0.0):g} GPUs"


def autoscaler_node_types() -> list[dict[str, float]] | None:
    """The resources of each node type an autoscaler may still launch; None if none reports.

    Ray's autoscaler v2 writes the cluster config (its node groups, with their resources and
    maximum counts) into the GCS; Ray Train and Ray Data read it the same way.
    """
    try:
        from ray._private.state import state

        config = state.get_cluster_config()
    except Exception:  # Ray Client, an older GCS: nothing is known about growth
        return None
    if config is None or not config.node_group_configs:
        return None
    return [dict(group.resources) for group in config.node_group_configs if group.max_count != 0]


def check_trial_resources(
    cpus: float,
    gpus: float,
    *,
    can_grow: bool,
    say: Say | None = None,
    where: str = "the Ray cluster",
    nodes: list[dict[str, float]] | None = None,
    node_types: list[dict[str, float]] | None = None,
) -> None:
    """Fail (or wait, on a cluster that grows) when no alive node could ever run one trial.

    `nodes` and `node_types` default to what the connected Ray reports; `can_grow` is False for
    a private Ray, which gains no nodes.
    """
    say = say or _echo
    if gpus > 1 and not float(gpus).is_integer():
        raise InputError(
            f"--gpus-per-trial {gpus:g}: above 1 it must be a whole number (Ray gives a task a "
            f"fraction of one GPU or whole GPUs)"
        )
    nodes = alive_nodes() if nodes is None else nodes
    if any(fits(node, cpus, gpus) for node in nodes):
        return
    asked = f"--cpus-per-trial {cpus:g} --gpus-per-trial {gpus:g}"
    biggest = f"the largest node of {where} has {shape(largest(nodes, gpus))}"
    wait_s, waiting_for, note = _growth(cpus, gpus, can_grow, node_types)
    if wait_s <= 0:
        raise InputError(
            f"no Ray node can run a trial with {asked}: {biggest}{note}; ask for less, or "
            f"join a cluster with such a node (--ray-address or RAY_ADDRESS)"
        )
    say(
        f"Ray: no node has {shape({'CPU': cpus, 'GPU': gpus})} for a trial yet ({biggest}); "
        f"waiting up to {wait_s:g} s for {waiting_for}"
    )
    if not wait_for_node(cpus, gpus, wait_s, say):
        raise InputError(
            f"no Ray node that can run a trial with {asked} joined within {wait_s:g} s "
            f"({biggest}); ask for less, or set {NODE_WAIT_ENV} to wait longer"
        )


def _growth(
    cpus: float, gpus: float, can_grow: bool, node_types: list[dict[str, float]] | None
) -> tuple[float, str, str]:
    """How long to wait for a node that fits, what for, and a note for the error if not at all."""
    if not can_grow:
        return 0.0, "", ", and it gains no nodes"
    env = os.environ.get(NODE_WAIT_ENV, "").strip()
    if env:
        try:
            seconds = float(env)
        except ValueError:
            raise InputError(f"{NODE_WAIT_ENV}={env!r} is not a number of seconds") from None
        return seconds, f"one to join ({NODE_WAIT_ENV}={env})", ""
    node_types = autoscaler_node_types() if node_types is None else node_types
    if not node_types:
        return 0.0, "", f" (set {NODE_WAIT_ENV}=SECONDS if nodes are still to join)"
    if any(fits(node_type, cpus, gpus) for node_type in node_types):
        return AUTOSCALER_WAIT_S, "the autoscaler to launch one", ""
    return 0.0, "", ", and none of the autoscaler's node types is bigger"


def wait_for_node(cpus: float, gpus: float, wait_s: float, say: Say) -> bool:
    """Whether a task with this request ran within `wait_s`; its demand is what scales up."""
    probe = ray.remote(_node_id).options(num_cpus=cpus, num_gpus=gpus, max_retries=0).remote()
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        ready, _ = ray.wait([probe], timeout=min(PROGRESS_S, left))
        if ready:
            return True
        if deadline - time.monotonic() > 0:
            say(f"Ray: still waiting for a node ({deadline - time.monotonic():.0f} s left)")
    ray.cancel(probe, force=True)
    return False


def _node_id() -> str:
    return ray.get_runtime_context().get_node_id()


def trial_slots(nodes: list[dict[str, float]], cpus: float, gpus: float) -> int:
    """How many trials of `cpus` CPUs and `gpus` GPUs the `nodes` (Ray totals) run at once.

    A trial runs on one node and a fraction of a GPU on one GPU, so each node holds as many as
    both its CPUs and its GPUs allow, counted in Ray's units (a GPU is 10,000 of them): 0.3 of
    a GPU is three trials per GPU, not 3.33. At least one, so a search always asks.
    """
    total = 0
    for node in nodes:
        by_cpu = math.floor(node.get("CPU", 0.0) / cpus + 1e-9) if cpus > 0 else math.inf
        by_gpu: float = math.inf
        if gpus > 0:
            whole = math.floor(node.get("GPU", 0.0) + 1e-9)
            units = int(round(gpus * 10_000))
            by_gpu = whole * (10_000 // units) if gpus <= 1 else whole // int(gpus)
        count = min(by_cpu, by_gpu)
        total += int(count) if math.isfinite(count) else 0
    return max(1, total)


def worker_slots(workers: int, cpus: float, gpus: float) -> int:
    """Trials to run at once: `workers` if given, else what the cluster holds right now.

    Read again and again by the search, confirm and finalize alike, so Ray nodes that join a
    running study are put to work.
    """
    if workers:
        return workers
    if gpus > 0:
        return trial_slots(alive_nodes(), cpus, gpus)
    return max(1, int(ray.cluster_resources().get("CPU", 1) // cpus))
