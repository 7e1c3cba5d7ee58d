"""``tabadul publish`` / ``tabadul withdraw`` (the steward's and operator's side, through the
governed pipeline) and ``tabadul opendata search|pull|catalog`` (the consumer's side).

The portal is ``--ckan-url`` (else TABADUL_CKAN_URL, else the local CKAN); publishing needs
a token: ``--ckan-token-file`` (else TABADUL_CKAN_TOKEN or TABADUL_CKAN_TOKEN_FILE).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from exchange import cert_from_pem
from opendata import Consumer, OpenDataError, Publisher
from tabadul._services import Services, Settings
from tabadul.cli._common import (
    Actor,
    DataDir,
    Db,
    DbSchema,
    Json,
    Reason,
    byte_bar,
    done,
    governance,
    listed,
    need_actor,
    print_table,
    read_bytes,
)
from tabadul.cli._output import console, err_console, fail, print_json, reporting, usage_error

opendata_app = typer.Typer(
    help="Find, pull and verify published open data (the consumer's side).",
    no_args_is_help=True,
)

CkanUrl = Annotated[
    str | None,
    typer.Option(
        "--ckan-url",
        help="The CKAN portal (default: $TABADUL_CKAN_URL, else http://127.0.0.1:5000).",
        show_default=False,
    ),
]
TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--ckan-token-file",
        help="A file holding the CKAN API token (default: $TABADUL_CKAN_TOKEN(_FILE)).",
        show_default=False,
    ),
]


def _portal(url: str | None, token_file: Path | None, *, as_json: bool) -> tuple[str, str]:
    """The portal URL and token: the options over the environment's settings."""
    found = Settings.from_env()
    token = found.ckan_token
    if token_file is not None:
        data = read_bytes(token_file, "CKAN token", as_json=as_json)
        try:
            token = data.decode("ascii").strip()
        except UnicodeDecodeError:
            usage_error(
                "unreadable-file", f"{token_file} holds no CKAN token (not text)", as_json=as_json
            )
    return url or found.ckan_url, token


@contextmanager
def _steps(label: str, *, enabled: bool) -> Iterator[Callable[[str], None] | None]:
    """A status line on stderr naming the publication step under way."""
    if not enabled:
        yield None
        return
    with err_console.status(escape(label)) as status:

        def show(step: str) -> None:
            status.update(escape(f"{label}: {step}"))

        yield show


@contextmanager
def _pipeline(
    db: str | None,
    schema: str | None,
    data_dir: Path | None,
    url: str | None,
    token_file: Path | None,
    *,
    as_json: bool,
    label: str,
) -> Iterator[Services]:
    """The services, with the portal chosen on the command line and a status line."""
    ckan_url, token = _portal(url, token_file, as_json=as_json)
    with (
        governance(db, schema, as_json=as_json, data_dir=data_dir) as services,
        _steps(label, enabled=not as_json) as on_step,
    ):
        services.opendata.portal = Publisher(
            ckan_url, token, on_step=on_step, signer=services.store.audit_signer
        )
        yield services


def publish(
    dataset_id: Annotated[str, typer.Argument(help="The approved dataset to publish.")],
    actor: Actor = None,
    db: Db = None,
    schema: DbSchema = None,
    data_dir: DataDir = None,
    ckan_url: CkanUrl = None,
    ckan_token_file: TokenFile = None,
    as_json: Json = False,
) -> None:
    """Publish the approved bytes of DATASET_ID to CKAN and record the publication.

    Same bytes as on the portal: nothing new. New approved bytes: a new version (the old
    files stay in the package). If CKAN fails part way, nothing half done is public; run the
    command again to resume.
    """
    who = need_actor(actor, as_json=as_json)
    with _pipeline(
        db, schema, data_dir, ckan_url, ckan_token_file, as_json=as_json, label="publishing"
    ) as services:
        result = services.opendata.publish(who, dataset_id)
        url = f"{services.opendata.portal.url.rstrip('/')}/dataset/{result.name}"
    done(
        as_json,
        {**result.as_dict(), "url": url},
        f"[bold green]{result.status}[/] {escape(dataset_id)} version {result.version} "
        f"(SHA-256 {result.sha256}) at {escape(url)}",
    )


def withdraw(
    dataset_id: Annotated[str, typer.Argument(help="The published dataset to withdraw.")],
    reason: Reason,
    actor: Actor = None,
    db: Db = None,
    schema: DbSchema = None,
    data_dir: DataDir = None,
    ckan_url: CkanUrl = None,
    ckan_token_file: TokenFile = None,
    as_json: Json = False,
) -> None:
    """Withdraw DATASET_ID for good: its files are deleted from CKAN, the package purged,
    and the withdrawal recorded in the audit log with the reason."""
    who = need_actor(actor, as_json=as_json)
    with _pipeline(
        db, schema, data_dir, ckan_url, ckan_token_file, as_json=as_json, label="withdrawing"
    ) as services:
        result = services.opendata.withdraw(who, dataset_id, reason=reason)
    done(
        as_json,
        result.as_dict(),
        f"[bold green]withdrawn[/] {escape(dataset_id)}: package {escape(result.name)} purged, "
        f"{result.files_deleted} file(s) deleted",
    )


