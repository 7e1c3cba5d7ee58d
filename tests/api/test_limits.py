"""Size limits of the served API: a request body (TABADUL_MAX_BODY_BYTES), every text of a
body or a query string (TABADUL_MAX_FIELD_CHARS) and an upload (TABADUL_MAX_UPLOAD_BYTES,
streamed to disk in TABADUL_UPLOAD_DIR). Each is refused with its code as soon as it is
passed, changes nothing and leaves nothing behind."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from starlette.requests import Request

from tabadul._services import BadSetting, Settings
from tabadul._uploads import received_upload
from tests.api.conftest import CLASSIFIED_PUBLIC, Api, dataset_body, is_problem
from tests.support.uploads import (
    BOUNDARY,
    TAIL,
    connect,
    file_head,
    leftovers,
    part,
    read_answer,
    request_head,
    rows,
    send_until_answered,
)

KIB = 1024
MIB = 1024 * KIB
CSV = b"code,rate\n0101,2.5\n0102,10\n"


@pytest.fixture
def limited(make_api: Callable[..., Api], tmp_path: Path) -> Api:
    """The API with small limits: 64 KiB bodies, 100-character texts, 256 KiB uploads put
    in tmp_path/uploads, and a classified dataset of amina's to submit files to."""
    api = make_api(
        max_body_bytes=64 * KIB,
        max_field_chars=100,
        max_upload_bytes=256 * KIB,
        upload_dir=tmp_path / "uploads",
    )
    api.services.workflow.register_dataset("amina", **dataset_body("tariffs"))
    api.services.workflow.classify("amina", "tariffs", **CLASSIFIED_PUBLIC)
    return api


def _changes(api: Api) -> tuple[int, int]:
    """What a refused request must not change: the tokens stored, the audit log's length."""
    return len(api.services.tokens.tokens()), api.services.workflow.audit.entries(limit=1)[-1].seq


def _csv_of(size: int) -> bytes:
    head = b"code,rate\n"
    return head + b"".join(rows(size - len(head)))


# ---- settings ---------------------------------------------------------------------------------


def test_the_limits_come_from_the_settings(tmp_path):
    """Defaults: 1 MiB bodies, 10,000-character texts, 100 MiB uploads in the system's
    temporary folder; each has its TABADUL_* variable; a value that is not a positive whole
    number is a bad-setting naming the variable."""
    default = Settings.from_env({})
    assert (default.max_body_bytes, default.max_field_chars) == (MIB, 10_000)
    assert (default.max_upload_bytes, default.upload_dir) == (100 * MIB, None)
    chosen = Settings.from_env(
        {
            "TABADUL_MAX_BODY_BYTES": "2048",
            "TABADUL_MAX_FIELD_CHARS": "80",
            "TABADUL_MAX_UPLOAD_BYTES": "4096",
            "TABADUL_UPLOAD_DIR": str(tmp_path),
        }
    )
    assert (chosen.max_body_bytes, chosen.max_field_chars) == (2048, 80)
    assert (chosen.max_upload_bytes, chosen.upload_dir) == (4096, tmp_path)
    for value in ("-1", "0", "1e6", "lots"):
        with pytest.raises(BadSetting, match="TABADUL_MAX_UPLOAD_BYTES"):
            Settings.from_env({"TABADUL_MAX_UPLOAD_BYTES": value})


# ---- bodies -----------------------------------------------------------------------------------


def test_a_32_mb_label_is_refused_and_stored_nowhere(api):
    """The finding as reported: POST /tokens with a 32 MB label is 413 body-too-large (at
    the default 1 MiB limit), and neither the token table nor the audit log gets it."""
    before = _changes(api)
    response = api("amina").post("/tokens", json={"label": "x" * 32_000_000})
    body = is_problem(response, 413, "body-too-large")
    assert body["limit"] == MIB
    assert _changes(api) == before


def test_a_body_one_byte_over_the_limit_is_refused(limited):
    """A body of exactly the limit is read; one byte more is 413 body-too-large, whether its
    length is declared or not (chunked)."""
    client = limited("root")
    fill = b'{"label": "ok", "user_id": "amina", "ttl_days": 1' + b" " * (64 * KIB)
    exact = fill[: 64 * KIB - 1] + b"}"
    assert len(exact) == 64 * KIB
    headers = {"content-type": "application/json"}
    assert client.post("/tokens", content=exact, headers=headers).status_code == 201
    before = _changes(limited)
    over = exact[:-1] + b" }"
    is_problem(client.post("/tokens", content=over, headers=headers), 413, "body-too-large")
    chunked = client.post("/tokens", content=iter([over[:1000], over[1000:]]), headers=headers)
    is_problem(chunked, 413, "body-too-large")
    assert _changes(limited) == before


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(limited):
    """A body announced as 1 GB is refused from its headers alone (the client never sends
    it), with the problem document."""
    sock = connect(limited.served.url)
    head = request_head(
        limited.served.url,
        "/tokens",
        length=1_000_000_000,
        headers={"Authorization": f"Bearer {limited.tokens['amina']}"},
    ).replace(f"multipart/form-data; boundary={BOUNDARY}".encode(), b"application/json")
    sock.sendall(head)
    status, body = read_answer(sock)
    sock.close()
    assert status == 413
    assert b'"code":"body-too-large"' in body


