"""Publishing when the portal fails part way: the real CKAN is stopped in the middle of a
publication (scripts/ckan-local --stop), then started again. Nothing half done is ever
public, and publishing again completes the work, reusing what was already uploaded."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Callable, Iterator

import ckanapi
import pytest

from opendata import Consumer, PortalUnavailable, Publisher, PublishInterrupted, RetryPolicy
from opendata._mapping import ckan_name, extras_of
from tests.opendata.conftest import ROOT, SCRIPT, TOKEN_FILE, URL, csv_file, run_script
from tests.opendata.test_publisher import FILES, SCHEMA
from tests.support.ckan import CA_CERTIFICATE, RELEASE_SIGNER

QUICK = RetryPolicy(attempts=2, first_delay=0.05)


def _stop_ckan() -> None:
    subprocess.run(
        ["bash", str(SCRIPT), "--stop"], cwd=ROOT, check=True, capture_output=True, timeout=120
    )


@pytest.fixture
def restarts(ckan_local) -> Iterator[None]:
    """Whatever happens in the test, CKAN is running again afterwards."""
    yield
    run_script()


@pytest.fixture
def dataset(ckan) -> Iterator[dict]:
    tag = uuid.uuid4().hex[:10]
    ds = {
        "dataset_id": f"dgi-interrupted-{tag}",
        "owner_agency": f"DGI-{tag}",
        "steward": "steward-1",
        "title": {"fr": f"Recettes fiscales {tag}"},
        "description": {"fr": "Par trimestre"},
        "licence": "cc-by",
        "tags": ["tax"],
        "classification": "PUBLIC",
    }
    yield ds
    for action, ident in (
        ("dataset_purge", ckan_name(ds["dataset_id"])),
        ("organization_purge", ckan_name(ds["owner_agency"])),
    ):
        with contextlib.suppress(ckanapi.NotFound):
            ckan.call_action(action, {"id": ident})


def _publisher(on_step: Callable[[str], None] | None = None) -> Publisher:
    token = TOKEN_FILE.read_text("utf-8").strip()
    return Publisher(URL, token, retry=QUICK, on_step=on_step, signer=RELEASE_SIGNER)


def _stop_at(wanted: str) -> Callable[[str], None]:
    def hook(step: str) -> None:
        if step == wanted:
            _stop_ckan()

    return hook


def test_ckan_stopped_mid_first_publication(ckan, dataset, tmp_path, restarts):
    """CKAN goes down after the data upload: the publication fails with
    publish-interrupted, the public never sees the package (it is private), and publishing
    again after CKAN is back completes it with exactly one copy of each file."""
    path = csv_file(tmp_path, "station,ph\nA,7.1\n")
    with pytest.raises(PublishInterrupted) as caught:
        _publisher(_stop_at("upload schema.json")).publish(dataset, path, SCHEMA, "review-1")
    assert caught.value.code == "publish-interrupted"
    assert "nothing new was made public" in caught.value.message
    assert "next publish resumes it" in caught.value.message

    run_script()
    name = ckan_name(dataset["dataset_id"])
    public = ckanapi.RemoteCKAN(URL)
    with pytest.raises((ckanapi.NotAuthorized, ckanapi.NotFound)):
        public.action.package_show(id=name)
    assert public.action.package_search(q=f'name:"{name}"')["count"] == 0
    leftover = ckan.action.package_show(id=name)
    assert leftover["private"] is True
    staged = {r["name"]: r["id"] for r in leftover["resources"]}
    assert list(staged) == ["data.csv"]

    result = _publisher().publish(dataset, path, SCHEMA, "review-1")
    assert (result.status, result.version) == ("created", 1)
    package = public.action.package_show(id=name)
    assert sorted(r["name"] for r in package["resources"]) == FILES
    reused = next(r for r in package["resources"] if r["name"] == "data.csv")
    assert reused["id"] == staged["data.csv"]


def test_ckan_stopped_before_a_new_version_is_claimed(ckan, dataset, tmp_path, restarts):
    """Version 2's files are uploaded, then CKAN goes down before the package claims them:
    the public package still is version 1, complete and verifiable; publishing again
    claims the uploaded files without uploading them twice (the release alone is signed
    again, for the time of the publication that succeeds)."""
    first = _publisher().publish(dataset, csv_file(tmp_path, "station,ph\nA,7.1\n"), SCHEMA, "r1")
    new = csv_file(tmp_path, "station,ph\nA,7.1\nB,6.2\n", "v2.csv")
    with pytest.raises(PublishInterrupted):
        _publisher(_stop_at("claim")).publish(dataset, new, SCHEMA, "review-2")

    run_script()
    package = ckan.action.package_show(id=first.name)
    assert package["version"] == "1"
    assert extras_of(package)["sha256:data.csv"] == first.sha256
    report = Consumer(URL).pull(
        dataset["dataset_id"], tmp_path / "pulled", ca_certificate=CA_CERTIFICATE
    )
    assert report.ok, report.problems
    assert report.version == 1
    unclaimed = {
        r["id"]
        for r in package["resources"]
        if r["tabadul_version"] == "2" and r["name"] != "release.json"
    }
    assert len(unclaimed) == 3  # data, schema, datapackage (and a release, signed again)

    second = _publisher().publish(dataset, new, SCHEMA, "review-2")
    assert (second.status, second.version) == ("updated", 2)
    package = ckan.action.package_show(id=first.name)
    current = {
        r["id"]
        for r in package["resources"]
        if r["tabadul_version"] == "2" and r["name"] != "release.json"
    }
    assert current == unclaimed
    assert len(package["resources"]) == 8


def test_failure_while_the_portal_is_up_is_rolled_back(ckan, dataset, tmp_path):
    """A failure part way with CKAN still answering: the private package this attempt
    created is purged, and the error says it was rolled back."""

    def fail(step: str) -> None:
        if step == "upload datapackage.json":
            raise PortalUnavailable("the portal timed out (injected)")

    path = csv_file(tmp_path, "station,ph\nA,7.1\n")
    with pytest.raises(PublishInterrupted) as caught:
        _publisher(fail).publish(dataset, path, SCHEMA, "review-1")
    assert "rolled back" in caught.value.message
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id=ckan_name(dataset["dataset_id"]))


def test_unreachable_portal_is_retried_then_reported(dataset, tmp_path):
    """Nothing listens: each call is retried with backoff, then portal-unavailable."""
    pauses: list[float] = []
    publisher = Publisher(
        "http://127.0.0.1:9",
        "token",
        retry=RetryPolicy(attempts=3),
        sleep=pauses.append,
        signer=RELEASE_SIGNER,
    )
    with pytest.raises(PortalUnavailable) as caught:
        publisher.publish(dataset, csv_file(tmp_path, "station,ph\nA,7.1\n"), SCHEMA, "review-1")
    assert caught.value.code == "portal-unavailable"
    assert "unreachable" in caught.value.message
    assert pauses == [0.5, 1.0]
