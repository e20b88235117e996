"""Who enters a track, and who leaves it.

`enrol_eligible(track)` adds every lead that meets the track's entry trigger: one query selects
them, multi-row INSERTs with `ON CONFLICT DO NOTHING` add them (so two dispatchers racing enrol
each lead once). The dispatcher calls it for each active track on every run, so a confirmation
reaches the track within a minute and nothing depends on a signal that could be lost.
Eligibility here is a pre-selection: the binding M1 check (consent, suppression, restriction)
runs again at every send.
"""

from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils import timezone

from ..consent import confirmed_consent
from ..leads import Lead, LeadEvent
from .models import Enrolment, Track
from .schedule import BusinessHours, due_at


def eligible_leads(track):
    """The leads of the track's site that may enter it now (not yet enrolled)."""
    leads = (Lead.objects.filter(site_id=track.site_id, restricted_at__isnull=True,
                                 objected_at__isnull=True, synthetic=False)  # demo leads get no mail
             .filter(confirmed_consent(is_marketing=True))
             .exclude(Exists(Enrolment.objects.filter(track_id=track.pk, lead_id=OuterRef("pk")))))
    persona_ids = [persona.pk for persona in track.personas.all()]
    if persona_ids:
        leads = leads.filter(persona_assignment__persona_id__in=persona_ids)
    leads = _not_handed_over(track, leads)
    if track.trigger == Track.ON_CONFIRMATION:
        confirmations = LeadEvent.objects.filter(lead_id=OuterRef("pk"), kind=LeadEvent.OPTIN_CONFIRMED)
        if track.entry_page_id:
            confirmations = confirmations.filter(page_id=track.entry_page_id)
        leads = leads.filter(Exists(confirmations))
    elif track.trigger == Track.ON_PERSONA:
        leads = leads.filter(persona_assignment__persona__isnull=False)
    else:  # manual: only `enrol_leads`
        return Lead.objects.none()
    return leads


def first_due_at(track, now, hours=None):
    first = track.steps.order_by("sort_order").first()
    if first is None:
        return None
    return due_at(first, enrolled_at=now, last_step_at=None, hours=hours)


INSERT_CHUNK = 2000  # rows per INSERT (5 parameters each: within SQLite's limit of 32,766)


def _insert_enrolments(track, leads, now):
    """An enrolment for every lead of the queryset; returns how many were new.

    The selection is read first and inserted afterwards, in chunks of multi-row INSERTs (`ON
    CONFLICT DO NOTHING`). One `INSERT … SELECT` would be a single statement, but PostgreSQL
    may run its "not enrolled yet" check as a sequential scan of the enrolment table once per
    lead when the statistics say the table is empty (a new installation's first track), and the
    scan then walks every row the same statement has inserted so far: quadratic, 52 s instead of
    5 s for 100,000 leads (docs/benchmarks.md)."""
    due = first_due_at(track, now, BusinessHours.for_site(track.site))
    if due is None:
        return 0
    lead_ids = list(leads.values_list("pk", flat=True))
    qn = connection.ops.quote_name
    fixed = [track.pk, Enrolment.ACTIVE, connection.ops.adapt_datetimefield_value(now),
             connection.ops.adapt_datetimefield_value(due)]
    entered = 0
    with connection.cursor() as cursor:
        for start in range(0, len(lead_ids), INSERT_CHUNK):
            chunk = lead_ids[start:start + INSERT_CHUNK]
            rows = ", ".join(["(%s, %s, %s, %s, -1, %s, 0, '', '')"] * len(chunk))
            params = [value for lead_id in chunk for value in (fixed[0], lead_id, *fixed[1:])]
            cursor.execute(f"INSERT INTO {qn(Enrolment._meta.db_table)} (track_id, lead_id, {qn('status')}, "
                           f"enrolled_at, {qn('position')}, next_due_at, attempts, last_error, exit_reason) "
                           f"VALUES {rows} ON CONFLICT (track_id, lead_id) DO NOTHING", params)
            entered += cursor.rowcount
    return entered


def enrol_eligible(track, now=None):
    """Enrol every lead that meets the track's trigger; returns how many entered."""
    if track.status != Track.ACTIVE or track.trigger == Track.MANUAL:
        return 0
    return _insert_enrolments(track, eligible_leads(track), now or timezone.now())


def enrol_leads(track, lead_ids, now=None):
    """Manual enrolment of selected leads: those with confirmed marketing consent enter."""
    leads = (Lead.objects.filter(pk__in=list(lead_ids), site_id=track.site_id,
                                 restricted_at__isnull=True, objected_at__isnull=True, synthetic=False)
             .filter(confirmed_consent(is_marketing=True))
             .exclude(Exists(Enrolment.objects.filter(track_id=track.pk, lead_id=OuterRef("pk")))))
    return _insert_enrolments(track, _not_handed_over(track, leads), now or timezone.now())


def enrol_all(now=None):
    """Every active track's eligible leads (the dispatcher's first job on each run)."""
    total = 0
    for track in Track.objects.filter(status=Track.ACTIVE).exclude(trigger=Track.MANUAL).select_related(
            "site").prefetch_related("personas"):
        total += enrol_eligible(track, now)
    return total


def end_enrolments(lead_ids, reason, now=None):
    """Take leads out of every track they are active in (withdrawal, restriction, hand-over)."""
    return (Enrolment.objects.filter(lead_id__in=list(lead_ids), status=Enrolment.ACTIVE)
            .update(status=Enrolment.EXITED, exit_reason=reason, ended_at=now or timezone.now(),
                    next_due_at=None))


# --- hand-over to sales (issue 9) ------------------------------------------------------------

HANDOVER_EXIT_REASON = "handed over to sales"


def _not_handed_over(track, leads):
    """A track that is left on hand-over takes no MQL or SQL lead (one `NOT IN` subquery)."""
    if not track.exit_on_handover:
        return leads
    from ..scoring.models import MQL, SQL

    return leads.exclude(lifecycle__stage__in=(MQL, SQL))


def end_on_handover(lead_ids, now=None):
    """The leads leave every track that is left on hand-over; other tracks go on."""
    return (Enrolment.objects.filter(lead_id__in=list(lead_ids), status=Enrolment.ACTIVE,
                                     track__exit_on_handover=True)
            .update(status=Enrolment.EXITED, exit_reason=HANDOVER_EXIT_REASON, ended_at=now or timezone.now(),
                    next_due_at=None))


def reschedule_track(track, now=None):
    """After an edit: every active enrolment of the track is looked at by the next dispatcher
    run, which works out its next step and due time from the steps as they are now (one UPDATE,
    however many enrolments). Steps already handled are never sent again; steps added after an
    enrolment's position reach it."""
    return (Enrolment.objects.filter(track=track, status=Enrolment.ACTIVE)
            .update(next_due_at=now or timezone.now()))


__all__ = ["eligible_leads", "enrol_all", "enrol_eligible", "enrol_leads", "end_enrolments",
           "end_on_handover", "reschedule_track"]
