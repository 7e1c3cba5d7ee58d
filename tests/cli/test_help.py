"""Help texts render whole: typer reads them as rich markup, so a ``[default: ...]`` in one
would be taken for a style tag and vanish ("The CKAN portal .")."""

from typing import Any

import typer
from rich.text import Text
from typer.testing import CliRunner

from tabadul.cli import build_app


def _helps(command: Any, path: str) -> dict[str, str]:
    """Every option's and argument's help below ``command``, by its command path."""
    found = {f"{path} {p.name}": p.help for p in command.params if getattr(p, "help", None)}
    for name, sub in getattr(command, "commands", {}).items():
        found |= _helps(sub, f"{path} {name}")
    return found


def _help_text(*command: str) -> str:
    """The rendered ``--help`` of ``command``, its words joined by single spaces."""
    result = CliRunner().invoke(build_app(), [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())


def test_no_help_is_eaten_as_markup():
    """Every option's help reads the same once rich has parsed it as markup."""
    helps = _helps(typer.main.get_command(build_app()), "tabadul")
    assert len(helps) > 50
    eaten = {where: text for where, text in helps.items() if Text.from_markup(text).plain != text}
    assert eaten == {}


def test_defaults_show_in_the_help():
    """`dataset list --help` and `publish --help` name what their options fall back on."""
    listed = _help_text("dataset", "list")
    assert "(default: $TABADUL_GOVERNANCE_DB, else var/governance.sqlite)" in listed
    assert "(default: $TABADUL_GOVERNANCE_SCHEMA)" in listed
    assert "(default: $TABADUL_CKAN_URL, else http://127.0.0.1:5000)" in _help_text("publish")
