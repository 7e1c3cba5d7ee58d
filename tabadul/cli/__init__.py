"""The ``tabadul`` command line. Each group lives in its own module and is mounted here."""

from __future__ import annotations

import os
import sys

import typer

from tabadul.cli._output import CodedUsageGroup

app = typer.Typer(
    name="tabadul",
    cls=CodedUsageGroup,
    help="Tabadul: the interministerial data-exchange bus and open-data catalogue.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


_mounted = False


def build_app() -> typer.Typer:
    """The application with every command group mounted (once)."""
    global _mounted  # noqa: PLW0603 - one process-wide app, mounted on first use
    if not _mounted:
        from tabadul.cli import _groups

        _groups.mount(app)
        _mounted = True
    return app


def main() -> None:
    """Entry point of the ``tabadul`` script. The project's errors are reported by each
    command; anything else is a bug, reported in one line (the traceback only on request)."""
    try:
        build_app()()
    except Exception as exc:  # usage errors and exits are handled by typer, not here
        if os.environ.get("TABADUL_DEBUG"):
            raise
        sys.stderr.write(
            f"error [internal]: {type(exc).__name__}: {exc}\n"
            "This is a bug in Tabadul; run again with TABADUL_DEBUG=1 for the details.\n"
        )
        sys.exit(3)
