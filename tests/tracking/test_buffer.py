"""The buffered writer: a page view only queues its event; batches are bulk-inserted later."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbound import tracking
from inbound.leads import LeadEvent
from tests.helpers import wait_until
from tests.tracking.conftest import STANDARD_PAGE, choose, confirm_path, submit, views, visitor_of


@pytest.fixture
def buffered(settings, monkeypatch):
    """Buffered writing as in production, with a buffer whose thread the test controls."""
    settings.INBOUND_TRACKING_FLUSH_INTERVAL = 3600
    buffer = tracking.EventBuffer(start_thread=False)
    monkeypatch.setattr(tracking, "BUFFER", buffer)
    return buffer


def event(site, **fields):
    values = {"kind": LeadEvent.TRACK_VIEW, "visitor_id": "b" * 32, "occurred_at": timezone.now()}
    values.update(fields)
    return LeadEvent(site_id=site.pk, **values)


@pytest.mark.django_db
def test_page_views_wait_in_the_buffer_and_are_written_in_one_insert(client, demo_site, buffered):
    choose(client, "save", statistics=True)
    for _ in range(5):
        assert client.get(STANDARD_PAGE).status_code == 200
    assert len(buffered) == 5 and not views().exists()
    with CaptureQueriesContext(connection) as queries:
        assert tracking.flush() == 5
    inserts = [q["sql"] for q in queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    assert views().count() == 5 and len(buffered) == 0


@pytest.mark.django_db
def test_buffered_events_of_a_linked_visitor_get_the_lead_when_written(client, gated_page, mailoutbox,
                                                                      on_commit, buffered):
    choose(client, "accept")
    client.get(STANDARD_PAGE)  # waits in the buffer while the visitor confirms
    with on_commit():
        submit(client, gated_page, consent_tracking="on")
    with on_commit():
        client.post(confirm_path(mailoutbox[0]))
    client.get(STANDARD_PAGE)
    tracking.flush()
    lead_ids = set(views().values_list("lead_id", flat=True))
    assert len(lead_ids) == 1 and None not in lead_ids
    assert LeadEvent.objects.get(kind=LeadEvent.TRACK_SUBMIT).lead_id in lead_ids


@pytest.mark.django_db
def test_full_buffer_drops_the_oldest(demo_site, buffered, settings):
    settings.INBOUND_TRACKING_BUFFER_LIMIT = 3
    for number in range(5):
        buffered.add(event(demo_site, data={"n": number}))
    assert len(buffered) == 3 and buffered.dropped == 2
    buffered.flush()
    assert sorted(e.data["n"] for e in views()) == [2, 3, 4]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_event_of_a_deleted_page_is_kept_without_the_page(demo_site, buffered):
    page = demo_site.root_page.get_children().first()
    buffered.add(event(demo_site, page_id=page.pk))
    buffered.add(event(demo_site, page_id=987654))  # deleted meanwhile
    assert buffered.flush() == 2
    assert sorted(views().values_list("page_id", flat=True), key=str) == sorted([page.pk, None], key=str)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_writer_thread_writes_without_any_request(demo_site, settings):
    settings.INBOUND_TRACKING_FLUSH_INTERVAL = 0.05
    buffer = tracking.EventBuffer()
    try:
        for _ in range(3):
            buffer.add(event(demo_site))
        assert wait_until(lambda: views().count() == 3, timeout=10, interval=0.05)
        assert len(buffer) == 0
    finally:
        buffer.stop()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_full_batch_wakes_the_writer_at_once(demo_site, settings):
    settings.INBOUND_TRACKING_FLUSH_INTERVAL = 600
    settings.INBOUND_TRACKING_BATCH_SIZE = 4
    buffer = tracking.EventBuffer()
    try:
        for _ in range(4):
            buffer.add(event(demo_site))
        assert wait_until(lambda: views().count() == 4, timeout=10, interval=0.05)
    finally:
        buffer.stop()


@pytest.mark.django_db
def test_visitor_id_survives_the_buffer(client, demo_site, buffered):
    choose(client, "accept")
    client.get(STANDARD_PAGE)
    tracking.flush()
    assert views().get().visitor_id == visitor_of(client)
