"""The consent ledger: versioned texts (P2), append-only events (P1), hash chain (P5)."""

import pytest
from django.db import transaction

from inbound.consent import (
    ConsentEvent,
    ConsentTextVersion,
    ImmutableRecordError,
    append_events,
    verify_chain,
)
from inbound.leads import Lead
from tests.gated.conftest import confirm_path, submit

pytestmark = pytest.mark.django_db


def test_changing_a_text_creates_a_new_version_and_keeps_the_old_one(purposes):
    purpose = purposes["nurture"]
    old = purpose.current_version("de")
    purpose.text_de = old.text + " Neu: monatlich."
    purpose.save()
    new = purpose.current_version("de")
    assert new.version == old.version + 1
    assert ConsentTextVersion.objects.get(pk=old.pk).text == old.text
    purpose.save()  # unchanged text: no new version
    assert purpose.text_versions.filter(language="de").count() == 2


def test_versions_cannot_be_edited_or_deleted(purposes):
    version = purposes["nurture"].current_version("de")
    version.text = "geändert"
    with pytest.raises(ImmutableRecordError):
        version.save()
    with pytest.raises(ImmutableRecordError):
        version.delete()


def test_each_record_points_to_the_exact_version_shown(client, gated_page, purposes, on_commit):
    purpose = purposes["nurture"]
    shown = purpose.current_version("de")
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    purpose.text_de = "Ein ganz neuer Text."
    purpose.save()
    event = ConsentEvent.objects.get(kind="requested")
    assert event.text_version_id == shown.pk
    assert event.text_version.text == shown.text


def test_events_are_append_only(client, gated_page, on_commit):
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    event = ConsentEvent.objects.first()
    event.kind = "confirmed"
    with pytest.raises(ImmutableRecordError):
        event.save()
    with pytest.raises(ImmutableRecordError):
        event.delete()


def test_chain_links_every_event_to_the_previous_one(client, gated_page, purposes, mailoutbox, on_commit):
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on", consent_tracking="on")
    with on_commit():
        client.post(confirm_path(mailoutbox[0]))
    events = list(ConsentEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == list(range(1, 7))
    assert events[0].prev_hash == ""
    for previous, event in zip(events, events[1:], strict=False):
        assert event.prev_hash == previous.hash
    assert verify_chain(events) == []


def test_tampering_is_detected(client, gated_page, mailoutbox, on_commit):
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    ConsentEvent.objects.filter(seq=1).update(kind="confirmed")  # bypasses the model guard
    problems = verify_chain(list(ConsentEvent.objects.order_by("seq")))
    assert any("seq 1" in problem for problem in problems)


def test_clearing_the_ip_after_retention_keeps_the_chain_valid(client, gated_page, on_commit):
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    ConsentEvent.objects.update(ip_truncated="")
    assert verify_chain(list(ConsentEvent.objects.order_by("seq"))) == []
    ConsentEvent.objects.filter(seq=1).update(ip_truncated="10.0.0.0/24")
    assert verify_chain(list(ConsentEvent.objects.order_by("seq")))


def test_concurrent_style_appends_keep_consecutive_sequence(client, gated_page, purposes, on_commit):
    with on_commit():
        submit(client, gated_page)
    lead = Lead.objects.get()
    purpose = purposes["phone"]
    for _ in range(3):
        with transaction.atomic():
            append_events(lead, ConsentEvent.REQUESTED, [(purpose, purpose.current_version("de"))],
                          channel="test")
    assert list(ConsentEvent.objects.values_list("seq", flat=True).order_by("seq")) == [1, 2, 3]
