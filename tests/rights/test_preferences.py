"""The preference center: a signed per-lead link where the person sees and changes each purpose,
sees what is stored, restricts or objects (R3), and asks for erasure. Re-granting needs a new DOI (D6)."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from freezegun import freeze_time
from wagtail.models import ModelLogEntry

from inbound import links, privacy
from inbound.consent import ConsentEvent, lead_consent_states
from inbound.leads import Lead, LeadEvent
from inbound.mailing import SentMail
from inbound.marketing import send_decision
from tests.rights.conftest import confirm_path, send_marketing
from tests.rights.test_export import ADDRESS, post_contact, preferences_path

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def rows(html):
    """{purpose key: (state text, button value)} from the consent list of the page."""
    found = {}
    for key, body in re.findall(r'<li [^>]*consent-row" data-purpose="([^"]+)">(.*?)</li>', html, re.S):
        state = re.search(r'<span class="consent-state">([^<]*)</span>', body).group(1)
        button = re.search(r'name="action" value="([^"]+)"', body).group(1)
        found[key] = (state, button)
    return found


def message(html):
    match = re.search(r'id="preferences-message">([^<]*)</div>', html)
    return match.group(1) if match else None


def stored(html):
    block = re.search(r'<ul id="stored-data">(.*?)</ul>', html, re.S).group(1)
    return [re.sub(r"\s+", " ", item).strip() for item in re.findall(r"<li>(.*?)</li>", block, re.S)]


def act(client, lead, action, on_commit):
    with on_commit():
        response = client.post(preferences_path(lead), {"action": action}, **EN)
    assert response.status_code == 200
    return response.content.decode()


# --- the link --------------------------------------------------------------------------------

def test_page_shows_each_purpose_with_its_state_and_text(client, confirmed_lead, purposes):
    response = client.get(preferences_path(confirmed_lead), **EN)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response["X-Robots-Tag"] == "noindex" and response["Referrer-Policy"] == "same-origin"
    html = response.content.decode()
    nurture, tracking, phone = purposes["nurture"], purposes["tracking"], purposes["phone"]
    assert rows(html) == {
        "email-nurture": ("given", f"withdraw:{nurture.pk}"),
        "tracking": ("given", f"withdraw:{tracking.pk}"),
        "phone": ("not given", f"grant:{phone.pk}"),
    }
    for purpose in purposes.values():
        assert purpose.name in html
        assert purpose.text_en in html, "the current consent text"
    assert 'href="/impressum/"' in html and 'href="/datenschutz/"' in html, "L1: legal links"


def test_link_works_until_it_expires(client, confirmed_lead):
    issued = timezone.now()
    with freeze_time(issued):
        path = preferences_path(confirmed_lead)
    with freeze_time(issued + timedelta(seconds=links.PREFERENCES_MAX_AGE - 60)):
        assert client.get(path).status_code == 200
    with freeze_time(issued + timedelta(seconds=links.PREFERENCES_MAX_AGE + 1)):
        response = client.get(path, **EN)
        assert response.status_code == 404
        assert "This link is not valid" in response.content.decode()
        assert client.post(path, {"action": "restrict"}).status_code == 404
        assert client.get(path + "export/").status_code == 404
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.restricted_at is None


@pytest.mark.parametrize("forge", ["garbage", "{preferences}x", "x{preferences}", "{unsubscribe}",
                                   "{erasure}"])
def test_tampered_or_foreign_token_is_refused(client, confirmed_lead, purposes, forge):
    token = forge.format(preferences=links.preferences_token(confirmed_lead),
                         unsubscribe=links.unsubscribe_token(confirmed_lead),
                         erasure=links.erasure_token(confirmed_lead))
    response = client.get(f"/inbound/p/{token}/")
    assert response.status_code == 404
    assert ADDRESS not in response.content.decode().lower()
    response = client.post(f"/inbound/p/{token}/", {"action": f"withdraw:{purposes['nurture'].pk}"})
    assert response.status_code == 404
    assert lead_consent_states(confirmed_lead)[purposes["nurture"].pk] == ConsentEvent.CONFIRMED


def test_rotating_the_lead_key_revokes_the_link(client, confirmed_lead, purposes):
    path = preferences_path(confirmed_lead)
    assert client.get(path).status_code == 200
    Lead.objects.filter(pk=confirmed_lead.pk).update(key="rotated")
    assert client.get(path).status_code == 404
    assert client.post(path, {"action": f"withdraw:{purposes['nurture'].pk}"}).status_code == 404
    assert lead_consent_states(confirmed_lead)[purposes["nurture"].pk] == ConsentEvent.CONFIRMED


# --- consents --------------------------------------------------------------------------------

def test_withdrawal_takes_effect_at_once(client, confirmed_lead, purposes, mailoutbox, on_commit):
    nurture = purposes["nurture"]
    assert send_decision(confirmed_lead).allowed
    html = act(client, confirmed_lead, f"withdraw:{nurture.pk}", on_commit)
    assert message(html) == "Your consent was withdrawn. It takes effect immediately."
    assert rows(html)["email-nurture"] == ("not given", f"grant:{nurture.pk}")
    assert rows(html)["tracking"][0] == "given", "only the purpose asked for"
    event = ConsentEvent.objects.filter(lead=confirmed_lead).latest("seq")
    assert (event.kind, event.purpose_id, event.channel) == (ConsentEvent.WITHDRAWN, nurture.pk,
                                                             "preference-center")
    decision = send_decision(confirmed_lead)
    assert not decision.allowed and decision.reason == "no confirmed marketing consent"
    assert send_marketing(confirmed_lead).sent is False
    assert mailoutbox == [], "M4: no mail after the withdrawal"


def test_regrant_needs_a_new_double_opt_in(client, confirmed_lead, purposes, mailoutbox, on_commit):
    nurture = purposes["nurture"]
    act(client, confirmed_lead, f"withdraw:{nurture.pk}", on_commit)
    html = act(client, confirmed_lead, f"grant:{nurture.pk}", on_commit)
    assert message(html) == ("We have sent you an e-mail. Your consent takes effect once you confirm "
                             "it there.")
    assert rows(html)["email-nurture"] == ("waiting for your confirmation", f"withdraw:{nurture.pk}")
    (mail,) = mailoutbox
    assert mail.to == [ADDRESS] and mail.subject == "Please confirm your consent"
    requested = ConsentEvent.objects.filter(lead=confirmed_lead, kind=ConsentEvent.REQUESTED).latest("seq")
    assert requested.purpose_id == nurture.pk and requested.channel == "preference-center"
    assert requested.text_version.text == nurture.text_en, "the text the person saw"
    assert lead_consent_states(confirmed_lead)[nurture.pk] == "pending"
    assert send_decision(confirmed_lead).allowed is False
    assert send_marketing(confirmed_lead).sent is False

    # pressing again while pending sends nothing more
    html = act(client, confirmed_lead, f"grant:{nurture.pk}", on_commit)
    assert message(html) == "Nothing was changed."
    assert len(mailoutbox) == 1

    # only the confirmation in the mail makes it confirmed
    path = confirm_path(mail)
    assert client.get(path).status_code == 200
    assert lead_consent_states(confirmed_lead)[nurture.pk] == "pending", "GET confirms nothing"
    with on_commit():
        assert client.post(path).status_code == 200
    assert lead_consent_states(confirmed_lead)[nurture.pk] == ConsentEvent.CONFIRMED
    html = client.get(preferences_path(confirmed_lead), **EN).content.decode()
    assert rows(html)["email-nurture"][0] == "given"
    assert send_decision(confirmed_lead).allowed
    mailoutbox.clear()
    assert send_marketing(confirmed_lead).sent and len(mailoutbox) == 1


def test_granting_a_confirmed_consent_changes_nothing(client, confirmed_lead, purposes, mailoutbox,
                                                      on_commit):
    events = ConsentEvent.objects.count()
    html = act(client, confirmed_lead, f"grant:{purposes['nurture'].pk}", on_commit)
    assert message(html) == "Nothing was changed."
    assert mailoutbox == [] and ConsentEvent.objects.count() == events


@pytest.mark.parametrize("action", ["withdraw:999999", "grant:abc", "withdraw:", "explode", ""])
def test_unknown_actions_change_nothing(client, confirmed_lead, mailoutbox, on_commit, action):
    events = ConsentEvent.objects.count()
    html = act(client, confirmed_lead, action, on_commit)
    assert message(html) == "Nothing was changed."
    assert ConsentEvent.objects.count() == events and mailoutbox == []
    assert Lead.objects.filter(pk=confirmed_lead.pk, restricted_at=None, objected_at=None).exists()


# --- restriction and objection (R3) ----------------------------------------------------------

def test_restriction_stops_marketing_until_lifted(client, confirmed_lead, purposes, mailoutbox, on_commit):
    html = act(client, confirmed_lead, "restrict", on_commit)
    assert message(html) == "Processing of your data is now restricted to storage."
    assert 'value="unrestrict"' in html and 'value="restrict"' not in html
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.restricted_at is not None
    decision = send_decision(confirmed_lead)
    assert not decision.allowed and decision.reason == "restricted"
    outcome = send_marketing(confirmed_lead)
    assert not outcome.sent and outcome.reason == "restricted"
    assert mailoutbox == []
    assert lead_consent_states(confirmed_lead)[purposes["nurture"].pk] == ConsentEvent.CONFIRMED, (
        "restriction keeps the consent (storage only)")
    entry = ModelLogEntry.objects.get(action=privacy.RESTRICT_ACTION)
    assert entry.data == {"restricted": True, "channel": "preference-center"}
    assert entry.label == f"Lead #{confirmed_lead.pk}"

    html = act(client, confirmed_lead, "unrestrict", on_commit)
    assert message(html) == "The restriction was lifted."
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.restricted_at is None
    assert send_marketing(confirmed_lead).sent


def test_objection_stops_marketing_and_withdraws_marketing_and_tracking_consent(
        client, confirmed_lead, purposes, mailoutbox, on_commit):
    nurture = purposes["nurture"]
    html = act(client, confirmed_lead, "object", on_commit)
    assert message(html) == "Your objection was recorded. We no longer use your data for marketing."
    assert 'value="unobject"' in html and 'value="object"' not in html
    assert rows(html)["email-nurture"][0] == "not given"
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.objected_at is not None
    decision = send_decision(confirmed_lead)
    assert not decision.allowed and decision.reason == "objected"
    assert send_marketing(confirmed_lead).sent is False and mailoutbox == []
    withdrawn = ConsentEvent.objects.filter(lead=confirmed_lead, kind=ConsentEvent.WITHDRAWN)
    assert {event.purpose_id for event in withdrawn} == {nurture.pk, purposes["tracking"].pk}, (
        "marketing and the profiling related to it (tracking)")
    assert {event.channel for event in withdrawn} == {"objection-preference-center"}
    assert ModelLogEntry.objects.get(action=privacy.OBJECT_ACTION).data == {
        "objected": True, "channel": "preference-center"}

    # withdrawing the objection does not bring the marketing consent back (D6: new DOI)
    html = act(client, confirmed_lead, "unobject", on_commit)
    assert message(html) == "Your objection was withdrawn."
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.objected_at is None
    decision = send_decision(confirmed_lead)
    assert not decision.allowed and decision.reason == "no confirmed marketing consent"
    assert mailoutbox == []


# --- what is stored, erasure request, CSRF ---------------------------------------------------

def test_page_shows_what_is_stored(client, confirmed_lead, mailoutbox, on_commit):
    post_contact(client)  # a contact-form submission with the same address is stored data too
    assert send_marketing(confirmed_lead).sent
    html = client.get(preferences_path(confirmed_lead), **EN).content.decode()
    items = stored(html)
    assert items[0] == f"E-mail address: {ADDRESS}"
    assert items[1].startswith("Stored since: ")
    assert items[2:] == [
        "Form answers: 2",
        f"Consent records: {ConsentEvent.objects.filter(lead=confirmed_lead).count()}",
        f"Recorded activities: {LeadEvent.objects.filter(lead=confirmed_lead).count()}",
        f"E-mails sent to you: {SentMail.objects.filter(lead=confirmed_lead).count()}",
    ]
    assert SentMail.objects.filter(lead=confirmed_lead).count() == 3  # opt-in, delivery, marketing


def test_erase_button_only_sends_a_confirmation_mail(client, confirmed_lead, mailoutbox, on_commit):
    html = act(client, confirmed_lead, "erase", on_commit)
    assert message(html) == "We have sent you an e-mail. Your data is erased once you confirm there."
    assert Lead.objects.filter(pk=confirmed_lead.pk).exists()
    (mail,) = mailoutbox
    assert mail.to == [ADDRESS] and "/inbound/erase/" in mail.body
    assert SentMail.objects.filter(lead=confirmed_lead, kind=SentMail.ERASURE).count() == 1


def test_preference_posts_need_the_csrf_token(confirmed_lead, purposes, on_commit):
    person = Client(enforce_csrf_checks=True)
    path = preferences_path(confirmed_lead)
    nurture = purposes["nurture"]
    for action in (f"withdraw:{nurture.pk}", "restrict", "object", "erase"):
        assert person.post(path, {"action": action}).status_code == 403
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.restricted_at is None and confirmed_lead.objected_at is None
    assert lead_consent_states(confirmed_lead)[nurture.pk] == ConsentEvent.CONFIRMED

    html = person.get(path).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    with on_commit():
        response = person.post(path, {"action": f"withdraw:{nurture.pk}", "csrfmiddlewaretoken": token})
    assert response.status_code == 200
    assert lead_consent_states(confirmed_lead)[nurture.pk] == ConsentEvent.WITHDRAWN
