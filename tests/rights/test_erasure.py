"""Erasure (R2): one function removes the lead everywhere; only a keyed hash stays on the
suppression list. The person erases through the preference center, confirmed by a mail link."""

import hashlib
import json
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone
from freezegun import freeze_time
from wagtail.models import BaseLogEntry

from inbound import links, privacy
from inbound.consent import ConsentEvent, lead_consent_states
from inbound.leads import Lead
from inbound.marketing import send_decision
from inbound.suppression import SuppressionEntry, address_hash
from tests.rights.conftest import confirm_path, send_marketing, submit
from tests.rights.test_export import (
    ADDRESS,
    CONTACT_ADDRESS,
    MARKERS,
    contact_page,
    populate_every_table,
    post_contact,
    preferences_path,
)

pytestmark = pytest.mark.django_db

NEEDLES = (ADDRESS, *MARKERS)


# --- looking through the whole database ----------------------------------------------------------

def _as_text(value):
    if value is None:
        return ""
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    value = str(value)
    if value[:1] in ("{", "[", '"'):  # JSON stored as text may escape non-ASCII (\u00e4)
        try:
            return value + " " + json.dumps(json.loads(value), ensure_ascii=False)
        except ValueError:
            pass
    return value


def _dump(cursor, table):
    quoted = connection.ops.quote_name(table)
    cursor.execute(f"SELECT * FROM {quoted}")  # noqa: S608 - table names from introspection
    return "\n".join("\t".join(_as_text(value) for value in row) for row in cursor.fetchall()).lower()


def database_dump():
    """{table: every row as lower-case text} for the table of every Django model (including
    many-to-many tables) and every other table in the database (e.g. full-text search tables)."""
    tables = set(connection.introspection.table_names())
    model_tables = {model._meta.db_table for model in apps.get_models(include_auto_created=True)
                    if model._meta.managed and not model._meta.proxy}
    assert model_tables <= tables, model_tables - tables
    assert {"inbound_lead", "inbound_gatedformsubmission", "wagtailforms_formsubmission",
            "inbound_consentevent", "inbound_optinrequest", "inbound_leadevent", "inbound_sentmail",
            "wagtailsearch_indexentry", "wagtailcore_modellogentry", "inbound_suppressionentry",
            "django_session"} <= model_tables
    with connection.cursor() as cursor:
        return {table: _dump(cursor, table) for table in sorted(tables)}


def tables_containing(needles=NEEDLES):
    found = {}
    for table, text in database_dump().items():
        hits = sorted(needle for needle in needles if needle.lower() in text)
        if hits:
            found[table] = hits
    return found


def log_entries(action):
    """Entries with this action in every concrete audit log model (BaseLogEntry subclasses)."""
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    entries = []
    for model in {m for m in subclasses(BaseLogEntry) if not m._meta.abstract}:
        entries += list(model.objects.filter(action=action))
    return entries


def assert_erased_everywhere(old_lead_pk, channel, user=None, mails=8):
    assert not Lead.objects.filter(pk=old_lead_pk).exists()
    assert tables_containing() == {}, "the address or an answer is still stored"
    entry = SuppressionEntry.objects.get()
    assert entry.address_hash == address_hash(ADDRESS) == address_hash(CONTACT_ADDRESS)
    assert re.fullmatch(r"[0-9a-f]{64}", entry.address_hash)
    assert entry.address_hash != hashlib.sha256(ADDRESS.encode()).hexdigest(), "keyed, not a bare hash"
    with override_settings(INBOUND_SUPPRESSION_KEY="another-secret"):
        assert address_hash(ADDRESS) != entry.address_hash, "the server secret is part of the hash"

    (audit,) = log_entries(privacy.ERASE_ACTION)
    assert audit.label == f"Lead #{old_lead_pk}"
    assert audit.object_id == str(old_lead_pk)
    assert audit.user_id == (user.pk if user else None)
    assert audit.data["channel"] == channel
    assert audit.data["answers"] == 3 and audit.data["events"] == 2 and audit.data["mails"] == mails
    stored = " ".join(_as_text(getattr(audit, field.attname)) for field in audit._meta.concrete_fields)
    for needle in NEEDLES + ("max.muster", "example.org"):
        assert needle.lower() not in stored.lower(), f"personal data in the audit log: {needle}"


