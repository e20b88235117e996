"""The lead admin: list, filters, detail with the consent ledger, proof export, permissions and
site separation (S1), audit log (S2), the verify_ledger command (P5) and purposes as snippets.

Leads come from the public journey: form, confirmation mail, confirm page.
"""

import hashlib
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from wagtail.models import GroupPagePermission, ModelLogEntry, Page, Site

from inbound import admin_access
from inbound.consent import ConsentEvent, ConsentPurpose, ConsentTextVersion, append_events
from inbound.leads import Lead
from inbound.optin import MAIL_TEMPLATE_VERSION
from inbound.pages import GatedPage
from inbound.proof import FORMAT, build_proof
from tests.gated.conftest import confirm_path, submit

pytestmark = pytest.mark.django_db

CONFIRMED_EMAIL = "anna.confirmed@example.org"
PENDING_EMAIL = "ben.pending@example.org"
SITE_B_EMAIL = "carla.site-b@example.org"
PURPOSES_URL = "wagtailsnippets_inbound_consentpurpose"


# --- helpers -----------------------------------------------------------------------------------

def make_user(username, perms=(), pages=(), superuser=False):
    """A user in a group of its own with the given model permissions and page permissions."""
    User = get_user_model()
    if superuser:
        return User.objects.create_superuser(username, f"{username}@staff.test", "pw")
    user = User.objects.create_user(username, f"{username}@staff.test", "pw")
    group = Group.objects.create(name=f"group-{username}")
    for perm in ("wagtailadmin.access_admin", *perms):
        app_label, codename = perm.split(".")
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    for page in pages:
        for permission_type in ("add", "change", "publish"):
            GroupPagePermission.objects.create(group=group, page=page, permission_type=permission_type)
    user.groups.add(group)
    return user


@pytest.fixture
def leads(client, gated_page, on_commit, mailoutbox):
    """Two leads on the demo site: one confirmed (nurture + tracking, answer 'ACME'), one pending."""
    with on_commit():
        submit(client, gated_page, email=CONFIRMED_EMAIL, consent_email_nurture="on",
               consent_tracking="on", firma="ACME Prüfgesellschaft", nachricht="Bitte <b>schnell</b>")
        submit(client, gated_page, email=PENDING_EMAIL, remote_addr="203.0.113.99",
               consent_email_nurture="on")
    [mail] = [message for message in mailoutbox if message.to == [CONFIRMED_EMAIL]]
    with on_commit():
        response = client.post(confirm_path(mail), REMOTE_ADDR="198.51.100.23")
    assert response.status_code == 200
    confirmed = Lead.objects.get(email=CONFIRMED_EMAIL)
    assert confirmed.confirmed_at is not None
    return {"confirmed": confirmed, "pending": Lead.objects.get(email=PENDING_EMAIL)}


@pytest.fixture
def site_b(db):
    root = Page.get_first_root_node().add_child(instance=Page(title="Site B home", slug="site-b-home"))
    return Site.objects.create(hostname="b.example.test", port=80, root_page=root, site_name="Site B GmbH")


@pytest.fixture
def site_b_lead(site_b):
    purpose = ConsentPurpose.objects.create(site=site_b, key="email-nurture", name="Newsletter B",
                                            text_de="Ja, Site B darf mir E-Mails senden.")
    lead = Lead.objects.create(site=site_b, email=SITE_B_EMAIL)
    with transaction.atomic():
        append_events(lead, ConsentEvent.REQUESTED, [(purpose, purpose.current_version("de"))],
                      channel="web-form")
    return lead


@pytest.fixture
def marketer(demo_site):
    """May see and export the leads of the demo site only."""
    return make_user("marketer", perms=["inbound.view_lead", "inbound.export_lead"],
                     pages=[demo_site.root_page])


@pytest.fixture
def editor(demo_site):
    """Edits every page of the demo site, but may not see leads."""
    return make_user("editor", pages=[demo_site.root_page])


def url(name, lead=None):
    return reverse(f"leads:{name}", args=[lead.pk] if lead else [])


def html_of(response):
    return response.content.decode()


def assert_no_lead_data(response, *emails):
    assert response.status_code in (302, 403, 404), response.status_code
    body = html_of(response)
    for email in emails:
        assert email not in body


# --- list and filters --------------------------------------------------------------------------

