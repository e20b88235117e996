"""Issue 6 in a real browser (headless Debian Chromium): the cookie banner and tracking.

The browser lists its cookies and every request it makes: before a choice there is no cookie
on plain pages (only the CSRF cookie on a page with a form) and every request goes to the live
server; after Reject there is no tracking cookie and no event; after Accept page views are
stored; after withdrawal through "Cookie-Einstellungen" the cookie is gone and events stop.
The banner is checked for equal Reject/Accept buttons, for leaving the footer's legal links
uncovered, with axe-core, and without JavaScript. The page texts are the site's German
defaults (the browser asks for German).
"""

from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe

from inbound.consent import ConsentEvent, lead_consent_states
from inbound.leads import Lead, LeadEvent
from tests.gated.conftest import confirm_path

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

STANDARD = "/ueber-uns/"
PLAIN_PAGES = ["/", STANDARD, "/impressum/"]
NECESSARY = {"inbound_consent", "csrftoken"}  # the choice; CSRF only where a form needs it
FOOTER_LINKS = ["a.legal-imprint", "a.legal-privacy", "a.cookie-settings"]

IS_UNCOVERED = """(element) => {
    element.scrollIntoView({block: "center", behavior: "instant"});
    const box = element.getBoundingClientRect();
    const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    return hit === element || element.contains(hit);
}"""


class Visitor:
    """One browser context (a fresh visitor) that records every request it makes."""

    def __init__(self, browser, live_server, **context_options):
        self.live_server = live_server
        self.context = browser.new_context(locale="de-DE", **context_options)
        self.context.set_default_timeout(15_000)
        self.tab = self.context.new_page()
        self.requests = []
        self.context.on("request", lambda request: self.requests.append(request.url))

    def open(self, path):
        response = self.tab.goto(self.live_server.url + path)
        assert response is not None and response.status == 200, path
        return response

    def cookies(self):
        return {cookie["name"]: cookie for cookie in self.context.cookies()}

    def foreign_requests(self):
        host = urlsplit(self.live_server.url).netloc
        return [url for url in self.requests if urlsplit(url).netloc != host]

    def local_storage(self):
        return self.tab.evaluate("() => window.localStorage.length + window.sessionStorage.length")

    def banner(self):
        return self.tab.locator("#cookie-banner")

    def close(self):
        self.context.close()


@pytest.fixture
def visitor_factory(browser, live_server, demo_site):
    visitors = []

    def make(**options):
        visitor = Visitor(browser, live_server, **options)
        visitors.append(visitor)
        return visitor

    yield make
    for visitor in visitors:
        visitor.close()


def page_views():
    return LeadEvent.objects.filter(kind=LeadEvent.TRACK_VIEW)


def tracked_events():
    return LeadEvent.objects.filter(kind__startswith="track.")


def assert_footer_links_uncovered(tab):
    for selector in FOOTER_LINKS:
        link = tab.locator(f"footer {selector}")
        assert link.count() == 1, selector
        assert link.evaluate(IS_UNCOVERED), f"{selector} is covered"


def test_before_a_choice_only_necessary_cookies_and_only_this_host(visitor_factory, gated_page):
    visitor = visitor_factory()
    for path in PLAIN_PAGES:
        visitor.open(path)
        assert visitor.banner().is_visible(), path
        assert visitor.cookies() == {}, f"{path}: {visitor.cookies()}"
    visitor.open(gated_page.url)  # a page with a form: its CSRF cookie is strictly necessary
    assert set(visitor.cookies()) <= NECESSARY - {"inbound_consent"}
    assert visitor.requests, "requests are recorded"
    assert visitor.foreign_requests() == []
    assert visitor.local_storage() == 0
    assert not tracked_events().exists()


