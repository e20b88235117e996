"""Per-step statistics of a track on a known dataset, in a fixed number of queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbound.consent import withdraw
from inbound.leads import Lead
from inbound.nurture.dispatch import dispatch_due
from inbound.nurture.models import Delivery, Enrolment, Track
from inbound.nurture.preview import send_test_mail
from inbound.nurture.stats import enrolment_counts, step_statistics, with_enrolment_counts
from tests.nurture.conftest import make_track

pytestmark = pytest.mark.django_db

T0 = timezone.now() - timedelta(days=10)


class Dataset:
    """Leads in a three-step track, each with a known history."""

    def __init__(self, site, name):
        self.site = site
        self.track = make_track(site, name=name)
        self.steps = list(self.track.steps.order_by("sort_order"))
        self.count = 0

    def lead(self, status=Enrolment.ACTIVE, reason="", deliveries=()):
        self.count += 1
        lead = Lead.objects.create(site=self.site, email=f"lead{self.count}.{self.track.pk}@example.org")
        enrolment = Enrolment.objects.create(track=self.track, lead=lead, status=status, exit_reason=reason)
        for day, (step_index, status_, extra) in enumerate(deliveries):
            Delivery.objects.create(enrolment=enrolment, step=self.steps[step_index], status=status_,
                                    created_at=T0 + timedelta(days=day), **extra)
        return enrolment


SENT, FAILED, SKIPPED, BLOCKED = Delivery.SENT, Delivery.FAILED, Delivery.SKIPPED, Delivery.BLOCKED
TRACKED = {"tracked": True}
CLICKED = {"tracked": True, "clicked_at": T0}
WITHDRAWN = "no confirmed marketing consent"


def build(site, name="Statistik"):
    data = Dataset(site, name)
    # 1: both first steps sent with tracking, clicked the first; completed later.
    data.lead(Enrolment.COMPLETED, deliveries=[(0, SENT, CLICKED), (1, SENT, TRACKED), (2, SENT, {})])
    # 2: two mails, then withdrew: unsubscribed at step 2.
    data.lead(Enrolment.EXITED, WITHDRAWN, deliveries=[(0, SENT, {}), (1, SENT, CLICKED)])
    # 3: objected after the first mail: unsubscribed at step 1.
    data.lead(Enrolment.EXITED, "objected", deliveries=[(0, SENT, TRACKED)])
    # 4: the first send failed for good.
    data.lead(Enrolment.FAILED, "send failed", deliveries=[(0, FAILED, {})])
    # 5: condition skipped step 1, step 2 sent, then restricted: not an unsubscribe.
    data.lead(Enrolment.EXITED, "restricted", deliveries=[(0, SKIPPED, {}), (1, SENT, {})])
    # 6: withdrew before any mail.
    data.lead(Enrolment.EXITED, WITHDRAWN)
    # 7: suppressed after a skipped step 2 (last *sent* mail was step 1).
    data.lead(Enrolment.EXITED, "suppressed", deliveries=[(0, SENT, {}), (1, SKIPPED, {})])
    # 8: blocked at step 1, still active.
    data.lead(Enrolment.ACTIVE, deliveries=[(0, BLOCKED, {})])
    return data


def as_rows(statistics):
    return [(row.sent, row.tracked, row.clicked, row.unsubscribed, row.failed, row.skipped, row.blocked)
            for row in statistics.steps]


def test_numbers_on_a_known_dataset(demo_site):
    data = build(demo_site)
    other = make_track(demo_site, name="Andere")  # its deliveries must not count
    lead = Lead.objects.create(site=demo_site, email="andere@example.org")
    enrolment = Enrolment.objects.create(track=other, lead=lead, status=Enrolment.EXITED,
                                         exit_reason=WITHDRAWN)
    Delivery.objects.create(enrolment=enrolment, step=other.steps.first(), status=SENT)

    statistics = step_statistics(data.track)
    #         sent tracked clicked unsub failed skipped blocked
    assert as_rows(statistics) == [
        (4, 2, 1, 2, 1, 1, 1),   # step 1: leads 1, 2, 3, 7 sent; 3 and 7 unsubscribed here
        (3, 2, 1, 1, 0, 1, 0),   # step 2: leads 1, 2, 5 sent; 2 unsubscribed here
        (1, 0, 0, 0, 0, 0, 0),   # step 3: lead 1
    ]
    assert [row.number for row in statistics.steps] == [1, 2, 3]
    assert statistics.unsubscribed_before_first_mail == 1
    assert statistics.deleted_steps is None
    assert statistics.steps[0].click_rate == 50.0
    assert enrolment_counts(data.track) == {Enrolment.ACTIVE: 1, Enrolment.COMPLETED: 1,
                                            Enrolment.EXITED: 5, Enrolment.FAILED: 1}
    annotated = with_enrolment_counts(Track.objects.filter(pk=data.track.pk)).get()
    assert (annotated.enrolments_active, annotated.enrolments_completed,
            annotated.enrolments_left) == (1, 1, 6)


def test_deleted_steps_keep_their_numbers(demo_site):
    data = build(demo_site)
    data.steps[1].delete()
    statistics = step_statistics(data.track)
    assert len(statistics.steps) == 2
    deleted = statistics.deleted_steps
    assert (deleted.sent, deleted.clicked, deleted.unsubscribed, deleted.skipped) == (3, 1, 1, 1)
    assert statistics.total("sent") == 8


def test_constant_queries(demo_site):
    data = build(demo_site)
    with CaptureQueriesContext(connection) as small:
        step_statistics(data.track)
    for index in range(3):
        build(demo_site, name=f"Andere {index}")  # other tracks' rows must not matter
    for _ in range(20):
        data.lead(Enrolment.EXITED, WITHDRAWN, deliveries=[(0, SENT, {}), (1, SENT, CLICKED)])
    with CaptureQueriesContext(connection) as large:
        statistics = step_statistics(data.track)
    assert len(small) == len(large) == 3
    assert statistics.steps[1].unsubscribed == 21


def test_withdrawal_after_the_first_mail_counts_at_step_one(confirmed_lead, track, clock, purposes,
                                                           mailoutbox, settings):
    dispatch_due(now=clock.now)
    withdraw(confirmed_lead, [purposes["nurture"]], channel="test")
    dispatch_due(now=clock.advance(days=3))
    statistics = step_statistics(track)
    assert [(row.sent, row.unsubscribed) for row in statistics.steps] == [(1, 1), (0, 0), (0, 0)]

    # A test mail to staff is no delivery and changes nothing here.
    send_test_mail(track.steps.first(), track.site, "staff@example.org")
    assert [(row.sent, row.unsubscribed) for row in step_statistics(track).steps] == [(1, 1), (0, 0), (0, 0)]
    assert Delivery.objects.count() == 1
