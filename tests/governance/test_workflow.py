"""The dataset workflow: every allowed transition, every refusal, and the audit entry of each."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest

from governance import (
    AlreadyExists,
    AuditEntry,
    InvalidInput,
    Refused,
    Resolution,
    Role,
    State,
    UnknownDataset,
    UnknownFinding,
    UnknownUser,
    User,
    Workflow,
    WrongRole,
)
from governance import _workflow as workflow_module
from tests.governance.conftest import SHA_A, SHA_B, classify, register

REFERENCE = "ckan:douane-tariffs"


def drive(flow: Workflow, state: State, *, findings: tuple[str, ...] = ()) -> None:
    """Bring dataset ``tariffs`` to ``state`` by the ordinary path."""
    register(flow)
    if state is State.DRAFT:
        return
    classify(flow)
    if state is State.CLASSIFIED:
        return
    flow.submit_for_review("amina", "tariffs", content_sha256=SHA_A, pii_findings=findings)
    if state is State.IN_REVIEW:
        return
    if state is State.REJECTED:
        flow.reject("karim", "tariffs", reason="the rate column is undocumented")
        return
    flow.approve("karim", "tariffs")
    if state is State.APPROVED:
        return
    flow.mark_published("amina", "tariffs", content_sha256=SHA_A, reference=REFERENCE)
    if state is State.PUBLISHED:
        return
    flow.withdraw("amina", "tariffs", reason="superseded by the 2027 tariff")


def last(flow: Workflow) -> AuditEntry:
    return flow.audit.entries(limit=1)[0]


def assert_audited(flow: Workflow, before: int, **expected: Any) -> AuditEntry:
    """Exactly one new entry, about the dataset, carrying ``expected`` (from/to in details)."""
    entries = flow.audit.entries()
    assert len(entries) == before + 1
    entry = entries[-1]
    for key in ("from", "to"):
        if key in expected:
            assert entry.details[key] == expected.pop(key)
    for key, value in expected.items():
        assert getattr(entry, key) == value, key
    flow.audit.verify()
    return entry


def count(flow: Workflow) -> int:
    return len(flow.audit.entries())


# ---- allowed transitions ----------------------------------------------------------------


def test_register_dataset_is_draft_and_audited(flow):
    """Registering a dataset puts it in DRAFT, owned by the steward's agency, audited."""
    before = count(flow)
    register(flow)
    ds = flow.dataset("tariffs")
    assert ds.state is State.DRAFT
    assert ds.owner_agency == "DOUANE"
    assert ds.steward == "amina"
    assert ds.title["ar"] == "التعريفة الجمركية"
    entry = assert_audited(
        flow, before, actor="amina", action="dataset.register", subject="dataset:tariffs"
    )
    assert entry.details["to"] == "DRAFT"
    assert entry.details["title"]["fr"] == "Tarif douanier"


def test_classify_moves_draft_to_classified(flow):
    """A steward classifies a DRAFT dataset; the justification is the audit reason."""
    drive(flow, State.DRAFT)
    before = count(flow)
    classify(flow)
    ds = flow.dataset("tariffs")
    assert ds.state is State.CLASSIFIED
    assert ds.classification is not None
    assert ds.classification.classified_by == "amina"
    assert ds.classification.publishable
    entry = assert_audited(
        flow,
        before,
        actor="amina",
        action="dataset.classify",
        reason="published tariff, no personal data",
        **{"from": "DRAFT", "to": "CLASSIFIED"},
    )
    assert entry.details["level"] == "PUBLIC"
    assert entry.details["personal_data"] is False


def test_classify_again_before_submission(flow):
    """A CLASSIFIED dataset may be classified again (by another steward) before submission."""
    drive(flow, State.CLASSIFIED)
    before = count(flow)
    classify(flow, actor="samir", level="INTERNAL", justification="contains draft rates")
    ds = flow.dataset("tariffs")
    assert ds.classification is not None
    assert ds.classification.level == "INTERNAL"
    assert ds.classification.classified_by == "samir"
    assert_audited(flow, before, actor="samir", **{"from": "CLASSIFIED", "to": "CLASSIFIED"})


