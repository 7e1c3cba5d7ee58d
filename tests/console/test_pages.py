"""The console's pages and forms through FastAPI's TestClient: languages, sign-in, CSRF,
every workflow step and every refusal shown with its code."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from html.parser import HTMLParser
from http.cookies import SimpleCookie

import httpx
import pytest

from governance import quality
from tabadul._services import Services
from tabadul.console._i18n import load_catalogues
from tests.console.conftest import (
    BAD_CSV,
    CLEAN_CSV,
    CLOSED_PORT_URL,
    PII_CSV,
    MetricsServer,
    World,
    csrf_of,
    serving,
    sign_in,
)

LANGS = ("ar", "fr", "en")
HTML_TAG = re.compile(r'<html lang="(\w+)" dir="(\w+)">')


def _keys_shown(html: str) -> list[str]:
    """Catalogue keys that leaked onto a page untranslated."""
    keys = {k for catalogue in load_catalogues().values() for k in catalogue if "." in k}
    return sorted(k for k in keys if f">{k}<" in html or f"> {k}" in html)


def _classify(client: httpx.Client, world: World, **fields: str) -> str:
    data = {
        "csrf": csrf_of(client, world.dataset_id),
        "level": "PUBLIC",
        "legal_basis": "Loi 31-13 sur le droit d'accès à l'information",
        "justification": "Agrégats par région, sans donnée individuelle",
        **fields,
    }
    return client.post(f"/console/datasets/{world.dataset_id}/classify", data=data).text


def _submit(client: httpx.Client, world: World, text: str, name: str = "naissances.csv") -> str:
    files = {"data": (name, text.encode(), "text/csv")}
    data = {"csrf": csrf_of(client, world.dataset_id), "reason": "millésime 2025"}
    return client.post(f"/console/datasets/{world.dataset_id}/submit", data=data, files=files).text


def _flash_code(html: str) -> str | None:
    found = re.search(
        r'class="flash flash-error" role="alert" id="flash" data-code="([a-z0-9-]+)"', html
    )
    return found.group(1) if found else None


# ---- languages ------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_every_page_renders_in_each_language(world, client, lang):
    """Sign-in, list, detail (in each step), audit and traffic render in ar/fr/en, with the
    right lang and direction and no untranslated key."""
    pages = ["/console/signin"]
    sign_in(client, world.tokens["op"])
    pages += ["/console/datasets", f"/console/datasets/{world.dataset_id}", "/console/audit"]
    pages += ["/console/traffic", "/console/datasets?state=DRAFT&agency=HCP"]
    for path in pages:
        answer = client.get(path, params={"lang": lang})
        assert answer.status_code == 200, (path, answer.text)
        tag = HTML_TAG.search(answer.text)
        assert tag is not None
        assert tag.groups() == (lang, "rtl" if lang == "ar" else "ltr"), path
        assert _keys_shown(answer.text) == [], path


@pytest.mark.parametrize("lang", LANGS)
def test_dataset_pages_in_each_step_render_in_each_language(world, server, lang):
    """The detail page in review (findings, gates) renders in every language for the
    steward, the approver and the auditor; a steward of another agency gets the unknown
    dataset's page, rendered in every language too."""
    steward = server.client(follow_redirects=True)
    sign_in(steward, world.tokens["amina"])
    _classify(steward, world)
    _submit(steward, world, PII_CSV)
    for who in ("amina", "karim", "audrey", "youssef"):
        other = server.client(follow_redirects=True)
        sign_in(other, world.tokens[who])
        answer = other.get(f"/console/datasets/{world.dataset_id}", params={"lang": lang})
        assert answer.status_code == (404 if who == "youssef" else 200), who
        assert ('data-code="unknown-dataset"' in answer.text) is (who == "youssef"), who
        assert f'lang="{lang}"' in answer.text
        assert _keys_shown(answer.text) == [], who


