"""The demo end to end on the real RabbitMQ with the five ministry connectors, then open
data on the real local CKAN."""

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.ministries import customs
from connectors.ministries.treasury import ALERT
from exchange.log import SQLiteLogStore
from tabadul import _demo_risk as risk_demo
from tabadul.cli import build_app
from tabadul.demo import run
from tests.support.ckan import TOKEN_FILE, URL


@pytest.fixture
def no_shared_data(tmp_path, monkeypatch):
    """The demo as it runs on a machine without the customs data set: on the sample."""
    monkeypatch.delenv(risk_demo.RISK_DATA_ENV, raising=False)
    monkeypatch.setattr(risk_demo, "SHARED_DATA", tmp_path / "no-shared-data")


def _alerts_and_verdicts_were_sealed(folder: Path, paid: dict) -> None:
    """Alerts went sealed to tax, verdicts to the treasury, as the treasury's log holds them."""
    (kept,) = folder.glob("*TREASURY.log.sqlite")
    sealed = [
        json.loads(stored.record.envelope)
        for chunk in SQLiteLogStore(kept, create=False).scan()
        for stored in chunk
        if stored.record.message_type in {"tax.alert-verdict", ALERT}
    ]
    assert len(sealed) == paid["alerts"] + sum(paid["verdicts"].values())
    for envelope in sealed:
        assert envelope["header"]["encryption"] is not None
        assert b"alert_id" not in base64.b64decode(envelope["payload"])


def _the_dead_letter_was_resent(resent: dict) -> None:
    """tax's ledger was down for one declaration: dead letter, fixed, resent, handled."""
    assert (resent["code"], resent["status_at_tax"]) == ("handler-failed", ["failed", "handled"])
    assert resent["attempts"] == 5
    assert resent["resent_by"] == "demo-operator"


def _all_handled_by_receipts(receipts: dict[str, dict[str, int]]) -> None:
    """Every subscriber's receipts told customs that its declarations were handled."""
    assert {"MA/GOV/MEF/TAX", "MA/GOV/MEF/TREASURY"} <= set(receipts)
    assert all(set(states) == {"handled"} for states in receipts.values()), receipts


def test_demo_runs_the_scenario_and_proves_it(tmp_path, ckan, no_shared_data):
    """Requests, events and encrypted alerts flow between the five connectors; each injected
    forgery is refused with its own code; customs' declarations are risk-assessed on the bus,
    inspected and learnt from; every log verifies; the evidence checks out; two datasets are
    published on CKAN and one is pulled back, verified."""
    token = TOKEN_FILE.read_text("utf-8").strip()
    summary = run(tmp_path / "demo", requests=3, ckan_url=URL, ckan_token=token)
    declarations = len(list(customs.declarations()))
    scored = summary["risk"]
    assert sum(scored["lanes"].values()) == declarations
    assert summary["sent_by_type"]["customs.risk-assessed"] >= declarations
    assert summary["sent_by_type"]["customs.inspection-result"] == scored["inspected"]
    assert scored["inspected"] >= declarations - scored["lanes"].get("green", 0)
    assert all(bool(a["reasons"]) == (a["lane"] != "green") for a in scored["highest"])
    assert scored["retrained"]["previous"] == "0001" or "code" in scored["retrained"]
    paid = scored["payments"]
    assert paid["alerts"] == summary["alerts_received_by_tax"]
    assert paid["anomalous"] >= 1
    assert all(a["reasons"] for a in paid["highest"])
    assert sum(paid["verdicts"].values()) == summary["sent_by_type"]["tax.alert-verdict"] >= 1
    dismissed, confirmed = paid["later"]
    assert (dismissed["because"], dismissed["alerted"]) == ("dismissed", False)
    assert (confirmed["because"], confirmed["flagged"]) == ("confirmed", True)
    assert paid["refit"]["left_out"] == paid["verdicts"].get("confirmed", 0)
    _alerts_and_verdicts_were_sealed(Path(summary["folder"]), paid)
    assert summary["rejects_by_code"] == {
        "bad-signature": 1,
        "duplicate": 1,
        "forbidden": 1,
        "handler-failed": 1,
        "purpose-mismatch": 1,
    }
    _the_dead_letter_was_resent(summary["dead_letter"])
    assert summary["alerts_received_by_tax"] >= 1
    assert summary["sent_by_type"]["tax.compliance-certificate.response"] == 3
    assert summary["sent_by_type"]["civil.person-lookup.response"] >= 1
    assert all(log["intact"] and log["records"] > 0 for log in summary["logs"].values())
    assert summary["evidence"]["sender_signature"] == "valid"
    assert summary["evidence"]["log_id"] == "MA/GOV/MEF/TAX"
    audit = summary["witnessed"]["audit"]
    assert audit["log"] == "MA/GOV/DNUM/REGISTRY#audit"
    assert len(audit["witnesses"]) == 6
    assert audit["verified"] is True
    assert all(log["witnessed_size"] > 0 for log in summary["logs"].values())
    consulted = summary["access_log"]["consultations"]
    assert consulted
    assert {c["purpose"] for c in consulted} == {"public-procurement-payment"}
    assert any("purpose-mismatch" in step for step in summary["steps"])
    opened = summary["open_data"]
    assert set(opened["datasets"]) == {"adii-customs-tariff", "dec-births-by-place"}
    for published in opened["datasets"].values():
        assert published["status"] in {"created", "updated"}  # each run has its own CA
        package = ckan.action.package_show(id=published["name"])
        assert package["private"] is False
        assert package["version"] == str(published["version"])
    assert opened["pulled"]["ok"] is True
    assert opened["refusals_by_code"] == {"four-eyes": 1}
    assert opened["pii_findings_resolved"]["dec-births-by-place"] == [
        "birth_date:header-birth-date"
    ]


def test_demo_cli_reruns_cleanly(tmp_path, ckan_local, monkeypatch, no_shared_data):
    """`tabadul demo` exits 0 and gives the same outcome when run again in the same folder.
    Each run makes its own CA, so the second publishes the same open data again as a new
    version signed under its CA, which the consumer's pull verifies. Customs' declarations
    were handled at every subscriber, as their receipts tell."""
    monkeypatch.setenv("TABADUL_CKAN_TOKEN_FILE", str(TOKEN_FILE))
    monkeypatch.setenv("TABADUL_CKAN_URL", URL)
    runner = CliRunner()
    args = ["demo", "--folder", str(tmp_path / "d"), "--requests", "2", "--json"]
    first = runner.invoke(build_app(), args)
    second = runner.invoke(build_app(), args)
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    again = json.loads(second.stdout)
    assert again["rejects_by_code"] == json.loads(first.stdout)["rejects_by_code"]
    assert {p["status"] for p in again["open_data"]["datasets"].values()} == {"updated"}
    assert again["open_data"]["pulled"]["ok"] is True
    _all_handled_by_receipts(again["receipts"])


def test_demo_refuses_a_risk_data_folder_without_the_files(tmp_path, monkeypatch):
    """A wrong --risk-data is a coded refusal, not a silent fall-back to the sample."""
    token_file = tmp_path / "token"
    token_file.write_text("not-used", encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["demo", "--folder", str(tmp_path / "d"), "--ckan-token-file", str(token_file),
            "--risk-data", str(empty), "--json"]  # fmt: skip
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "bad-option"
    assert not (tmp_path / "d").exists()
