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


def _mount() -> None:
    from tabadul.cli import _groups

    _groups.mount(app)


def main() -> None:
    """Entry point of the ``tabadul`` script."""
    _mount()
    app()