@pytest.fixture
def full_lead(client, confirmed_lead, gated_page, purposes, mailoutbox, on_commit):
    lead = populate_every_table(client, confirmed_lead, gated_page, purposes, mailoutbox, on_commit)
    mailoutbox.clear()
    found = tables_containing()
    # the search must be able to fail: before erasure it finds the lead's data where it lives
    assert {"inbound_lead", "inbound_gatedformsubmission", "wagtailforms_formsubmission"} <= set(found)
    assert set(found["wagtailforms_formsubmission"]) >= {ADDRESS, *MARKERS[2:]}
    assert set(found["inbound_gatedformsubmission"]) >= {ADDRESS, *MARKERS[:2]}
    return lead


def csrf_token(html):
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def erase_path(mail):
    match = re.search(r"https?://[^/\s]+(/inbound/erase/[^\s/]+/)", mail.body)
    assert match, mail.body
    return match.group(1)


# --- the full self-service path ------------------------------------------------------------------

def test_self_service_erasure_confirmed_by_mail_removes_everything(full_lead, mailoutbox, on_commit,
                                                                   gated_page, purposes):
    person = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    path = preferences_path(full_lead)
    page = person.get(path).content.decode()
    with on_commit():
        response = person.post(path, {"action": "erase", "csrfmiddlewaretoken": csrf_token(page)})
    assert response.status_code == 200
    assert "Your data is erased once you confirm there." in response.content.decode()
    assert Lead.objects.filter(pk=full_lead.pk).exists(), "asking erases nothing yet"
    (mail,) = mailoutbox
    assert mail.to == [ADDRESS]
    link = erase_path(mail)
    assert ADDRESS not in link.lower()

    # opening the link (a mail scanner does that) erases nothing and shows one button
    response = person.get(link)
    assert response.status_code == 200
    html = response.content.decode()
    content = html.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    assert content.count('type="submit"') == 1 and 'method="post"' in content
    assert "Yes, erase my data now" in html
    assert Lead.objects.filter(pk=full_lead.pk).exists()
    assert ADDRESS in tables_containing().get("inbound_lead", [])

    # without the CSRF token the POST is refused
    assert person.post(link).status_code == 403
    assert Lead.objects.filter(pk=full_lead.pk).exists()

    response = person.post(link, {"csrfmiddlewaretoken": csrf_token(html)})
    assert response.status_code == 200
    assert "Your data has been erased" in response.content.decode()
    assert ADDRESS not in response.content.decode().lower()
    assert_erased_everywhere(full_lead.pk, channel="self-service", mails=9)  # plus the erasure mail

    # every old link is dead now
    assert person.get(link).status_code == 404
    assert person.get(path).status_code == 404
    assert person.get(path + "export/").status_code == 404


def test_erase_lead_function_removes_everything(full_lead):
    admin = get_user_model().objects.create_superuser("dsb", "dsb@staff.test", "pw")
    counts = privacy.erase_lead(full_lead, user=admin)
    # 8 mails: the sales hand-over mail is one of them
    assert counts == {"answers": 3, "consent_events": 11, "events": 2, "mails": 8}
    assert_erased_everywhere(full_lead.pk, channel="admin", user=admin)


def test_erasure_leaves_other_people_alone(client, full_lead, gated_page, on_commit):
    with on_commit():
        submit(client, gated_page, email="erika@example.net", firma="Andere GmbH")
    post_contact(client, email="erika@example.net", name="Erika", message="Ich bleibe")
    privacy.erase_lead(full_lead)
    other = Lead.objects.get()
    assert other.email == "erika@example.net"
    assert other.submissions.count() == 1
    assert contact_page().get_submission_class().objects.filter(page=contact_page()).count() == 1
    assert set(tables_containing(("erika@example.net",))) >= {"inbound_lead", "wagtailforms_formsubmission"}


# --- after erasure: the address is new and needs a fresh DOI -------------------------------------

