"""L4: no page with a form goes live without complete legal notices, whatever path publishes it."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone
from wagtail.models import PageLogEntry

from inbound.legal import LegalSetupIncomplete
from inbound.pages import GatedPage
from tests.legal.conftest import complete_legal_setup

pytestmark = pytest.mark.django_db


def test_publishing_through_code_is_refused_and_names_what_is_missing(draft_gated_page):
    from django.utils import translation

    with translation.override("en"), pytest.raises(LegalSetupIncomplete) as error:
        draft_gated_page.get_latest_revision().publish()
    assert "privacy" in str(error.value) and "imprint" in str(error.value)
    assert "postal code" in str(error.value)
    page = GatedPage.objects.get(pk=draft_gated_page.pk)
    assert not page.live
    assert page.get_latest_revision() is not None, "the draft is kept"


def test_publishing_works_once_the_setup_is_complete(draft_gated_page, bare_site):
    complete_legal_setup(bare_site)
    draft_gated_page.get_latest_revision().publish()
    assert GatedPage.objects.get(pk=draft_gated_page.pk).live


def test_scheduled_publishing_cannot_bypass_the_rule(draft_gated_page, bare_site):
    revision = draft_gated_page.get_latest_revision()
    revision.approved_go_live_at = timezone.now() - timedelta(minutes=1)
    revision.save()
    call_command("publish_scheduled")  # must not crash, must not publish
    page = GatedPage.objects.get(pk=draft_gated_page.pk)
    assert not page.live
    revision.refresh_from_db()
    assert revision.approved_go_live_at is None, "the refused go-live is cancelled"
    assert PageLogEntry.objects.filter(page=page, action="inbound.publish_refused").exists()


def test_other_scheduled_pages_still_go_live(draft_gated_page, bare_site):
    from leadsite.models import StandardPage

    other = StandardPage(title="News", slug="news", live=False)
    bare_site.root_page.add_child(instance=other)
    for page in (draft_gated_page, other):
        revision = page.save_revision()
        revision.approved_go_live_at = timezone.now() - timedelta(minutes=1)
        revision.save()
    call_command("publish_scheduled")
    assert StandardPage.objects.get(pk=other.pk).live
    assert not GatedPage.objects.get(pk=draft_gated_page.pk).live


def test_legal_page_cannot_be_unpublished_or_deleted_while_a_gated_page_is_live(draft_gated_page, bare_site):
    settings = complete_legal_setup(bare_site)
    draft_gated_page.get_latest_revision().publish()
    privacy = settings.privacy_page.specific
    with pytest.raises(ValidationError) as error:
        privacy.unpublish()
    assert "Checkliste B" in str(error.value)
    assert type(privacy).objects.get(pk=privacy.pk).live
    with pytest.raises(ValidationError):
        privacy.delete()
    assert type(privacy).objects.filter(pk=privacy.pk).exists()
    GatedPage.objects.get(pk=draft_gated_page.pk).unpublish()
    privacy.refresh_from_db()
    privacy.unpublish()
    assert not type(privacy).objects.get(pk=privacy.pk).live


# --- the admin, as an editor uses it ---------------------------------------------------------

@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.org", "pw"))
    return client


def _edit_data(page):
    from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text, streamfield

    return nested_form_data({
        "title": page.title, "slug": page.slug, "kind": page.kind, "asset": page.asset_id,
        "intro": streamfield([]), "thank_you_text": rich_text(""), "confirmation_text": rich_text(""),
        "form_fields": inline_formset([]), "coupling_notice": "", "progressive_questions": 0,
        "persona_tags": inline_formset([]), "topic_tags": inline_formset([]),
    })


def test_admin_publish_is_refused_with_the_missing_items_and_the_draft_is_kept(admin_client,
                                                                                draft_gated_page):
    data = _edit_data(draft_gated_page)
    data["title"] = "Checkliste B (neu)"
    data["action-publish"] = "action-publish"
    response = admin_client.post(f"/admin/pages/{draft_gated_page.pk}/edit/", data, follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "not published" in html or "nicht veröffentlicht" in html
    assert "privacy" in html.lower() or "datenschutz" in html.lower()
    page = GatedPage.objects.get(pk=draft_gated_page.pk)
    assert not page.live
    assert page.get_latest_revision().as_object().title == "Checkliste B (neu)", "draft kept"


def test_admin_publish_works_after_completing_the_setup(admin_client, draft_gated_page, bare_site):
    complete_legal_setup(bare_site)
    data = _edit_data(draft_gated_page)
    data["action-publish"] = "action-publish"
    admin_client.post(f"/admin/pages/{draft_gated_page.pk}/edit/", data)
    assert GatedPage.objects.get(pk=draft_gated_page.pk).live


def test_admin_unpublish_of_the_privacy_page_is_refused(admin_client, draft_gated_page, bare_site):
    settings = complete_legal_setup(bare_site)
    draft_gated_page.get_latest_revision().publish()
    response = admin_client.post(f"/admin/pages/{settings.privacy_page_id}/unpublish/", follow=True)
    assert response.status_code == 200
    assert "Checkliste B" in response.content.decode()
    assert type(settings.privacy_page.specific).objects.get(pk=settings.privacy_page_id).live


def test_admin_delete_of_the_imprint_page_is_refused(admin_client, draft_gated_page, bare_site):
    settings = complete_legal_setup(bare_site)
    draft_gated_page.get_latest_revision().publish()
    admin_client.post(f"/admin/pages/{settings.imprint_page_id}/delete/", follow=True)
    assert type(settings.imprint_page.specific).objects.filter(pk=settings.imprint_page_id).exists()


def test_dashboard_panel_shows_each_sites_status(admin_client, bare_site):
    html = admin_client.get("/admin/").content.decode()
    assert 'id="inbound-legal-status' in html or "inbound-legal-status" in html
    assert "site-b.example" in html
    assert "Incomplete" in html or "Unvollständig" in html
    assert f"/admin/settings/inbound/legalsettings/{bare_site.pk}/" in html
