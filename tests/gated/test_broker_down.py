"""The broker is unreachable at submission: the lead is saved and the sweeper sends the mail later."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inbound.leads import Lead
from inbound.optin import OptInRequest
from inbound.tasks import sweep_unsent_optin_mails
from leadsite.celery import app as celery_app
from tests.gated.conftest import submit

pytestmark = pytest.mark.django_db


def _reset_connections(app):
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def unreachable_broker():
    saved = app_conf = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = "redis://127.0.0.1:9/0"  # the discard port: nothing listens
    _reset_connections(celery_app)
    yield app_conf
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = saved
    _reset_connections(celery_app)


def test_submission_survives_a_dead_broker_and_the_sweeper_sends_later(
        client, gated_page, unreachable_broker, mailoutbox, on_commit):
    with on_commit():
        response = submit(client, gated_page, consent_email_nurture="on")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Postfach" in html or "inbox" in html
    assert Lead.objects.count() == 1
    request = OptInRequest.objects.get()
    assert request.mail_sent_at is None
    assert mailoutbox == []

    celery_app.conf.task_always_eager = True  # the broker is back; beat runs the sweeper
    sweep_unsent_optin_mails()  # too early: within the grace period the queued task may still run
    assert mailoutbox == []
    OptInRequest.objects.update(created_at=timezone.now() - timedelta(minutes=3))
    sweep_unsent_optin_mails()
    sweep_unsent_optin_mails()
    assert len(mailoutbox) == 1
    request.refresh_from_db()
    assert request.mail_sent_at is not None