def test_reject_and_accept_are_equally_visible_and_the_footer_stays_free(visitor_factory):
    for viewport in ({"width": 1280, "height": 800}, {"width": 375, "height": 667}):
        visitor = visitor_factory(viewport=viewport)
        visitor.open(STANDARD)
        reject = visitor.tab.get_by_role("button", name="Alle ablehnen")
        accept = visitor.tab.get_by_role("button", name="Alle akzeptieren")
        assert reject.is_visible() and accept.is_visible()
        assert reject.get_attribute("class") == accept.get_attribute("class")
        reject_box, accept_box = reject.bounding_box(), accept.bounding_box()
        assert abs(reject_box["width"] - accept_box["width"]) < 1, viewport
        assert abs(reject_box["height"] - accept_box["height"]) < 1, viewport
        assert abs(reject_box["y"] - accept_box["y"]) < 1, "side by side on the first layer"
        # in the window without scrolling: the banner sticks to its bottom edge
        assert 0 <= reject_box["y"] and reject_box["y"] + reject_box["height"] <= viewport["height"]
        # the second layer open, the banner at its largest: the legal links stay usable (T4)
        visitor.tab.get_by_text("Einstellungen", exact=True).click()
        assert visitor.tab.get_by_role("checkbox", name="Statistik").is_visible()
        assert_footer_links_uncovered(visitor.tab)
        visitor.tab.locator("footer a.legal-imprint").click()
        assert visitor.tab.locator("h1").inner_text() == "Impressum"


def test_reject_stores_no_tracking_cookie_and_no_event(visitor_factory):
    visitor = visitor_factory()
    visitor.open(STANDARD)
    visitor.tab.get_by_role("button", name="Alle ablehnen").click()
    visitor.banner().wait_for(state="hidden")
    assert visitor.tab.locator("#cookie-status").inner_text().strip(), "screen readers hear the result"
    cookies = visitor.cookies()
    assert set(cookies) == {"inbound_consent"}
    assert cookies["inbound_consent"]["value"].endswith(".00")
    assert cookies["inbound_consent"]["httpOnly"] and cookies["inbound_consent"]["sameSite"] == "Lax"
    for path in PLAIN_PAGES:
        visitor.open(path)
        assert visitor.banner().count() == 0
    assert "inbound_vid" not in visitor.cookies()
    assert not tracked_events().exists()
    assert visitor.foreign_requests() == [] and visitor.local_storage() == 0


def test_accept_stores_page_views_and_withdrawal_stops_them(visitor_factory):
    visitor = visitor_factory()
    visitor.open(STANDARD)
    visitor.tab.get_by_role("button", name="Alle akzeptieren").click()
    visitor.banner().wait_for(state="hidden")
    cookies = visitor.cookies()
    assert set(cookies) == {"inbound_consent", "inbound_vid"}
    assert cookies["inbound_consent"]["value"].endswith(".11")
    visitor_id = cookies["inbound_vid"]["value"]
    assert len(visitor_id) == 32 and cookies["inbound_vid"]["httpOnly"]
    assert not page_views().exists(), "the page shown before the choice is not counted"

    visitor.open("/")
    visitor.open(STANDARD)
    assert list(page_views().order_by("pk").values_list("visitor_id", "page__url_path")) == [
        (visitor_id, "/home/"), (visitor_id, "/home/ueber-uns/")]

    # withdrawal through the footer link (T3)
    visitor.tab.locator("footer a.cookie-settings").click()
    assert visitor.tab.locator("h1").inner_text() == "Cookies und Datenschutz"
    statistics = visitor.tab.get_by_role("checkbox", name="Statistik")
    assert statistics.is_checked()
    statistics.uncheck()
    visitor.tab.get_by_role("button", name="Auswahl speichern").click()
    visitor.tab.wait_for_url("**/inbound/cookies/?saved=1")
    cookies = visitor.cookies()
    assert "inbound_vid" not in cookies, "withdrawing deletes the tracking cookie"
    assert cookies["inbound_consent"]["value"].endswith(".00")

    count = page_views().count()
    visitor.open("/")
    visitor.open(STANDARD)
    assert page_views().count() == count, "events stop"
    assert visitor.foreign_requests() == [] and visitor.local_storage() == 0


