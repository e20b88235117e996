"""Data-subject actions in the lead admin (R1, R2, R3, S2): restrict, object, erase, full export.

Each action is a POST with CSRF from the lead's detail page, needs its model permission
(`change_lead`, `delete_lead`, `export_lead`) and the lead's site in the user's scope, and
writes an audit entry labelled with the lead's id, never its address.
"""

import json

import pytest
from django.test import Client
from django.urls import reverse
from wagtail.models import ModelLogEntry
from wagtail.permissions import policy_registry

from inbound import privacy
from inbound.admin_views import DATA_EXPORT_ACTION
from inbound.consent import ConsentEvent, lead_consent_states
from inbound.leads import Lead
from inbound.marketing import send_decision
from inbound.pages import GatedFormSubmission
from inbound.suppression import SuppressionEntry, is_suppressed
from tests.rights.conftest import send_marketing
from tests.rights.staff import LEAD_PERMISSIONS, SITE_B_EMAIL, make_site_b, make_site_b_lead, make_user

pytestmark = pytest.mark.django_db

EMAIL = "max.muster@example.org"  # the confirmed lead of tests/rights/conftest.py


@pytest.fixture
def marketer(demo_site):
    """All lead permissions, for the demo site only."""
    return make_user("marketer", perms=LEAD_PERMISSIONS, pages=[demo_site.root_page])


@pytest.fixture
def viewer(demo_site):
    """May see and export the demo site's leads, but neither change nor erase them."""
    return make_user("viewer", perms=["inbound.view_lead", "inbound.export_lead"],
                     pages=[demo_site.root_page])


def url(name, lead):
    return reverse(f"leads:{name}", args=[lead.pk])


def body(response):
    return response.content.decode()


def entries(action):
    return list(ModelLogEntry.objects.filter(action=action).order_by("pk"))


def assert_audited(action, lead, user, **data):
    [entry] = entries(action)
    assert entry.user_id == user.pk
    assert entry.object_id == str(lead.pk)
    assert entry.label == f"Lead #{lead.pk}"
    assert EMAIL not in json.dumps(entry.data) and EMAIL not in entry.label
    for key, value in data.items():
        assert entry.data[key] == value
    return entry


# --- detail page --------------------------------------------------------------------------------

def test_detail_offers_the_actions_the_user_may_take(client, confirmed_lead, marketer, viewer):
    client.force_login(marketer)
    html = body(client.get(url("inspect", confirmed_lead)))
    for name in ("restriction", "objection", "erase", "data_json", "proof_json"):
        assert url(name, confirmed_lead) in html, name
    assert 'name="csrfmiddlewaretoken"' in html
    assert "Restrict processing" in html and "Record objection" in html

    client.force_login(viewer)
    html = body(client.get(url("inspect", confirmed_lead)))
    assert url("data_json", confirmed_lead) in html, "the full export needs only export_lead"
    for name in ("restriction", "objection", "erase"):
        assert url(name, confirmed_lead) not in html, name


# --- restriction (Art. 18) ----------------------------------------------------------------------

def test_restrict_and_lift(client, confirmed_lead, marketer, mailoutbox):
    client.force_login(marketer)
    response = client.post(url("restriction", confirmed_lead), {"restricted": "1"})
    assert response.status_code == 302 and response["Location"] == url("inspect", confirmed_lead)
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.restricted_at is not None
    assert send_decision(confirmed_lead).reason == "restricted"
    assert not send_marketing(confirmed_lead).sent and mailoutbox == []
    assert_audited(privacy.RESTRICT_ACTION, confirmed_lead, marketer, restricted=True, channel="admin")

    html = body(client.get(url("inspect", confirmed_lead), follow=True))
    assert 'data-restricted="yes"' in html and "Lift restriction" in html
    assert "Processing of this lead is restricted" in html  # the message after the redirect

    client.post(url("restriction", confirmed_lead), {"restricted": "0"})
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.restricted_at is None
    assert send_marketing(confirmed_lead).sent
    assert len(entries(privacy.RESTRICT_ACTION)) == 2


# --- objection (Art. 21) ------------------------------------------------------------------------

