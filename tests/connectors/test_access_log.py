"""Who consulted my data: the civil registry's connector, answering tax's person lookups on
the real RabbitMQ, records each consultation (keyed hash of the card number, requester,
purpose, legal basis, time, outcome); `tabadul access-log` and the management API list them
for a person, and the raw identifier is stored nowhere in the access log."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from connectors import (
    AccessLog,
    ConfigError,
    LocalBus,
    PikaTransport,
    RemoteError,
    RuntimeSettings,
    SubjectKey,
    normalise,
)
from connectors.ministries import civil
from exchange import LegalBasis
from exchange.sandbox import Sandbox
from tabadul._services import Services, Settings
from tabadul.api import create_app
from tabadul.cli import build_app
from tests.api.conftest import issue_tokens, register_people
from tests.support import rabbit
from tests.support.federation import LOOKUP, LOOKUP_REPLY, REGISTRY, Recorder, civil_lookup, example
from tests.support.served import Served

KEY = "a-deployment-subject-key-of-at-least-32-bytes"
BASIS = LegalBasis("Code général des impôts, article 214", "CGI art. 214")
PEOPLE = {
    "root": ("DNUM", ["operator"]),
    "dalila": ("DNUM", ["dpo"]),
    "amina": ("DOUANE", ["steward"]),
    "audrey": ("DOUANE", ["auditor"]),
}


def test_the_keyed_hash_folds_how_people_write_an_identifier():
    """The same card, written with spaces, lower case, or full-width digits, is one subject;
    another key gives another hash; a short key is refused."""
    key = SubjectKey(KEY.encode())
    assert (
        key.hash("BE123456")
        == key.hash(" be 123 456 ")
        == key.hash("\uff22\uff25\uff11\uff12\uff13\uff14\uff15\uff16")
    )
    assert normalise("be-123.456") == "BE123456"
    assert key.hash("BE123456") != SubjectKey(b"another" * 6).hash("BE123456")
    assert key.hash("BE123456") != key.hash("BE123457")
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        SubjectKey(b"short")


@pytest.fixture
def civil_bus(tmp_path):
    """Civil (with its access log) answers tax, which may ask for two purposes."""
    instance = rabbit.unique_instance()
    counter = itertools.count()
    sandbox = Sandbox(instance)
    civil_party = sandbox.add(f"{instance}/GOV/MOI/CIVIL-REGISTRY")
    tax = sandbox.add(f"{instance}/GOV/MEF/TAX")
    customs = sandbox.add(f"{instance}/GOV/MEF/CUSTOMS")
    for entry in REGISTRY.entries():
        sandbox.classify(entry.type, entry.classification.value, entry.version, entry.digest)
    sandbox.provide(civil_party, LOOKUP, LOOKUP_REPLY)
    for purpose in ("tax-compliance-check", "fraud-investigation"):
        sandbox.grant(tax, LOOKUP, civil_party, purpose=purpose, legal_basis=BASIS)
    sandbox.grant(customs, LOOKUP, civil_party, purpose="identity-check")
    bus = LocalBus(
        sandbox,
        tmp_path,
        lambda: PikaTransport(name=f"{instance}-{next(counter)}"),
        settings=RuntimeSettings(retry_base=0.05, directory_poll=0.2),
    )
    log = AccessLog(SubjectKey(KEY.encode()), civil.SPEC.subjects)
    bus.connector("civil", civil_party, {LOOKUP: civil_lookup(Recorder())}, access_log=log).start()
    bus.connector("tax", tax).start()
    bus.connector("customs", customs).start()
    yield bus
    bus.stop()
    rabbit.delete_queues(instance)


def _ask(bus: LocalBus, name: str, cin: str, purpose: str) -> None:
    civil_id = next(iter(bus.sandbox.parties))
    try:
        bus.connectors[name].request(
            LOOKUP, civil_id, dict(example(LOOKUP), cin=cin), purpose=purpose
        )
    except RemoteError as refused:  # a refusal is an access too
        if refused.remote_code != "not-found":
            raise


def _config(tmp_path: Path, bus: LocalBus) -> Path:
    civil_id = next(iter(bus.sandbox.parties))
    path = tmp_path / "civil.toml"
    path.write_text(
        f'subsystem = "{civil_id}"\nkeys = "keys"\nca_certificate = "ca.pem"\n'
        f'directory = "directory.json"\n'
        f'database = "{bus.folder / (civil_id.slug + ".db")}"\n'
        '[access_log]\nsubjects = {"civil.person-lookup.request" = ["cin"]}\n',
        "utf-8",
    )
    return path


def test_each_answered_request_is_recorded_for_its_subject(civil_bus, tmp_path, monkeypatch):
    """Three consultations of one person (two purposes, two requesters, one a refusal) and
    one of another: the person's list holds exactly their three, newest first, with purpose,
    legal basis and outcome; the access log's rows hold no card number in clear."""
    _ask(civil_bus, "tax", "BE123456", "tax-compliance-check")
    _ask(civil_bus, "tax", "BE123456", "fraud-investigation")
    _ask(civil_bus, "customs", "BE123456", "identity-check")
    _ask(civil_bus, "tax", "ZZ999999", "tax-compliance-check")  # refused: not in the register
    monkeypatch.setenv("TABADUL_SUBJECT_KEY", KEY)
    config = _config(tmp_path, civil_bus)

    runner = CliRunner()
    listed = runner.invoke(
        build_app(), ["access-log", "BE123456", "--config", str(config), "--json"]
    )
    assert listed.exit_code == 0, listed.output
    accesses = json.loads(listed.stdout)["accesses"]
    assert len(accesses) == 3
    assert [a["at"] for a in accesses] == sorted((a["at"] for a in accesses), reverse=True)
    by_purpose = {a["purpose"]: a for a in accesses}
    assert set(by_purpose) == {"tax-compliance-check", "fraud-investigation", "identity-check"}
    assert by_purpose["fraud-investigation"]["legal_basis"] == {
        "text": BASIS.text,
        "reference": BASIS.reference,
    }
    assert by_purpose["identity-check"]["requester"].endswith("/GOV/MEF/CUSTOMS")
    assert {a["outcome"] for a in accesses} == {"answered"}
    refused = runner.invoke(build_app(), ["access-log", "ZZ999999", "-c", str(config), "--json"])
    assert [a["outcome"] for a in json.loads(refused.stdout)["accesses"]] == ["not-found"]

    database = civil_bus.folder / f"{next(iter(civil_bus.sandbox.parties)).slug}.db"
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT * FROM subject_accesses").fetchall()
    assert len(rows) == 4
    assert not any("BE123456" in str(value) for row in rows for value in row)

    table = runner.invoke(build_app(), ["access-log", "BE123456", "-c", str(config)])
    assert table.exit_code == 0
    assert "fraud" in table.output  # (folded to the terminal's width)


