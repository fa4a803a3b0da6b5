"""The `nas` command line: one click group, one module per command under `nas.commands`.

`main` is the console script. It turns user mistakes (`InputError`, click usage errors) into one
line on stderr and exit code 2, so no user ever sees a traceback for a typo.
"""

from __future__ import annotations

import sys

import click

from nas import __version__
from nas.commands import register_commands
from nas.errors import InputError, SearchFailed


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="nas")
def app() -> None:
    """Hardware-aware neural architecture search for mobile CNNs.

    MFLOPs everywhere means millions of multiply-adds (as in the MobileNet, ShuffleNet and
    MnasNet papers and as fvcore counts them), priced at the deployment input (3x224x224, 1000
    classes unless told otherwise).
    """


register_commands(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exit 0 done, 1 failed run, 2 bad input (one line on stderr)."""
    try:
        result = app.main(args=argv, prog_name="nas", standalone_mode=False)
    except InputError as error:
        _fail(str(error))
    except SearchFailed as error:  # a command that ran but could not finish (no traceback)
        click.echo(f"nas: {' '.join(str(error).split())}", err=True)
        sys.exit(1)
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.ctx.get_help() if error.ctx else str(error))
        sys.exit(2)
    except click.UsageError as error:
        where = error.ctx.command_path if error.ctx else "nas"
        _fail(f"{error.format_message()} (see '{where} --help')")
    except click.ClickException as error:
        _fail(error.format_message())
    except RecursionError:  # a reader without its own check met a file nested thousands deep
        _fail("an input file is nested too deeply to read (JSON or YAML): check the files given")
    except click.exceptions.Abort:
        click.echo("nas: aborted", err=True)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


def _fail(message: str) -> None:
    click.echo(f"nas: error: {' '.join(message.split())}", err=True)
    sys.exit(2)


if __name__ == "__main__":
    main()
