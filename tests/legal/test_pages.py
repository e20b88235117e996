"""Imprint and privacy pages (L2, L3): rendered from the live configuration."""

from datetime import timedelta

import pytest

from inbound.consent import ConsentPurpose

pytestmark = pytest.mark.django_db


def test_imprint_shows_every_field_with_the_email_as_visible_text(client, demo_site):
    html = client.get("/impressum/").content.decode()
    for text in ("Beispiel GmbH", "Musterstraße 1", "12345 Musterstadt", "Erika Mustermann",
                 "+49 30 1234567", "Amtsgericht Musterstadt", "HRB 12345", "DE123456789"):
        assert text in html, text
    assert '<dd class="col-sm-8" id="imprint-email">kontakt@beispiel-gmbh.example</dd>' in html
    assert "mailto:" not in html.split('id="imprint-email"')[1][:80], "shown as text, not only a link"


def test_privacy_page_generates_every_required_section(client, demo_site, purposes):
    html = client.get("/datenschutz/").content.decode()
    for anchor in ("gpn-controller", "gpn-dpo", "gpn-activities", "gpn-consents", "gpn-recipients",
                   "gpn-retention", "gpn-rights", "gpn-withdrawal", "gpn-complaint", "gpn-profiling",
                   "gpn-objection"):
        assert f'id="{anchor}"' in html, anchor
    for activity in ("capture", "doi", "nurture", "scoring", "tracking", "handover"):
        assert f'id="activity-{activity}"' in html
    assert "Max Datenschutz" in html
    assert "Beispiel Mailversand GmbH" in html
    assert purposes["nurture"].text_de in html
    assert "Art. 21" in html


def test_changing_a_consent_text_changes_the_notice_at_once(client, demo_site, purposes):
    purpose = purposes["nurture"]
    purpose.text_de = "Neuer Einwilligungstext für den Newsletter, jederzeit widerruflich."
    purpose.save()
    html = client.get("/datenschutz/").content.decode()
    assert "Neuer Einwilligungstext für den Newsletter" in html
    assert 'data-version="2"' in html


def test_changing_a_retention_setting_changes_the_notice_at_once(client, demo_site, settings):
    settings.INBOUND_UNCONFIRMED_RETENTION = timedelta(days=14)
    assert "14 " in client.get("/datenschutz/").content.decode()
    settings.INBOUND_UNCONFIRMED_RETENTION = timedelta(days=9)
    html = client.get("/datenschutz/").content.decode()
    assert "9 Tage" in html or "9 days" in html


def test_inactive_purposes_are_not_listed(client, demo_site, purposes):
    ConsentPurpose.objects.filter(pk=purposes["phone"].pk).update(active=False)
    assert purposes["phone"].text_de not in client.get("/datenschutz/").content.decode()