def test_banner_works_without_javascript(visitor_factory):
    visitor = visitor_factory(java_script_enabled=False)
    visitor.open(STANDARD)
    with visitor.tab.expect_navigation():
        visitor.tab.get_by_role("button", name="Alle akzeptieren").click()
    assert visitor.tab.url == visitor.live_server.url + STANDARD
    assert visitor.banner().count() == 0
    assert set(visitor.cookies()) == {"inbound_consent", "inbound_vid"}
    assert page_views().count() == 1, "the page shown after the choice is counted"


def test_axe_finds_no_serious_or_critical_violation_with_the_banner_open(visitor_factory):
    visitor = visitor_factory()
    axe = Axe()
    for path in ("/", STANDARD):
        visitor.open(path)
        visitor.tab.get_by_text("Einstellungen", exact=True).click()
        assert visitor.tab.get_by_role("checkbox", name="Personalisierung").is_visible()
        results = axe.run(visitor.tab)
        serious = [(v["id"], v["impact"], len(v["nodes"])) for v in results.response["violations"]
                   if v["impact"] in ("serious", "critical")]
        assert serious == [], results.generate_snapshot()
    visitor.open("/inbound/cookies/")
    results = axe.run(visitor.tab)
    assert not [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")], \
        results.generate_snapshot()


def focus_by_tab(tab, text, presses=40):
    """Press Tab until the element with this text has the focus; False if it never gets it."""
    for _ in range(presses):
        tab.keyboard.press("Tab")
        if tab.evaluate("() => document.activeElement.textContent.trim()") == text:
            return True
    return False


def test_banner_is_usable_with_the_keyboard(visitor_factory):
    visitor = visitor_factory()
    visitor.open(STANDARD)
    assert focus_by_tab(visitor.tab, "Einstellungen")
    visitor.tab.keyboard.press("Enter")  # opens the second layer
    statistics = visitor.tab.get_by_role("checkbox", name="Statistik")
    assert statistics.is_visible()
    visitor.tab.keyboard.press("Tab")
    visitor.tab.keyboard.press("Space")
    assert statistics.is_checked()
    assert focus_by_tab(visitor.tab, "Auswahl speichern")
    visitor.tab.keyboard.press("Enter")
    visitor.banner().wait_for(state="hidden")
    assert visitor.cookies()["inbound_consent"]["value"].endswith(".10")
    assert visitor.tab.locator("#cookie-status").inner_text().strip()

    other = visitor_factory()
    other.open(STANDARD)
    assert focus_by_tab(other.tab, "Alle ablehnen")
    other.tab.keyboard.press("Enter")
    other.banner().wait_for(state="hidden")
    assert other.cookies()["inbound_consent"]["value"].endswith(".00")


@pytest.mark.parametrize("signal", ["DNT", "Sec-GPC"])
def test_privacy_signal_no_tracking_but_the_doi_confirm_works(visitor_factory, live_server, gated_page,
                                                             purposes, mailoutbox, signal):
    visitor = visitor_factory(extra_http_headers={signal: "1"})
    visitor.open(STANDARD)
    assert visitor.banner().count() == 0, "the signal is the answer"
    visitor.open(gated_page.url)
    visitor.tab.locator("input[name=email]").fill("Signal.Test@Example.org")
    visitor.tab.locator("input[name=consent_tracking]").check()
    with visitor.tab.expect_navigation():
        visitor.tab.locator("main form:has(input[name=email]) button[type=submit]").click()
    assert len(mailoutbox) == 1
    visitor.open(confirm_path(mailoutbox[0]))
    with visitor.tab.expect_navigation():
        visitor.tab.locator("main form button[type=submit]").click()
    lead = Lead.objects.get(email="signal.test@example.org")
    assert lead.confirmed_at is not None
    assert lead_consent_states(lead)[purposes["tracking"].pk] == ConsentEvent.CONFIRMED
    assert not tracked_events().exists()
    assert "inbound_vid" not in visitor.cookies()
    assert visitor.foreign_requests() == []