def test_list_shows_the_sites_leads_to_a_user_with_permission(client, leads, marketer):
    client.force_login(marketer)
    response = client.get(url("index"))
    assert response.status_code == 200
    body = html_of(response)
    assert CONFIRMED_EMAIL in body and PENDING_EMAIL in body
    assert reverse("leads:inspect", args=[leads["confirmed"].pk]) in body
    # read-only: no create, edit or delete anywhere, and no spreadsheet export of the list
    assert "/admin/leads/new/" not in body and "/edit/" not in body and "/delete/" not in body
    assert client.get("/admin/leads/new/").status_code == 404
    assert client.get(url("index"), {"export": "csv"})["Content-Type"].startswith("text/html")


def test_menu_item_only_for_users_with_view_permission(client, marketer, editor):
    client.force_login(marketer)
    assert url("index") in html_of(client.get(reverse("wagtailadmin_home")))
    client.force_login(editor)
    assert url("index") not in html_of(client.get(reverse("wagtailadmin_home")))


@pytest.mark.parametrize("state, shown, hidden", [
    ("confirmed", CONFIRMED_EMAIL, PENDING_EMAIL),
    ("unconfirmed", PENDING_EMAIL, CONFIRMED_EMAIL),
])
def test_filter_by_confirmation_state(client, leads, marketer, state, shown, hidden):
    client.force_login(marketer)
    body = html_of(client.get(url("index"), {"confirmation": state}))
    assert shown in body
    assert hidden not in body


def test_filter_by_gated_page_site_and_created_date(client, leads, marketer, demo_site, on_commit):
    checklist = GatedPage.objects.get(slug="checkliste-impressum-und-datenschutz")
    with on_commit():
        submit(client, checklist, email="dora.checklist@example.org", remote_addr="192.0.2.1")
    client.force_login(marketer)

    body = html_of(client.get(url("index"), {"gated_page": checklist.pk}))
    assert "dora.checklist@example.org" in body
    assert CONFIRMED_EMAIL not in body and PENDING_EMAIL not in body

    body = html_of(client.get(url("index"), {"site": demo_site.pk}))
    assert CONFIRMED_EMAIL in body and "dora.checklist@example.org" in body

    Lead.objects.filter(pk=leads["pending"].pk).update(created_at=timezone.now() - timedelta(days=40))
    old_day = timezone.localdate(timezone.now() - timedelta(days=40)).isoformat()  # the site's day, not UTC's
    body = html_of(client.get(url("index"), {"created_from": old_day, "created_to": old_day}))
    assert PENDING_EMAIL in body
    assert CONFIRMED_EMAIL not in body


def test_search_by_email(client, leads, marketer):
    client.force_login(marketer)
    body = html_of(client.get(url("index"), {"q": "anna"}))
    assert CONFIRMED_EMAIL in body and PENDING_EMAIL not in body


# --- detail ------------------------------------------------------------------------------------

def test_detail_shows_answers_opt_in_requests_and_the_ledger_with_exact_texts(client, leads, marketer):
    lead = leads["confirmed"]
    client.force_login(marketer)
    response = client.get(url("inspect", lead))
    assert response.status_code == 200
    body = html_of(response)
    assert lead.email in body
    assert "Beispiel GmbH" in body  # the site
    # every ledger event, in sequence, with the exact text version shown
    events = list(ConsentEvent.objects.filter(lead=lead).select_related("text_version").order_by("seq"))
    assert [e.kind for e in events] == ["requested"] * 2 + ["doi_sent"] * 2 + ["confirmed"] * 2
    positions = [body.index(f'id="event-{event.seq}"') for event in events]
    assert positions == sorted(positions)
    for event in events:
        assert escape(event.text_version.text) in body
        assert event.occurred_at.isoformat() in body  # UTC
    assert "198.51.100.0/24" in body and "203.0.113.0/24" in body  # truncated IPs
    assert escape(lead.optin_requests.get().page.title) in body
    assert MAIL_TEMPLATE_VERSION in body
    assert 'data-chain="verified"' in body
    # answers, escaped
    assert "ACME Prüfgesellschaft" in body
    assert "Bitte &lt;b&gt;schnell&lt;/b&gt;" in body
    # export buttons for a user who may export
    assert url("proof_json", lead) in body and url("proof_print", lead) in body


def test_viewing_and_exporting_are_audit_logged_without_the_address(client, leads, marketer):
    lead = leads["confirmed"]
    client.force_login(marketer)
    client.get(url("inspect", lead))
    client.get(url("proof_json", lead))
    entries = ModelLogEntry.objects.filter(object_id=str(lead.pk)).order_by("timestamp", "pk")
    assert [(e.action, e.user_id) for e in entries] == [
        ("inbound.lead.view", marketer.pk), ("inbound.lead.export", marketer.pk)]
    assert all(lead.email not in e.label and lead.email not in json.dumps(e.data) for e in entries)

    client.force_login(make_user("admin", superuser=True))
    response = client.get(reverse("wagtailadmin_reports:site_history"))
    assert response.status_code == 200
    body = html_of(response)
    assert f"Lead #{lead.pk}" in body and url("inspect", lead) in body
    assert lead.email not in body


