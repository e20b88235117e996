"""A valid submission: one transaction, one mail, the same answer for known and unknown addresses."""

import pytest

from inbound.consent import ConsentEvent, lead_consent_states
from inbound.leads import Lead
from inbound.optin import OptInRequest
from inbound.pages import GatedFormSubmission
from tests.gated.conftest import confirm_path, submit

pytestmark = pytest.mark.django_db


def test_submission_stores_lead_answers_pending_consents_and_one_mail(
        client, gated_page, purposes, mailoutbox, on_commit):
    with on_commit():
        response = submit(client, gated_page, firma="ACME", consent_email_nurture="on",
                          consent_phone="on", remote_addr="198.51.100.77")
    assert response.status_code == 200
    lead = Lead.objects.get()
    assert lead.site_id == gated_page.get_site().pk
    submission = GatedFormSubmission.objects.get()
    assert submission.lead == lead and submission.page_id == gated_page.pk
    assert submission.form_data["firma"] == "ACME"
    assert submission.form_data["consents"] == ["email-nurture", "phone"]
    events = list(ConsentEvent.objects.order_by("seq"))
    requested = [e for e in events if e.kind == ConsentEvent.REQUESTED]
    assert {e.purpose_id for e in requested} == {purposes["nurture"].pk, purposes["phone"].pk}
    for event in requested:  # P1
        assert event.text_version.text == event.purpose.text_de
        assert event.source_page_id == gated_page.pk
        assert event.asset_id == gated_page.asset_id
        assert event.ip_truncated == "198.51.100.0/24"  # P4
        assert event.occurred_at.utcoffset().total_seconds() == 0
    assert lead_consent_states(lead) == {purposes["nurture"].pk: "pending", purposes["phone"].pk: "pending"}
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["max.muster@example.org"]


def test_ipv6_is_truncated_to_48_bits(client, gated_page, on_commit):
    with on_commit():
        submit(client, gated_page, consent_tracking="on", remote_addr="2001:db8:abcd:12:1:2:3:4")
    assert OptInRequest.objects.get().ip_truncated == "2001:db8:abcd::/48"
    assert ConsentEvent.objects.filter(kind="requested").get().ip_truncated == "2001:db8:abcd::/48"


def test_answer_is_identical_for_known_and_unknown_addresses(client, gated_page, on_commit):
    """D8: nobody can find out who is registered."""
    with on_commit():
        first = submit(client, gated_page, email="new@example.org").content.decode()
    with on_commit():
        again = submit(client, gated_page, email="new@example.org").content.decode()
    with on_commit():
        other = submit(client, gated_page, email="other@example.org").content.decode()

    def body(html):
        return html.split('<main id="main"', 1)[1].split("</main>", 1)[0]

    assert body(first) == body(again) == body(other)


def test_ten_submissions_within_an_hour_send_one_mail(client, gated_page, mailoutbox, on_commit):
    """F7 and double clicks: repeated submissions are folded into one request and one mail."""
    for _ in range(10):
        with on_commit():
            assert submit(client, gated_page, consent_email_nurture="on").status_code == 200
    assert len(mailoutbox) == 1
    assert OptInRequest.objects.count() == 1
    assert ConsentEvent.objects.filter(kind="requested").count() == 1
    assert GatedFormSubmission.objects.count() == 10, "every answer is kept"


def test_mails_per_address_are_capped_across_pages(client, gated_page, demo_site, asset, purposes,
                                                   mailoutbox, on_commit):
    from inbound.pages import GatedPage

    pages = [gated_page]
    for number in range(4):
        page = GatedPage(title=f"Checkliste {number}", slug=f"checkliste-{number}", asset=asset)
        demo_site.root_page.add_child(instance=page)
        page.save_revision().publish()
        pages.append(page)
    for page in pages:
        with on_commit():
            assert submit(client, page).status_code == 200
    assert len(mailoutbox) == 3  # INBOUND_OPTIN_MAX_MAILS_PER_ADDRESS


def test_rate_limit_per_client(client, gated_page, settings, on_commit):
    settings.INBOUND_SUBMISSIONS_PER_CLIENT_PER_HOUR = 3
    for number in range(3):
        with on_commit():
            assert submit(client, gated_page, email=f"a{number}@example.org").status_code == 200
    response = submit(client, gated_page, email="a9@example.org", firma="Kept")
    assert response.status_code == 429
    assert 'value="Kept"' in response.content.decode()
    assert not Lead.objects.filter(email="a9@example.org").exists()
    # another network is not affected
    with on_commit():
        assert submit(client, gated_page, email="b@example.org", remote_addr="192.0.2.1").status_code == 200


def test_resubmission_while_confirmed_never_downgrades(client, gated_page, purposes, mailoutbox, on_commit):
    """D6 (and listmonk#2987): signing up again keeps the confirmed consent."""
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    with on_commit():
        client.post(confirm_path(mailoutbox[0]))
    lead = Lead.objects.get()
    confirmed_at = lead.confirmed_at
    assert lead_consent_states(lead)[purposes["nurture"].pk] == "confirmed"
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on", consent_tracking="on")
    lead.refresh_from_db()
    assert lead.confirmed_at == confirmed_at
    states = lead_consent_states(lead)
    assert states[purposes["nurture"].pk] == "confirmed"
    assert states[purposes["tracking"].pk] == "pending"


def test_signing_up_after_withdrawal_needs_a_fresh_confirmation(client, gated_page, purposes,
                                                                mailoutbox, on_commit):
    from django.db import transaction

    from inbound.consent import append_events

    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    with on_commit():
        client.post(confirm_path(mailoutbox[0]))
    lead = Lead.objects.get()
    nurture = purposes["nurture"]
    with transaction.atomic():
        append_events(lead, ConsentEvent.WITHDRAWN, [(nurture, nurture.current_version("de"))],
                      channel="test")
    OptInRequest.objects.update(created_at=OptInRequest.objects.get().created_at.replace(year=2020))
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    assert lead_consent_states(lead)[nurture.pk] == "pending"
    assert len(mailoutbox) == 3  # confirmation, delivery, fresh confirmation
    with on_commit():
        client.post(confirm_path(mailoutbox[2]))
    assert lead_consent_states(lead)[nurture.pk] == "confirmed"


def test_one_lead_per_site_and_address(client, gated_page, on_commit):
    with on_commit():
        submit(client, gated_page, email="Same@Example.org")
    OptInRequest.objects.update(created_at=OptInRequest.objects.get().created_at.replace(year=2020))
    with on_commit():
        submit(client, gated_page, email="same@example.ORG")
    assert Lead.objects.count() == 1
