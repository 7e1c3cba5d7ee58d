"""Size limits in the console, as the management API serves it (under /console): a form's
body, each of its texts and an uploaded file are refused with a page (never a JSON body or
a server error) carrying the same code and status as the API's, and change nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tabadul._http import BodyTooLarge, FieldTooLong, UploadTooLarge
from tabadul._services import Services
from tabadul.api import create_app
from tabadul.api._problems import STATUS
from tabadul.console._router import page_status
from tests.console.conftest import CLEAN_CSV, World, csrf_of, sign_in
from tests.support.served import Served
from tests.support.uploads import BOUNDARY, TAIL, file_head, leftovers, part

KIB = 1024


@pytest.fixture
def console(world: World, tmp_path: Path) -> Iterator[httpx.Client]:
    """amina signed in to the console of the management API with small limits (16 KiB
    bodies, 80-character texts, 64 KiB uploads in tmp_path/uploads), the world's dataset
    classified PUBLIC."""
    settings = dataclasses.replace(
        world.services.settings,
        max_body_bytes=16 * KIB,
        max_field_chars=80,
        max_upload_bytes=64 * KIB,
        upload_dir=tmp_path / "uploads",
    )
    world.services.workflow.classify(
        "amina",
        world.dataset_id,
        level="PUBLIC",
        personal_data=False,
        legal_basis="Loi 31-13",
        justification="agrégats",
    )
    served = Served(create_app(Services(settings, world.services.store)))
    client = served.client(follow_redirects=True)
    sign_in(client, world.tokens["amina"])
    yield client
    served.close()


def _refused(page: httpx.Response, status: int, code: str) -> None:
    assert page.status_code == status, page.text[:300]
    assert page.headers["content-type"].startswith("text/html")
    assert f'data-code="{code}"' in page.text
    assert "error.generic" not in page.text


def test_a_text_over_the_limit_is_a_page_with_its_code(world, console):
    """A text of 81 characters on any form is a 422 page field-too-long; nothing changes."""
    url = f"/console/datasets/{world.dataset_id}"
    csrf = csrf_of(console, world.dataset_id)
    for form in ("classify", "reject", "withdraw"):
        page = console.post(f"{url}/{form}", data={"csrf": csrf, "justification": "j" * 81,
                                                   "reason": "r" * 81})  # fmt: skip
        _refused(page, 422, "field-too-long")
    assert world.services.workflow.dataset(world.dataset_id).state == "CLASSIFIED"


def test_a_body_over_the_limit_is_a_page_with_its_code(world, console):
    page = console.post(
        f"/console/datasets/{world.dataset_id}/reject",
        data={"csrf": csrf_of(console, world.dataset_id), "reason": "r" * (17 * KIB)},
    )
    _refused(page, 413, "body-too-large")


def test_an_upload_over_the_limit_is_a_page_and_leaves_nothing(world, console, tmp_path):
    big = CLEAN_CSV.encode() + b"Souss-Massa,2025,1,HCP\n" * (64 * KIB // 20)
    page = console.post(
        f"/console/datasets/{world.dataset_id}/submit",
        data={"csrf": csrf_of(console, world.dataset_id)},
        files={"data": ("naissances.csv", big, "text/csv")},
    )
    _refused(page, 413, "upload-too-large")
    assert world.services.workflow.dataset(world.dataset_id).state == "CLASSIFIED"
    assert leftovers(tmp_path / "uploads") == []


def test_a_malformed_upload_form_is_a_page(world, console, tmp_path):
    csrf = csrf_of(console, world.dataset_id)
    for body, status, code in (
        (part("csrf", csrf) + b"--" + BOUNDARY.encode() + b"\r\nno end", 400, "bad-request"),
        (part("csrf", csrf) + part("other", "x") + TAIL, 422, "invalid-request"),
        (part("csrf", csrf) + part("reason", "é" * 81) + TAIL, 422, "field-too-long"),
    ):
        page = console.post(
            f"/console/datasets/{world.dataset_id}/submit",
            content=body,
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        _refused(page, status, code)
    assert leftovers(tmp_path / "uploads") == []


def test_a_form_without_a_file_asks_for_one(world, console):
    """What a browser sends when no file was chosen: an empty file part."""
    page = console.post(
        f"/console/datasets/{world.dataset_id}/submit",
        data={"csrf": csrf_of(console, world.dataset_id)},
        files={"data": ("", b"", "application/octet-stream")},
    )
    assert page.status_code == 200
    assert 'data-code="invalid-input"' in page.text
    assert world.services.workflow.dataset(world.dataset_id).state == "CLASSIFIED"


def test_an_upload_at_the_limit_is_submitted(world, console):
    row = b"Souss-Massa,2025,40321,HCP\n"
    data = CLEAN_CSV.encode()
    data += row * ((64 * KIB - len(data)) // len(row))
    page = console.post(
        f"/console/datasets/{world.dataset_id}/submit",
        data={"csrf": csrf_of(console, world.dataset_id), "reason": "r" * 80},
        files={"data": ("naissances.csv", data, "text/csv")},
    )
    assert page.status_code == 200
    assert "flash-ok" in page.text
    assert world.services.workflow.dataset(world.dataset_id).state == "IN_REVIEW"


@pytest.mark.parametrize("error", [BodyTooLarge(1), UploadTooLarge(1), FieldTooLong(1, [])])
def test_the_console_and_the_api_give_each_code_one_status(error):
    assert page_status(error) == STATUS[error.code] == error.status_code


def test_the_upload_body_is_not_read_before_the_session_is_checked(world, tmp_path):
    """A console upload without a session is sent to the sign-in page before its file is
    read (a file part's head is all there is)."""
    settings = dataclasses.replace(world.services.settings, upload_dir=tmp_path / "uploads")
    served = Served(create_app(Services(settings, world.services.store)))
    try:
        answer = served.client().post(
            f"/console/datasets/{world.dataset_id}/submit",
            content=file_head("data", "x.csv"),
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/signin")
    finally:
        served.close()
    assert leftovers(tmp_path / "uploads") == []
