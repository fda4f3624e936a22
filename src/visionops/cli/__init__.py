"""`visionops`: the command line over the same functions the notebooks and pipeline steps call.

Every command exits 0 on success and non-zero with a one-line reason on failure; `--debug`
(anywhere on the line) shows the traceback instead. One module per command group.
"""

from __future__ import annotations

import sys

import click
import typer

# each command group registers itself on import (one line a module, so groups are added apart)
# isort: off
from visionops.cli import azure  # noqa: F401
from visionops.cli import data  # noqa: F401
from visionops.cli import edge  # noqa: F401
from visionops.cli import label  # noqa: F401
from visionops.cli import lifecycle  # noqa: F401
from visionops.cli import monitor  # noqa: F401
from visionops.cli import notebooks  # noqa: F401
from visionops.cli import pipeline  # noqa: F401
from visionops.cli import predict  # noqa: F401
from visionops.cli import serving  # noqa: F401
from visionops.cli import sweep  # noqa: F401
# isort: on
from visionops.cli._app import app, console, err_console
from visionops.errors import VisionOpsError

__all__ = ["app", "console", "err_console", "main", "run_app"]


def run_app(application: typer.Typer) -> None:
    """Run a typer app with our error contract: one line and exit 1 for user errors, 2 for bugs."""
    debug = "--debug" in sys.argv[1:]
    command = typer.main.get_command(application)
    args = [a for a in sys.argv[1:] if a != "--debug"]  # accepted anywhere on the line
    try:
        command.main(args=args, prog_name="visionops", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except VisionOpsError as exc:
        if debug:
            raise
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except Exception as exc:  # a bug or an unexpected environment problem
        if debug:
            raise
        err_console.print(
            f"[red]error:[/] unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            highlight=False,
        )
        sys.exit(2)


def main() -> None:
    run_app(app)
    # a command that succeeded ends without the interpreter's seconds-long teardown of torch and
    # MLflow (atexit handlers and output flushing still run): see offline.exit_now
    from visionops import offline

    offline.exit_now(0)


if __name__ == "__main__":
    main()
