"""One-click unsubscribe (M2, M3, M4) as a mail provider and a person use it."""

import re
from email import message_from_bytes, policy

import pytest
from django.test import Client

from inbound.consent import ConsentEvent, lead_consent_states
from inbound.marketing import send_decision
from tests.rights.conftest import send_marketing

pytestmark = pytest.mark.django_db


def _parsed(message):
    return message_from_bytes(message.message().as_bytes(), policy=policy.default)


def _unsubscribe_path(parsed):
    header = str(parsed["List-Unsubscribe"]).strip()
    match = re.match(r"<https?://[^/]+(/inbound/u/[^>]+/)>", header)
    assert match, header
    return match.group(1)


def test_marketing_mail_carries_every_required_header_and_link(confirmed_lead, mailoutbox, purposes):
    outcome = send_marketing(confirmed_lead)
    assert outcome.sent, outcome.reason
    parsed = _parsed(mailoutbox[0])
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["List-Id"].endswith("<newsletter.127.0.0.1>")
    assert parsed["From"] == "Beispiel GmbH <newsletter@beispiel-gmbh.example>", "M6: marketing sender"
    assert parsed["Message-ID"] and parsed["Date"]
    path = _unsubscribe_path(parsed)
    assert confirmed_lead.email not in parsed["List-Unsubscribe"], "no personal data in URLs"
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    html = parsed.get_body(preferencelist=("html",)).get_content()
    for part in (text, html):  # M2 and the preference link, M5 footer
        assert path in part
        assert "/inbound/p/" in part
        assert "Beispiel GmbH" in part and "/impressum/" in part and "/datenschutz/" in part


@pytest.mark.parametrize("multipart", [False, True])
def test_one_click_post_withdraws_without_cookies_and_without_redirect(confirmed_lead, mailoutbox,
                                                                       purposes, multipart):
    send_marketing(confirmed_lead)
    path = _unsubscribe_path(_parsed(mailoutbox[0]))
    provider = Client(enforce_csrf_checks=True)  # no cookies, no CSRF token
    if multipart:
        response = provider.post(path, {"List-Unsubscribe": "One-Click"})
    else:
        response = provider.post(path, "List-Unsubscribe=One-Click",
                                 content_type="application/x-www-form-urlencoded")
    assert 200 <= response.status_code < 300
    assert not response.has_header("Location")
    states = lead_consent_states(confirmed_lead)
    assert states[purposes["nurture"].pk] == ConsentEvent.WITHDRAWN
    assert states[purposes["tracking"].pk] == ConsentEvent.CONFIRMED, "only marketing consent"
    event = ConsentEvent.objects.filter(kind=ConsentEvent.WITHDRAWN).get()
    assert event.channel == "one-click-unsubscribe" and event.occurred_at is not None
    assert send_decision(confirmed_lead).allowed is False
    mailoutbox.clear()
    assert send_marketing(confirmed_lead).sent is False
    assert mailoutbox == [], "M4: nothing after withdrawal"


def test_get_on_the_link_withdraws_nothing_and_offers_one_button(client, confirmed_lead, mailoutbox,
                                                                 purposes):
    send_marketing(confirmed_lead)
    path = _unsubscribe_path(_parsed(mailoutbox[0]))
    response = client.get(path)
    assert response.status_code == 200
    main = response.content.decode().split('<main id="main"', 1)[1].split("</main>", 1)[0]
    assert main.count('type="submit"') == 1
    assert lead_consent_states(confirmed_lead)[purposes["nurture"].pk] == ConsentEvent.CONFIRMED
    response = client.post(path, {"List-Unsubscribe": "One-Click"})  # the button
    assert response.status_code == 200
    assert "/inbound/p/" in response.content.decode(), "then offers the preference center"
    assert lead_consent_states(confirmed_lead)[purposes["nurture"].pk] == ConsentEvent.WITHDRAWN


def test_a_second_unsubscribe_is_harmless(client, confirmed_lead, mailoutbox):
    send_marketing(confirmed_lead)
    path = _unsubscribe_path(_parsed(mailoutbox[0]))
    client.post(path, {"List-Unsubscribe": "One-Click"})
    client.post(path, {"List-Unsubscribe": "One-Click"})
    assert ConsentEvent.objects.filter(kind=ConsentEvent.WITHDRAWN).count() == 1


@pytest.mark.parametrize("bad", ["garbage", "WzEsImFiYyJd:forged"])
def test_forged_token_changes_nothing(client, confirmed_lead, purposes, bad):
    response = Client().post(f"/inbound/u/{bad}/", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 404
    assert lead_consent_states(confirmed_lead)[purposes["nurture"].pk] == ConsentEvent.CONFIRMED


def test_foreign_token_with_a_stale_key_changes_nothing(client, confirmed_lead, mailoutbox, purposes):
    send_marketing(confirmed_lead)
    path = _unsubscribe_path(_parsed(mailoutbox[0]))
    type(confirmed_lead).objects.filter(pk=confirmed_lead.pk).update(key="rotated")
    response = Client().post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 404
    assert lead_consent_states(confirmed_lead)[purposes["nurture"].pk] == ConsentEvent.CONFIRMED


def test_pending_lead_is_never_mailed(client, gated_page, mailoutbox, on_commit):
    from inbound.leads import Lead
    from tests.rights.conftest import submit

    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    mailoutbox.clear()
    outcome = send_marketing(Lead.objects.get())
    assert not outcome.sent and "consent" in outcome.reason
    assert mailoutbox == []
