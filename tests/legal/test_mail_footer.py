"""M5: every mail carries the controller identity and legal links, and none goes out without them."""

from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from inbound.legal import LegalSettings
from inbound.optin import OptInRequest
from inbound.tasks import sweep_unsent_optin_mails
from tests.gated.conftest import confirm_path, gated_page, on_commit, submit  # noqa: F401

pytestmark = pytest.mark.django_db


def _parts(message):
    parsed = message_from_bytes(message.message().as_bytes(), policy=policy.default)
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    html = parsed.get_body(preferencelist=("html",)).get_content()
    return text, html


def test_both_mails_carry_the_footer_in_both_parts(client, gated_page, mailoutbox, on_commit):  # noqa: F811
    with on_commit():
        submit(client, gated_page)
    with on_commit():
        client.post(confirm_path(mailoutbox[0]))
    assert len(mailoutbox) == 2
    for message in mailoutbox:
        text, html = _parts(message)
        for part in (text, html):
            assert "Beispiel GmbH" in part
            assert "Musterstraße 1" in part and "12345 Musterstadt" in part
            assert "http://127.0.0.1:8000/impressum/" in part
            assert "http://127.0.0.1:8000/datenschutz/" in part


def test_no_mail_without_complete_legal_notices_it_waits_and_shows(  # noqa: F811
        client, gated_page, mailoutbox, on_commit):  # noqa: F811
    LegalSettings.objects.update(phone="")
    with on_commit():
        assert submit(client, gated_page).status_code == 200
    assert mailoutbox == []
    request = OptInRequest.objects.get()
    assert "phone" in request.mail_last_error.lower() or "telefon" in request.mail_last_error.lower()
    assert request.mail_failed_at is None, "it stays queued"

    admin = get_user_model().objects.create_superuser("root", "root@example.org", "pw")
    client.force_login(admin)
    dashboard = client.get("/admin/").content.decode()
    assert "mails-waiting" in dashboard

    LegalSettings.objects.update(phone="+49 30 1234567")
    OptInRequest.objects.update(mail_next_attempt_at=timezone.now() - timedelta(seconds=1),
                                created_at=timezone.now() - timedelta(minutes=5))
    sweep_unsent_optin_mails()
    assert len(mailoutbox) == 1
