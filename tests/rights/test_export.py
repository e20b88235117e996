"""Export (R1): one complete JSON document per lead, for staff (privacy.export_lead) and for the
person through the preference center. The format is described in docs/export-format.md."""

import json
import re

import pytest
from django.test import Client
from wagtail.contrib.forms.models import FormSubmission
from wagtail.models import ModelLogEntry, Page

from inbound import delivery, links, privacy, self_service
from inbound.consent import ConsentEvent, ConsentTextVersion
from inbound.leads import Lead, LeadEvent
from inbound.mailing import SentMail
from inbound.optin import OptInRequest
from inbound.pages import GatedFormSubmission
from inbound.proof import iso
from inbound.scoring.models import StageChange
from tests.rights.conftest import send_marketing, submit

pytestmark = pytest.mark.django_db

ADDRESS = "max.muster@example.org"  # what the fixtures submit, normalised
# Distinctive answers, so that every one of them can be looked for in the export (and, after
# erasure, in the whole database).
FIRM = "Zylinderkopf Maschinenbau 4711"
GATED_MESSAGE = "Bitte Rückruf wegen Checkliste 0815"
CONTACT_NAME = "Maximiliane Mustermann-Quast"
CONTACT_MESSAGE = "Frage zur Kontaktseite 9911 mit Umlauten äöü"
CONTACT_ADDRESS = "Max.Muster@Example.org"  # as typed, not normalised
MARKERS = (FIRM, GATED_MESSAGE, CONTACT_NAME, CONTACT_MESSAGE)


def preferences_path(lead):
    return f"/inbound/p/{links.preferences_token(lead)}/"


def contact_page():
    return Page.objects.get(slug="kontakt").specific


def post_contact(client, email=CONTACT_ADDRESS, name=CONTACT_NAME, message=CONTACT_MESSAGE):
    """A plain Wagtail form submission on the demo contact page (fields name, e_mail, nachricht)."""
    page = contact_page()
    names = [field.clean_name for field in page.get_form_fields()]
    assert names == ["name", "e_mail", "nachricht"], names
    response = client.post(page.url, {"name": name, "e_mail": email, "nachricht": message})
    assert response.status_code == 200
    return FormSubmission.objects.filter(page=page).latest("submit_time")


def send_sales_mail(lead):
    """The hand-over mail to sales, as `inbound.handover.process` sends it."""
    from inbound.handover.process import build_sales_mail
    from inbound.handover.summary import summarize
    from inbound.mailing import send_and_record

    message = build_sales_mail(summarize(lead), site=lead.site, to="vertrieb@example.com")
    send_and_record(lead, SentMail.SALES, message)


def populate_every_table(client, lead, gated_page, purposes, mailoutbox, on_commit):
    """Give a confirmed lead data in every table the plugin keeps about a person.

    - two gated submissions (the fixture's and one more with a message and phone consent)
    - one Wagtail contact-form submission with the address
    - ledger: requested, doi_sent, confirmed, withdrawn, requested again (re-grant)
    - three opt-in requests (two pages, one from the preference center)
    - lead events: opt-in confirmed, download
    - sent mails of every kind: opt-in, delivery, marketing, sales hand-over, preference link,
      erasure link
    - restriction set from the preference center (after the marketing mail)
    """
    with on_commit():
        submit(client, gated_page, consent_phone="on", firma=FIRM, nachricht=GATED_MESSAGE)
    post_contact(client)
    first_optin = OptInRequest.objects.filter(lead=lead, confirmed_at__isnull=False).get()
    download = re.sub(r"^https?://[^/]+", "", delivery.download_url(first_optin))
    response = client.get(download)
    assert response.status_code == 200
    b"".join(response.streaming_content)
    assert send_marketing(lead).sent
    send_sales_mail(lead)
    path = preferences_path(lead)
    with on_commit():
        assert client.post(path, {"action": f"withdraw:{purposes['tracking'].pk}"}).status_code == 200
    with on_commit():
        assert client.post(path, {"action": f"grant:{purposes['tracking'].pk}"}).status_code == 200
    with on_commit():
        assert self_service.mail_preference_link(lead.site_id, lead.email)
    with on_commit():
        assert client.post(path, {"action": "erase"}).status_code == 200
    with on_commit():
        assert client.post(path, {"action": "restrict"}).status_code == 200
    lead.refresh_from_db()
    kinds = set(SentMail.objects.filter(lead=lead).values_list("kind", flat=True))
    assert kinds == {kind for kind, _label in SentMail.KIND_CHOICES}, kinds
    assert set(LeadEvent.objects.filter(lead=lead).values_list("kind", flat=True)) == {
        LeadEvent.OPTIN_CONFIRMED, LeadEvent.DOWNLOAD}
    assert set(ConsentEvent.objects.filter(lead=lead).values_list("kind", flat=True)) == {
        ConsentEvent.REQUESTED, ConsentEvent.DOI_SENT, ConsentEvent.CONFIRMED, ConsentEvent.WITHDRAWN}
    assert OptInRequest.objects.filter(lead=lead).count() == 3
    assert GatedFormSubmission.objects.filter(lead=lead).count() == 2
    assert lead.restricted_at is not None
    return lead


