"""Uploads through the console's submit form, over a served console: a client's file name
never reaches the filesystem as given (a long one is a submission, not a failure), and
nothing of an upload is left behind, whatever becomes of it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import pytest

from tests.console.conftest import CLEAN_CSV, World, csrf_of, sign_in
from tests.support.served import Served, wait_until
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


@pytest.fixture
def temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder of this process (the served console runs in it) for this test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def steward(world: World, client: httpx.Client) -> httpx.Client:
    """amina, signed in, with the world's dataset classified PUBLIC."""
    sign_in(client, world.tokens["amina"])
    world.services.workflow.classify(
        "amina",
        world.dataset_id,
        level="PUBLIC",
        personal_data=False,
        legal_basis="Loi 31-13",
        justification="agrégats",
    )
    return client


def test_a_long_arabic_file_name_is_submitted(world, steward, temp_folder):
    """130 Arabic letters as the file name: the file is submitted (the page says so), not a
    server error; nothing is left in the temporary folder."""
    page = steward.post(
        f"/console/datasets/{world.dataset_id}/submit",
        data={"csrf": csrf_of(steward, world.dataset_id), "reason": "2025"},
        files={"data": (ARABIC_NAME, CLEAN_CSV.encode(), "text/csv")},
    )
    assert page.status_code == 200, page.text[:500]
    assert page.headers["content-type"].startswith("text/html")
    assert 'class="flash flash-ok" role="status" id="flash"' in page.text
    assert world.services.workflow.dataset(world.dataset_id).state == "IN_REVIEW"
    assert leftovers(temp_folder) == []


def test_a_client_gone_midway_leaves_nothing_behind(world, steward, server: Served, temp_folder):
    """A browser that sends half of a 4 MB upload and hangs up: nothing is left in the
    temporary folder, nor held open there, and the dataset is unchanged."""
    csrf = csrf_of(steward, world.dataset_id)
    session = steward.cookies["tabadul_console"]
    body = part("csrf", csrf) + file_head("data", "naissances.csv") + b"region,annee\n"
    total = len(body) + 4_000_000 + len(TAIL)
    for attempt in range(3):
        sock = connect(server.url)
        head = request_head(
            server.url,
            f"/console/datasets/{world.dataset_id}/submit",
            length=total,
            headers={"Cookie": f"tabadul_console={session}"},
        )
        sock.sendall(head + body)
        send_until_answered(sock, rows(2_000_000 + attempt))
        sock.close()
    assert wait_until(lambda: leftovers(temp_folder) == []), leftovers(temp_folder)
    assert world.services.workflow.dataset(world.dataset_id).state == "CLASSIFIED"