# --- proof export ------------------------------------------------------------------------------

def recompute_hash(event, proof):
    """Recompute an event's hash from the exported document alone, as a third party would."""
    def lookup(dotted):
        value = event
        if dotted.startswith("lead."):
            value, dotted = proof["lead"], dotted[len("lead."):]
        for part in dotted.split("."):
            value = value[part]
        return value

    payload = {name: lookup(path) for name, path in proof["hashing"]["fields"].items()}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_json_export_contains_every_event_with_its_text_and_verifies(client, leads, marketer):
    lead = leads["confirmed"]
    client.force_login(marketer)
    response = client.get(url("proof_json", lead))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == f'attachment; filename="consent-proof-lead-{lead.pk}.json"'
    proof = json.loads(response.content)
    assert proof["format"] == FORMAT == "inbound.consent-proof/1"
    assert proof["lead"]["email"] == lead.email
    assert proof["chain"] == {"verified": True, "problems": [], "events": 6,
                              "head_hash": ConsentEvent.objects.filter(lead=lead).latest("seq").hash}
    rows = list(ConsentEvent.objects.filter(lead=lead).select_related("text_version").order_by("seq"))
    assert [e["seq"] for e in proof["events"]] == [row.seq for row in rows]
    previous = ""
    for exported, row in zip(proof["events"], rows, strict=True):
        assert exported["kind"] == row.kind
        assert exported["text"]["text"] == row.text_version.text
        assert exported["text"]["version"] == row.text_version.version
        assert exported["text"]["sha256"] == hashlib.sha256(row.text_version.text.encode()).hexdigest()
        assert exported["hash"] == row.hash and exported["prev_hash"] == previous
        assert recompute_hash(exported, proof) == row.hash
        previous = row.hash
    assert {c["purpose"]["key"]: c["state"] for c in proof["consents"]} == {
        "email-nurture": "confirmed", "tracking": "confirmed"}
    [optin] = proof["optin_requests"]
    assert optin["mail_sent_at"] and optin["confirmed_at"] and optin["mail_attempts"] == 1
    assert optin["purposes"] == ["email-nurture", "tracking"]


def test_printable_proof(client, leads, marketer):
    lead = leads["confirmed"]
    client.force_login(marketer)
    response = client.get(url("proof_print", lead))
    assert response.status_code == 200
    body = html_of(response)
    assert body.startswith("<!DOCTYPE html>")
    assert "@media print" in body and FORMAT in body
    assert lead.email in body and 'data-chain="verified"' in body
    for version in ConsentTextVersion.objects.filter(
            pk__in=ConsentEvent.objects.filter(lead=lead).values("text_version")):
        assert escape(version.text) in body
    for event_hash in ConsentEvent.objects.filter(lead=lead).values_list("hash", flat=True):
        assert event_hash in body


def test_export_needs_the_export_permission(client, leads, demo_site):
    viewer = make_user("viewer", perms=["inbound.view_lead"], pages=[demo_site.root_page])
    lead = leads["confirmed"]
    client.force_login(viewer)
    assert client.get(url("inspect", lead)).status_code == 200
    assert url("proof_json", lead) not in html_of(client.get(url("inspect", lead)))
    for name in ("proof_json", "proof_print"):
        assert_no_lead_data(client.get(url(name, lead)), lead.email)


def test_build_proof_of_a_lead_without_events(demo_site):
    lead = Lead.objects.create(site=demo_site, email="empty@example.org")
    proof = build_proof(lead)
    assert proof["chain"] == {"verified": True, "problems": [], "events": 0, "head_hash": ""}
    assert proof["events"] == [] and proof["consents"] == [] and proof["optin_requests"] == []


# --- permissions and site separation (S1) ------------------------------------------------------

def test_editor_without_view_lead_sees_no_lead_data(client, leads, editor):
    lead = leads["confirmed"]
    client.force_login(editor)
    for name, target in [("index", None), ("index_results", None), ("inspect", lead),
                         ("proof_json", lead), ("proof_print", lead)]:
        response = client.get(url(name, target))
        assert_no_lead_data(response, CONFIRMED_EMAIL, PENDING_EMAIL)
        followed = client.get(url(name, target), follow=True)
        assert CONFIRMED_EMAIL not in html_of(followed) and PENDING_EMAIL not in html_of(followed)
    assert not ModelLogEntry.objects.filter(action__startswith="inbound.lead").exists()