def test_language_comes_from_query_then_cookie_then_accept_language(world, client):
    """?lang= wins and is remembered; then the cookie; then Accept-Language; then French."""
    assert 'lang="fr"' in client.get("/console/signin").text
    answer = client.get("/console/signin", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert 'lang="en"' in answer.text
    answer = client.get("/console/signin?lang=ar")
    assert 'dir="rtl"' in answer.text
    assert answer.cookies.get("tabadul_lang") == "ar"
    # the cookie now beats Accept-Language
    answer = client.get("/console/signin", headers={"Accept-Language": "en"})
    assert 'lang="ar"' in answer.text


def test_every_page_has_a_language_switcher(world, client):
    """Each page links to itself in the three languages, keeping its other parameters."""
    sign_in(client, world.tokens["op"])
    html = client.get("/console/datasets?state=DRAFT&lang=en").text
    for lang in LANGS:
        assert f'href="/console/datasets?state=DRAFT&amp;lang={lang}"' in html
    assert 'hreflang="ar"' in client.get("/console/signin").text


def test_the_three_catalogues_have_the_same_keys():
    """ar, fr and en define exactly the same messages, none empty."""
    catalogues = load_catalogues()
    assert set(catalogues) == set(LANGS)
    keys = set(catalogues["fr"])
    for lang, catalogue in catalogues.items():
        assert set(catalogue) == keys, lang
        assert all(text.strip() for text in catalogue.values()), lang


class _Structure(HTMLParser):
    """Ids, label targets, form controls and headings of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: Counter[str] = Counter()
        self.labelled: set[str] = set()
        self.controls: list[str] = []
        self.headings: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids[str(found["id"])] += 1
        if tag == "label" and found.get("for"):
            self.labelled.add(str(found["for"]))
        if tag in {"input", "select", "textarea"} and found.get("type") != "hidden":
            self.controls.append(str(found.get("id") or found.get("name")))
        if tag in {"h1", "h2", "h3"}:
            self.headings.append(tag)


def test_pages_are_accessible_html(world, server, client):
    """Unique ids, a label for every form control, one h1 per page, on every page with the
    dataset in review (the page with the most forms), for each kind of person."""
    sign_in(client, world.tokens["amina"])
    _classify(client, world)
    _submit(client, world, PII_CSV)
    pages = ["/console/signin", "/console/datasets", f"/console/datasets/{world.dataset_id}"]
    for who in ("amina", "karim", "op"):
        person = server.client(follow_redirects=True)
        sign_in(person, world.tokens[who])
        extra = ["/console/audit", "/console/traffic"] if who == "op" else []
        for path in pages + extra:
            page = _Structure()
            page.feed(person.get(path, params={"lang": "ar"}).text)
            assert [i for i, n in page.ids.items() if n > 1] == [], (who, path)
            assert [c for c in page.controls if c not in page.labelled] == [], (who, path)
            assert page.headings.count("h1") == 1, (who, path)


# ---- signing in -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/console/",
        "/console/datasets",
        "/console/audit",
        "/console/traffic",
        "/console/datasets/x-1",
    ],
)
def test_no_session_redirects_to_sign_in(client, path):
    """Without a session every page sends the browser to the sign-in page, coming back after."""
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/signin")
    if path != "/console/":
        assert "next=" in answer.headers["location"]


def test_a_bad_token_is_refused_with_its_reason(client):
    """A malformed or unknown token: 401, the sign-in page again, the code shown."""
    answer = client.post("/console/signin", data={"token": "not-a-token"})
    assert answer.status_code == 401
    assert _flash_code(answer.text) == "unauthenticated"
    assert "tbd_&lt;id&gt;.&lt;secret&gt;" in answer.text  # the library's message, escaped
    unknown = "tbd_0123456789abcdef." + "A" * 43
    answer = client.post("/console/signin", data={"token": unknown}, params={"lang": "ar"})
    assert answer.status_code == 401
    assert "unknown API token" in answer.text
    assert "tabadul_console" not in answer.cookies


def test_guessing_tokens_at_the_sign_in_form_is_made_to_wait(world, client):
    """Ten failed sign-ins from one client: the next one, even with a good token, is 429
    with the too-many-attempts code shown, and no session is set."""
    unknown = "tbd_0123456789abcdef." + "A" * 43
    for _ in range(10):
        assert client.post("/console/signin", data={"token": unknown}).status_code == 401
    answer = client.post("/console/signin", data={"token": world.tokens["amina"]})
    assert answer.status_code == 429
    assert _flash_code(answer.text) == "too-many-attempts"
    assert "tabadul_console" not in answer.cookies


def test_sign_in_keeps_the_token_in_a_strict_httponly_cookie(world, client):
    """The session cookie is HttpOnly, SameSite=Strict, limited to the console's path."""
    answer = client.post(
        "/console/signin", data={"token": world.tokens["amina"]}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/datasets"
    cookies = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
    session = next(c for c in cookies if c.startswith("tabadul_console="))
    assert "HttpOnly" in session
    assert "SameSite=strict" in session or "SameSite=Strict" in session
    assert "Path=/console" in session
    page = client.get("/console/datasets")
    assert "Amina Alaoui" in page.text
    assert "Bienvenue, Amina Alaoui." in page.text  # the flash after the redirect


def test_sign_in_returns_to_the_page_asked_for(world, client):
    """The sign-in form carries ?next= back, but only to a console page."""
    target = f"/console/datasets/{world.dataset_id}"
    answer = client.post(
        "/console/signin",
        data={"token": world.tokens["amina"], "next": target},
        follow_redirects=False,
    )
    assert answer.headers["location"] == target
    answer = client.post(
        "/console/signin",
        data={"token": world.tokens["amina"], "next": "https://evil.example/console/x"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/console/datasets"


def test_sign_out_forgets_the_session(world, client):
    sign_in(client, world.tokens["amina"])
    csrf = csrf_of(client, world.dataset_id)
    answer = client.post("/console/signout", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    client.cookies.clear()  # what the browser does with the expired cookie
    assert client.get("/console/datasets", follow_redirects=False).status_code == 303


def test_a_revoked_token_ends_the_session(world, client):
    """The token is checked on every request: once revoked, the next page is the sign-in
    page with the reason."""
    sign_in(client, world.tokens["amina"])
    token_id = world.tokens["amina"].split(".")[0].removeprefix("tbd_")
    world.services.tokens.revoke("op", token_id, reason="left the agency")
    answer = client.get("/console/datasets")
    assert answer.url.path == "/console/signin"
    assert _flash_code(answer.text) == "unauthenticated"
    assert "was revoked" in answer.text


# ---- CSRF and origin ----------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused(world, client):
    sign_in(client, world.tokens["amina"])
    answer = client.post(
        f"/console/datasets/{world.dataset_id}/classify",
        data={"level": "PUBLIC", "legal_basis": "x", "justification": "y"},
    )
    assert answer.status_code == 403
    assert 'data-code="csrf"' in answer.text
    assert world.services.workflow.dataset(world.dataset_id).state == "DRAFT"


def test_a_post_from_another_origin_is_refused(world, client):
    sign_in(client, world.tokens["amina"])
    csrf = csrf_of(client, world.dataset_id)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        answer = client.post(
            f"/console/datasets/{world.dataset_id}/classify",
            data={"csrf": csrf, "level": "PUBLIC", "legal_basis": "x", "justification": "y"},
            headers=headers,
        )
        assert answer.status_code == 403
        assert 'data-code="bad-origin"' in answer.text
    assert world.services.workflow.dataset(world.dataset_id).state == "DRAFT"


def test_pages_carry_security_headers(world, client):
    sign_in(client, world.tokens["op"])
    answer = client.get("/console/datasets")
    assert "script-src" not in answer.headers["content-security-policy"]
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"
    css = client.get("/console/static/console.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert client.get("/console/static/nothing.js").status_code == 404


def test_a_forged_flash_cookie_is_ignored(world, client):
    sign_in(client, world.tokens["op"])
    client.cookies.set(
        "tabadul_flash", "eyJraW5kIjoiZXJyb3IifQ==.0000", domain="127.0.0.1", path="/console"
    )
    answer = client.get("/console/datasets")
    assert answer.status_code == 200
    assert 'id="flash"' not in answer.text


# ---- the workflow through the forms -------------------------------------------------------------


def test_dataset_page_shows_metadata_in_every_language(world, client):
    sign_in(client, world.tokens["amina"])
    html = client.get(f"/console/datasets/{world.dataset_id}?lang=en").text
    assert '<td lang="ar" dir="rtl">الولادات حسب الجهة</td>' in html
    assert '<td lang="fr" dir="ltr">Naissances par région</td>' in html
    assert "Registered births per region" in html
    assert "<code>naissances</code>" in html  # a Table Schema field


def test_dataset_page_shows_its_quality_score(world, client):
    """The world's dataset has no field descriptions and a licence id outside the register:
    its score says so, criterion by criterion."""
    sign_in(client, world.tokens["amina"])
    html = client.get(f"/console/datasets/{world.dataset_id}?lang=fr").text
    expected = quality(world.services.workflow.dataset(world.dataset_id))
    assert f'id="quality" data-score="{expected.score}"' in html
    assert 'data-criterion="schema" data-met="no"' in html
    assert 'data-criterion="languages" data-met="yes"' in html
    assert "Qualité des métadonnées" in html
    assert expected.score < 100


def test_the_list_filters_by_state_and_agency(world, server, client):
    """The state filter for everyone; the agency filter for overseers, since other people
    see only their own agency's datasets whatever they ask."""
    shown = f'data-dataset="{world.dataset_id}"'
    sign_in(client, world.tokens["amina"])
    assert shown in client.get("/console/datasets").text
    assert shown not in client.get("/console/datasets?state=PUBLISHED").text
    assert shown in client.get("/console/datasets?state=DRAFT&agency=DOUANE").text
    auditor = server.client(follow_redirects=True)
    sign_in(auditor, world.tokens["audrey"])
    assert shown in auditor.get("/console/datasets?state=DRAFT&agency=").text
    assert shown not in auditor.get("/console/datasets?state=DRAFT&agency=DOUANE").text


def test_steward_classifies_submits_and_sees_findings_and_validation(world, client):
    sign_in(client, world.tokens["amina"])
    html = _classify(client, world)
    assert "Classification enregistrée (PUBLIC)." in html
    assert world.services.workflow.dataset(world.dataset_id).state == "CLASSIFIED"
    html = _submit(client, world, PII_CSV)
    assert "Soumis pour revue : 1 constat(s)" in html
    assert 'data-finding="source:phone"' in html
    assert "Conforme au schéma (2 lignes)." in html
    # amina classified and submitted it: approve is there, disabled, four eyes said why
    assert re.search(r'<button type="submit" class="primary" id="approve" disabled', html)
    assert 'id="approve-why" data-code="four-eyes"' in html
    assert "Vous l&#39;avez classifié et l&#39;avez soumis pour revue" in html


def test_the_approver_waits_for_findings_then_approves(world, server, client):
    sign_in(client, world.tokens["amina"])
    _classify(client, world)
    _submit(client, world, PII_CSV)
    approver = server.client(follow_redirects=True)
    sign_in(approver, world.tokens["karim"])
    html = approver.get(f"/console/datasets/{world.dataset_id}").text
    assert 'id="approve-why" data-code="pii-unresolved"' in html
    # the button is disabled, but a forced POST is refused by the workflow all the same
    answer = approver.post(
        f"/console/datasets/{world.dataset_id}/approve",
        data={"csrf": csrf_of(approver, world.dataset_id)},
    )
    assert _flash_code(answer.text) == "pii-unresolved"
    assert "<li>source:phone</li>" in answer.text
    html = client.post(
        f"/console/datasets/{world.dataset_id}/resolve",
        data={
            "csrf": csrf_of(client, world.dataset_id),
            "finding": "source:phone",
            "resolution": "drop",
            "reason": "colonne retirée du fichier publié",
        },
    ).text
    assert _flash_code(html) == "needs-derivation"  # dropping is a derivation, not a click
    html = client.post(
        f"/console/datasets/{world.dataset_id}/resolve",
        data={
            "csrf": csrf_of(client, world.dataset_id),
            "finding": "source:phone",
            "resolution": "justify",
            "reason": "numéro du standard de l'office, public",
        },
    ).text
    assert "Constat source:phone traité." in html
    approver = server.client(follow_redirects=True)
    sign_in(approver, world.tokens["karim"])
    html = approver.get(f"/console/datasets/{world.dataset_id}").text
    assert re.search(r'id="approve">', html)  # enabled now
    html = approver.post(
        f"/console/datasets/{world.dataset_id}/approve",
        data={"csrf": csrf_of(approver, world.dataset_id), "reason": "ok"},
    ).text
    assert "Approuvé pour publication." in html
    assert world.services.workflow.dataset(world.dataset_id).state == "APPROVED"


def test_the_steward_cannot_approve_her_own_submission(world, client):
    """Four eyes: even with the approver role, forcing the POST shows the refusal code."""
    sign_in(client, world.tokens["amina"])
    _classify(client, world)
    _submit(client, world, CLEAN_CSV)
    answer = client.post(
        f"/console/datasets/{world.dataset_id}/approve",
        data={"csrf": csrf_of(client, world.dataset_id)},
    )
    assert _flash_code(answer.text) == "four-eyes"
    assert world.services.workflow.dataset(world.dataset_id).state == "IN_REVIEW"


def test_wrong_role_is_refused_with_its_code(world, client):
    """An approver without the steward role may not classify: wrong-role, nothing changes;
    the classification form is shown disabled with the same reason."""
    sign_in(client, world.tokens["karim"])
    html = client.get(f"/console/datasets/{world.dataset_id}").text
    assert 'id="classify-why" data-code="wrong-role"' in html
    html = _classify(client, world)
    assert _flash_code(html) == "wrong-role"
    assert "only a steward may" in html
    assert world.services.workflow.dataset(world.dataset_id).state == "DRAFT"


def test_another_agencys_dataset_is_as_unknown_as_a_missing_one(world, client):
    """To a steward of another agency the dataset's page is the unknown dataset's 404, and a
    forced POST is refused as for an unknown dataset, changing nothing."""
    sign_in(client, world.tokens["youssef"])
    client.get("/console/datasets")  # shows the welcome flash
    page = client.get(f"/console/datasets/{world.dataset_id}")
    assert page.status_code == 404
    assert 'data-code="unknown-dataset"' in page.text
    assert page.text.replace(world.dataset_id, "x") == (client.get("/console/datasets/x").text)
    html = _classify(client, world)
    assert _flash_code(html) == "unknown-dataset"
    assert world.services.workflow.dataset(world.dataset_id).state == "DRAFT"


def test_an_invalid_file_is_refused_with_each_error(world, client):
    sign_in(client, world.tokens["amina"])
    _classify(client, world)
    html = _submit(client, world, BAD_CSV, name="../../etc/passwd")
    assert _flash_code(html) == "invalid-data"
    assert "type-error" in html or "row 2" in html
    assert world.services.workflow.dataset(world.dataset_id).state == "CLASSIFIED"


def test_a_submission_without_a_file_is_refused(world, client):
    """What a browser sends when no file was chosen (an empty file part) asks for one; a
    body that is not a multipart form at all is refused as not the page's form."""
    sign_in(client, world.tokens["amina"])
    _classify(client, world)
    answer = client.post(
        f"/console/datasets/{world.dataset_id}/submit",
        data={"csrf": csrf_of(client, world.dataset_id)},
        files={"data": ("", b"", "application/octet-stream")},
    )
    assert _flash_code(answer.text) == "invalid-input"
    not_a_form = client.post(
        f"/console/datasets/{world.dataset_id}/submit",
        data={"csrf": csrf_of(client, world.dataset_id)},
    )
    assert not_a_form.status_code == 422
    assert 'data-code="invalid-request"' in not_a_form.text


def test_data_that_may_not_be_opened_cannot_be_submitted(world, client):
    sign_in(client, world.tokens["amina"])
    _classify(client, world, level="INTERNAL")
    html = client.get(f"/console/datasets/{world.dataset_id}").text
    assert 'id="submit-why" data-code="not-publishable"' in html


def test_reject_needs_a_reason_then_reopen(world, server, client):
    sign_in(client, world.tokens["amina"])
    _classify(client, world)
    _submit(client, world, CLEAN_CSV)
    approver = server.client(follow_redirects=True)
    sign_in(approver, world.tokens["karim"])
    url = f"/console/datasets/{world.dataset_id}/reject"
    html = approver.post(url, data={"csrf": csrf_of(approver, world.dataset_id)}).text
    assert _flash_code(html) == "invalid-input"
    html = approver.post(
        url, data={"csrf": csrf_of(approver, world.dataset_id), "reason": "régions manquantes"}
    ).text
    assert "Rejeté." in html
    html = client.post(
        f"/console/datasets/{world.dataset_id}/reopen",
        data={"csrf": csrf_of(client, world.dataset_id), "reason": "ajout des régions"},
    ).text
    assert "Remis en brouillon." in html
    assert world.services.workflow.dataset(world.dataset_id).state == "DRAFT"


def test_publishing_to_an_unreachable_portal_shows_the_code(world, client):
    """The portal is down: the flash names portal-unavailable, nothing is recorded."""
    sign_in(client, world.tokens["amina"])
    _classify(client, world)
    _submit(client, world, CLEAN_CSV)
    world.services.workflow.approve("karim", world.dataset_id)
    html = client.post(
        f"/console/datasets/{world.dataset_id}/publish",
        data={"csrf": csrf_of(client, world.dataset_id)},
    ).text
    assert _flash_code(html) == "portal-unavailable"
    assert "Traceback" not in html
    assert world.services.workflow.dataset(world.dataset_id).state == "APPROVED"


def test_withdraw_needs_a_reason_and_is_offered_only_when_live(world, client):
    sign_in(client, world.tokens["amina"])
    html = client.get(f"/console/datasets/{world.dataset_id}").text
    assert 'id="withdraw-form"' not in html
    html = client.post(
        f"/console/datasets/{world.dataset_id}/withdraw",
        data={"csrf": csrf_of(client, world.dataset_id), "reason": " "},
    ).text
    assert _flash_code(html) == "invalid-input"
    html = client.post(
        f"/console/datasets/{world.dataset_id}/withdraw",
        data={"csrf": csrf_of(client, world.dataset_id), "reason": "erreur"},
    ).text
    assert _flash_code(html) == "illegal-transition"


@pytest.mark.parametrize("lang", LANGS)
def test_a_published_dataset_links_to_the_portal_and_offers_withdrawal(world, client, lang):
    """Recorded as published (the workflow's own record, as the pipeline leaves it): the page
    links to the CKAN package and offers withdrawal with a required reason."""
    sign_in(client, world.tokens["amina"])
    _classify(client, world)
    _submit(client, world, CLEAN_CSV)
    flow = world.services.workflow
    review = flow.approve("karim", world.dataset_id)
    flow.mark_published(
        "amina", world.dataset_id, content_sha256=review.content_sha256, reference="pkg@1"
    )
    html = client.get(f"/console/datasets/{world.dataset_id}", params={"lang": lang}).text
    assert f'id="ckan-link" href="{CLOSED_PORT_URL}/dataset/{world.dataset_id}"' in html
    assert '<input id="withdraw-reason" name="reason" required>' in html
    assert 'id="publish-form"' not in html
    assert _keys_shown(html) == []


def test_an_unknown_dataset_is_a_404_page(world, client):
    sign_in(client, world.tokens["amina"])
    answer = client.get("/console/datasets/nothing-here?lang=en")
    assert answer.status_code == 404
    assert 'data-code="unknown-dataset"' in answer.text


def test_the_dataset_history_lists_each_transition(world, client):
    sign_in(client, world.tokens["amina"])
    _classify(client, world)
    html = client.get(f"/console/datasets/{world.dataset_id}?lang=en").text
    history = html[html.index('id="history"') :]
    assert 'data-action="dataset.register"' in history
    assert 'data-action="dataset.classify"' in history
    assert "Draft → Classified" in history


# ---- operator and auditor pages ------------------------------------------------------------------


def test_global_audit_trail_is_for_operators_and_auditors(world, server, client):
    sign_in(client, world.tokens["amina"])
    answer = client.get("/console/audit")
    assert answer.status_code == 403
    assert 'data-code="wrong-role"' in answer.text
    assert 'href="/console/audit"' not in client.get("/console/datasets").text
    auditor = server.client(follow_redirects=True)
    sign_in(auditor, world.tokens["audrey"])
    html = auditor.get("/console/audit?lang=en").text
    assert 'id="integrity" data-ok="true"' in html
    assert 'data-action="user.register"' in html
    assert f"dataset:{world.dataset_id}" in html
    html = auditor.get(f"/console/audit?subject=dataset:{world.dataset_id}").text
    assert 'data-action="user.register"' not in html


def test_traffic_dashboard_without_sources_says_so(world, client):
    sign_in(client, world.tokens["op"])
    html = client.get("/console/traffic").text
    assert 'id="no-sources"' in html
    sign_in(client, world.tokens["youssef"])
    assert client.get("/console/traffic").status_code == 403


def test_traffic_dashboard_draws_the_connectors_figures(world):
    """A real connector Metrics served over HTTP, and one source that does not answer: the
    charts show the first, the sources table marks the second unreachable."""
    with MetricsServer("MA/GOV/MEF/TAX") as tax:
        for _ in range(3):
            tax.metrics.count("received", "customs.declaration-lodged")
        tax.metrics.count("sent", "tax.compliance-certificate.response")
        tax.metrics.count("rejected", "bad-signature")
        tax.metrics.handler_seconds.labels("customs.declaration-lodged").observe(0.004)
        settings = dataclasses.replace(
            world.services.settings, metrics_urls=(tax.url, "http://127.0.0.1:9/metrics")
        )
        services = Services(settings, world.services.store)
        with serving(services) as served:
            client = served.client(follow_redirects=True)
            sign_in(client, world.tokens["op"])
            html = client.get("/console/traffic?lang=en").text
    assert '<td dir="ltr">MA/GOV/MEF/TAX</td>' in html
    assert 'data-source="http://127.0.0.1:9/metrics" data-reachable="no"' in html
    assert html.count("<svg") == 4
    assert "customs.declaration-lodged" in html
    assert '<rect class="bar bar-rejected"' in html
    assert "<td><code>bad-signature</code></td><td>1</td>" in html


def test_home_redirects_to_the_datasets(world, client):
    sign_in(client, world.tokens["op"])
    answer = client.get("/console/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/datasets"


def test_cookie_header_parses(world, client):
    """The flash cookie the console sets is a valid cookie (quoted JSON would break it)."""
    answer = client.post(
        "/console/signin", data={"token": world.tokens["op"]}, follow_redirects=False
    )
    raw = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
    jar = SimpleCookie()
    for value in raw:
        jar.load(value)
    assert "tabadul_flash" in jar
