"""The governed pipeline end to end on the real CKAN: submit (PII screening + Frictionless,
reports kept with the review), four-eyes approval, publish exactly the approved bytes,
new versions, withdrawal recorded in the audit log, and every refusal with its code."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import ckanapi
import pytest

from governance import (
    GovernanceStore,
    IllegalTransition,
    NotPublishable,
    PiiUnresolved,
    State,
    Workflow,
    quality,
)
from opendata import (
    DataFiles,
    InvalidData,
    MissingFile,
    OpenData,
    PackageNotOurs,
    PortalRefused,
    PortalUnavailable,
    Publisher,
    RetryPolicy,
    ckan_name,
)
from opendata._mapping import extras_of
from tests.opendata.conftest import TOKEN_FILE, URL
from tests.support.ckan import RELEASE_SIGNER

SCHEMA = {
    "fields": [
        {"name": "region", "type": "string", "constraints": {"required": True}},
        {"name": "year", "type": "integer"},
        {"name": "revenue", "type": "number"},
    ]
}
ROWS = "region,year,revenue\nCasablanca-Settat,2025,1200.5\nSouss-Massa,2025,310.25\n"


def ds_review_id(env: Env) -> int:
    review = env.flow.review(env.dataset_id)
    assert review is not None
    return review.review_id


class Env:
    def __init__(self, tmp_path: Path, token: str, ckan_url: str = URL) -> None:
        self.store = GovernanceStore.open(str(tmp_path / "governance.sqlite"))
        self.flow = Workflow(self.store)
        self.tag = uuid.uuid4().hex[:8]
        self.agency = f"DGI{self.tag.upper()}"
        self.dataset_id = f"dgi-revenue-{self.tag}"
        self.publisher = Publisher(
            ckan_url, token, retry=RetryPolicy(attempts=2, first_delay=0), signer=RELEASE_SIGNER
        )
        self.pipeline = OpenData(self.flow, DataFiles(tmp_path / "data"), self.publisher)
        self.tmp = tmp_path
        flow = self.flow
        flow.register_user(None, "root", name="Root", agency="DNUM", roles=["operator"])
        for user, roles in (("amina", ["steward"]), ("karim", ["approver"])):
            flow.register_user("root", user, name=user, agency=self.agency, roles=roles)
        flow.register_user("root", "omar", name="Omar", agency="OTHER", roles=["approver"])
        flow.register_dataset(
            "amina",
            self.dataset_id,
            title={"fr": f"Recettes par région {self.tag}", "ar": "المداخيل حسب الجهة"},
            description={"fr": "Recettes fiscales annuelles par région"},
            source="exports/revenue.csv",
            table_schema=SCHEMA,
            licence="cc-by",
            update_frequency="yearly",
            tags=["tax"],
        )

    def close(self, ckan: ckanapi.RemoteCKAN) -> None:
        """Close the database; purge the package and organisation from CKAN."""
        self.store.close()
        for action, ident in (
            ("dataset_purge", ckan_name(self.dataset_id)),
            ("organization_purge", ckan_name(self.agency)),
        ):
            with contextlib.suppress(ckanapi.NotFound):
                ckan.call_action(action, {"id": ident})

    def csv(self, text: str, name: str = "revenue.csv") -> Path:
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return path

    def classify(self, level: str = "PUBLIC", *, personal_data: bool = False) -> None:
        self.flow.classify(
            "amina",
            self.dataset_id,
            level=level,
            personal_data=personal_data,
            legal_basis="Loi 31-13 (access to information)",
            justification="aggregates only",
        )

    def approved(self, text: str = ROWS) -> Path:
        path = self.csv(text)
        self.pipeline.submit("amina", self.dataset_id, path)
        self.flow.approve("karim", self.dataset_id)
        return path


@pytest.fixture
def env(ckan, tmp_path) -> Iterator[Env]:
    made = Env(tmp_path, TOKEN_FILE.read_text("utf-8").strip())
    yield made
    made.close(ckan)


def test_submit_keeps_both_reports_with_the_review(env):
    """The review holds the PII and validation reports (data, never values) and the bytes'
    SHA-256; the bytes are in the data store under that hash."""
    env.classify()
    path = env.csv(ROWS)
    submission = env.pipeline.submit("amina", env.dataset_id, path, reason="2025 figures")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    review = env.flow.review(env.dataset_id)
    assert review.content_sha256 == sha == submission.review.content_sha256
    assert review.reports["validation"] == {"valid": True, "rows": 2, "errors": []}
    assert review.reports["pii"]["rows_scanned"] == 2
    assert env.pipeline.files.path(sha).read_bytes() == path.read_bytes()
    assert "Casablanca" not in repr(review.reports)


def test_publish_sends_the_approved_bytes_and_records_it(env, ckan):
    """Approved -> published: the package holds the approved bytes even though the original
    file changed after approval; the dataset is PUBLISHED with the package reference."""
    env.classify()
    path = env.approved()
    approved_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_text(ROWS + "Oriental,2025,99\n", encoding="utf-8")  # changed afterwards

    result = env.pipeline.publish("amina", env.dataset_id)
    assert (result.status, result.version, result.sha256) == ("created", 1, approved_sha)
    ds = env.flow.dataset(env.dataset_id)
    assert ds.state is State.PUBLISHED
    assert ds.published_sha256 == approved_sha
    assert ds.publication_reference == f"{result.package_id}@1"
    package = ckan.action.package_show(id=result.name)
    assert extras_of(package)["sha256:data.csv"] == approved_sha
    assert extras_of(package)["approval_reference"] == f"review:{ds_review_id(env)}"
    expected = quality(env.flow.dataset(env.dataset_id)).score
    assert extras_of(package)["quality_score"] == str(expected)
    actions = [e.action for e in env.flow.history(env.dataset_id)]
    assert actions[-1] == "dataset.publish"


def test_new_approved_bytes_become_version_two(env):
    env.classify()
    env.approved()
    env.pipeline.publish("amina", env.dataset_id)
    env.pipeline.submit("amina", env.dataset_id, env.csv(ROWS + "Oriental,2025,99\n", "v2.csv"))
    env.flow.approve("karim", env.dataset_id)
    result = env.pipeline.publish("amina", env.dataset_id)
    assert (result.status, result.version) == ("updated", 2)
    assert env.flow.dataset(env.dataset_id).publication_reference == f"{result.package_id}@2"


def test_withdrawal_purges_and_is_audited_with_its_reason(env, ckan):
    env.classify()
    env.approved()
    published = env.pipeline.publish("amina", env.dataset_id)
    result = env.pipeline.withdraw("root", env.dataset_id, reason="a region asked for removal")
    assert (result.files_deleted, result.name) == (4, published.name)
    assert env.flow.dataset(env.dataset_id).state is State.WITHDRAWN
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id=published.name)
    last = env.flow.history(env.dataset_id)[-1]
    assert (last.action, last.actor, last.reason) == (
        "dataset.withdraw",
        "root",
        "a region asked for removal",
    )
    env.flow.audit.verify()


def test_unapproved_dataset_is_not_published(env, ckan):
    env.classify()
    env.pipeline.submit("amina", env.dataset_id, env.csv(ROWS))
    with pytest.raises(IllegalTransition) as caught:
        env.pipeline.publish("amina", env.dataset_id)
    assert caught.value.code == "illegal-transition"
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id=ckan_name(env.dataset_id))


def test_non_public_data_is_refused_before_any_work(env):
    env.classify("RESTRICTED")
    with pytest.raises(NotPublishable) as caught:
        env.pipeline.submit("amina", env.dataset_id, env.csv(ROWS))
    assert "RESTRICTED" in caught.value.message
    assert not (env.tmp / "data").exists()


def test_unresolved_pii_blocks_approval(env):
    env.classify()
    names = env.csv("region,year,revenue\namina@example.ma,2025,1\n", "mail.csv")
    submission = env.pipeline.submit("amina", env.dataset_id, names)
    assert [f.finding_id for f in submission.review.findings] == ["region:email"]
    with pytest.raises(PiiUnresolved) as caught:
        env.flow.approve("karim", env.dataset_id)
    assert caught.value.findings == ("region:email",)


def test_invalid_data_is_refused_with_its_report_and_nothing_is_submitted(env):
    env.classify()
    with pytest.raises(InvalidData) as caught:
        env.pipeline.submit("amina", env.dataset_id, env.csv("region,year,revenue\n,20x5,1\n"))
    fields = {(e.row, e.field) for e in caught.value.report.errors}
    assert (2, "region") in fields
    assert (2, "year") in fields
    assert env.flow.dataset(env.dataset_id).state is State.CLASSIFIED
    assert env.flow.review(env.dataset_id) is None


def test_missing_file_is_a_clear_error(env):
    env.classify()
    with pytest.raises(MissingFile) as caught:
        env.pipeline.submit("amina", env.dataset_id, env.tmp / "nope.csv")
    assert caught.value.code == "missing-file"


def test_bad_ckan_token_leaves_the_dataset_approved(env, tmp_path):
    env.classify()
    env.approved()
    env.pipeline.portal = Publisher(URL, "not-a-token", signer=RELEASE_SIGNER)
    with pytest.raises(PortalRefused):
        env.pipeline.publish("amina", env.dataset_id)
    assert env.flow.dataset(env.dataset_id).state is State.APPROVED


def test_unreachable_ckan_leaves_the_dataset_approved(env):
    env.classify()
    env.approved()
    env.pipeline.portal = Publisher(
        "http://127.0.0.1:9",
        "t",
        retry=RetryPolicy(attempts=2, first_delay=0),
        signer=RELEASE_SIGNER,
    )
    with pytest.raises(PortalUnavailable) as caught:
        env.pipeline.publish("amina", env.dataset_id)
    assert "unreachable" in caught.value.message
    assert env.flow.dataset(env.dataset_id).state is State.APPROVED


def test_a_name_taken_over_on_the_portal_is_neither_published_into_nor_withdrawn(env, ckan):
    """The dataset's package was replaced on the portal by another organisation's of the same
    name: a new version and the withdrawal are refused with package-not-ours, the other
    package is left as it was, and governance records nothing."""
    env.classify()
    env.approved()
    published = env.pipeline.publish("amina", env.dataset_id)
    ckan.action.dataset_purge(id=published.package_id)
    other = f"other-{env.tag}"
    ckan.action.organization_create(name=other)
    try:
        ckan.action.package_create(name=published.name, owner_org=other, title="Someone else's")
        before = ckan.action.package_show(id=published.name)
        entries = len(env.flow.history(env.dataset_id))
        with pytest.raises(PackageNotOurs):
            env.pipeline.withdraw("root", env.dataset_id, reason="taken down")
        env.pipeline.submit("amina", env.dataset_id, env.csv(ROWS + "Oriental,2025,9\n", "v2.csv"))
        env.flow.approve("karim", env.dataset_id)
        with pytest.raises(PackageNotOurs):
            env.pipeline.publish("amina", env.dataset_id)
        assert ckan.action.package_show(id=published.name) == before
        assert env.flow.dataset(env.dataset_id).state is State.APPROVED
        assert [e.action for e in env.flow.history(env.dataset_id)[entries:]] == [
            "dataset.submit",
            "dataset.approve",
        ]
    finally:
        with contextlib.suppress(ckanapi.NotFound):
            ckan.action.dataset_purge(id=published.name)
        ckan.action.organization_purge(id=other)
