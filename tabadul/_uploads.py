"""Uploaded files, for the API's and the console's submit routes: read from the request as
it arrives and written straight to disk, never held whole in memory.

:func:`received_upload` parses a ``multipart/form-data`` body (python-multipart's streaming
parser) into a folder of its own (``tabadul-upload-*`` under ``Settings.upload_dir``, else
the system's temporary folder), holding one file and a few short text fields, and removes
that folder when the caller is done, however it ends: submitted, refused (for its size, its
form, by the workflow), or its client gone in the middle. Refusals, raised as soon as they
are found:

- ``upload-too-large`` (413): the file passed ``max_upload_bytes`` (or the declared length
  of the body says it will); the body around it may add ``max_body_bytes`` of form;
- ``field-too-long`` (422): a text field passed ``max_field_chars`` characters;
- ``invalid-request`` (422): not a multipart form, a field the route does not take, or
  one given twice;
- ``bad-request`` (400): a form that is not well formed, a text that is not UTF-8, or a
  client that hung up before the end.

A client's file name never reaches the filesystem as given: :func:`safe_file_name`. What a
server killed in the middle of an upload could not remove, :func:`remove_stale_uploads`
does when the next one starts.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from tabadul._http import ApiProblem, FieldTooLong, UploadTooLarge, allow_body
from tabadul._services import Settings

DEFAULT_NAME = "upload.csv"
PREFIX = "tabadul-upload-"
STALE_AFTER = 3600.0  # seconds: no upload is handled for that long
MAX_NAME_BYTES = 100  # well within the 255 bytes a file name may hold
_UNSAFE = re.compile(r"[^\w.-]+")
_MAX_HEADERS = 16 * 1024  # bytes of headers one part may have (its file name among them)


def safe_file_name(name: str | None, default: str = DEFAULT_NAME) -> str:
    """A plain file name made from what a client sent: its last path component (``/`` or
    ``\\``, once Unicode-normalised, so a full-width solidus is a slash too), every run of
    characters but letters, digits, ``.``, ``_`` and ``-`` turned into one ``-``, no leading
    ``.`` or ``-`` (hidden files, options), at most MAX_NAME_BYTES in UTF-8 with its
    extension kept; ``default`` when nothing is left."""
    text = unicodedata.normalize("NFKC", name or "")
    text = _UNSAFE.sub("-", re.split(r"[/\\]", text)[-1]).strip(".-")
    stem, dot, suffix = text.rpartition(".")
    if not dot or not stem or len(suffix.encode()) > 16:
        stem, suffix = text, ""
    suffix = f".{suffix}" if suffix else ""
    room = MAX_NAME_BYTES - len(suffix.encode())
    stem = stem.encode()[:room].decode("utf-8", "ignore").rstrip(".-")
    return f"{stem}{suffix}" if stem else default


@dataclass(slots=True)
class Upload:
    """A received form: ``path`` of its file (None when it had none; its name is the
    client's, made safe), and its text ``fields``."""

    path: Path | None = None
    fields: dict[str, str] = field(default_factory=dict)


@asynccontextmanager
async def received_upload(
    request: Request,
    settings: Settings,
    *,
    file_field: str,
    text_fields: Collection[str],
) -> AsyncIterator[Upload]:
    """Receive the request's multipart form, its file ``file_field`` streamed to disk and
    its ``text_fields`` kept; the folder holding the file is removed on leaving the block
    (whatever happens in it). Refusals are described in the module's docstring."""
    if settings.upload_dir is not None:
        settings.upload_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=settings.upload_dir))
    try:
        form = _FormReader(folder, settings, file_field, frozenset(text_fields))
        try:
            await form.read(request)
        finally:
            form.close()
        yield form.upload
    finally:
        # not awaited: a cancelled request must still remove it
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_uploads(settings: Settings, *, older_than: float = STALE_AFTER) -> list[str]:
    """Remove the upload folders left in the upload directory by a server that was killed
    while handling them (untouched for ``older_than`` seconds: nothing handled now); the
    names removed."""
    root = settings.upload_dir or Path(tempfile.gettempdir())
    cutoff = time.time() - older_than
    removed = []
    for folder in root.glob(f"{PREFIX}*"):
        with suppress(OSError):  # gone meanwhile, or not ours to remove
            touched = max(p.stat().st_mtime for p in (folder, *folder.iterdir()))
            if touched < cutoff:
                shutil.rmtree(folder)
                removed.append(folder.name)
    return sorted(removed)


