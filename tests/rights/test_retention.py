"""Retention (R4, P4): one job per data category, each run logged, shown in the admin and the notice.

Times are moved by passing `now` to the jobs, never by editing hashed ledger rows.
"""

import json
from datetime import timedelta

import pytest
from celery.schedules import crontab
from django.conf import settings as django_settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape
from wagtail.models import ModelLogEntry

from inbound import retention, tasks
from inbound.consent import ConsentEvent, ConsentPurpose, verify_chain, withdraw
from inbound.leads import Lead, LeadEvent, record_event
from inbound.mailing import SentMail
from inbound.optin import OptInRequest
from inbound.pages import GatedFormSubmission
from inbound.privacy_notice import retention_periods
from inbound.proof import build_proof
from inbound.retention import RetentionRun
from inbound.suppression import SuppressionEntry
from tests.gated.conftest import confirm_path, submit
from tests.rights.staff import make_user

pytestmark = pytest.mark.django_db

EMAIL = "max.muster@example.org"
DOWNLOAD_ONLY = "nur.download@example.org"
DAYS = timedelta(days=1)


@pytest.fixture
def download_only_lead(client, gated_page, mailoutbox, on_commit):
    """A lead who confirmed a download without ticking any consent box."""
    with on_commit():
        submit(client, gated_page, email=DOWNLOAD_ONLY, firma="Nur Download AG")
    with on_commit():
        client.post(confirm_path(mailoutbox[-1]))
    mailoutbox.clear()
    lead = Lead.objects.get(email=DOWNLOAD_ONLY)
    assert lead.confirmed_at is not None and not lead.consent_events.exists()
    return lead


def withdraw_everything(lead, occurred_at=None):
    with transaction.atomic():
        return withdraw(lead, list(ConsentPurpose.objects.filter(site_id=lead.site_id)), channel="test",
                        occurred_at=occurred_at)


def lead_exists(lead):
    return Lead.objects.filter(pk=lead.pk).exists()


def assert_deleted_without_suppression(lead, job):
    assert not lead_exists(lead)
    assert not GatedFormSubmission.objects.filter(lead_id=lead.pk).exists()
    assert not ConsentEvent.objects.filter(lead_id=lead.pk).exists()
    assert not SuppressionEntry.objects.exists(), "retention is not an erasure request"
    [entry] = ModelLogEntry.objects.filter(action=retention.RETENTION_DELETE_ACTION, object_id=str(lead.pk))
    assert entry.label == f"Lead #{lead.pk}" and entry.user_id is None
    assert entry.data["job"] == job
    for logged in ModelLogEntry.objects.all():
        assert lead.email not in logged.label and lead.email not in json.dumps(logged.data)


# --- truncated IP addresses (P4) ----------------------------------------------------------------

def test_ips_are_cleared_after_the_period_and_the_chain_stays_valid(confirmed_lead):
    now = timezone.now()
    events = ConsentEvent.objects.filter(lead=confirmed_lead)
    assert events.exclude(ip_truncated="").exists() and OptInRequest.objects.exclude(ip_truncated="").exists()
    with_ip = events.exclude(ip_truncated="").count()

    assert retention.clear_ip_addresses(now=now + 89 * DAYS) == {"consent_events": 0, "optin_requests": 0}
    assert retention.clear_ip_addresses(now=now + 91 * DAYS) == {"consent_events": with_ip,
                                                                  "optin_requests": 1}
    assert not events.exclude(ip_truncated="").exists()
    assert not OptInRequest.objects.exclude(ip_truncated="").exists()
    assert events.exclude(ip_digest="").count() == with_ip, "the digests stay, the chain hashes them"
    assert verify_chain(list(events.order_by("seq"))) == []
    proof = build_proof(confirmed_lead)
    assert proof["chain"]["verified"] is True
    assert all(event["ip_truncated"] == "" for event in proof["events"])


