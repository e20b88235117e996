"""Issue 3: the gated form in a real browser (headless Debian Chromium through Playwright).

The browser context asks for English, so the site answers in English whatever the default
language is. Each test leaves a screenshot in its tmp_path as a debugging aid.
"""

from urllib.parse import urlsplit

import pytest

from inbound.consent import ConsentEvent
from inbound.forms import consent_field_name
from inbound.leads import Lead
from inbound.optin import OptInRequest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

INVALID_EMAIL_MESSAGE = "Please enter a valid e-mail address, e.g. name@example.com."


def open_gated_page(tab, live_server, gated_page):
    response = tab.goto(live_server.url + urlsplit(gated_page.full_url).path)
    assert response is not None and response.status == 200
    assert tab.locator("h1").inner_text() == gated_page.title
    return tab


def submit(tab):
    with tab.expect_navigation() as navigation:
        tab.get_by_role("button", name="Request download").click()
    return navigation.value


def test_visitor_requests_the_download(live_server, english_page, gated_page, purposes, mailoutbox,
                                       tmp_path):
    tab = open_gated_page(english_page, live_server, gated_page)
    nurture = purposes["nurture"]

    # Every offered purpose is its own checkbox, and none is ticked (F1).
    boxes = tab.locator("input[type=checkbox][name^='consent_']")
    offered = {consent_field_name(p) for p in gated_page.offered_purposes()}
    assert len(offered) == 3
    assert {boxes.nth(i).get_attribute("name") for i in range(boxes.count())} == offered
    for i in range(boxes.count()):
        assert boxes.nth(i).is_visible()
        assert not boxes.nth(i).is_checked(), f"{boxes.nth(i).get_attribute('name')} is pre-ticked"
    assert tab.get_by_text(nurture.current_version("en").text).is_visible()
    honeypot = tab.locator("input[name=website]").bounding_box()
    assert honeypot is None or honeypot["x"] + honeypot["width"] <= 0, "the honeypot must be out of sight"

    tab.locator("input[name=email]").fill("Browser.Test@Example.org")
    tab.locator("input[name=firma]").fill("ACME GmbH")
    tab.locator(f"input[name={consent_field_name(nurture)}]").check()
    response = submit(tab)
    tab.screenshot(path=tmp_path / "check-your-inbox.png", full_page=True)

    assert response.status == 200
    assert tab.locator("h1").inner_text() == "Please check your inbox"
    assert tab.locator("form input[name=email]").count() == 0
    lead = Lead.objects.get(email="browser.test@example.org")
    assert lead.confirmed_at is None
    request_ = OptInRequest.objects.get(lead=lead)
    assert request_.language == "en"
    assert list(request_.purposes.values_list("key", flat=True)) == [nurture.key]
    assert list(lead.submissions.values_list("form_data", flat=True))[0]["firma"] == "ACME GmbH"
    assert list(ConsentEvent.objects.filter(lead=lead).order_by("seq").values_list(
        "kind", "purpose__key")) == [("requested", nurture.key), ("doi_sent", nurture.key)]
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["browser.test@example.org"]
    assert mailoutbox[0].subject.startswith("Please confirm your request")


def test_invalid_email_shows_error_and_keeps_input(live_server, english_page, gated_page, purposes,
                                                   mailoutbox, tmp_path):
    tab = open_gated_page(english_page, live_server, gated_page)
    tab.locator("input[name=email]").fill("not-an-email")
    tab.locator("input[name=firma]").fill("ACME GmbH")
    response = submit(tab)
    tab.screenshot(path=tmp_path / "invalid-email.png", full_page=True)

    assert response.status == 400
    error = tab.get_by_text(INVALID_EMAIL_MESSAGE)
    assert error.count() == 1 and error.is_visible()
    assert tab.locator("h1").inner_text() == gated_page.title, "the form is shown again"
    assert tab.locator("input[name=email]").input_value() == "not-an-email"
    assert tab.locator("input[name=firma]").input_value() == "ACME GmbH"
    boxes = tab.locator("input[type=checkbox][name^='consent_']")
    assert boxes.count() == 3
    assert not any(boxes.nth(i).is_checked() for i in range(boxes.count()))
    assert not Lead.objects.exists()
    assert not OptInRequest.objects.exists()
    assert mailoutbox == []