def test_object_and_lift(client, confirmed_lead, marketer, purposes, mailoutbox):
    client.force_login(marketer)
    response = client.post(url("objection", confirmed_lead), {"objected": "1"}, follow=True)
    assert response.status_code == 200
    assert 'data-objected="yes"' in body(response) and "Objection recorded" in body(response)
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.objected_at is not None
    assert lead_consent_states(confirmed_lead)[purposes["nurture"].pk] == ConsentEvent.WITHDRAWN
    assert not send_marketing(confirmed_lead).sent and mailoutbox == []
    assert_audited(privacy.OBJECT_ACTION, confirmed_lead, marketer, objected=True)

    client.post(url("objection", confirmed_lead), {"objected": "0"})
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.objected_at is None
    # lifting the objection does not bring withdrawn consent back
    assert lead_consent_states(confirmed_lead)[purposes["nurture"].pk] == ConsentEvent.WITHDRAWN
    assert send_marketing(confirmed_lead).reason == "no confirmed marketing consent"


# --- erasure (Art. 17) --------------------------------------------------------------------------

def test_erase_asks_for_confirmation_then_erases_everywhere(client, confirmed_lead, marketer):
    client.force_login(marketer)
    lead_id = confirmed_lead.pk
    response = client.get(url("erase", confirmed_lead))
    assert response.status_code == 200
    html = body(response)
    assert EMAIL in html and "Yes, erase" in html and 'name="csrfmiddlewaretoken"' in html
    assert Lead.objects.filter(pk=lead_id).exists(), "the confirmation page changes nothing"

    response = client.post(url("erase", confirmed_lead))
    assert response.status_code == 302 and response["Location"] == reverse("leads:index")
    assert not Lead.objects.filter(pk=lead_id).exists()
    assert not GatedFormSubmission.objects.filter(lead_id=lead_id).exists()
    assert not ConsentEvent.objects.filter(lead_id=lead_id).exists()
    assert is_suppressed(confirmed_lead.site_id, EMAIL)
    assert SuppressionEntry.objects.count() == 1
    entry = assert_audited(privacy.ERASE_ACTION, confirmed_lead, marketer, channel="admin")
    assert entry.data["answers"] == 1

    listing = client.get(reverse("leads:index"))
    assert f"Lead #{lead_id} has been erased" in body(listing)
    assert EMAIL not in body(listing)
    assert client.get(url("inspect", confirmed_lead)).status_code == 404


# --- full data export (R1) ----------------------------------------------------------------------

def test_staff_export_of_all_data_is_audited(client, confirmed_lead, marketer):
    send_marketing(confirmed_lead)
    client.force_login(marketer)
    response = client.get(url("data_json", confirmed_lead))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="lead-{confirmed_lead.pk}-data.json"'
    assert "no-store" in response["Cache-Control"]
    data = json.loads(response.content)
    assert data["format"] == privacy.EXPORT_FORMAT
    assert data["profile"]["email"] == EMAIL
    assert data["answers"][0]["answers"]["firma"] == "ACME"
    assert {event["kind"] for event in data["consent_ledger"]} >= {"requested", "confirmed"}
    assert all(event["text"]["text"] for event in data["consent_ledger"])
    assert "marketing" in {mail["kind"] for mail in data["mails_sent"]}
    assert_audited(DATA_EXPORT_ACTION, confirmed_lead, marketer, format="json")


def test_export_needs_the_export_permission(client, confirmed_lead, demo_site):
    client.force_login(make_user("changer", perms=["inbound.view_lead", "inbound.change_lead"],
                                 pages=[demo_site.root_page]))
    response = client.get(url("data_json", confirmed_lead))
    assert response.status_code == 302 and EMAIL not in body(response)
    assert not entries(DATA_EXPORT_ACTION)


# --- permissions, scope, method, CSRF -----------------------------------------------------------