def test_ip_period_is_a_setting(confirmed_lead, settings):
    settings.INBOUND_IP_RETENTION = timedelta(days=7)
    assert retention.clear_ip_addresses(now=timezone.now() + 8 * DAYS)["optin_requests"] == 1


# --- raw events ---------------------------------------------------------------------------------

def test_raw_events_are_deleted_after_about_13_months(confirmed_lead):
    now = timezone.now()
    old = set(LeadEvent.objects.filter(lead=confirmed_lead).values_list("pk", flat=True))
    assert old
    later = record_event(confirmed_lead, "page_view")
    LeadEvent.objects.filter(pk=later.pk).update(occurred_at=now + 200 * DAYS)
    anonymous = LeadEvent.objects.create(site_id=confirmed_lead.site_id, kind="page_view")

    assert retention.purge_raw_events(now=now + 395 * DAYS)["events"] == 0
    counts = retention.purge_raw_events(now=now + 397 * DAYS)
    assert counts == {"events": len(old) + 1, "leads_touched": 1}
    assert not LeadEvent.objects.filter(pk__in=old | {anonymous.pk}).exists()
    assert LeadEvent.objects.filter(pk=later.pk).exists()
    # the time of the deleted activity stays, without its content
    confirmed_lead.refresh_from_db()
    assert confirmed_lead.last_activity_at is not None
    assert abs(confirmed_lead.last_activity_at - now) < timedelta(minutes=5)


# --- inactive leads -----------------------------------------------------------------------------

def test_inactive_lead_without_consent_is_deleted_after_two_years(download_only_lead):
    now = timezone.now()
    assert retention.purge_inactive_leads(now=now + 729 * DAYS)["leads"] == 0
    assert lead_exists(download_only_lead)
    counts = retention.purge_inactive_leads(now=now + 731 * DAYS)
    assert counts["leads"] == 1 and counts["submissions"] == 1 and counts["mails"] == 2
    assert_deleted_without_suppression(download_only_lead, "inactive_leads")
    assert not SentMail.objects.filter(lead_id=download_only_lead.pk).exists()


@pytest.mark.parametrize("activity", ["mail", "event", "submission", "last_activity"])
def test_any_activity_keeps_a_lead(download_only_lead, activity):
    now = timezone.now()
    later = now + 400 * DAYS
    lead = download_only_lead
    if activity == "mail":
        SentMail.objects.create(lead=lead, kind=SentMail.MARKETING, subject="x", sent_at=later)
    elif activity == "event":
        LeadEvent.objects.create(site_id=lead.site_id, lead=lead, kind="download", occurred_at=later)
    elif activity == "submission":
        GatedFormSubmission.objects.filter(lead=lead).update(submit_time=later)
    else:
        Lead.objects.filter(pk=lead.pk).update(last_activity_at=later)
    assert retention.purge_inactive_leads(now=now + 731 * DAYS)["leads"] == 0
    assert lead_exists(lead)
    assert retention.purge_inactive_leads(now=later + 731 * DAYS)["leads"] == 1
    assert not lead_exists(lead)


def test_old_raw_events_still_count_as_activity_after_their_deletion(download_only_lead):
    now = timezone.now()
    LeadEvent.objects.create(site_id=download_only_lead.site_id, lead=download_only_lead, kind="download",
                             occurred_at=now + 300 * DAYS)
    retention.run_all(now=now + 731 * DAYS)  # the event is older than 13 months and goes first
    assert not LeadEvent.objects.filter(lead=download_only_lead).exists()
    assert lead_exists(download_only_lead), "its time (day 300) is less than two years ago"
    retention.run_all(now=now + 1032 * DAYS)
    assert not lead_exists(download_only_lead)


def test_leads_with_active_consent_are_never_deleted(confirmed_lead):
    now = timezone.now() + 20 * 365 * DAYS
    assert retention.purge_inactive_leads(now=now)["leads"] == 0
    assert retention.purge_withdrawn_consent_proof(now=now)["leads"] == 0
    assert lead_exists(confirmed_lead)


