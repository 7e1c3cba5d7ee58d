"""The console in a real headless Chromium (Playwright driving Debian's /usr/bin/chromium),
served by uvicorn, publishing to the real local CKAN (scripts/ckan-local).

Screenshots go to var/test-artifacts/console/. Without Chromium these tests fail, with how
to install it (``bash scripts/setup``); they never skip.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import ckanapi
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from opendata import ckan_name
from opendata._mapping import extras_of
from tabadul._services import Services
from tests.console.conftest import (
    CLEAN_CSV,
    MetricsServer,
    World,
    make_world,
    serving,
)
from tests.support.ckan import TOKEN_FILE, URL
from tests.support.dead_letters import dead_letter_bus
from tests.support.served import Served

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "test-artifacts" / "console"
# Debian's build (scripts/setup installs it); TABADUL_CHROMIUM points elsewhere if need be
CHROMIUM = Path(os.environ.get("TABADUL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 60_000  # a CKAN publication on a loaded two-core machine takes seconds


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the console's browser tests drive Debian's Chromium "
            "(Playwright cannot download its own here). Install it with `bash scripts/setup` "
            "(as root it runs `apt-get install chromium chromium-driver`)."
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def portal_world(tmp_path: Path, ckan: ckanapi.RemoteCKAN) -> Iterator[World]:
    """A world whose agency is new to CKAN; its package and organisation are purged after."""
    agency = f"HCP-{uuid.uuid4().hex[:8].upper()}"
    built = make_world(
        tmp_path,
        ckan_url=URL,
        ckan_token=TOKEN_FILE.read_text("utf-8").strip(),
        agency=agency,
    )
    yield built
    built.services.close()
    for action, ident in (
        ("dataset_purge", ckan_name(built.dataset_id)),
        ("organization_purge", ckan_name(agency)),
    ):
        with contextlib.suppress(ckanapi.NotFound):
            ckan.call_action(action, {"id": ident})


def _person(browser: Browser, served: Served, token: str, lang: str = "fr") -> BrowserContext:
    """A browser context (its own cookies) signed in with ``token`` through the form."""
    context = browser.new_context(locale=lang, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{served.url}/console/")
    expect(page).to_have_url(f"{served.url}/console/signin?next=%2Fconsole%2F")
    page.fill("#token", token)
    page.get_by_role(
        "button", name={"fr": "Se connecter", "ar": "دخول"}.get(lang, "Sign in")
    ).click()
    expect(page.locator("h1")).to_be_visible()
    assert "/console/datasets" in page.url
    page.close()
    return context


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _state(page: Page, state: str) -> None:
    expect(page.locator("#state")).to_have_attribute("data-state", state)


def _classify_and_submit(page: Page, csv: Path) -> None:
    """The steward's part: classify PUBLIC without personal data, upload the CSV."""
    page.select_option("#level", "PUBLIC")
    page.fill("#legal_basis", "Loi 31-13 sur le droit d'accès à l'information")
    page.fill("#justification", "Agrégats régionaux, aucune donnée individuelle")
    page.click("#classify")
    _state(page, "CLASSIFIED")
    expect(page.locator("#flash")).to_contain_text("Classification enregistrée")
    page.set_input_files("#data", str(csv))
    page.fill("#submit-reason", "millésime 2025")
    page.click("#submit")
    _state(page, "IN_REVIEW")
    expect(page.locator("#no-findings")).to_be_visible()


def _withdraw(page: Page) -> None:
    """Withdrawing needs a reason: the browser does not send the form without one."""
    page.click("#withdraw")
    _state(page, "PUBLISHED")
    page.fill("#withdraw-reason", "erreur de millésime")
    page.click("#withdraw")
    _state(page, "WITHDRAWN")


def test_steward_submits_another_approves_and_it_is_published_on_ckan(
    browser: Browser, portal_world: World, ckan: ckanapi.RemoteCKAN
):
    """Amina classifies and uploads the CSV; four eyes keeps her from approving it; Karim
    approves; Amina publishes and the package is on the real CKAN with the approved bytes'
    SHA-256; then she withdraws it, with a reason, and CKAN no longer has it."""
    world = portal_world
    csv = world.csv(CLEAN_CSV, "naissances-2025.csv")
    name = ckan_name(world.dataset_id)
    with serving(world.services) as served:
        amina = _person(browser, served, world.tokens["amina"])
        page = amina.new_page()
        page.goto(f"{served.url}/console/datasets")
        page.get_by_role("link", name=world.dataset_id).click()
        _state(page, "DRAFT")
        _classify_and_submit(page, csv)
        # four eyes: she classified and submitted it, so her approve button is disabled
        expect(page.locator("#approve")).to_be_disabled()
        expect(page.locator("#approve-why")).to_have_attribute("data-code", "four-eyes")
        expect(page.locator("#approve-why")).to_contain_text("l'avez classifié")
        page.locator("#decision-panel").scroll_into_view_if_needed()
        _shot(page, "01-steward-four-eyes")

        karim = _person(browser, served, world.tokens["karim"])
        review = karim.new_page()
        review.goto(f"{served.url}/console/datasets/{world.dataset_id}")
        expect(review.locator("#approve")).to_be_enabled()
        review.fill("#approve-reason", "conforme")
        review.click("#approve")
        _state(review, "APPROVED")
        _shot(review, "02-approver-approved")

        page.reload()
        _state(page, "APPROVED")
        page.click("#publish")
        _state(page, "PUBLISHED")
        expect(page.locator("#ckan-link")).to_have_attribute("href", f"{URL}/dataset/{name}")
        _shot(page, "03-published")
        package = ckan.action.package_show(id=name)
        assert package["title"] == "Naissances par région"
        assert extras_of(package)["sha256:data.csv"] == hashlib.sha256(csv.read_bytes()).hexdigest()
        assert package["organization"]["name"] == ckan_name(world.agency)

        _withdraw(page)
        with pytest.raises(ckanapi.NotFound):
            ckan.action.package_show(id=name)
        history = page.locator("#history")
        for action in ("dataset.classify", "dataset.submit", "dataset.approve", "dataset.publish"):
            expect(history.locator(f'tr[data-action="{action}"]')).to_have_count(1)
        _shot(page, "04-withdrawn")
        amina.close()
        karim.close()