# ---- texts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "where"),
    [
        ("POST", "/tokens", {"label": "x" * 101}, "body.label"),
        ("POST", "/datasets", dataset_body("quotas", title={"fr": "é" * 101}), "body.title.fr"),
        ("POST", "/datasets", dataset_body("quotas", tags=["ok", "t" * 101]), "body.tags.1"),
        (
            "POST",
            "/datasets",
            dataset_body("quotas", table_schema={"fields": [{"name": "n" * 101}]}),
            "body.table_schema.fields.0.name",
        ),
        ("POST", "/datasets/tariffs/reject", {"reason": "ب" * 101}, "body.reason"),
        ("POST", "/registry/members", {"member_id": "MA/GOV/X", "name": "n" * 101}, "body.name"),
        ("GET", "/audit/entries?subject=" + "s" * 101, None, "query.subject"),
    ],
)
def test_a_text_longer_than_the_field_limit_is_refused(limited, method, path, body, where):
    """Every text of a body, however deep (titles per language, tags, a Table Schema's
    names), and of a query string: one character over the limit is 422 field-too-long naming
    where, never echoing the text; nothing changes."""
    before = _changes(limited)
    response = limited("root").request(method, path, json=body)
    problem = is_problem(response, 422, "field-too-long")
    assert problem["limit"] == 100
    assert [e["path"] for e in problem["errors"]] == [where]
    assert "x" * 101 not in response.text
    assert _changes(limited) == before


def test_texts_at_the_limit_pass(limited):
    """100 characters, Arabic ones included (characters, not bytes), are accepted."""
    issued = limited("amina").post("/tokens", json={"label": "ب" * 100})
    assert issued.status_code == 201, issued.text


def test_a_long_member_name_is_refused_too(limited):
    """Member names of a JSON object are texts as well (a Table Schema is free-form)."""
    schema = {"fields": [{"name": "code"}], "k" * 101: 1}
    response = limited("amina").post("/datasets", json=dataset_body("quotas", table_schema=schema))
    problem = is_problem(response, 422, "field-too-long")
    assert [e["path"] for e in problem["errors"]] == ["body.table_schema"]


# ---- uploads ----------------------------------------------------------------------------------


def test_an_upload_up_to_the_limit_passes_one_byte_more_is_refused(limited, tmp_path):
    """A 256 KiB file is submitted; one byte more is 413 upload-too-large; the upload folder
    is empty after both."""
    client = limited("amina")
    exact = client.post(
        "/datasets/tariffs/submit", files={"file": ("t.csv", _csv_of(256 * KIB), "text/csv")}
    )
    assert exact.status_code == 201, exact.text
    limited.services.workflow.register_dataset("amina", **dataset_body("quotas"))
    limited.services.workflow.classify("amina", "quotas", **CLASSIFIED_PUBLIC)
    before = limited.services.workflow.audit.entries(limit=1)[-1].seq
    over = client.post(
        "/datasets/quotas/submit", files={"file": ("t.csv", _csv_of(256 * KIB + 1), "text/csv")}
    )
    body = is_problem(over, 413, "upload-too-large")
    assert body["limit"] == 256 * KIB
    assert limited.services.workflow.audit.entries(limit=1)[-1].seq == before
    assert leftovers(tmp_path / "uploads") == []


def test_an_upload_is_refused_as_soon_as_it_passes_the_limit(limited, tmp_path):
    """A 50 MB upload of unknown length (chunked) is answered 413 while the client is still
    sending, and nothing of it is left behind."""
    sock = connect(limited.served.url)
    head = request_head(
        limited.served.url,
        "/datasets/tariffs/submit",
        length=None,
        headers={"Authorization": f"Bearer {limited.tokens['amina']}"},
    )

    def chunked() -> Iterator[bytes]:
        yield b"%x\r\n%s\r\n" % (len(start), start)
        for chunk in rows(50_000_000):
            yield b"%x\r\n%s\r\n" % (len(chunk), chunk)

    start = file_head("file", "t.csv") + b"code,rate\n"
    sock.sendall(head)
    sent = send_until_answered(sock, chunked())
    status, body = read_answer(sock)
    sock.close()
    assert status == 413
    assert b'"code":"upload-too-large"' in body
    assert sent < 50_000_000
    assert leftovers(tmp_path / "uploads") == []