def test_actions_need_change_or_delete_permission(client, confirmed_lead, viewer):
    client.force_login(viewer)
    for name, data in [("restriction", {"restricted": "1"}), ("objection", {"objected": "1"}),
                       ("erase", {})]:
        response = client.post(url(name, confirmed_lead), data)
        assert response.status_code == 302 and response["Location"] == reverse("wagtailadmin_home")
        assert EMAIL not in body(client.get(response["Location"]))
    assert client.get(url("erase", confirmed_lead)).status_code == 302
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.restricted_at is None and confirmed_lead.objected_at is None
    assert not ModelLogEntry.objects.filter(action__in=[privacy.RESTRICT_ACTION, privacy.OBJECT_ACTION,
                                                        privacy.ERASE_ACTION]).exists()


def test_change_permission_alone_does_not_erase(client, confirmed_lead, demo_site):
    changer = make_user("changer", perms=["inbound.view_lead", "inbound.change_lead"],
                        pages=[demo_site.root_page])
    client.force_login(changer)
    html = body(client.get(url("inspect", confirmed_lead)))
    assert url("restriction", confirmed_lead) in html and url("erase", confirmed_lead) not in html
    assert client.post(url("erase", confirmed_lead)).status_code == 302
    assert Lead.objects.filter(pk=confirmed_lead.pk).exists()
    assert client.post(url("restriction", confirmed_lead), {"restricted": "1"}).status_code == 302
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.restricted_at is not None


def test_actions_on_another_sites_lead_are_404(client, confirmed_lead, marketer, asset):
    lead_b, _page = make_site_b_lead(make_site_b(), asset)
    client.force_login(marketer)
    for name, data in [("restriction", {"restricted": "1"}), ("objection", {"objected": "1"}),
                       ("erase", {})]:
        response = client.post(url(name, lead_b), data)
        assert response.status_code == 404, name
        assert SITE_B_EMAIL not in body(response)
    for name in ("erase", "data_json"):
        assert client.get(url(name, lead_b)).status_code == 404
    lead_b.refresh_from_db()
    assert lead_b.restricted_at is None and lead_b.objected_at is None
    assert not SuppressionEntry.objects.exists()


def test_state_changes_only_by_post_with_a_valid_flag(client, confirmed_lead, marketer):
    client.force_login(marketer)
    assert client.get(url("restriction", confirmed_lead)).status_code == 405
    assert client.get(url("objection", confirmed_lead), {"objected": "1"}).status_code == 405
    assert client.post(url("restriction", confirmed_lead), {"restricted": "yes"}).status_code == 400
    assert client.post(url("objection", confirmed_lead)).status_code == 400
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.restricted_at is None and confirmed_lead.objected_at is None


def test_actions_need_a_csrf_token(confirmed_lead, marketer):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(marketer)
    assert browser.post(url("restriction", confirmed_lead), {"restricted": "1"}).status_code == 403
    assert browser.post(url("erase", confirmed_lead)).status_code == 403
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.restricted_at is None
    # with the token from the detail page's form it works
    html = body(browser.get(url("inspect", confirmed_lead)))
    token = html.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    response = browser.post(url("restriction", confirmed_lead),
                            {"restricted": "1", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.restricted_at is not None


def test_no_create_edit_or_generic_delete_views(client, confirmed_lead):
    client.force_login(make_user("admin", superuser=True))
    for path in ("/admin/leads/new/", f"/admin/leads/{confirmed_lead.pk}/edit/",
                 f"/admin/leads/{confirmed_lead.pk}/delete/", f"/admin/leads/{confirmed_lead.pk}/copy/"):
        assert client.get(path).status_code == 404, path
    html = body(client.get(reverse("leads:index")))
    assert "/admin/leads/new/" not in html and "/edit/" not in html and "/delete/" not in html


def test_permission_policy_grants_change_and_delete_by_model_permission_never_add(confirmed_lead,
                                                                                   marketer, viewer):
    policy = policy_registry.get_by_type(Lead)
    superuser = make_user("admin", superuser=True)
    for user in (marketer, superuser):
        assert policy.user_has_permission(user, "change") and policy.user_has_permission(user, "delete")
        assert not policy.user_has_permission(user, "add")
        assert policy.user_has_permission_for_instance(user, "delete", confirmed_lead)
    assert not policy.user_has_permission(viewer, "change")
    assert not policy.user_has_permission(viewer, "delete")
    assert set(policy.users_with_permission("delete")) >= {marketer}
    assert viewer not in set(policy.users_with_permission("delete"))
