"""Uploads (``POST /datasets/{id}/submit``), over a served API: a file name from the client
never reaches the filesystem as given, an upload is streamed to disk (never held whole in
memory) in a folder of its own, and whatever becomes of it (submitted, refused for its size,
its client gone in the middle) nothing of it is left behind."""

from __future__ import annotations

import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tabadul._uploads import safe_file_name
from tests.api.conftest import CLASSIFIED_PUBLIC, dataset_body, is_problem
from tests.support.served import wait_until
from tests.support.uploads import (
    TAIL,
    connect,
    file_head,
    leftovers,
    part,
    request_head,
    rows,
    send_until_answered,
)

ARABIC_NAME = "ب" * 130 + ".csv"  # 130 letters: 262 bytes in UTF-8, past a file name's 255
CLEAN_CSV = b"code,rate\n0101,2.5\n0102,10\n"


@pytest.fixture
def temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder of this process (the served app runs in it) for this test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def classified(api) -> str:
    """The path of the submit operation of a classified dataset of amina's."""
    flow = api.services.workflow
    flow.register_dataset("amina", **dataset_body("tariffs"))
    flow.classify("amina", "tariffs", **CLASSIFIED_PUBLIC)
    return "/datasets/tariffs/submit"


# ---- file names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("tariffs.csv", "tariffs.csv"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\amina\\tarifs 2026.csv", "tarifs-2026.csv"),
        ("\uff0fetc\uff0fpasswd", "passwd"),  # full-width solidi: slashes once normalised
        ("..", "upload.csv"),
        (".bashrc", "bashrc"),
        ("-rf.csv", "rf.csv"),
        ("", "upload.csv"),
        (None, "upload.csv"),
        ("a\x00b\nc\u202ed.csv", "a-b-c-d.csv"),  # NUL, newline, right-to-left override
        ("الولادات.csv", "الولادات.csv"),
    ],
)
def test_client_file_names_become_plain_short_names(given, kept):
    assert safe_file_name(given) == kept


@given(st.text(max_size=400))
@example(ARABIC_NAME)
@example("\udcff.csv")
@example("." * 300)
def test_any_client_file_name_can_be_created_inside_its_folder(name):
    """Whatever the client sends, the name is one plain name of at most 100 bytes (its
    extension kept), made of letters, digits, '.', '_' and '-', not hidden, and a file of
    that name is created inside the folder and nowhere else."""
    safe = safe_file_name(name)
    encoded = safe.encode("utf-8")
    assert 0 < len(encoded) <= 100
    assert all(c.isalnum() or c in "._-" for c in safe), safe
    assert safe[0] not in ".-"
    assert unicodedata.normalize("NFKC", safe) == safe
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / safe
        path.write_bytes(b"x")
        assert [p.name for p in Path(folder).iterdir()] == [safe]


def test_a_long_file_name_is_submitted_under_a_shortened_one(api, classified, temp_folder):
    """130 Arabic letters (more than a file name may hold) are no failure: the file is
    submitted, and what an error message names is the shortened name."""
    submitted = api("amina").post(
        classified, files={"file": (ARABIC_NAME, CLEAN_CSV, "text/csv")}, data={"reason": "x"}
    )
    assert submitted.status_code == 201, submitted.text
    api("amina").post("/datasets", json=dataset_body("quotas"))
    api("amina").post("/datasets/quotas/classify", json=CLASSIFIED_PUBLIC)
    refused = api("amina").post(
        "/datasets/quotas/submit", files={"file": (ARABIC_NAME, b"nope\n1\n", "text/csv")}
    )
    body = is_problem(refused, 422, "invalid-data")
    assert safe_file_name(ARABIC_NAME) in body["detail"]
    assert leftovers(temp_folder) == []


# ---- nothing left behind ----------------------------------------------------------------------


def test_a_client_gone_midway_leaves_nothing_behind(api, classified, temp_folder):
    """A client that sends half of a 4 MB upload and hangs up: once the server has noticed,
    nothing of the upload is left in the temporary folder, nor held open there; the dataset
    is unchanged, and the server goes on answering."""
    body = file_head("file", "tariffs.csv") + b"code,rate\n"
    total = len(body) + 4_000_000 + len(TAIL)
    token = api.tokens["amina"]
    for attempt in range(3):
        sock = connect(api.served.url)
        head = request_head(
            api.served.url, classified, length=total, headers={"Authorization": f"Bearer {token}"}
        )
        sock.sendall(head + body)
        send_until_answered(sock, rows(2_000_000 + attempt))
        sock.close()
    assert wait_until(lambda: leftovers(temp_folder) == []), leftovers(temp_folder)
    assert api.services.workflow.dataset("tariffs").state == "CLASSIFIED"
    assert api("amina").get("/me").status_code == 200


def test_a_submitted_or_refused_upload_leaves_nothing_behind(api, classified, temp_folder):
    """Submitted, refused by the workflow, or refused as invalid data: the temporary folder
    is empty afterwards."""
    assert api("amina").post(classified, files={"file": ("t.csv", CLEAN_CSV)}).status_code == 201
    refused = api("amina").post(classified, files={"file": ("t.csv", CLEAN_CSV)})
    is_problem(refused, 409, "illegal-transition")
    assert leftovers(temp_folder) == []


def test_a_text_part_ends_nothing_open(api, classified, temp_folder):
    """A form whose file part never ends (the client hangs up inside it) after a text part."""
    body = part("reason", "yearly") + file_head("file", "t.csv") + CLEAN_CSV
    sock = connect(api.served.url)
    head = request_head(
        api.served.url,
        classified,
        length=len(body) + 10_000,
        headers={"Authorization": f"Bearer {api.tokens['amina']}"},
    )
    sock.sendall(head + body)
    sock.close()
    assert wait_until(lambda: leftovers(temp_folder) == []), leftovers(temp_folder)
