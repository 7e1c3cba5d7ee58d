"""What the governance commands (``user``, ``token``, ``dataset``, ``registry``) share: their
options, how they open the governance database, and how they print.

Options left out fall back on the ``TABADUL_*`` variables that
:class:`tabadul._services.Settings` reads (TABADUL_GOVERNANCE_DB, TABADUL_GOVERNANCE_SCHEMA,
TABADUL_DATA_DIR); ``--actor`` falls back on TABADUL_ACTOR. Every command prints one JSON
document with ``--json`` (``{"ok": true, ...}``, or the error as ``fail`` prints it) and
reports the project's errors as ``error [code]: message`` with exit 2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tabadul._services import Services, Settings
from tabadul.cli._output import console, err_console, print_json, reporting, usage_error

ACTOR_ENV = "TABADUL_ACTOR"

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Governance database: a SQLite file or a postgresql:// URL "
        "(default: $TABADUL_GOVERNANCE_DB, else var/governance.sqlite).",
        show_default=False,
    ),
]
DbSchema = Annotated[
    str | None,
    typer.Option(
        "--schema",
        help="PostgreSQL schema of the governance tables (default: $TABADUL_GOVERNANCE_SCHEMA).",
        show_default=False,
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Store of submitted files (default: $TABADUL_DATA_DIR, else var/data).",
        show_default=False,
    ),
]
Actor = Annotated[
    str | None,
    typer.Option(
        "--actor",
        envvar=ACTOR_ENV,
        show_envvar=False,
        help="Your user id (default: $TABADUL_ACTOR).",
        show_default=False,
    ),
]
Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document, for scripts.")]

# Called with (bytes done, bytes in all) while a long step runs.
ByteProgress = Callable[[int, int], None]


def settings(db: str | None, schema: str | None, data_dir: Path | None = None) -> Settings:
    """The settings from the environment, with the options given on the command line on top."""
    found = Settings.from_env()
    given: dict[str, Any] = {
        "governance_db": db,
        "governance_schema": schema,
        "data_dir": data_dir,
    }
    return dataclasses.replace(found, **{k: v for k, v in given.items() if v is not None})


@contextmanager
def governance(
    db: str | None,
    schema: str | None,
    *,
    as_json: bool,
    data_dir: Path | None = None,
    create: bool = False,
) -> Iterator[Services]:
    """The services over the governance database, closed on leaving the block.

    The database is migrated to the current revision. A SQLite file that does not exist is
    only created with ``create`` (registering the first operator); otherwise it exits 2 as
    ``no-database``, and anything but a governance database there exits 2 as ``store``,
    untouched. The project's errors raised in the block exit 2 with their code.
    """
    with reporting(as_json=as_json):
        chosen = settings(db, schema, data_dir)
    location = chosen.governance_db
    if not create and "://" not in location and not Path(location).is_file():
        usage_error(
            "no-database",
            f"no governance database at {location}; give --db (or TABADUL_GOVERNANCE_DB), "
            "or register the first operator with 'tabadul user add' to create it",
            as_json=as_json,
        )
    with reporting(as_json=as_json):
        services = Services.open(chosen, create=create)
        try:
            yield services
        finally:
            services.close()


def need_actor(actor: str | None, *, as_json: bool) -> str:
    """The acting user's id; exits 2 (``no-actor``) when neither --actor nor TABADUL_ACTOR
    names one."""
    if not actor:
        usage_error(
            "no-actor", f"say who acts: --actor USER_ID, or set {ACTOR_ENV}", as_json=as_json
        )
    return actor


def read_bytes(path: Path, what: str, *, as_json: bool) -> bytes:
    """The content of ``path``; exits 2 (``unreadable-file``) naming ``what`` it should hold."""
    try:
        return path.read_bytes()
    except OSError as exc:
        usage_error(
            "unreadable-file",
            f"cannot read the {what} {path}: {exc.strerror or exc}",
            as_json=as_json,
        )


def print_ok(data: Mapping[str, Any]) -> None:
    """Print a success for scripts: ``{"ok": true, **data}``."""
    print_json({"ok": True, **data})


def done(as_json: bool, data: Mapping[str, Any], message: str) -> None:
    """Report a success: ``{"ok": true, **data}`` with --json, else ``message`` (rich
    markup: escape the data it quotes)."""
    if as_json:
        print_ok(data)
    else:
        console.print(message, highlight=False, soft_wrap=True)


def listed(
    as_json: bool,
    data: Mapping[str, Any],
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    empty: str,
) -> None:
    """Report a listing: ``{"ok": true, **data}`` with --json, else ``rows`` as a table (see
    :func:`print_table`)."""
    if as_json:
        print_ok(data)
    else:
        print_table(title, columns, rows, empty=empty)


def cell(value: object) -> str:
    """A value as table text, escaped so data is never read as markup: None is ``-``,
    sequences are joined with commas (sets sorted first)."""
    if value is None:
        return "-"
    if isinstance(value, (frozenset, set)):
        value = sorted(map(str, value))
    if isinstance(value, (list, tuple)):
        return escape(", ".join(map(str, value)))
    return escape(str(value))


def print_table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[object]], *, empty: str
) -> None:
    """Print ``rows`` as a table titled ``title`` (escaped here), or ``empty`` when none."""
    found = [[cell(value) for value in row] for row in rows]
    if not found:
        console.print(escape(empty), highlight=False)
        return
    table = Table(title=escape(title))
    for name in columns:
        table.add_column(name, overflow="fold")  # ids and hashes shown whole, never cut short
    for row in found:
        table.add_row(*row)
    console.print(table)


def print_fields(title: str, fields: Iterable[tuple[str, object]]) -> None:
    """Print one record as a two-column table of field names and values."""
    table = Table(title=escape(title), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in fields:
        table.add_row(name, cell(value))
    console.print(table)


def byte_bar() -> Progress:
    """A progress bar in bytes on stderr (description, bar, bytes, time left) that leaves
    nothing behind."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


@contextmanager
def byte_progress(
    label: str, then: str | None = None, *, enabled: bool
) -> Iterator[ByteProgress | None]:
    """A :func:`byte_bar` fed by the yielded ``callback(done, total)`` in bytes; once every
    byte is done it reads ``then`` if given (the slower work that follows). Yields None when
    not ``enabled`` (e.g. for --json)."""
    if not enabled:
        yield None
        return
    with byte_bar() as progress:
        task = progress.add_task(escape(label), total=None)

        def advance(finished: int, total: int) -> None:
            progress.update(task, completed=finished, total=total)
            if then is not None and finished >= total:
                progress.update(task, description=escape(then))

        yield advance
