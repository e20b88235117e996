"""Fixtures for the gated-content journey: purposes, a private asset and a published gated page."""

import re

import pytest
from django.core.files.base import ContentFile
from wagtail.documents import get_document_model
from wagtail.models import Collection

from inbound.consent import ConsentPurpose
from inbound.pages import GatedFormField, GatedPage

PDF_BYTES = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def purposes(demo_site):
    """The seeded purposes: e-mail nurture (marketing), tracking and phone, with DE/EN texts."""
    by_key = {p.key: p for p in ConsentPurpose.objects.filter(site=demo_site)}
    return {"nurture": by_key["email-nurture"], "tracking": by_key["tracking"], "phone": by_key["phone"]}


@pytest.fixture
def asset(db):
    collection = Collection.get_first_root_node()
    document = get_document_model()(title="Leitfaden DSGVO", collection=collection)
    document.file.save("leitfaden.pdf", ContentFile(PDF_BYTES), save=False)
    document.save()
    return document


@pytest.fixture
def gated_page(demo_site, purposes, asset):
    page = GatedPage(
        title="E-Book: Rechtssicheres E-Mail-Marketing", slug="ebook", asset=asset,
        thank_you_text="<p>Danke!</p>", confirmation_text="<p>Viel Spaß beim Lesen.</p>",
    )
    demo_site.root_page.add_child(instance=page)
    page.purposes.set(purposes.values())
    page.form_fields.add(GatedFormField(label="Firma", field_type="singleline", required=False))
    page.form_fields.add(GatedFormField(label="Nachricht", field_type="multiline", required=False))
    page.save_revision().publish()
    page.refresh_from_db()
    return page


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (queued tasks) as a real commit would: `with on_commit(): ...`."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def submit(client, page, remote_addr="203.0.113.7", **data):
    payload = {"email": "Max.Muster@Example.org", "website": ""}
    payload.update(data)
    return client.post(page.url, payload, REMOTE_ADDR=remote_addr)


def confirm_path(mail):
    """The path of the confirm link in a confirmation mail's text part."""
    match = re.search(r"https?://[^/\s]+(/inbound/confirm/[^\s/]+/)", mail.body)
    assert match, mail.body
    return match.group(1)


def download_path(text):
    match = re.search(r"https?://[^/\s\"]+(/inbound/download/[^\s/\"]+/)", text)
    assert match, text
    return match.group(1)
