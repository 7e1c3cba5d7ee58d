"""``/v1/dead-letters`` of the management API over connectors on the real RabbitMQ:
operators list, show (the payload, audited, never an encrypted one), resend after a fix and
discard with a reason, each in the governance audit log; auditors read headers only;
stewards are refused; a connector that cannot be read is listed with why."""

from __future__ import annotations

import time

from tests.api.conftest import PROBLEM
from tests.support.dead_letters import dead_letter_bus
from tests.support.federation import LODGED, example


def test_operators_manage_the_connectors_dead_letters(make_api, tmp_path):
    with dead_letter_bus(tmp_path / "bus") as bus:
        broken_config = tmp_path / "missing.toml"
        api = make_api(connectors=(bus.configs["treasury"], bus.configs["civil"], broken_config))
        listed = api("root").get("/v1/dead-letters")
        assert listed.status_code == 200, listed.text
        by_source = {c["source"]: c for c in listed.json()["connectors"]}
        treasury, civil = by_source["treasury.toml"], by_source["civil.toml"]
        assert by_source["missing.toml"]["error"]["code"] == "config-invalid"
        [failed] = treasury["dead_letters"]
        assert (failed["message_id"], failed["code"], failed["resendable"]) == (
            bus.failed_id,
            "handler-failed",
            True,
        )
        [forged] = civil["dead_letters"]
        assert (forged["code"], forged["encrypted"]) == ("bad-signature", True)

        one = f"/v1/dead-letters/{bus.slug('treasury')}/{failed['seq']}"
        sealed = f"/v1/dead-letters/{bus.slug('civil')}/{forged['seq']}"
        header_only = api("audrey").get(one)
        assert header_only.status_code == 200
        assert header_only.json()["header"]["type"] == LODGED
        assert header_only.json()["payload"] is None
        assert api("audrey").get(one, params={"payload": "true"}).status_code == 403
        assert api("amina").get("/v1/dead-letters").status_code == 403
        shown = api("root").get(one, params={"payload": "true"}).json()
        assert shown["payload"] == example(LODGED)
        withheld = api("root").get(sealed, params={"payload": "true"}).json()
        assert (withheld["payload"], withheld["payload_note"]) == (None, "withheld: encrypted")

        refused = api("root").post(f"{sealed}/resend", json={"reason": "try"})
        assert (refused.status_code, refused.headers["content-type"]) == (409, PROBLEM)
        assert refused.json()["code"] == "not-resendable"
        assert api("audrey").post(f"{one}/resend", json={}).status_code == 403
        assert api("root").post(f"{sealed}/discard", json={}).status_code == 422
        discarded = api("root").post(f"{sealed}/discard", json={"reason": "forged, tax told"})
        assert discarded.status_code == 200, discarded.text
        assert discarded.json()["actions"][0]["actor"] == "root"

        bus.fix()
        resent = api("root").post(f"{one}/resend", json={"reason": "ledger back"})
        assert resent.status_code == 200, resent.text
        assert resent.json()["state"] == "resent"
        seen = bus.fed.recorders["treasury"].wait_for(1, timeout=20)
        assert [d.message_id for d in seen] == [bus.failed_id]
        again = api("root").post(f"{one}/resend", json={})
        assert (again.status_code, again.json()["code"]) == (409, "dead-letter-resolved")
        unknown = api("root").get(f"/v1/dead-letters/{bus.slug('treasury')}/999")
        assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown-dead-letter")
        nobody = api("root").get("/v1/dead-letters/NO-SUCH/1")
        assert (nobody.status_code, nobody.json()["code"]) == (404, "unknown-connector")

        entries = api.services.workflow.audit.entries()
        actions = [(e.action, e.actor, e.subject) for e in entries if e.action.startswith("dead")]
        assert actions == [
            (
                "dead-letter.payload-read",
                "root",
                f"dead-letter:{bus.slug('treasury')}/{failed['seq']}",
            ),
            ("dead-letter.discard", "root", f"dead-letter:{bus.slug('civil')}/{forged['seq']}"),
            ("dead-letter.resend", "root", f"dead-letter:{bus.slug('treasury')}/{failed['seq']}"),
        ]
        time.sleep(0.3)
        assert len(bus.fed.recorders["treasury"].seen) == 1
