"""Beat's nurture run starts further dispatchers for a backlog, and goes on alone without a broker."""

import math
from unittest import mock

import pytest
from kombu.exceptions import OperationalError

from inbound import tasks
from inbound.nurture.dispatch import dispatchers_allowed, more_dispatchers_wanted
from inbound.nurture.enrolment import enrol_all
from inbound.nurture.models import Delivery
from tests.nurture.conftest import make_confirmed_leads, make_track

pytestmark = pytest.mark.django_db


@pytest.fixture
def backlog(demo_site, settings):
    """12 confirmed leads of a one-step track, batches of 5: three batches due."""
    settings.INBOUND_NURTURE_BATCH_SIZE = 5
    make_track(demo_site, steps=1)
    return make_confirmed_leads(demo_site, 12)


def test_a_backlog_is_shared_by_further_dispatchers_and_each_mail_goes_once(backlog, settings, mailoutbox):
    settings.INBOUND_NURTURE_DISPATCHERS = 3
    started = []
    real_delay = tasks.dispatch_nurture_more.delay

    def delay():
        started.append(1)
        return real_delay()  # tasks run eagerly in tests: this dispatcher sends what it claims

    with mock.patch.object(tasks.dispatch_nurture_more, "delay", side_effect=delay):
        outcome = tasks.dispatch_nurture()
    assert outcome["helpers"] == len(started) == 2  # three batches due, three dispatchers allowed
    assert sorted(mail.to[0] for mail in mailoutbox) == sorted(lead.email for lead in backlog)
    assert Delivery.objects.filter(status=Delivery.SENT).count() == 12
    assert tasks.dispatch_nurture()["sent"] == 0


def test_no_further_dispatcher_for_one_batch_or_when_only_one_is_allowed(backlog, settings, mailoutbox):
    from django.utils import timezone

    enrol_all(timezone.now())
    settings.INBOUND_NURTURE_DISPATCHERS = 1
    assert more_dispatchers_wanted(timezone.now(), 5) == 0
    settings.INBOUND_NURTURE_DISPATCHERS = 8
    assert more_dispatchers_wanted(timezone.now(), 5) == math.ceil(12 / 5) - 1
    assert more_dispatchers_wanted(timezone.now(), 50) == 0
    assert mailoutbox == []


def test_the_default_is_one_dispatcher_per_core_on_postgresql_and_one_on_sqlite(settings):
    from django.db import connection

    settings.INBOUND_NURTURE_DISPATCHERS = None
    expected = 1 if connection.vendor == "sqlite" else max(1, __import__("os").cpu_count())
    assert dispatchers_allowed() == expected


def test_with_the_broker_down_the_beat_run_sends_everything_alone(backlog, settings, mailoutbox, caplog):
    settings.INBOUND_NURTURE_DISPATCHERS = 3
    with mock.patch.object(tasks.dispatch_nurture_more, "delay", side_effect=OperationalError("down")):
        outcome = tasks.dispatch_nurture()
    assert outcome["helpers"] == 0 and outcome["sent"] == 12
    assert len(mailoutbox) == 12
    assert "goes on alone" in caplog.text