def _consumer(url: str | None, token_file: Path | None, *, as_json: bool) -> Consumer:
    ckan_url, token = _portal(url, token_file, as_json=as_json)
    return Consumer(ckan_url, token or None)


@opendata_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Words to look for (CKAN search syntax).")] = "",
    rows: Annotated[int, typer.Option("--rows", min=1, max=1000, help="How many.")] = 20,
    ckan_url: CkanUrl = None,
    as_json: Json = False,
) -> None:
    """List published Tabadul datasets matching QUERY (all of them without one)."""
    with reporting(as_json=as_json):
        count, found = _consumer(ckan_url, None, as_json=as_json).search(query, rows=rows)
    listed(
        as_json,
        {"count": count, "results": [f.as_dict() for f in found]},
        f"{count} published dataset(s)",
        ["dataset", "title", "agency", "version", "url"],
        ((f.dataset_id, f.title, f.agency, f.version, f.url) for f in found),
        empty="nothing published matches",
    )


@opendata_app.command("pull")
def pull(
    dataset: Annotated[str, typer.Argument(help="A dataset id or CKAN package name.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to put the files.")],
    ca: Annotated[
        Path,
        typer.Option(
            "--ca",
            envvar="TABADUL_CA_CERT",
            help="The bus CA's certificate (PEM), which the release must be signed under "
            "(default: $TABADUL_CA_CERT).",
        ),
    ],
    version: Annotated[
        int | None,
        typer.Option("--version", min=1, help="An older version (default: the current one)."),
    ] = None,
    ckan_url: CkanUrl = None,
    ckan_token_file: TokenFile = None,
    as_json: Json = False,
) -> None:
    """Download the current version of DATASET (or --version N) and check it against its
    signed release with the CA certificate alone: the release's signature, then every file's
    size and SHA-256, the portal's metadata, and the data against the published schema.

    Exit 0 when everything checks out, 1 when something does not (the report gives the code
    and why; nothing is kept as valid: every file is kept as NAME.rejected), 2 when it cannot
    be pulled at all.
    """
    consumer = _consumer(ckan_url, ckan_token_file, as_json=as_json)
    with reporting(as_json=as_json):
        ca_certificate = cert_from_pem(read_bytes(ca, "CA certificate", as_json=as_json))
    with reporting(as_json=as_json), _download_bar(enabled=not as_json) as advance:
        report = consumer.pull(
            dataset, output, ca_certificate=ca_certificate, version=version, progress=advance
        )
    if as_json:
        print_json(report.as_dict())
    else:
        print_table(
            f"{report.name} version {report.version}",
            ["file", "bytes", "sha256", "verified"],
            ((f.name, f.size, f.sha256, "yes" if f.verified else "NO") for f in report.files),
            empty="the package has no files",
        )
        if report.validation is not None:
            console.print(
                f"data.csv: {report.validation.rows} rows, "
                f"{'valid' if report.validation.valid else 'INVALID'} against schema.json",
                highlight=False,
            )
        if report.release is not None and report.ok:
            release = report.release.release
            console.print(
                f"signed by {escape(report.release.signer)} at {release.published_at}, "
                f"approval {escape(release.approval)} by {escape(', '.join(release.approvers))}",
                highlight=False,
            )
        for problem in report.problems:
            err_console.print(
                f"[bold red]refused[/] {escape(f'[{report.code}]')} {escape(problem)}",
                highlight=False,
                soft_wrap=True,
            )
    if not report.ok:
        raise typer.Exit(1)


@contextmanager
def _download_bar(*, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A :func:`byte_bar` fed with each chunk's size (the total is not known beforehand)."""
    if not enabled:
        yield None
        return
    with byte_bar() as progress:
        task = progress.add_task("downloading", total=None)
        yield lambda size: progress.advance(task, size)


@opendata_app.command("catalog")
def catalog(
    fmt: Annotated[str, typer.Option("--format", help="Only dcat (DCAT-AP JSON-LD).")] = "dcat",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to a file, not stdout.")
    ] = None,
    ckan_url: CkanUrl = None,
) -> None:
    """Export what is published as a DCAT-AP catalogue in JSON-LD."""
    if fmt != "dcat":
        usage_error("unknown-format", f"--format {fmt!r}: only 'dcat' is supported")
    try:
        document = _consumer(ckan_url, None, as_json=False).catalog()
    except OpenDataError as exc:
        fail(exc)
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    count = len(document["dcat:dataset"])
    console.print(f"wrote {count} dataset(s) to {escape(str(output))}", highlight=False)


__all__ = ["opendata_app", "publish", "withdraw"]
