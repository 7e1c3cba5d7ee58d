"""The demo scenario end to end (in memory; the broker-backed demo comes with connectors)."""

import json

from typer.testing import CliRunner

from tabadul.cli import build_app
from tabadul.demo import run


def test_demo_runs_the_scenario_and_proves_it(tmp_path):
    """Requests, events and the alert are accepted; each forgery is refused with its own
    code; every log verifies; the evidence bundle checks out against the CA."""
    summary = run(tmp_path / "demo", requests=2)
    assert summary["rejects_by_code"] == {
        "bad-signature": 1,
        "duplicate": 1,
        "forbidden": 1,
        "schema-invalid": 1,
    }
    # 2 x (request, lookup, answer, reply) + 2 x 2 events to 2 subscribers + alert + parcel
    assert summary["accepted"] == 2 * 4 + 2 * 2 * 2 + 2
    assert summary["alert_plaintext_on_wire"] is False
    assert all(log["intact"] for log in summary["logs"].values())
    assert summary["evidence"]["sender_signature"] == "valid"
    assert summary["evidence"]["log_id"] == "MA/GOV/MEF/TAX"


def test_demo_cli_reruns_cleanly(tmp_path):
    """`tabadul demo` exits 0 and can run again in the same folder."""
    runner = CliRunner()
    args = ["demo", "--folder", str(tmp_path / "d"), "--requests", "1", "--json"]
    first = runner.invoke(build_app(), args)
    second = runner.invoke(build_app(), args)
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["messages_sent"] == json.loads(first.stdout)["messages_sent"]
