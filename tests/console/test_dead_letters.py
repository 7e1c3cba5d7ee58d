"""The console's dead-letter pages over connectors on the real RabbitMQ: an operator lists
them, reads one (its payload on request, never an encrypted one), resends the one whose
handler failed and discards the forged one with a reason; an auditor reads without acting;
a steward is refused. In ar, fr and en."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tests.console.conftest import serving, sign_in
from tests.support.dead_letters import dead_letter_bus


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture
def bus(tmp_path, world):
    with dead_letter_bus(tmp_path / "bus") as made:
        world.services.settings = dataclasses.replace(
            world.services.settings, connectors=(made.configs["treasury"], made.configs["civil"])
        )
        yield made


@pytest.mark.parametrize("lang", ["en", "fr", "ar"])
def test_an_operator_reads_resends_and_discards(bus, world, lang):
    with serving(world.services) as served:
        op = served.client(follow_redirects=True)
        sign_in(op, world.tokens["op"])
        listing = op.get("/console/dead-letters", params={"lang": lang})
        assert listing.status_code == 200
        assert 'href="/console/dead-letters"' in listing.text  # in the menu
        assert 'data-code="handler-failed"' in listing.text
        assert 'data-code="bad-signature"' in listing.text
        treasury = f"/console/dead-letters/{bus.slug('treasury')}/1"
        civil = f"/console/dead-letters/{bus.slug('civil')}/1"

        page = op.get(treasury)
        assert bus.failed_id in page.text
        assert 'id="resend-form"' in page.text
        assert 'id="payload"' not in page.text  # not before it is asked for
        assert op.get(treasury, params={"payload": "1"}).text.count('id="payload"') == 0
        with_payload = op.post(f"{treasury}/payload", data={"csrf": _csrf(page.text)})
        assert 'id="payload"' in with_payload.text
        assert op.post(f"{treasury}/payload", data={"csrf": "forged"}).status_code == 403

        sealed = op.post(f"{civil}/payload", data={"csrf": _csrf(page.text)})
        assert 'id="payload-withheld"' in sealed.text
        assert 'id="not-resendable"' in sealed.text
        assert 'id="resend-form"' not in sealed.text
        no_reason = op.post(f"{civil}/discard", data={"csrf": _csrf(sealed.text), "reason": ""})
        assert 'data-code="invalid-input"' in no_reason.text
        discarded = op.post(
            f"{civil}/discard", data={"csrf": _csrf(sealed.text), "reason": "forged"}
        )
        assert 'data-state="discarded"' in discarded.text
        assert "forged" in discarded.text

        bus.fix()
        resent = op.post(f"{treasury}/resend", data={"csrf": _csrf(page.text), "reason": ""})
        assert 'data-state="resent"' in resent.text
        assert 'class="flash flash-ok"' in resent.text
        assert [d.message_id for d in bus.fed.recorders["treasury"].wait_for(1)] == [bus.failed_id]
        forged_csrf = op.post(f"{treasury}/resend", data={"csrf": "x"})
        assert forged_csrf.status_code == 403


def test_an_auditor_reads_without_acting_and_a_steward_is_refused(bus, world):
    with serving(world.services) as served:
        audrey = served.client(follow_redirects=True)
        sign_in(audrey, world.tokens["audrey"])
        page = audrey.get(f"/console/dead-letters/{bus.slug('treasury')}/1")
        assert page.status_code == 200
        assert 'id="payload-form"' not in page.text
        shown = audrey.post(
            f"/console/dead-letters/{bus.slug('treasury')}/1/payload",
            data={"csrf": _csrf(page.text)},
        )
        assert shown.status_code == 403
        assert 'id="resend-form"' not in page.text
        acted = audrey.post(
            f"/console/dead-letters/{bus.slug('treasury')}/1/resend",
            data={"csrf": _csrf(page.text)},
        )
        assert acted.status_code == 403
        amina = served.client(follow_redirects=True)
        sign_in(amina, world.tokens["amina"])
        assert amina.get("/console/dead-letters").status_code == 403
        unknown = audrey.get(f"/console/dead-letters/{bus.slug('treasury')}/99")
        assert unknown.status_code == 404