@pytest.fixture
def full_lead(client, confirmed_lead, gated_page, purposes, mailoutbox, on_commit):
    return populate_every_table(client, confirmed_lead, gated_page, purposes, mailoutbox, on_commit)


def assert_complete(document, lead):
    """Every stored item of the lead appears in the export document."""
    assert document["format"] == "inbound.lead-export/1"
    assert set(document) == {"format", "generated_at", "profile", "answers", "consents",
                             "consent_ledger", "optin_requests", "events", "mails_sent", "scores",
                             "lifecycle_history", "persona_history"}
    assert document["profile"] == {
        "email": ADDRESS, "site": lead.site.hostname, "created_at": iso(lead.created_at),
        "confirmed_at": iso(lead.confirmed_at), "restricted_at": iso(lead.restricted_at),
        "objected_at": None, "last_activity_at": iso(lead.last_activity_at),
    }
    assert document["profile"]["restricted_at"] is not None

    # answers: both gated submissions and the contact-page submission, with every value
    stored = [(s.page.title, iso(s.submit_time), s.form_data) for s in
              GatedFormSubmission.objects.filter(lead=lead).order_by("submit_time")]
    contact = FormSubmission.objects.filter(page=contact_page()).get()
    stored.append((contact.page.title, iso(contact.submit_time), contact.form_data))
    assert [(a["page"], a["submitted_at"], a["answers"]) for a in document["answers"]] == stored
    text = json.dumps(document["answers"], ensure_ascii=False)
    for marker in MARKERS + (CONTACT_ADDRESS,):
        assert marker in text, marker
    assert contact.form_data["e_mail"] == CONTACT_ADDRESS

    # the ledger: every event, in sequence, with its hash and the exact text version shown
    events = list(ConsentEvent.objects.filter(lead=lead).order_by("seq"))
    ledger = document["consent_ledger"]
    assert [(e["seq"], e["kind"], e["hash"], e["channel"]) for e in ledger] == [
        (e.seq, e.kind, e.hash, e.channel) for e in events]
    for entry, event in zip(ledger, events, strict=True):
        version = ConsentTextVersion.objects.get(pk=event.text_version_id)
        assert entry["text"]["id"] == version.pk
        assert entry["text"]["text"] == version.text, "the exact text shown"
        assert entry["text"]["sha256"] == version.text_hash
        assert entry["purpose"]["id"] == event.purpose_id
        assert entry["opt_in_request"] == event.opt_in_id
    assert {c["purpose"]["key"]: c["state"] for c in document["consents"]} == {
        "email-nurture": "confirmed", "tracking": "pending", "phone": "pending"}

    optins = list(OptInRequest.objects.filter(lead=lead).order_by("created_at", "pk"))
    assert [o["id"] for o in document["optin_requests"]] == [o.pk for o in optins]
    assert [o["confirmed_at"] for o in document["optin_requests"]] == [iso(o.confirmed_at) for o in optins]

    lead_events = list(LeadEvent.objects.filter(lead=lead).order_by("occurred_at"))
    assert [(e["kind"], e["occurred_at"], e["data"]) for e in document["events"]] == [
        (e.kind, iso(e.occurred_at), e.data) for e in lead_events]
    download = next(e for e in document["events"] if e["kind"] == LeadEvent.DOWNLOAD)
    assert download["page"] == "E-Book: Rechtssicheres E-Mail-Marketing"

    mails = list(SentMail.objects.filter(lead=lead).order_by("sent_at"))
    assert [(m["kind"], m["subject"], m["message_id"], m["sent_at"]) for m in document["mails_sent"]] == [
        (m.kind, m.subject, m.message_id, iso(m.sent_at)) for m in mails]
    assert all(m["message_id"] for m in document["mails_sent"])
    assert document["scores"] == [] and document["persona_history"] == []  # no rules, no personas here
    stages = list(StageChange.objects.filter(lead=lead).order_by("changed_at", "pk"))
    assert [(c["to"], c["changed_at"]) for c in document["lifecycle_history"]] == [
        (c.to_stage, iso(c.changed_at)) for c in stages]