def test_submit_moves_to_review_with_findings(flow):
    """Submitting records the content hash and the PII findings, each unresolved."""
    drive(flow, State.CLASSIFIED)
    before = count(flow)
    review = flow.submit_for_review(
        "samir", "tariffs", content_sha256=SHA_A.upper(), pii_findings=["f-1", "f-2"]
    )
    assert review.content_sha256 == SHA_A
    assert review.unresolved == ("f-1", "f-2")
    assert review.decision == "open"
    assert flow.dataset("tariffs").state is State.IN_REVIEW
    assert flow.dataset("tariffs").content_sha256 == SHA_A
    entry = assert_audited(
        flow,
        before,
        actor="samir",
        action="dataset.submit",
        content_sha256=SHA_A,
        **{"from": "CLASSIFIED", "to": "IN_REVIEW"},
    )
    assert entry.details["findings"] == ["f-1", "f-2"]


def test_resolve_finding_keeps_review_open(flow):
    """Resolving a finding records who, how and why; the dataset stays IN_REVIEW."""
    drive(flow, State.IN_REVIEW, findings=("f-1", "f-2"))
    before = count(flow)
    review = flow.resolve_finding(
        "samir", "tariffs", "f-1", resolution="justify", reason="birth year only"
    )
    resolved = review.findings[0]
    assert resolved.resolution is Resolution.JUSTIFY
    assert resolved.resolved_by == "samir"
    assert review.unresolved == ("f-2",)
    assert flow.dataset("tariffs").state is State.IN_REVIEW
    entry = assert_audited(
        flow,
        before,
        actor="samir",
        action="finding.resolve",
        reason="birth year only",
        content_sha256=SHA_A,
        **{"from": "IN_REVIEW", "to": "IN_REVIEW"},
    )
    assert entry.details["finding"] == "f-1"
    assert entry.details["resolution"] == "justify"


@pytest.mark.parametrize("resolution", ["drop", "generalise"])
def test_dropping_or_generalising_by_hand_is_refused(flow, resolution):
    """The finding is in the bytes under review: only a recorded derivation drops or
    generalises it; by hand, only justify. Nothing changes."""
    drive(flow, State.IN_REVIEW, findings=("f-1",))
    before = count(flow)
    with pytest.raises(Refused) as caught:
        flow.resolve_finding("amina", "tariffs", "f-1", resolution=resolution, reason="x")
    assert caught.value.code == "needs-derivation"
    assert "tabadul dataset derive" in caught.value.message
    assert flow.review("tariffs").unresolved == ("f-1",)
    assert count(flow) == before


def test_approve_after_every_finding_is_resolved(flow):
    """Another approver approves once every finding is resolved; the approval binds the hash."""
    drive(flow, State.IN_REVIEW, findings=("f-1",))
    flow.resolve_finding("amina", "tariffs", "f-1", resolution="justify", reason="office phone")
    before = count(flow)
    review = flow.approve("karim", "tariffs", reason="checked against the gazette")
    assert review.decision == "approved"
    assert review.decided_by == "karim"
    assert review.content_sha256 == SHA_A
    assert flow.dataset("tariffs").state is State.APPROVED
    assert_audited(
        flow,
        before,
        actor="karim",
        action="dataset.approve",
        content_sha256=SHA_A,
        reason="checked against the gazette",
        **{"from": "IN_REVIEW", "to": "APPROVED"},
    )


@pytest.mark.parametrize("publisher", ["amina", "root"])
def test_mark_published_with_the_approved_bytes(flow, publisher):
    """The agency's steward, or the operator's pipeline, records the publication."""
    drive(flow, State.APPROVED)
    before = count(flow)
    ds = flow.mark_published(publisher, "tariffs", content_sha256=SHA_A, reference=REFERENCE)
    assert ds.state is State.PUBLISHED
    assert ds.published_sha256 == SHA_A
    assert ds.publication_reference == REFERENCE
    entry = assert_audited(
        flow,
        before,
        actor=publisher,
        action="dataset.publish",
        content_sha256=SHA_A,
        **{"from": "APPROVED", "to": "PUBLISHED"},
    )
    assert entry.details["reference"] == REFERENCE


@pytest.mark.parametrize("who", ["amina", "karim", "root"])
def test_withdraw_a_published_dataset(flow, who):
    """A steward or approver of the agency, or an operator, withdraws for good."""
    drive(flow, State.PUBLISHED)
    before = count(flow)
    ds = flow.withdraw(who, "tariffs", reason="errors found in the rates")
    assert ds.state is State.WITHDRAWN
    assert ds.published_sha256 is None
    assert_audited(
        flow,
        before,
        actor=who,
        action="dataset.withdraw",
        content_sha256=SHA_A,
        reason="errors found in the rates",
        **{"from": "PUBLISHED", "to": "WITHDRAWN"},
    )


