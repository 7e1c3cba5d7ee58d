"""The ``tabadul`` command line. Each group lives in its own module and is mounted here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tabadul",
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
    """Entry point of the ``tabadul`` script."""
    build_app()()