def test_inactive_period_is_a_setting(download_only_lead, settings):
    settings.INBOUND_INACTIVE_LEAD_RETENTION = timedelta(days=30)
    assert retention.purge_inactive_leads(now=timezone.now() + 31 * DAYS)["leads"] == 1


# --- consent proof after withdrawal -------------------------------------------------------------

def test_proof_is_kept_three_years_after_withdrawal_then_deleted_with_the_lead(confirmed_lead):
    now = timezone.now()
    assert withdraw_everything(confirmed_lead)
    two_and_a_half_years = now + 913 * DAYS
    assert retention.purge_inactive_leads(now=two_and_a_half_years)["leads"] == 0, "the proof is kept"
    assert retention.purge_withdrawn_consent_proof(now=two_and_a_half_years)["leads"] == 0
    after = now + 1097 * DAYS
    assert retention.purge_inactive_leads(now=after)["leads"] == 0, "not the inactive job's business"
    assert lead_exists(confirmed_lead)
    counts = retention.purge_withdrawn_consent_proof(now=after)
    assert counts["leads"] == 1 and counts["consent_events"] >= 4
    assert_deleted_without_suppression(confirmed_lead, "consent_proof")


def test_proof_period_runs_from_the_last_withdrawal(confirmed_lead):
    now = timezone.now()
    withdraw_everything(confirmed_lead, occurred_at=now + 500 * DAYS)
    assert retention.purge_withdrawn_consent_proof(now=now + 1097 * DAYS)["leads"] == 0
    assert retention.purge_withdrawn_consent_proof(now=now + 1597 * DAYS)["leads"] == 1


def test_a_shorter_proof_period_does_not_cut_the_inactive_period(confirmed_lead, settings):
    settings.INBOUND_CONSENT_PROOF_RETENTION = timedelta(days=30)
    now = timezone.now()
    withdraw_everything(confirmed_lead)
    assert retention.purge_withdrawn_consent_proof(now=now + 100 * DAYS)["leads"] == 0
    assert retention.purge_withdrawn_consent_proof(now=now + 731 * DAYS)["leads"] == 1


def test_partly_withdrawn_consent_keeps_the_lead(confirmed_lead, purposes):
    now = timezone.now()
    with transaction.atomic():
        withdraw(confirmed_lead, [purposes["nurture"]], channel="test")  # tracking stays confirmed
    assert retention.purge_withdrawn_consent_proof(now=now + 5000 * DAYS)["leads"] == 0
    assert lead_exists(confirmed_lead)


# --- running and logging ------------------------------------------------------------------------

def test_run_all_logs_each_job_in_its_own_run(confirmed_lead, download_only_lead):
    now = timezone.now()
    withdraw_everything(confirmed_lead)
    results = retention.run_all(now=now + 1100 * DAYS)
    runs = list(RetentionRun.objects.order_by("pk"))
    assert [run.job for run in runs] == list(retention.JOBS)
    assert all(run.finished_at is not None and run.finished_at >= run.started_at for run in runs)
    by_job = {run.job: run.counts for run in runs}
    assert by_job == results
    assert by_job["inactive_leads"]["leads"] == 1 and by_job["consent_proof"]["leads"] == 1
    assert by_job["ip_addresses"]["consent_events"] > 0 and by_job["raw_events"]["events"] > 0
    assert Lead.objects.count() == 0
    assert EMAIL not in json.dumps(by_job) and DOWNLOAD_ONLY not in json.dumps(by_job)


def test_a_failing_job_is_recorded_and_the_others_still_run(download_only_lead, monkeypatch):
    def broken(now=None):
        raise RuntimeError(f"database trouble near {DOWNLOAD_ONLY}")

    monkeypatch.setitem(retention.JOBS, "raw_events", (broken, "Raw events"))
    retention.run_all(now=timezone.now() + 731 * DAYS)
    runs = {run.job: run for run in RetentionRun.objects.all()}
    assert runs["raw_events"].counts == {"error": "RuntimeError"}, "no message: it may hold personal data"
    assert runs["raw_events"].finished_at is not None
    assert runs["inactive_leads"].counts["leads"] == 1