def test_the_management_api_lists_them_for_operators_and_dpos(civil_bus, tmp_path, monkeypatch):
    """GET /v1/subjects/{id}/accesses: operators and data-protection officers read it, a
    steward or an auditor is refused; without the key the holder is reported unavailable."""
    _ask(civil_bus, "tax", "BE123456", "tax-compliance-check")
    monkeypatch.setenv("TABADUL_SUBJECT_KEY", KEY)
    settings = Settings(
        governance_db=str(tmp_path / "governance.sqlite"),
        data_dir=tmp_path / "data",
        access_logs=(_config(tmp_path, civil_bus),),
    )
    services = Services.open(settings)
    register_people(services, PEOPLE)
    tokens = issue_tokens(services, PEOPLE)
    served = Served(create_app(services, console=False))
    try:

        def get(user: str) -> httpx.Response:
            return served.client(headers={"Authorization": f"Bearer {tokens[user]}"}).get(
                "/v1/subjects/BE123456/accesses"
            )

        for user in ("root", "dalila"):
            answer = get(user)
            assert answer.status_code == 200, answer.text
            assert [a["purpose"] for a in answer.json()["accesses"]] == ["tax-compliance-check"]
            assert answer.json()["unavailable"] == []
        for user in ("amina", "audrey"):
            assert get(user).status_code == 403
        monkeypatch.delenv("TABADUL_SUBJECT_KEY")
        keyless = get("root").json()
        assert keyless["accesses"] == []
        assert [u["code"] for u in keyless["unavailable"]] == ["config-invalid"]
    finally:
        served.close()
        services.close()