def test_new_submission_after_erasure_needs_a_fresh_double_opt_in(client, full_lead, gated_page,
                                                                    purposes, mailoutbox, on_commit):
    old_pk = full_lead.pk
    privacy.erase_lead(full_lead)
    assert SuppressionEntry.objects.count() == 1

    with on_commit():
        response = submit(client, gated_page, consent_email_nurture="on")
    assert response.status_code == 200
    lead = Lead.objects.get()
    assert lead.pk != old_pk and lead.email == ADDRESS
    assert lead.confirmed_at is None
    assert lead_consent_states(lead) == {purposes["nurture"].pk: "pending"}
    assert [e.kind for e in ConsentEvent.objects.filter(lead=lead).order_by("seq")] == [
        ConsentEvent.REQUESTED, ConsentEvent.DOI_SENT]
    (mail,) = mailoutbox
    assert mail.to == [ADDRESS]
    decision = send_decision(lead)
    assert not decision.allowed and decision.reason == "suppressed"
    mailoutbox.clear()
    assert send_marketing(lead).sent is False and mailoutbox == []

    # the old links of the erased lead do not reach the new one
    old_token_lead = Lead(pk=old_pk, key="whatever", site_id=lead.site_id)
    assert client.get(f"/inbound/p/{links.preferences_token(old_token_lead)}/").status_code == 404

    with on_commit():
        response = client.post(confirm_path(mail))
    assert response.status_code == 200
    lead.refresh_from_db()
    assert lead.confirmed_at is not None
    assert SuppressionEntry.objects.count() == 0, "the fresh confirmation lifts the suppression"
    assert send_decision(lead).allowed
    mailoutbox.clear()
    assert send_marketing(lead).sent
    assert [m.to for m in mailoutbox] == [[ADDRESS]]


def test_manage_form_treats_an_erased_address_as_unknown(client, full_lead, mailoutbox, on_commit):
    privacy.erase_lead(full_lead)
    with on_commit():
        response = client.post("/inbound/meine-daten/", {"email": ADDRESS, "website": ""})
    assert response.status_code == 200
    assert mailoutbox == []
    assert not Lead.objects.exists()


# --- links that must not erase -------------------------------------------------------------------

def _still_there(lead):
    return Lead.objects.filter(pk=lead.pk).exists() and not SuppressionEntry.objects.exists()


@pytest.mark.parametrize("forge", ["garbage", "{erasure}x", "{preferences}", "{unsubscribe}"])
def test_forged_erasure_link_erases_nothing(confirmed_lead, forge):
    token = forge.format(erasure=links.erasure_token(confirmed_lead),
                         preferences=links.preferences_token(confirmed_lead),
                         unsubscribe=links.unsubscribe_token(confirmed_lead))
    for method in ("get", "post"):
        response = getattr(Client(), method)(f"/inbound/erase/{token}/")
        assert response.status_code == 404
    assert _still_there(confirmed_lead)
    assert not log_entries(privacy.ERASE_ACTION)


def test_erasure_link_of_a_rotated_key_erases_nothing(confirmed_lead):
    token = links.erasure_token(confirmed_lead)
    Lead.objects.filter(pk=confirmed_lead.pk).update(key="rotated")
    assert Client().post(f"/inbound/erase/{token}/").status_code == 404
    assert _still_there(confirmed_lead)


def test_expired_erasure_link_erases_nothing(confirmed_lead):
    issued = timezone.now()
    with freeze_time(issued):
        token = links.erasure_token(confirmed_lead)
    with freeze_time(issued + timedelta(seconds=links.ERASURE_MAX_AGE - 60)):
        assert Client().get(f"/inbound/erase/{token}/").status_code == 200, "still valid just before"
    with freeze_time(issued + timedelta(seconds=links.ERASURE_MAX_AGE + 1)):
        assert Client().get(f"/inbound/erase/{token}/").status_code == 404
        response = Client().post(f"/inbound/erase/{token}/")
    assert response.status_code == 404
    assert _still_there(confirmed_lead)
    assert not log_entries(privacy.ERASE_ACTION)