def test_an_upload_is_not_read_for_a_caller_refused_anyway(limited, tmp_path):
    """No token, another agency's dataset, a wrong role, a dataset not in a state to take a
    file: each is answered from the headers, before a byte of the file is read or stored."""
    cases = [
        ({}, "/datasets/tariffs/submit", 401),
        ({"Authorization": f"Bearer {limited.tokens['yasmine']}"}, "/datasets/tariffs/submit", 404),
        ({"Authorization": f"Bearer {limited.tokens['karim']}"}, "/datasets/tariffs/submit", 403),
        ({"Authorization": f"Bearer {limited.tokens['amina']}"}, "/datasets/none/submit", 404),
    ]
    for headers, path, status in cases:
        sock = connect(limited.served.url)
        sock.sendall(request_head(limited.served.url, path, length=100 * MIB, headers=headers))
        assert read_answer(sock)[0] == status, (headers, path)
        sock.close()
    assert leftovers(tmp_path / "uploads") == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"--" + BOUNDARY.encode() + b"\r\nno headers here", 400, "bad-request"),
        (part("reason", "x") + TAIL, 422, "invalid-request"),  # no file
        (part("note", "x") + file_head("file", "t.csv") + CSV + TAIL, 422, "invalid-request"),
        (
            file_head("file", "a.csv") + CSV + b"\r\n" + file_head("file", "b.csv") + CSV + TAIL,
            422,
            "invalid-request",
        ),
        (
            part("reason", "r" * 101) + file_head("file", "t.csv") + CSV + TAIL,
            422,
            "field-too-long",
        ),
        (
            part("reason", "\xff").replace(b"\xc3\xbf", b"\xff")
            + file_head("file", "t.csv")
            + CSV
            + TAIL,
            400,
            "bad-request",
        ),
    ],
    ids=["malformed", "no-file", "unknown-field", "two-files", "long-reason", "not-utf8"],
)
def test_a_bad_upload_form_is_refused_with_its_code(limited, tmp_path, body, status, code):
    response = limited("amina").post(
        "/datasets/tariffs/submit",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    is_problem(response, status, code)
    assert limited.services.workflow.dataset("tariffs").state == "CLASSIFIED"
    assert leftovers(tmp_path / "uploads") == []


def test_an_upload_is_streamed_to_disk_not_held_in_memory(tmp_path):
    """32 MB received in 64 KiB pieces: what is kept in memory at once stays under 1 MB; the
    file on disk has every byte, and its folder is gone once done."""
    settings = Settings(upload_dir=tmp_path, max_upload_bytes=64 * MIB)
    data = file_head("file", "big.csv")
    size = 32 * MIB
    pieces = [data, *(b"x" * 65536 for _ in range(size // 65536)), TAIL]

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": pieces.pop(0), "more_body": bool(pieces)}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())],
    }

    async def run() -> tuple[int, int, Path]:
        tracemalloc.start()
        async with received_upload(
            Request(scope, receive), settings, file_field="file", text_fields=()
        ) as upload:
            assert upload.path is not None
            stored = upload.path.stat().st_size
            folder = upload.path.parent
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return stored, peak, folder

    stored, peak, folder = anyio.run(run)
    assert stored == size
    assert peak < MIB, peak
    assert not folder.exists()


def test_many_long_texts_make_no_longer_an_answer(limited):
    """Thirty texts over the limit: the answer names the first twenty and counts the rest."""
    tags = ["t" * 101] * 30
    response = limited("amina").post("/datasets", json=dataset_body("quotas", tags=tags))
    problem = is_problem(response, 422, "field-too-long")
    assert len(problem["errors"]) == 20
    assert problem["detail"].endswith("and 10 more: longer than 100 characters; see errors")


def test_a_wide_header_is_a_coded_422_and_leaves_nothing(make_api, tmp_path):
    """A 20,000-column header with one row (about 250 kB) against the two-field schema: 422
    too-wide from the header, before validation; no review, nothing left in the upload
    folder."""
    api = make_api(upload_dir=tmp_path / "uploads")
    api.services.workflow.register_dataset("amina", **dataset_body("tariffs"))
    api.services.workflow.classify("amina", "tariffs", **CLASSIFIED_PUBLIC)
    header = ",".join(f"column{i}" for i in range(20_000)).encode()
    wide = header + b"\n" + b",".join(b"1" for _ in range(20_000)) + b"\n"
    answer = api("amina").post(
        "/datasets/tariffs/submit", files={"file": ("wide.csv", wide, "text/csv")}
    )
    body = is_problem(answer, 422, "too-wide")
    assert "column" in body["detail"]
    assert api.services.workflow.review("tariffs") is None
    assert leftovers(tmp_path / "uploads") == []