class _FormReader:
    """One multipart form read into ``upload`` (python-multipart calls the ``on_*``
    methods as the body goes through its parser)."""

    def __init__(
        self, folder: Path, settings: Settings, file_field: str, text_fields: frozenset[str]
    ) -> None:
        self.folder = folder
        self.file_field = file_field
        self.text_fields = text_fields
        self.max_file = settings.max_upload_bytes
        self.max_chars = settings.max_field_chars
        self.max_body = settings.max_upload_bytes + settings.max_body_bytes
        self.upload = Upload()
        self._seen: set[str] = set()
        self._header = (bytearray(), bytearray())  # the current header's name and value
        self._header_bytes = 0  # of the current part
        self._disposition = b""
        self._name = ""
        self._text: bytearray | None = None  # the current text part's bytes
        self._file: BinaryIO | None = None
        self._file_size = 0
        self._ended = False

    async def read(self, request: Request) -> None:
        kind, options = parse_options_header(request.headers.get("content-type"))
        if kind != b"multipart/form-data" or not options.get(b"boundary"):
            expected = "a multipart/form-data form is expected"
            raise RequestValidationError(
                [{"loc": ("body",), "msg": expected, "type": "content_type"}]
            )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            raise UploadTooLarge(self.max_file)
        allow_body(request.scope, self.max_body, UploadTooLarge(self.max_file))
        parser = MultipartParser(
            options[b"boundary"],
            {
                "on_part_begin": self._part_begins,
                "on_header_field": self._header_name,
                "on_header_value": self._header_value,
                "on_header_end": self._header_ends,
                "on_headers_finished": self._headers_end,
                "on_part_data": self._part_data,
                "on_part_end": self._part_ends,
                "on_end": self._form_ends,
            },
        )
        try:
            async for chunk in request.stream():
                parser.write(chunk)
        except ClientDisconnect as exc:
            raise ApiProblem(
                400, "bad-request", "the client hung up before the end of the form"
            ) from exc
        except MultipartParseError as exc:
            raise _malformed("it is not a well-formed multipart form") from exc
        if not self._ended:
            raise _malformed("it ends before its closing boundary")

    def close(self) -> None:
        if self._file is not None:
            with suppress(OSError):
                self._file.close()
            self._file = None

    # ---- python-multipart's callbacks ---------------------------------------------------

    def _part_begins(self) -> None:
        self._header_bytes = 0
        self._disposition = b""

    def _header_name(self, data: bytes, start: int, end: int) -> None:
        self._header_text(0, data[start:end])

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_text(1, data[start:end])

    def _header_text(self, which: int, data: bytes) -> None:
        self._header_bytes += len(data)
        if self._header_bytes > _MAX_HEADERS:
            raise _malformed(f"a part's headers are longer than {_MAX_HEADERS} bytes")
        self._header[which].extend(data)

    def _header_ends(self) -> None:
        name, value = self._header
        if bytes(name).strip().lower() == b"content-disposition":
            self._disposition = bytes(value).strip()
        name.clear()
        value.clear()

    def _headers_end(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise _malformed("a part has no name")
        name = _decoded(options[b"name"])
        self._name = name
        if name in self._seen:
            raise _invalid(name, "given more than once", "repeated")
        self._seen.add(name)
        if name == self.file_field:
            filename = _decoded(options.get(b"filename", b""))
            if filename:  # a browser sends an empty file part when no file was chosen
                self.upload.path = self.folder / safe_file_name(filename)
                self._file = self.upload.path.open("xb")
        elif name in self.text_fields and b"filename" not in options:
            self._text = bytearray()
        else:
            raise _invalid(name, "no such field", "unknown")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._text is not None:
            self._text += data[start:end]
            if len(self._text) > 4 * self.max_chars:  # more bytes than such text may take
                raise FieldTooLong(self.max_chars, [f"body.{self._name}"])
        elif self._file is not None:
            self._file_size += end - start
            if self._file_size > self.max_file:
                raise UploadTooLarge(self.max_file)
            self._file.write(data[start:end])

    def _part_ends(self) -> None:
        if self._text is not None:
            try:
                text = bytes(self._text).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _malformed(f"field {self._name} is not UTF-8 text") from exc
            if len(text) > self.max_chars:
                raise FieldTooLong(self.max_chars, [f"body.{self._name}"])
            self.upload.fields[self._name] = text
            self._text = None
        self.close()

    def _form_ends(self) -> None:
        self._ended = True


def _decoded(raw: bytes) -> str:
    """A header parameter's text: UTF-8 as browsers send it, else Latin-1 as HTTP has it."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _malformed(why: str) -> ApiProblem:
    return ApiProblem(400, "bad-request", f"the body cannot be read as a form: {why}")


def _invalid(name: str, message: str, kind: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", name[:100]), "msg": message, "type": kind}])


__all__ = ["DEFAULT_NAME", "Upload", "received_upload", "remove_stale_uploads", "safe_file_name"]
