"""How every command reports: rich text for people, ``--json`` for scripts, and errors as a
code plus a message (never a traceback)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, Protocol, cast

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from exchange import ExchangeError
from governance import GovernanceError
from governance.pii import PiiError
from opendata import OpenDataError
from schemas import SchemaError
from tabadul._services import BadSetting, CaUnavailable
from tabadul._witnessing import CosignaturesUnreadable

# the project's coded errors: what `reporting` turns into a code and a message
_CODED = (
    ExchangeError,
    SchemaError,
    GovernanceError,
    PiiError,
    OpenDataError,
    CaUnavailable,
    CosignaturesUnreadable,
    BadSetting,
)
console = Console()
err_console = Console(stderr=True)


class CodedError(Protocol):
    """What the project's error roots share: a stable code, a message, a dict form."""

    @property
    def code(self) -> str: ...

    @property
    def message(self) -> str: ...

    def as_dict(self) -> dict[str, object]: ...


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


def fail(error: CodedError, *, as_json: bool = False, exit_code: int = 2) -> NoReturn:
    """Print ``error`` (to stderr, or as JSON on stdout) and exit with ``exit_code``. The
    text is one line whatever the terminal's width or the message (a driver's message may
    span several), so scripts can read it."""
    if as_json:
        print_json({"ok": False, "error": error.as_dict()})
    else:
        message = " ".join(error.message.split())
        err_console.print(
            f"[bold red]error[/] {escape(f'[{error.code}]')}: {escape(message)}",
            highlight=False,
            soft_wrap=True,
        )
    raise typer.Exit(exit_code)


@contextmanager
def reporting(*, as_json: bool = False, also: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn the project's errors raised inside the block into a clean message and exit 2;
    ``also`` adds the error roots of packages imported only by some commands (risk/)."""
    caught: tuple[type[Exception], ...] = (*_CODED, *also)
    try:
        yield
    except caught as exc:
        fail(cast("CodedError", exc), as_json=as_json)


class _Simple:
    """A coded error built on the spot, for problems found by the CLI itself."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


def usage_error(code: str, message: str, *, as_json: bool = False) -> NoReturn:
    fail(_Simple(code, message), as_json=as_json)


def not_found(code: str, message: str, *, as_json: bool = False) -> NoReturn:
    """What was asked for does not exist: reported like an error, exit 1."""
    fail(_Simple(code, message), as_json=as_json, exit_code=1)


class CodedUsageGroup(TyperGroup):
    """The root command group. An option or argument whose value is missing or cannot be
    read as its type (``--days abc``, ``--overlap-hours x``) is reported like every other
    error: one line ``error [usage]: message`` (JSON with ``--json``) and exit 2, not
    click's framed usage text."""

    # Contexts are typed Any: their class is typer's private copy of click's.
    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        ctx = super().make_context(info_name, args, parent, **extra)
        ctx.meta["tabadul.json"] = "--json" in args
        return ctx

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            usage_error("usage", exc.format_message() + where, as_json=ctx.meta["tabadul.json"])