def test_anonymous_visitors_are_sent_to_the_login(client, leads):
    response = client.get(url("inspect", leads["confirmed"]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_wagtail_form_submissions_of_gated_pages_hidden_from_editor(client, leads, gated_page, editor,
                                                                   marketer):
    submissions_url = reverse("wagtailforms:list_submissions", args=[gated_page.pk])
    client.force_login(editor)
    assert gated_page.title not in html_of(client.get(reverse("wagtailforms:index")))
    assert_no_lead_data(client.get(submissions_url), CONFIRMED_EMAIL, PENDING_EMAIL)
    assert_no_lead_data(client.get(submissions_url, {"export": "csv"}), CONFIRMED_EMAIL)
    assert CONFIRMED_EMAIL not in html_of(client.get(submissions_url, follow=True))

    client.force_login(marketer)  # the permission check does not hide them from who may see them
    response = client.get(submissions_url)
    assert response.status_code == 200
    assert CONFIRMED_EMAIL in html_of(response)


def test_user_of_site_a_gets_404_for_a_lead_of_site_b(client, leads, marketer, site_b_lead):
    client.force_login(marketer)
    for name in ("inspect", "proof_json", "proof_print"):
        response = client.get(url(name, site_b_lead))
        assert response.status_code == 404
        assert SITE_B_EMAIL not in html_of(response)
    body = html_of(client.get(url("index")))
    assert CONFIRMED_EMAIL in body
    assert SITE_B_EMAIL not in body and "Site B GmbH" not in body  # not even as a filter choice
    assert SITE_B_EMAIL not in html_of(client.get(url("index"), {"site": site_b_lead.site_id}))


def test_superuser_sees_every_site(client, leads, site_b_lead):
    client.force_login(make_user("admin", superuser=True))
    body = html_of(client.get(url("index")))
    assert CONFIRMED_EMAIL in body and SITE_B_EMAIL in body
    assert client.get(url("inspect", site_b_lead)).status_code == 200


def test_sites_for_user_follows_page_permissions_on_the_root_or_above(demo_site, site_b):
    tree_root = Page.get_first_root_node()
    user_a = make_user("a", pages=[demo_site.root_page])
    user_all = make_user("all", pages=[tree_root])
    user_below = make_user("below", pages=[demo_site.root_page.get_children().first()])
    assert list(admin_access.sites_for_user(user_a)) == [demo_site]
    assert set(admin_access.sites_for_user(user_all)) == {demo_site, site_b}
    assert not admin_access.sites_for_user(user_below).exists()


def test_form_submissions_of_another_sites_gated_page_hidden(client, site_b, marketer, on_commit):
    """A user with lead permission for site A and page rights inside site B sees no B answers."""
    purpose = ConsentPurpose.objects.create(site=site_b, key="email-nurture", name="Newsletter B",
                                            text_de="Ja, Site B darf mir E-Mails senden.")
    page_b = GatedPage(title="Site B e-book", slug="b-ebook", live=False,
                       asset=GatedPage.objects.exclude(asset=None).first().asset)
    site_b.root_page.add_child(instance=page_b)
    page_b.purposes.set([purpose])
    GroupPagePermission.objects.create(group=marketer.groups.get(), page=page_b, permission_type="change")
    forms = admin_access.filter_form_pages_for_user(
        marketer, Page.objects.filter(pk=page_b.pk))
    assert not forms.exists()
    client.force_login(marketer)
    response = client.get(reverse("wagtailforms:list_submissions", args=[page_b.pk]))
    assert response.status_code == 302


# --- verify_ledger (P5) ------------------------------------------------------------------------

def test_verify_ledger_passes_on_intact_chains_and_fails_after_tampering(client, leads, marketer, capsys):
    call_command("verify_ledger")
    out = capsys.readouterr().out
    assert "Checked 2 lead(s) with 8 consent event(s): 0 broken chain(s)." in out

    lead = leads["confirmed"]
    tampered = ConsentEvent.objects.get(lead=lead, seq=5)
    ConsentEvent.objects.filter(pk=tampered.pk).update(kind=ConsentEvent.WITHDRAWN)  # bypasses save()
    with pytest.raises(CommandError) as failure:
        call_command("verify_ledger")
    assert failure.value.returncode == 1
    assert "1 broken chain(s)" in str(failure.value) and f"lead(s) {lead.pk}" in str(failure.value)
    assert f"lead {lead.pk} seq 5: content does not match its hash" in capsys.readouterr().err

    client.force_login(marketer)
    assert 'data-chain="broken"' in html_of(client.get(url("inspect", lead)))
    proof = json.loads(client.get(url("proof_json", lead)).content)
    assert proof["chain"]["verified"] is False
    assert proof["chain"]["problems"] == [f"lead {lead.pk} seq 5: content does not match its hash"]


def test_verify_ledger_detects_a_deleted_event(leads):
    lead = leads["confirmed"]
    ConsentEvent.objects.filter(lead=lead, seq=2)._raw_delete(ConsentEvent.objects.db)
    with pytest.raises(CommandError):
        call_command("verify_ledger")


# --- consent purposes as snippets --------------------------------------------------------------

@pytest.fixture
def purpose_editor(demo_site):
    return make_user("purposes", pages=[demo_site.root_page], perms=[
        "inbound.add_consentpurpose", "inbound.change_consentpurpose", "inbound.view_consentpurpose",
        "inbound.delete_consentpurpose"])


def test_purposes_listed_per_site(client, purposes, purpose_editor, site_b_lead):
    client.force_login(purpose_editor)
    response = client.get(reverse(f"{PURPOSES_URL}:list"))
    assert response.status_code == 200
    body = html_of(response)
    assert purposes["nurture"].name in body and purposes["phone"].name in body
    assert "Newsletter B" not in body
    foreign = ConsentPurpose.objects.get(site=site_b_lead.site)
    assert client.get(reverse(f"{PURPOSES_URL}:edit", args=[foreign.pk])).status_code == 404
    assert client.get(reverse(f"{PURPOSES_URL}:inspect", args=[foreign.pk])).status_code == 404


def test_purposes_can_only_be_created_for_own_sites(client, demo_site, site_b, purpose_editor):
    client.force_login(purpose_editor)
    data = {"key": "webinar", "name": "Webinar-Einladungen", "channel": "email", "is_marketing": "on",
            "text_de": "Ja, die Beispiel GmbH darf mich zu Webinaren einladen. Widerruf jederzeit.",
            "text_en": "", "sort_order": 4, "active": "on"}
    add_url = reverse(f"{PURPOSES_URL}:add")
    response = client.post(add_url, {**data, "site": site_b.pk})
    assert response.status_code == 200  # the form again, with an error
    assert not ConsentPurpose.objects.filter(key="webinar").exists()
    assert client.post(add_url, {**data, "site": demo_site.pk}).status_code == 302
    purpose = ConsentPurpose.objects.get(key="webinar")
    assert purpose.site == demo_site
    assert purpose.text_versions.get().text == data["text_de"]


def test_editing_a_text_adds_a_version_shown_read_only(client, purposes, purpose_editor, leads):
    purpose = purposes["nurture"]
    old_text = purpose.text_de
    new_text = old_text + " Neu: auch per Post."
    client.force_login(purpose_editor)
    response = client.post(reverse(f"{PURPOSES_URL}:edit", args=[purpose.pk]), {
        "key": "renamed", "name": "Fachinfos per E-Mail", "channel": "phone", "text_de": new_text,
        "text_en": purpose.text_en, "sort_order": 5, "active": "on",
    })
    assert response.status_code == 302, html_of(response)[:2000]
    purpose.refresh_from_db()
    assert (purpose.name, purpose.text_de, purpose.sort_order) == ("Fachinfos per E-Mail", new_text, 5)
    assert (purpose.key, purpose.channel) == ("email-nurture", "email")  # fixed: the ledger refers to it
    assert list(purpose.text_versions.filter(language="de").order_by("version")
                .values_list("version", "text")) == [(1, old_text), (2, new_text)]

    body = html_of(client.get(reverse(f"{PURPOSES_URL}:inspect", args=[purpose.pk])))
    assert escape(old_text) in body and escape(new_text) in body
    # the proof still holds the text that was shown back then
    texts = {e["text"]["text"] for e in build_proof(leads["confirmed"])["events"]
             if e["purpose"]["key"] == "email-nurture"}
    assert texts == {old_text}


def test_purposes_are_never_deleted(client, purposes, purpose_editor, leads):
    purpose = purposes["nurture"]
    delete_url = reverse(f"{PURPOSES_URL}:delete", args=[purpose.pk])
    for user in (purpose_editor, make_user("root", superuser=True)):
        client.force_login(user)
        assert delete_url not in html_of(client.get(reverse(f"{PURPOSES_URL}:edit", args=[purpose.pk])))
        assert client.post(delete_url).status_code == 302
        assert ConsentPurpose.objects.filter(pk=purpose.pk).exists()
