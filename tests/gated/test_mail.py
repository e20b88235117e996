"""The confirmation mail (D2, M5, M6) and what happens when SMTP fails."""

import re
import smtplib
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from django.core import mail as django_mail
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from inbound import optin
from inbound.consent import ConsentEvent
from inbound.optin import OptInRequest, SendResult
from inbound.tasks import sweep_unsent_optin_mails
from tests.gated.conftest import submit

pytestmark = pytest.mark.django_db


def test_confirmation_mail_is_plain_text_and_html_without_advertising(client, gated_page, mailoutbox,
                                                                       on_commit):
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    message = mailoutbox[0]
    assert message.from_email == "Beispiel GmbH <noreply@beispiel-gmbh.example>", "M6: transactional sender"
    assert gated_page.title in message.subject
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    for part in (message.body, html):
        assert "/inbound/confirm/" in part
        assert "nichts" in part.lower() or "nothing" in part.lower()  # D2: ignoring does nothing
    assert "<img" not in html.lower(), "no tracking pixel"
    links = re.findall(r'<a href="([^"]+)"', html)
    assert len(links) == 3, "D2: only the confirm link plus the imprint and privacy links"
    assert "/inbound/confirm/" in links[0]
    assert links[1].endswith("/impressum/") and links[2].endswith("/datenschutz/")
    for part in (message.body, html):  # M5: the controller's identity in both parts
        assert "Beispiel GmbH" in part and "Musterstraße 1" in part
    raw = message.message()
    assert raw["Message-ID"].endswith(">") and "@" in raw["Message-ID"]
    assert raw["Date"]
    assert raw["Auto-Submitted"] == "auto-generated"
    assert raw.get_content_type() == "multipart/alternative"
    assert "List-Unsubscribe" not in raw, "transactional, not marketing"


def test_send_time_and_template_version_are_recorded(client, gated_page, on_commit):
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    request = OptInRequest.objects.get()
    assert request.mail_sent_at is not None
    assert request.mail_template_version == optin.MAIL_TEMPLATE_VERSION
    sent = ConsentEvent.objects.get(kind=ConsentEvent.DOI_SENT)
    assert sent.occurred_at == request.mail_sent_at
    assert sent.mail_template_version == optin.MAIL_TEMPLATE_VERSION


def test_page_title_with_line_break_cannot_inject_headers(client, gated_page, mailoutbox, on_commit):
    gated_page.title = "E-Book\r\nBcc: victim@example.org"
    gated_page.save_revision().publish()
    with on_commit():
        submit(client, gated_page)
    parsed = message_from_bytes(mailoutbox[0].message().as_bytes(), policy=policy.default)
    assert parsed["Bcc"] is None
    assert "\n" not in str(parsed["Subject"]), "the decoded subject is one line"
    assert "Bcc" not in str(parsed["Subject"]) or "E-Book Bcc" in str(parsed["Subject"])
    assert mailoutbox[0].recipients() == ["max.muster@example.org"]


class FailingBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise smtplib.SMTPServerDisconnected("connection refused")


def test_smtp_failure_is_recorded_and_retried_with_backoff(client, gated_page, settings, mailoutbox,
                                                            on_commit):
    settings.EMAIL_BACKEND = "tests.gated.test_mail.FailingBackend"
    with on_commit():
        assert submit(client, gated_page).status_code == 200  # the visitor is not bothered
    request = OptInRequest.objects.get()
    assert request.mail_sent_at is None
    assert request.mail_attempts == 1
    assert "SMTPServerDisconnected" in request.mail_last_error
    first_retry = request.mail_next_attempt_at
    assert first_retry > timezone.now()

    # not due yet: the sweeper leaves it alone
    assert optin.send_confirmation_mail(request.pk) == SendResult.NOT_DUE
    # due: fails again, and the backoff doubles
    assert optin.send_confirmation_mail(request.pk, now=first_retry) == SendResult.FAILED
    request.refresh_from_db()
    assert request.mail_attempts == 2
    assert request.mail_next_attempt_at - first_retry == timedelta(minutes=2)

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    OptInRequest.objects.update(mail_next_attempt_at=timezone.now() - timedelta(seconds=1),
                                created_at=timezone.now() - timedelta(minutes=5))
    sweep_unsent_optin_mails()
    sweep_unsent_optin_mails()
    assert len(django_mail.outbox) == 1, "sent exactly once"
    request.refresh_from_db()
    assert request.mail_sent_at is not None


def test_sending_gives_up_visibly_after_the_last_attempt(client, gated_page, settings, on_commit):
    settings.EMAIL_BACKEND = "tests.gated.test_mail.FailingBackend"
    settings.INBOUND_MAIL_MAX_ATTEMPTS = 2
    with on_commit():
        submit(client, gated_page)
    request = OptInRequest.objects.get()
    assert optin.send_confirmation_mail(request.pk, now=request.mail_next_attempt_at) == SendResult.GAVE_UP
    request.refresh_from_db()
    assert request.mail_failed_at is not None
    assert request.pk not in list(optin.due_unsent_requests(now=timezone.now() + timedelta(days=1)))


def test_one_broken_request_does_not_stop_the_sweeper(client, gated_page, demo_site, asset, monkeypatch,
                                                      mailoutbox, on_commit, settings):
    settings.EMAIL_BACKEND = "tests.gated.test_mail.FailingBackend"
    with on_commit():
        submit(client, gated_page, email="first@example.org")
        submit(client, gated_page, email="second@example.org")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    OptInRequest.objects.update(mail_next_attempt_at=None, created_at=timezone.now() - timedelta(minutes=5))
    broken = OptInRequest.objects.get(lead__email="first@example.org")
    real_build = optin.build_confirmation_mail

    def build(request):
        if request.pk == broken.pk:
            raise RuntimeError("template exploded")
        return real_build(request)

    monkeypatch.setattr(optin, "build_confirmation_mail", build)
    counts = sweep_unsent_optin_mails()
    assert counts == {"error": 1, "sent": 1}
    assert [m.to for m in django_mail.outbox] == [["second@example.org"]]