def test_daily_beat_task_runs_every_job():
    entries = [entry for entry in django_settings.CELERY_BEAT_SCHEDULE.values()
               if entry["task"] == "inbound.tasks.run_retention"]
    assert len(entries) == 1 and isinstance(entries[0]["schedule"], crontab)
    assert entries[0]["schedule"].hour == {3}
    tasks.run_retention.delay()  # eager in tests
    assert sorted(RetentionRun.objects.values_list("job", flat=True)) == sorted(retention.JOBS)


def test_unconfirmed_purge_task_is_logged_too(client, gated_page, on_commit):
    with on_commit():
        submit(client, gated_page, email="ghost@example.org")
    OptInRequest.objects.update(created_at=timezone.now() - 15 * DAYS)
    tasks.purge_unconfirmed_requests.delay()
    [run] = RetentionRun.objects.all()
    assert run.job == "unconfirmed_requests" and run.counts == {"requests": 1, "submissions": 1, "leads": 1}


def test_unconfirmed_purge_works_off_more_than_one_batch(client, gated_page, on_commit, monkeypatch):
    monkeypatch.setattr(retention, "BATCH_SIZE", 2)
    for number in range(5):
        with on_commit():
            submit(client, gated_page, email=f"ghost{number}@example.org", remote_addr=f"203.0.113.{number}")
    assert retention.purge_unconfirmed_requests(now=timezone.now() + 15 * DAYS)["leads"] == 5
    assert not Lead.objects.exists()


# --- admin and privacy notice -------------------------------------------------------------------

def test_retention_runs_are_listed_for_users_who_may_see_leads(client, demo_site, download_only_lead):
    retention.run_all(now=timezone.now() + 731 * DAYS)
    runs_url = reverse("retention_runs:index")
    viewer = make_user("viewer", perms=["inbound.view_lead"], pages=[demo_site.root_page])
    client.force_login(viewer)
    response = client.get(runs_url)
    assert response.status_code == 200
    html = response.content.decode()
    for label in ("Unconfirmed requests", "Raw events", "Truncated IP addresses", "Inactive leads",
                  "Consent proof after withdrawal"):
        assert label in html
    assert "leads: 1" in html
    assert DOWNLOAD_ONLY not in html
    assert runs_url in client.get(reverse("wagtailadmin_home")).content.decode()  # in the menu
    assert "/admin/retention_runs/new/" not in html and client.get(runs_url + "new/").status_code == 404

    client.force_login(make_user("editor", pages=[demo_site.root_page]))
    response = client.get(runs_url)
    assert response.status_code == 302 and response["Location"] == reverse("wagtailadmin_home")
    assert runs_url not in client.get(reverse("wagtailadmin_home")).content.decode()


def test_privacy_notice_lists_every_retention_period(client, demo_site, settings):
    with translation.override("en"):
        periods = {str(item.category): str(item.period) for item in retention_periods()}
    assert periods["Shortened IP addresses"] == "90 days"
    assert periods["Usage events (page views, downloads, confirmations)"] == "396 days"
    assert periods["Your data without an active consent, after your last activity"] == "730 days"
    proof = "Proof of your consent, after you withdrew it (then deleted with your data)"
    assert periods[proof] == "1096 days"

    html = client.get("/datenschutz/").content.decode()
    with translation.override("de"):  # the page's language, whatever the catalogue holds
        for item in retention_periods():
            assert escape(f"{item.category}: {item.period}") in html, item
    settings.INBOUND_CONSENT_PROOF_RETENTION = timedelta(days=1500)
    assert "1500 " in client.get("/datenschutz/").content.decode()
