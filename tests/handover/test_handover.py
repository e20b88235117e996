"""Hand-over at MQL (N4): one hand-over per move to MQL, processed once: nurture exit, the sales
mail with score reasons, persona, consents and phone only with phone consent."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbound.handover import process
from inbound.handover.models import HandOver, WebhookDelivery
from inbound.handover.summary import as_payload, summarize
from inbound.leads import Lead, LeadEvent
from inbound.mailing import SentMail
from inbound.nurture import enrolment
from inbound.nurture.models import Enrolment
from inbound.scoring.engine import recompute
from inbound.scoring.models import LifecycleStage, StageChange
from tests.e2e.conftest import free_port, point_django_at_smtp

from .conftest import SALES, make_mql, qualify

pytestmark = pytest.mark.django_db


def test_crossing_the_threshold_writes_exactly_one_hand_over(site, gated_page, configured,
                                                              django_capture_on_commit_callbacks):
    lead = qualify(site, gated_page)
    with django_capture_on_commit_callbacks() as callbacks:
        recompute(Lead.objects.filter(pk=lead.pk))
    assert LifecycleStage.objects.get(lead=lead).stage == "mql"
    hand_over = HandOver.objects.get()
    change = StageChange.objects.get(lead=lead, to_stage="mql")
    assert (hand_over.lead_id, hand_over.site_id, hand_over.stage_change_id, hand_over.score) == (
        lead.pk, site.pk, change.pk, 75)
    assert hand_over.processed_at is None and callbacks  # the processing task is queued on commit

    event(lead)
    recompute(Lead.objects.filter(pk=lead.pk))
    assert HandOver.objects.count() == 1  # MQL is never left automatically: no second hand-over


def event(lead):
    LeadEvent.objects.create(site_id=lead.site_id, lead=lead, kind=LeadEvent.DOWNLOAD)


def test_many_leads_are_handed_over_with_one_statement(site, gated_page, configured):
    leads = [qualify(site, gated_page, f"bulk{index}") for index in range(5)]
    qualify(site, gated_page, "demo", synthetic=True)
    with CaptureQueriesContext(connection) as queries:
        recompute(Lead.objects.filter(site=site))
    inserts = [q["sql"] for q in queries if "INSERT INTO" in q["sql"] and "inbound_handover" in q["sql"]]
    assert len(inserts) == 1
    assert set(HandOver.objects.values_list("lead_id", flat=True)) == {lead.pk for lead in leads}


def test_synthetic_lead_gets_nothing(site, gated_page, configured, mailoutbox):
    lead = make_mql(site, gated_page, synthetic=True)
    assert LifecycleStage.objects.get(lead=lead).stage == "mql"
    assert not HandOver.objects.exists()
    process.process_due()
    assert mailoutbox == [] and not WebhookDelivery.objects.exists()


def test_processing_mails_sales_with_reasons_persona_and_consents(site, gated_page, configured, mailoutbox):
    from personas.assignment import LeadPersona
    from personas.models import Persona

    lead = make_mql(site, gated_page)
    persona = Persona.objects.create(site=site, name="IT-Leiterin")
    LeadPersona.objects.create(lead=lead, persona=persona)

    result = process.process_due()
    assert (result.processed, result.mailed) == (1, 1)
    [mail] = mailoutbox
    assert mail.to == [SALES]
    assert lead.email in mail.subject and "75" in mail.subject
    body = mail.body
    for text in ("E-Book geladen", "+40", "Zielkunde", "+20", "Klick im Newsletter", "+15",
                 "IT-Leiterin", "ACME", "Rechtssicheres E-Mail-Marketing", "/admin/"):
        assert text in body, text
    assert "5550199" not in body and "§7a UWG" in body  # no phone consent: do not call
    assert "5550199" not in mail.alternatives[0][0]
    assert body.index("E-Book geladen") < body.index("Zielkunde") < body.index("Klick im Newsletter")
    # the legal footer, as in every mail of the plugin
    assert "Impressum" in body or "Imprint" in body
    hand_over = HandOver.objects.get()
    assert hand_over.processed_at and hand_over.mail_sent_at and hand_over.mail_message_id
    sent = SentMail.objects.get(lead=lead)
    assert sent.kind == SentMail.SALES and sent.message_id == hand_over.mail_message_id


def test_phone_number_only_with_phone_consent(site, gated_page, configured, mailoutbox):
    lead = make_mql(site, gated_page, consents=("tracking", "email-nurture", "phone"))
    process.process_due()
    body = mailoutbox[0].body
    assert "+49 170 5550199" in body and "§7a UWG" not in body
    summary = summarize(lead)
    assert summary.phone_allowed and [p.value for p in summary.phones] == ["+49 170 5550199"]
    assert "telefon" not in {answer.name for answer in summary.answers}
    payload = as_payload(summary)
    assert payload["phone"] == {"allowed": True,
                                "numbers": [{"field": "telefon", "value": "+49 170 5550199"}]}


def test_summary_without_phone_consent_and_constant_queries(site, gated_page, configured):
    lead = make_mql(site, gated_page)
    summary = summarize(lead)
    assert not summary.phone_allowed and summary.phones == [] and summary.phone_note
    assert {c.channel for c in summary.consents} == {"tracking", "email"}
    payload = as_payload(summary)
    assert payload["event"] == "lead.mql" and payload["schema_version"] == 1
    assert payload["phone"] == {"allowed": False, "numbers": []}
    assert "5550199" not in str(payload) and lead.key not in str(payload)
    assert [r["points"] for r in payload["score"]["reasons"]] == [40, 20, 15]

    with CaptureQueriesContext(connection) as few:
        summarize(lead)
    for _index in range(30):
        LeadEvent.objects.create(site_id=site.pk, lead=lead, kind=LeadEvent.DOWNLOAD, page=gated_page)
    recompute(Lead.objects.filter(pk=lead.pk))
    with CaptureQueriesContext(connection) as many:
        many_summary = summarize(lead)
    assert len(few) == len(many), (len(few), len(many))
    assert len(many_summary.content) == 20


def test_lead_leaves_exit_on_handover_tracks_only(site, gated_page, configured, mailoutbox):
    from .conftest import make_track

    lead = qualify(site, gated_page)
    leaving = make_track(site, name="Willkommen")
    staying = make_track(site, name="Kundenbrief", exit_on_handover=False)
    enrolment.enrol_leads(leaving, [lead.pk])
    enrolment.enrol_leads(staying, [lead.pk])
    assert Enrolment.objects.filter(lead=lead, status=Enrolment.ACTIVE).count() == 2

    recompute(Lead.objects.filter(pk=lead.pk))
    process.process_due()
    left = Enrolment.objects.get(lead=lead, track=leaving)
    assert (left.status, left.exit_reason) == (Enrolment.EXITED, "handed over to sales")
    assert Enrolment.objects.get(lead=lead, track=staying).status == Enrolment.ACTIVE

    # and an MQL does not enter such a track anew, while it still enters the others
    LeadEvent.objects.create(site_id=site.pk, lead=lead, kind=LeadEvent.OPTIN_CONFIRMED)
    other = make_track(site, name="Neuer Track")
    other_staying = make_track(site, name="Neuer Kundenbrief", exit_on_handover=False)
    assert not enrolment.eligible_leads(other).filter(pk=lead.pk).exists()
    assert enrolment.eligible_leads(other_staying).filter(pk=lead.pk).exists()


def test_processing_twice_mails_once(site, gated_page, configured, mailoutbox, receiver):
    from .conftest import set_webhook

    set_webhook(site, receiver.url)
    make_mql(site, gated_page)
    hand_over = HandOver.objects.get()
    process.process_due()
    process.process_due()
    assert process.process_one(hand_over.pk) == ("skipped",)
    # two workers claiming at once: the second gets nothing
    HandOver.objects.update(processed_at=None, claimed_until=None)
    now = timezone.now()
    assert process.claim(now) == [hand_over.pk] and process.claim(now) == []
    HandOver.objects.update(processed_at=timezone.now())
    assert len(mailoutbox) == 1 and WebhookDelivery.objects.count() == 1


def test_smtp_down_is_retried_with_backoff_and_not_lost(site, gated_page, configured, settings, sink, clock):
    from .conftest import make_track

    lead = qualify(site, gated_page)
    track = make_track(site)
    enrolment.enrol_leads(track, [lead.pk])
    recompute(Lead.objects.filter(pk=lead.pk))
    working_port = settings.EMAIL_PORT
    point_django_at_smtp(settings, free_port())  # nothing listens there

    result = process.process_due(now=clock.now)
    hand_over = HandOver.objects.get()
    assert result.retried == 1 and hand_over.processed_at is None
    assert hand_over.attempts == 1 and hand_over.next_attempt_at == clock.now + timedelta(minutes=1)
    assert "Error" in hand_over.last_error and lead.email not in hand_over.last_error
    assert not SentMail.objects.exists()
    assert Enrolment.objects.get(lead=lead).status == Enrolment.ACTIVE  # rolled back with the mail

    assert process.process_due(now=clock.now).processed == 0  # not due yet
    process.process_due(now=clock.advance(seconds=61))
    assert HandOver.objects.get().attempts == 2
    assert HandOver.objects.get().next_attempt_at == clock.now + timedelta(minutes=2)

    point_django_at_smtp(settings, working_port)
    assert process.process_due(now=clock.advance(minutes=2)).mailed == 1
    process.process_due(now=clock.advance(hours=2))
    assert len(sink.mails) == 1 and sink.mails[0].rcpt_tos == [SALES]
    assert Enrolment.objects.get(lead=lead).status == Enrolment.EXITED


def test_sales_mail_over_real_smtp(site, gated_page, configured, sink):
    lead = make_mql(site, gated_page, consents=("tracking", "email-nurture", "phone"))
    process.process_due()
    [mail] = sink.mails
    message = mail.message
    assert mail.rcpt_tos == [SALES]
    assert lead.email in message["Subject"] and "75" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "E-Book geladen" in text and "+49 170 5550199" in text and "+49 170 5550199" in html
    assert HandOver.objects.get().mail_message_id == message["Message-ID"]


def test_restricted_lead_is_not_handed_over(site, gated_page, configured, mailoutbox, receiver):
    from .conftest import set_webhook

    set_webhook(site, receiver.url)
    lead = make_mql(site, gated_page)
    Lead.objects.filter(pk=lead.pk).update(restricted_at=timezone.now())
    result = process.process_due()
    assert (result.processed, result.stopped, result.mailed) == (1, 1, 0)
    hand_over = HandOver.objects.get()
    assert hand_over.processed_at and "restricted" in hand_over.last_error
    assert mailoutbox == [] and not WebhookDelivery.objects.exists() and not SentMail.objects.exists()


def test_without_sales_address_nothing_is_mailed(site, gated_page, configured, mailoutbox):
    configured.sales_email = ""
    configured.save()
    make_mql(site, gated_page)
    assert process.process_due().processed == 1
    assert mailoutbox == []


def test_from_event_to_sales_mail_through_the_tasks(site, gated_page, configured, mailoutbox, on_commit):
    """The whole chain as in production (tasks eager): recompute → on commit → processed."""
    lead = qualify(site, gated_page)
    with on_commit():
        recompute(Lead.objects.filter(pk=lead.pk))
    assert HandOver.objects.get().processed_at is not None
    assert [mail.to for mail in mailoutbox] == [[SALES]]