def test_reject_then_reopen_to_draft(flow):
    """An approver rejects (IN_REVIEW -> REJECTED); the steward reopens (-> DRAFT)."""
    drive(flow, State.IN_REVIEW)
    before = count(flow)
    review = flow.reject("karim", "tariffs", reason="the rate column is undocumented")
    assert review.decision == "rejected"
    assert flow.dataset("tariffs").state is State.REJECTED
    assert_audited(
        flow,
        before,
        actor="karim",
        action="dataset.reject",
        content_sha256=SHA_A,
        reason="the rate column is undocumented",
        **{"from": "IN_REVIEW", "to": "REJECTED"},
    )
    flow.reopen("amina", "tariffs", reason="documenting the rate column")
    assert flow.dataset("tariffs").state is State.DRAFT
    assert_audited(
        flow,
        before + 1,
        actor="amina",
        action="dataset.reopen",
        **{"from": "REJECTED", "to": "DRAFT"},
    )
    classify(flow)
    assert flow.dataset("tariffs").state is State.CLASSIFIED


def test_changed_bytes_after_approval_need_a_new_review(flow):
    """New bytes after approval go back to review; once approved, they publish."""
    drive(flow, State.APPROVED)
    before = count(flow)
    review = flow.submit_for_review("amina", "tariffs", content_sha256=SHA_B)
    assert review.content_sha256 == SHA_B
    assert_audited(flow, before, content_sha256=SHA_B, **{"from": "APPROVED", "to": "IN_REVIEW"})
    flow.approve("karim", "tariffs")
    ds = flow.mark_published("amina", "tariffs", content_sha256=SHA_B, reference=REFERENCE)
    assert ds.published_sha256 == SHA_B


def test_new_version_of_a_published_dataset(flow):
    """A published dataset's new bytes are reviewed while the old version stays live, and it
    can still be withdrawn meanwhile."""
    drive(flow, State.PUBLISHED)
    flow.submit_for_review("amina", "tariffs", content_sha256=SHA_B)
    ds = flow.dataset("tariffs")
    assert ds.state is State.IN_REVIEW
    assert ds.published_sha256 == SHA_A
    before = count(flow)
    ds = flow.withdraw("root", "tariffs", reason="court order")
    assert ds.state is State.WITHDRAWN
    review = flow.review("tariffs")
    assert review is not None
    assert review.decision == "superseded"
    assert_audited(flow, before, content_sha256=SHA_A, **{"from": "IN_REVIEW", "to": "WITHDRAWN"})


def test_history_lists_every_step(flow):
    """The dataset's history is its audit entries, in order, from registration to withdrawal."""
    drive(flow, State.WITHDRAWN)
    actions = [e.action for e in flow.history("tariffs")]
    assert actions == [
        "dataset.register",
        "dataset.classify",
        "dataset.submit",
        "dataset.approve",
        "dataset.publish",
        "dataset.withdraw",
    ]
    report = flow.audit.verify()
    assert report.count == len(flow.audit.entries())


# ---- refusals ---------------------------------------------------------------------------


class Case(NamedTuple):
    """Reach ``state``, have ``actor`` try ``operation``: refused with ``code``, and the
    message holds each of ``words``."""

    state: State
    actor: str
    operation: str
    code: str
    words: tuple[str, ...]
    sha: str = SHA_A


