"""Where the command groups are registered."""

from __future__ import annotations

import typer


def mount(app: typer.Typer) -> None:
    """Add every command group to ``app``."""