def test_the_arabic_console_is_right_to_left(browser: Browser, world: World):
    """?lang=ar: <html dir=rtl>, the computed direction is rtl, and the language sticks."""
    with serving(world.services) as served:
        context = _person(browser, served, world.tokens["amina"])
        page = context.new_page()
        page.goto(f"{served.url}/console/datasets/{world.dataset_id}?lang=ar")
        assert page.evaluate("document.documentElement.dir") == "rtl"
        assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
        main = page.locator("main")
        assert main.evaluate("e => getComputedStyle(e).direction") == "rtl"
        expect(page.locator("h1")).to_have_text("الولادات حسب الجهة")
        expect(page.locator("#h-classification")).to_have_text("التصنيف")
        # the choice is remembered: the next page, without ?lang=, is Arabic too
        page.goto(f"{served.url}/console/datasets")
        assert page.evaluate("document.documentElement.lang") == "ar"
        # the language links switch back
        page.get_by_role("link", name="Français").click()
        assert page.evaluate("getComputedStyle(document.body).direction") == "ltr"
        page.goto(f"{served.url}/console/datasets/{world.dataset_id}?lang=ar")
        _shot(page, "05-arabic-rtl")
        context.close()


def test_the_dashboard_draws_svg_charts(browser: Browser, world: World):
    """The operator's traffic page, from a connector's real metrics and an unreachable
    source: the bars are drawn and the dead source is shown as such."""
    with MetricsServer("MA/GOV/MEF/TAX") as tax:
        for kind, count in (
            ("customs.declaration-lodged", 12),
            ("civil.person-lookup.response", 5),
        ):
            for _ in range(count):
                tax.metrics.count("received", kind)
        for _ in range(4):
            tax.metrics.count("sent", "tax.compliance-certificate.response")
        for code, count in (("stale", 3), ("bad-signature", 1), ("forbidden", 2)):
            for _ in range(count):
                tax.metrics.count("rejected", code)
        for seconds in (0.002, 0.004, 0.004, 0.03):
            tax.metrics.handler_seconds.labels("customs.declaration-lodged").observe(seconds)
        settings = dataclasses.replace(
            world.services.settings, metrics_urls=(tax.url, "http://127.0.0.1:9/metrics")
        )
        with serving(Services(settings, world.services.store)) as served:
            context = _person(browser, served, world.tokens["op"], lang="en")
            page = context.new_page()
            page.goto(f"{served.url}/console/traffic?lang=en")
            expect(page.locator("svg")).to_have_count(4)
            # rows by type: civil.person-lookup.response (5), customs.declaration-lodged (12)
            bars = page.locator("#chart-types rect.bar-received")
            widths = [(bars.nth(i).bounding_box() or {"width": 0.0})["width"] for i in range(2)]
            assert widths[0] > 20
            assert widths[1] / widths[0] == pytest.approx(12 / 5, rel=0.02)
            unreachable = page.locator('tr[data-reachable="no"]')
            expect(unreachable).to_contain_text("unreachable")
            _shot(page, "06-traffic-dashboard")
            context.close()


@pytest.mark.parametrize("lang", ["ar", "fr", "en"])
def test_the_dead_letter_pages_fit_a_phone_and_a_desk(
    browser: Browser, world: World, lang, tmp_path
):
    """An operator's dead-letter list and one dead letter, at 390 and 1366 px: nothing wider
    than the window; then the forged message is discarded through the page's form."""
    with dead_letter_bus(tmp_path / "bus") as bus:
        settings = dataclasses.replace(
            world.services.settings, connectors=(bus.configs["treasury"], bus.configs["civil"])
        )
        with serving(Services(settings, world.services.store)) as served:
            context = _person(browser, served, world.tokens["op"], lang=lang)
            page = context.new_page()
            civil = f"{served.url}/console/dead-letters/{bus.slug('civil')}/1"
            for width in (390, 1366):
                page.set_viewport_size({"width": width, "height": 900})
                for url, name in ((f"{served.url}/console/dead-letters", "list"), (civil, "one")):
                    page.goto(f"{url}?lang={lang}")
                    expect(page.locator("h1")).to_be_visible()
                    wide = page.evaluate("document.documentElement.scrollWidth")
                    assert wide <= width, f"{name} at {width} px is {wide} px wide"
                    _shot(page, f"07-dead-letters-{name}-{lang}-{width}")
            page.goto(f"{civil}?lang={lang}")
            page.fill("#discard-reason", "forged")
            page.locator("#discard-form button").click()
            expect(page.locator("#dead-letter")).to_have_attribute("data-state", "discarded")
            expect(page.locator("#flash")).to_be_visible()
            context.close()