REFUSALS = [
    # wrong role
    Case(State.IN_REVIEW, "amina", "approve", "wrong-role", ("amina (steward)", "an approver")),
    Case(State.DRAFT, "karim", "classify", "wrong-role", ("karim (approver)", "only a steward")),
    Case(State.DRAFT, "root", "classify", "wrong-role", ("root (operator)", "only a steward")),
    Case(State.CLASSIFIED, "karim", "submit", "wrong-role", ("only a steward",)),
    Case(State.IN_REVIEW, "audrey", "reject", "wrong-role", ("audrey (auditor)",)),
    Case(State.PUBLISHED, "audrey", "withdraw", "wrong-role", ("only an approver",)),
    Case(State.APPROVED, "karim", "publish", "wrong-role", ("only an operator or a steward",)),
    # other agency
    Case(State.DRAFT, "yasmine", "classify", "other-agency", ("yasmine belongs to MEF",)),
    Case(State.IN_REVIEW, "omar", "approve", "other-agency", ("only people of DOUANE",)),
    Case(State.IN_REVIEW, "omar", "reject", "other-agency", ("belongs to DOUANE",)),
    Case(State.PUBLISHED, "yasmine", "withdraw", "other-agency", ("belongs to DOUANE",)),
    Case(State.APPROVED, "yasmine", "publish", "other-agency", ("belongs to DOUANE",)),
    # changed bytes
    Case(State.APPROVED, "amina", "publish", "changed-since-approval",
         ("not the bytes approved", "new review"), sha=SHA_B),
    # illegal transitions
    Case(State.DRAFT, "karim", "approve", "illegal-transition",
         ("is DRAFT", "only a dataset that is IN_REVIEW can be approved")),
    Case(State.DRAFT, "amina", "submit", "illegal-transition", ("CLASSIFIED",)),
    Case(State.IN_REVIEW, "amina", "publish", "illegal-transition", ("can be published",)),
    Case(State.IN_REVIEW, "amina", "classify", "illegal-transition", ("is IN_REVIEW",)),
    Case(State.CLASSIFIED, "karim", "reject", "illegal-transition", ("is CLASSIFIED",)),
    Case(State.CLASSIFIED, "amina", "reopen", "illegal-transition", ("REJECTED",)),
    Case(State.DRAFT, "amina", "withdraw", "illegal-transition", ("can be withdrawn",)),
    Case(State.WITHDRAWN, "amina", "withdraw", "illegal-transition", ("is WITHDRAWN",)),
    Case(State.WITHDRAWN, "amina", "submit", "illegal-transition", ("is WITHDRAWN",)),
    Case(State.PUBLISHED, "amina", "publish", "illegal-transition", ("is PUBLISHED",)),
    Case(State.APPROVED, "karim", "approve", "illegal-transition", ("is APPROVED",)),
    Case(State.REJECTED, "amina", "submit", "illegal-transition", ("is REJECTED",)),
    Case(State.CLASSIFIED, "amina", "resolve", "illegal-transition", ("is CLASSIFIED",)),
]  # fmt: skip


def run(flow: Workflow, case: Case) -> object:
    actor, sha = case.actor, case.sha
    calls = {
        "classify": lambda: classify(flow, actor=actor),
        "submit": lambda: flow.submit_for_review(actor, "tariffs", content_sha256=sha),
        "resolve": lambda: flow.resolve_finding(
            actor, "tariffs", "f-1", resolution="justify", reason="aggregate only"
        ),
        "approve": lambda: flow.approve(actor, "tariffs"),
        "reject": lambda: flow.reject(actor, "tariffs", reason="no"),
        "reopen": lambda: flow.reopen(actor, "tariffs", reason="again"),
        "publish": lambda: flow.mark_published(
            actor, "tariffs", content_sha256=sha, reference=REFERENCE
        ),
        "withdraw": lambda: flow.withdraw(actor, "tariffs", reason="take down"),
    }
    return calls[case.operation]()


@pytest.mark.parametrize(
    "case", REFUSALS, ids=[f"{c.code}-{c.operation}-by-{c.actor}-from-{c.state}" for c in REFUSALS]
)
def test_refused(flow, case):
    """Each refusal has its code and a message naming who, what and why; nothing changes and
    nothing is audited."""
    drive(flow, case.state)
    before = flow.dataset("tariffs")
    entries = count(flow)
    with pytest.raises(Refused) as caught:
        run(flow, case)
    assert caught.value.code == case.code
    for word in case.words:
        assert word in caught.value.message
    assert caught.value.as_dict()["code"] == case.code
    assert caught.value.as_dict()["dataset"] == "tariffs"
    assert flow.dataset("tariffs") == before
    assert count(flow) == entries


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ("classified", ["nadia classified it", "four eyes"]),
        ("submitted", ["nadia submitted it for review"]),
        ("resolved", ["nadia resolved one of its PII findings"]),
    ],
)
def test_four_eyes(flow, setup, words):
    """Whoever classified, submitted or resolved a finding may not approve (even an approver)."""
    register(flow)
    classify(flow, actor="nadia" if setup == "classified" else "amina")
    submitter = "nadia" if setup == "submitted" else "amina"
    flow.submit_for_review(submitter, "tariffs", content_sha256=SHA_A, pii_findings=["f-1"])
    flow.resolve_finding(
        "nadia" if setup == "resolved" else "amina",
        "tariffs",
        "f-1",
        resolution="justify",
        reason="the column holds company names, not people",
    )
    entries = count(flow)
    with pytest.raises(Refused) as caught:
        flow.approve("nadia", "tariffs")
    assert caught.value.code == "four-eyes"
    for word in words:
        assert word in caught.value.message
    assert "another approver of DOUANE" in caught.value.message
    assert flow.dataset("tariffs").state is State.IN_REVIEW
    assert count(flow) == entries
    flow.approve("karim", "tariffs")
    assert flow.dataset("tariffs").state is State.APPROVED