def test_export_function_contains_every_item(full_lead, mailoutbox):
    document = privacy.export_lead(full_lead)
    assert_complete(document, full_lead)
    # the mails really sent since the fixture (mailoutbox) are all in the export
    exported_ids = {m["message_id"] for m in document["mails_sent"]}
    assert {m.extra_headers["Message-ID"] for m in mailoutbox} <= exported_ids
    json.dumps(document)  # plain JSON, no custom encoder needed


def test_preference_center_download_contains_every_item(full_lead):
    path = preferences_path(full_lead) + "export/"
    response = Client().get(path)  # the link alone suffices: no login, no cookie
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment")
    assert "no-store" in response["Cache-Control"]
    document = json.loads(response.content.decode("utf-8"))
    assert_complete(document, full_lead)
    assert CONTACT_MESSAGE in response.content.decode("utf-8"), "UTF-8, not escaped"
    assert {k: v for k, v in document.items() if k != "generated_at"} == {
        k: v for k, v in privacy.export_lead(full_lead).items() if k != "generated_at"}
    entry = ModelLogEntry.objects.get(action=privacy.EXPORT_SELF_ACTION)
    assert entry.object_id == str(full_lead.pk) and entry.label == f"Lead #{full_lead.pk}"
    assert ADDRESS not in json.dumps(entry.data).lower() and ADDRESS not in entry.label.lower()


def test_preference_page_links_to_the_download(client, confirmed_lead):
    path = preferences_path(confirmed_lead)
    html = client.get(path).content.decode()
    assert f'href="{path}export/"' in html


def test_contact_submissions_of_other_addresses_stay_out_of_the_export(client, confirmed_lead):
    post_contact(client, email="someone.else@example.org", name="Someone Else", message="Hallo")
    document = privacy.export_lead(confirmed_lead)
    assert all("someone.else@example.org" not in json.dumps(a) for a in document["answers"])
    assert len(document["answers"]) == 1


@pytest.mark.parametrize("tamper", ["garbage", "{token}x", "{erasure}"])
def test_export_link_needs_a_valid_preference_token(confirmed_lead, tamper):
    token = tamper.format(token=links.preferences_token(confirmed_lead),
                          erasure=links.erasure_token(confirmed_lead))
    response = Client().get(f"/inbound/p/{token}/export/")
    assert response.status_code == 404
    assert ADDRESS not in response.content.decode().lower()
    assert not ModelLogEntry.objects.filter(action=privacy.EXPORT_SELF_ACTION).exists()


def test_export_after_erasure_is_gone(confirmed_lead):
    path = preferences_path(confirmed_lead) + "export/"
    privacy.erase_lead(confirmed_lead)
    assert not Lead.objects.exists()
    assert Client().get(path).status_code == 404
