"""API tokens: issued to one user, shown once, stored hashed, expiring and revocable; every
refusal is an ``unauthenticated`` or ``wrong-role`` error, and the audit log records both
issuing and revoking."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from governance import (
    AuditLog,
    InvalidInput,
    NotFound,
    Tokens,
    TooManyAttempts,
    Unauthenticated,
    Workflow,
    WrongRole,
)
from tests.governance.conftest import Clock, classify, register


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(flow: Workflow, store, clock: Clock) -> Tokens:
    return Tokens(store, clock=clock)


def test_issued_token_authenticates_its_user_and_only_its_hash_is_stored(tokens, store):
    issued = tokens.issue("amina", "amina", label="console")
    user = tokens.authenticate(issued.token)
    assert (user.user_id, user.agency) == ("amina", "DOUANE")
    secret = issued.token.split(".", 1)[1]
    with store.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT secret_sha256 FROM api_tokens")).scalar_one()
        dump = repr(conn.execute(sa.text("SELECT * FROM api_tokens")).all())
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in dump


@pytest.mark.parametrize(
    "text",
    ["", "Bearer x", "tbd_0123456789abcdef", "tbd_0123456789abcdef." + "A" * 43, "tbd_zz.yy"],
)
def test_malformed_or_unknown_tokens_are_refused_without_echo(tokens, text):
    with pytest.raises(Unauthenticated) as refused:
        tokens.authenticate(text)
    assert refused.value.code == "unauthenticated"
    if text:
        assert text not in refused.value.message


def test_a_token_with_a_wrong_secret_is_unknown(tokens):
    issued = tokens.issue("amina", "amina", label="console")
    token_id = issued.record.token_id
    with pytest.raises(Unauthenticated, match="unknown API token"):
        tokens.authenticate(f"tbd_{token_id}." + "B" * 43)


def test_expired_token_is_refused(tokens, clock):
    issued = tokens.issue("amina", "amina", label="short", ttl=timedelta(minutes=5))
    tokens.authenticate(issued.token)
    clock.now += timedelta(minutes=6)
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.authenticate(issued.token)


def test_revoked_token_is_refused_and_both_events_are_audited(tokens, flow):
    issued = tokens.issue("root", "karim", label="scripts")
    revoked = tokens.revoke("karim", issued.record.token_id, reason="laptop lost")
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated, match="revoked"):
        tokens.authenticate(issued.token)
    again = tokens.revoke("root", issued.record.token_id, reason="twice")
    assert again.revoked_at == revoked.revoked_at
    actions = [(e.action, e.actor, e.reason) for e in flow.audit.entries(subject="user:karim")]
    assert ("token.issue", "root", "scripts") in actions
    assert ("token.revoke", "karim", "laptop lost") in actions
    assert ("token.revoke", "root", "twice") not in actions
    flow.audit.verify()


def test_only_the_holder_or_an_operator_manages_tokens(tokens):
    """Someone else's token is refused for a wrong role when issuing (whether that person
    exists or not), and is as unknown as a token never issued when revoking."""
    for someone in ("karim", "nobody"):
        with pytest.raises(WrongRole):
            tokens.issue("amina", someone, label="not mine")
    issued = tokens.issue("karim", "karim", label="mine")
    token_id = issued.record.token_id
    with pytest.raises(NotFound) as hidden:
        tokens.revoke("amina", token_id, reason="not mine")
    with pytest.raises(NotFound) as missing:
        tokens.revoke("amina", "0123456789abcdef", reason="no such")
    assert hidden.value.message == missing.value.message.replace("0123456789abcdef", token_id)
    with pytest.raises(NotFound):
        tokens.revoke("root", "0123456789abcdef", reason="no such")
    assert tokens.revoke("root", token_id, reason="left").revoked_at is not None


def test_bad_arguments_are_refused(tokens):
    with pytest.raises(InvalidInput):
        tokens.issue("amina", "amina", label=" ")
    with pytest.raises(InvalidInput):
        tokens.issue("amina", "amina", label="x", ttl=timedelta(days=400))
    with pytest.raises(InvalidInput):
        tokens.revoke("amina", "x", reason="")


def test_token_list_never_holds_secrets(tokens):
    issued = tokens.issue("amina", "amina", label="console")
    listed = tokens.tokens("amina")
    assert [t.token_id for t in listed] == [issued.record.token_id]
    assert "secret" not in repr(listed[0].as_dict())
    assert tokens.tokens("karim") == []


def test_reports_are_kept_with_the_review(flow):
    register(flow)
    classify(flow)
    reports = {"validation": {"valid": True, "rows": 3}, "pii": {"findings": []}}
    review = flow.submit_for_review("amina", "tariffs", content_sha256="a" * 64, reports=reports)
    assert review.reports == reports
    assert flow.review("tariffs").reports == reports


def test_a_person_without_roles_is_disabled(tokens, flow, store):
    """Taking every role away disables the account and revokes its tokens (audited): giving a
    role back does not revive them; a new token works."""
    issued = tokens.issue("karim", "karim", label="scripts")
    flow.set_roles("root", "karim", [], reason="left the agency")
    with pytest.raises(Unauthenticated, match="revoked"):
        tokens.authenticate(issued.token)
    (record,) = tokens.tokens("karim")
    assert record.revoked_at is not None
    entry = AuditLog(store).entries(subject="user:karim")[-1]
    assert entry.details["tokens_revoked"] == [record.token_id]
    flow.set_roles("root", "karim", ["approver"], reason="came back")
    with pytest.raises(Unauthenticated, match="revoked"):
        tokens.authenticate(issued.token)
    fresh = tokens.issue("root", "karim", label="new laptop")
    assert tokens.authenticate(fresh.token).user_id == "karim"


def test_a_client_failing_too_often_is_made_to_wait(tokens, clock):
    """Ten failed sign-ins from one client within a minute: its next attempts (even with a
    good token) are refused with too-many-attempts and a wait; other clients are not; after
    the minute it may try again."""
    good = tokens.issue("amina", "amina", label="console").token
    for _ in range(10):
        with pytest.raises(Unauthenticated):
            tokens.authenticate("tbd_0123456789abcdef." + "A" * 43, client="10.0.0.9")
    with pytest.raises(TooManyAttempts) as caught:
        tokens.authenticate(good, client="10.0.0.9")
    assert caught.value.code == "too-many-attempts"
    assert 1 <= caught.value.retry_after <= 60
    assert tokens.authenticate(good, client="10.0.0.10").user_id == "amina"
    clock.now += timedelta(minutes=1)
    assert tokens.authenticate(good, client="10.0.0.9").user_id == "amina"


def test_a_token_minted_with_a_token_dies_with_it(tokens, flow, store, clock):
    """A token issued with another (``parent``) expires no later than it, whatever lifetime
    is asked for, and is revoked with it, transitively and in the same audited step; the
    parent outlives the revocation of a token minted from it."""
    day = tokens.issue("amina", "amina", label="one day", ttl=timedelta(days=1))
    child = tokens.issue(
        "amina", "amina", label="a year", ttl=timedelta(days=366), parent=day.record.token_id
    )
    assert child.record.parent_token_id == day.record.token_id
    assert child.record.expires_at == day.record.expires_at
    grandchild = tokens.issue("amina", "amina", label="derived", parent=child.record.token_id)
    assert grandchild.record.expires_at == day.record.expires_at
    sibling = tokens.issue("amina", "amina", label="short", ttl=timedelta(hours=1) * 2,
                           parent=day.record.token_id)  # fmt: skip
    assert sibling.record.expires_at < day.record.expires_at
    other = tokens.issue("amina", "amina", label="unrelated", ttl=timedelta(days=30))

    tokens.revoke("amina", sibling.record.token_id, reason="not needed")
    assert tokens.authenticate(day.token).user_id == "amina"

    tokens.revoke("amina", day.record.token_id, reason="leaked")
    for gone in (day, child, grandchild):
        with pytest.raises(Unauthenticated, match="revoked"):
            tokens.authenticate(gone.token)
    assert tokens.authenticate(other.token).user_id == "amina"
    entry = AuditLog(store).entries(subject="user:amina")[-1]
    assert (entry.action, entry.reason) == ("token.revoke", "leaked")
    assert entry.details["tokens_revoked"] == sorted(
        [child.record.token_id, grandchild.record.token_id]
    )
    clock.now += timedelta(days=1)
    with pytest.raises(Unauthenticated):
        tokens.authenticate(child.token)
    assert tokens.authenticate(other.token).user_id == "amina"


def test_a_revoked_or_expired_parent_mints_nothing(tokens, clock):
    """Minting from a token that no longer authenticates is refused, naming why."""
    day = tokens.issue("amina", "amina", label="one day", ttl=timedelta(days=1))
    clock.now += timedelta(days=1)
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.issue("amina", "amina", label="x", parent=day.record.token_id)
    week = tokens.issue("amina", "amina", label="one week", ttl=timedelta(days=7))
    tokens.revoke("amina", week.record.token_id, reason="leaked")
    with pytest.raises(Unauthenticated, match="revoked"):
        tokens.issue("amina", "amina", label="x", parent=week.record.token_id)
    with pytest.raises(Unauthenticated, match="unknown"):
        tokens.issue("amina", "amina", label="x", parent="0123456789abcdef")


def test_disabling_a_person_revokes_what_their_tokens_minted(tokens, flow, store):
    """An operator's token that minted a token for someone else: disabling the operator
    revokes both, and the audit entry lists them."""
    flow.register_user("root", "olga", name="Olga", agency="DNUM", roles=["operator"])
    olgas = tokens.issue("olga", "olga", label="console")
    for_amina = tokens.issue("olga", "amina", label="for amina", parent=olgas.record.token_id)
    flow.set_roles("root", "olga", [], reason="left")
    with pytest.raises(Unauthenticated, match="revoked"):
        tokens.authenticate(for_amina.token)
    entry = AuditLog(store).entries(subject="user:olga")[-1]
    assert entry.details["tokens_revoked"] == sorted(
        [olgas.record.token_id, for_amina.record.token_id]
    )