@pytest.mark.parametrize(
    ("level", "personal", "words"),
    [
        ("INTERNAL", False, ["classified INTERNAL", "only PUBLIC data"]),
        ("RESTRICTED", False, ["classified RESTRICTED"]),
        ("SECRET", False, ["classified SECRET"]),
        ("PUBLIC", True, ["holds personal data", "remove or generalise"]),
    ],
)
def test_not_publishable(flow, level, personal, words):
    """Only PUBLIC data without personal data goes to review for publication."""
    register(flow)
    classify(flow, level=level, personal_data=personal)
    entries = count(flow)
    with pytest.raises(Refused) as caught:
        flow.submit_for_review("amina", "tariffs", content_sha256=SHA_A)
    assert caught.value.code == "not-publishable"
    for word in words:
        assert word in caught.value.message
    assert flow.dataset("tariffs").state is State.CLASSIFIED
    assert count(flow) == entries


def test_pii_unresolved_blocks_approval(flow):
    """Approval waits for every PII finding; the error lists those still open."""
    drive(flow, State.IN_REVIEW, findings=("f-1", "f-2", "f-3"))
    flow.resolve_finding("amina", "tariffs", "f-2", resolution="justify", reason="office phone")
    entries = count(flow)
    with pytest.raises(Refused) as caught:
        flow.approve("karim", "tariffs")
    assert caught.value.code == "pii-unresolved"
    assert "2 PII findings are unresolved (f-1, f-3)" in caught.value.message
    assert caught.value.as_dict()["findings"] == ["f-1", "f-3"]
    assert flow.dataset("tariffs").state is State.IN_REVIEW
    assert count(flow) == entries


def test_changed_since_approval_carries_both_hashes(flow):
    """Publishing other bytes is refused with the approved and the offered hash."""
    drive(flow, State.APPROVED)
    with pytest.raises(Refused) as caught:
        flow.mark_published("root", "tariffs", content_sha256=SHA_B, reference=REFERENCE)
    assert caught.value.code == "changed-since-approval"
    assert caught.value.as_dict()["approved_sha256"] == SHA_A
    assert caught.value.as_dict()["sha256"] == SHA_B
    assert flow.dataset("tariffs").state is State.APPROVED


def test_steward_registers_only_for_own_agency(flow):
    """The dataset belongs to the registering steward's agency; the steward named must be a
    steward of it, and approvers do not register."""
    with pytest.raises(InvalidInput, match="must be a steward of DOUANE"):
        flow.register_dataset(
            "amina",
            "x1",
            title={"en": "x"},
            description={"en": "x"},
            source="x.csv",
            table_schema={"fields": []},
            licence="ODbL-1.0",
            update_frequency="never",
            steward="yasmine",
        )
    with pytest.raises(WrongRole) as caught:
        register(flow, actor="karim")
    assert caught.value.code == "wrong-role"
    register(flow, actor="yasmine", dataset_id="budget")
    assert flow.dataset("budget").owner_agency == "MEF"


def test_register_users(flow):
    """Only an operator registers people; the first user bootstraps alone, then never again."""
    with pytest.raises(WrongRole, match="only an operator may"):
        flow.register_user("amina", "eve", name="Eve", agency="DOUANE", roles=["approver"])
    with pytest.raises(WrongRole, match="only the first user registers alone"):
        flow.register_user(None, "eve", name="Eve", agency="DOUANE", roles=["operator"])
    with pytest.raises(AlreadyExists):
        flow.register_user("root", "amina", name="Amina", agency="DOUANE", roles=["steward"])
    user = flow.register_user(
        "root", "eve", name="إيمان", agency="DOUANE", roles=["approver"], reason="new hire"
    )
    assert flow.user("eve") == user
    entry = last(flow)
    assert (entry.actor, entry.action, entry.subject) == ("root", "user.register", "user:eve")
    assert entry.details["roles"] == ["approver"]


