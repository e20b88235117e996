"""Fixtures for withdrawal and data-subject rights: a confirmed lead with marketing consent."""

import pytest

from inbound.leads import Lead
from tests.gated.conftest import (  # noqa: F401
    asset,
    confirm_path,
    fresh_cache,
    gated_page,
    media_root,
    on_commit,
    purposes,
    submit,
)


@pytest.fixture
def confirmed_lead(client, gated_page, mailoutbox, on_commit):  # noqa: F811
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on", consent_tracking="on", firma="ACME")
    with on_commit():
        client.post(confirm_path(mailoutbox[0]))
    mailoutbox.clear()
    return Lead.objects.get()


def send_marketing(lead, body="Neuer Leitfaden für Sie."):
    from inbound.marketing import send_marketing_mail

    return send_marketing_mail(lead.pk, subject="Neuigkeiten", template_base="inbound/mail/marketing_message",
                               context={"body": body, "subject": "Neuigkeiten"})
