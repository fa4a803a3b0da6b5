"""`nas dashboard`: optuna-dashboard on the search's storage, in this process."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import click

from nas.commands._output import storage_option
from nas.errors import InputError
from nas.stop_signals import stopping_cleanly
from nas.storage import mask_password


@click.command("dashboard")
@storage_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 opens it to the network (no login!).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option(
    "--artifact-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Artifact store [default: 'artifacts' beside a SQLite file, ./artifacts otherwise].",
)
def command(storage: str, host: str, port: int, artifact_dir: Path | None) -> None:
    """Browse every trial (arch, MFLOPs, latency, curves, exported models) in optuna-dashboard.

    Serves until Ctrl-C. Pareto models attached by the search are listed for download on the
    study page.
    """
    import bottle
    from optuna_dashboard import wsgi

    from nas.select import open_existing_storage
    from nas.storage import artifact_store_for

    check_can_listen(host, port)  # before any banner: a busy port is the whole answer
    rdb = open_existing_storage(storage)
    store = artifact_store_for(storage, artifact_dir)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"optuna-dashboard for {mask_password(storage)} (artifacts in "
        f"{getattr(store, '_base_path', '?')}) at http://{shown}:{port}/dashboard/ "
        f"(Ctrl-C stops it)"
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"warning: listening on {host}: anyone who can reach this machine can read "
            f"and change the studies",
            err=True,
        )
    try:
        # SIGTERM (docker stop, kill) stops it as Ctrl-C does: exit 0, the database closed;
        # SIGINT too where a script started it in the background with SIGINT ignored.
        with stopping_cleanly(say, "still stopping the dashboard"):
            # Quiet: the banner above says where it serves; Bottle's own lines would repeat it.
            bottle.run(wsgi(rdb, artifact_store=store), host=host, port=port, quiet=True)
    except OSError as error:  # taken between the check and the server's own bind
        raise InputError(listen_problem(host, port, error)) from None
    except KeyboardInterrupt:
        pass
    finally:
        rdb.engine.dispose()


def say(message: str) -> None:
    click.echo(message, err=True)


def check_can_listen(host: str, port: int) -> None:
    """Bind `host`:`port` once and let go, so a busy port or a foreign address is one line
    before anything is served or printed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise InputError(listen_problem(host, port, error)) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise InputError(listen_problem(host, port, error)) from None


def listen_problem(host: str, port: int, error: OSError) -> str:
    if isinstance(error, socket.gaierror) or error.errno in (
        errno.EADDRNOTAVAIL,
        errno.EAFNOSUPPORT,
    ):
        return (
            f"cannot listen on {host}: {error.strerror}; pass --host with an address of this "
            f"machine"
        )
    if error.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use: pass --port with a free one"
    return f"cannot listen on {host}:{port}: {error.strerror or error}"