def test_set_roles_is_audited_and_takes_effect(flow):
    """Roles come from the database: a changed role takes effect on the next operation."""
    drive(flow, State.IN_REVIEW)
    flow.set_roles("root", "samir", ["steward", "approver"], reason="deputy approver")
    entry = last(flow)
    assert entry.details == {"from": ["steward"], "to": ["approver", "steward"]}
    flow.approve(flow.user("samir"), "tariffs")
    assert flow.dataset("tariffs").state is State.APPROVED


def test_stale_user_object_does_not_grant_roles(flow):
    """Roles on the caller's User object are ignored: the database decides."""
    drive(flow, State.IN_REVIEW)
    forged = User("amina", "Amina", "DOUANE", frozenset({Role.APPROVER}))
    with pytest.raises(WrongRole):
        flow.approve(forged, "tariffs")


def test_unknown_ids(flow):
    """Unknown users, datasets and findings are named in their errors."""
    drive(flow, State.IN_REVIEW, findings=("f-1",))
    with pytest.raises(UnknownUser, match="'ghost'"):
        flow.approve("ghost", "tariffs")
    with pytest.raises(UnknownDataset, match="'nothing'"):
        flow.approve("karim", "nothing")
    with pytest.raises(UnknownFinding) as caught:
        flow.resolve_finding("amina", "tariffs", "f-9", resolution="drop", reason="x")
    assert caught.value.code == "unknown-finding"


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda f: classify(f, level="TOP"), "level must be one of PUBLIC"),
        (lambda f: f.submit_for_review("amina", "tariffs", content_sha256="abc"), "SHA-256"),
        (
            lambda f: f.submit_for_review(
                "amina", "tariffs", content_sha256=SHA_A, pii_findings=["x", "x"]
            ),
            "twice",
        ),
        (lambda f: f.reject("karim", "tariffs", reason="  "), "a reason must be given"),
        (lambda f: register(f, dataset_id="Bad Id"), "dataset id"),
        (register, "already registered"),
    ],
)
def test_invalid_input(flow, call, words):
    """Malformed arguments are refused before anything changes."""
    drive(flow, State.CLASSIFIED)
    entries = count(flow)
    with pytest.raises((InvalidInput, AlreadyExists)) as caught:
        call(flow)
    assert words in caught.value.message
    assert count(flow) == entries


def test_state_change_and_audit_entry_commit_together(flow, monkeypatch):
    """If writing the audit entry fails, the state change is rolled back with it."""
    drive(flow, State.CLASSIFIED)
    entries = count(flow)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(workflow_module, "append_entry", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        flow.submit_for_review("amina", "tariffs", content_sha256=SHA_A)
    monkeypatch.undo()
    assert flow.dataset("tariffs").state is State.CLASSIFIED
    assert flow.review("tariffs") is None
    assert count(flow) == entries


def test_list_datasets_by_agency_and_state(flow):
    """The inventory lists datasets, filtered by owner agency and by state."""
    drive(flow, State.CLASSIFIED)
    register(flow, dataset_id="budget", actor="yasmine")
    assert [d.dataset_id for d in flow.datasets()] == ["budget", "tariffs"]
    assert [d.dataset_id for d in flow.datasets(agency="MEF")] == ["budget"]
    assert [d.dataset_id for d in flow.datasets(state=State.CLASSIFIED)] == ["tariffs"]


def test_users_are_listed_by_agency_and_role(flow):
    """users() lists people by id, filtered by agency and by role."""
    assert [u.user_id for u in flow.users(agency="MEF")] == ["omar", "yasmine"]
    approvers = [u.user_id for u in flow.users(agency="DOUANE", role=Role.APPROVER)]
    assert approvers == ["karim", "nadia"]
    assert flow.users(agency="NOBODY") == []


def test_records_as_data_are_json_ready(flow):
    """Dataset and Review as_dict give plain JSON data (what the API and CLI print)."""
    register(flow)
    classify(flow)
    review = flow.submit_for_review("amina", "tariffs", content_sha256="b" * 64)
    data = json.loads(json.dumps({"ds": flow.dataset("tariffs").as_dict(), "r": review.as_dict()}))
    assert data["ds"]["classification"]["level"] == "PUBLIC"
    assert data["ds"]["title"]["fr"] == "Tarif douanier"
    assert data["r"]["content_sha256"] == "b" * 64
    assert data["r"]["unresolved"] == []
