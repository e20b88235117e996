"""The nurture dispatcher: due enrolments in batches, each step sent exactly once (N2).

One run (`dispatch_due`, called by beat every minute):
1. enrols every eligible lead of the active tracks (`enrolment.enrol_all`, set-wise);
2. claims a batch of due enrolments: `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so
   dispatchers running at the same time take different rows, and a lease (`claimed_until`) so
   a claimed batch stays with its dispatcher until it is done or the lease runs out (the batch
   of a crashed dispatcher is free again then);
3. handles each enrolment in its own transaction, which
   - locks the lead's row (the lock a withdrawal takes, M4) and then the enrolment's row,
     checks that the enrolment is still where the batch found it and reads the lead's ledger;
   - runs the M1 send-time check (`marketing.send_decision`);
   - logs the mail, inserts the delivery row (unique per (enrolment, step), so a step can be
     handled once) and advances the enrolment;
   - sends the mail over the batch's SMTP connection.
   The transaction commits only after the SMTP server accepted the mail, and a failed send
   rolls everything back (the step is retried with backoff). A dispatcher killed mid-batch
   loses at most the transaction in flight, which the next run repeats. The statements of
   this transaction are written as SQL (`statements`), prepared once per connection: three
   round trips per mail on PostgreSQL (BEGIN with the two locks, the record, COMMIT), over
   psycopg cursors kept for the batch (`Batch.cursors`); what a
   batch shares (steps, legal state, sender and footer per site, rendered bodies and mail
   templates) is read or rendered once per batch, the per-site state before the first mail's
   transaction (`Batch.prepare`), so no lead's lock waits for it. The mail's bytes are written directly
   (`bulkmail.message_bytes`) and its envelope is pipelined (`smtp_pipelining`).
   If the server cannot be reached (rather than refusing one mail), the run stops and releases the
   rest of its batch unattempted: an outage costs one attempt per run, not one per due mail.
4. keeps to INBOUND_NURTURE_RATE_LIMIT across all batches of the run (`Pacer`).

Beat starts one run a minute; where more than one batch is due, that run asks for up to
INBOUND_NURTURE_DISPATCHERS - 1 more (`fan_out`, queued as Celery tasks that run `dispatch_due`
without enrolling), so a backlog is sent on every core the workers have. They share the due set
through the claims above and stop when nothing is due.

The one case SMTP leaves open is a crash in the instant between the server's "250 OK" and the
commit (one local COMMIT): that mail would be sent again. No design without a two-phase commit
with the mail server can close it; this one keeps it to the commit itself.
"""

import logging
import math
import os
import smtplib
import time
from dataclasses import dataclass, fields
from datetime import timedelta
from email.utils import make_msgid

from django.core.mail import get_connection
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from wagtail.models import Site

from .. import bulkmail, conf, legal
from ..consent import ConsentEvent, ConsentPurpose
from ..mailframes import FrameCache
from ..marketing import marketing_site, send_decision
from ..suppression import address_hash
from . import conditions, enrolment, statements
from .models import Delivery, Enrolment, Step, Track
from .rendering import TEMPLATE_VERSION, BodyCache, build_step_mail
from .schedule import BusinessHours, due_at

logger = logging.getLogger(__name__)

LEGAL_RETRY = 60 * 60  # seconds: a site with incomplete legal notices is tried again in an hour
# The server refused this one mail; anything else (refused or lost connection, timeout, login)
# means the server is unavailable, and every further mail of the run would fail the same way.
MESSAGE_ERRORS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


@dataclass
class DispatchResult:
    enrolled: int = 0
    sent: int = 0
    skipped: int = 0
    waiting: int = 0
    blocked: int = 0
    failed: int = 0
    retried: int = 0
    completed: int = 0
    ended: int = 0
    batches: int = 0
    helpers: int = 0  # further dispatchers this run started (`fan_out`)

    def add(self, other):
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


def _due(now):
    """Enrolments due at `now` and claimed by no dispatcher (or by one whose lease ran out)."""
    return (Enrolment.objects.filter(status=Enrolment.ACTIVE, next_due_at__lte=now,
                                     track__status=Track.ACTIVE)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)))


def claim(now, batch_size):
    """Ids of up to `batch_size` due enrolments, now leased to this dispatcher."""
    lease = conf.get("INBOUND_NURTURE_CLAIM_LEASE")
    with transaction.atomic():
        due = (_due(now)
               # next_due_at alone, the order of the partial index "inbound_enrolment_due": the scan
               # stops after `batch_size` rows. A tie-break on the id would sort every due row
               # on every claim (50 ms per batch with 100,000 due, a quarter of the send time).
               .order_by("next_due_at"))
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        ids = list(due.values_list("pk", flat=True)[:batch_size])
        if ids:
            # Re-check the lease in the UPDATE: on SQLite (no row locks) two dispatchers may
            # have read the same rows; only one of them gets each row.
            Enrolment.objects.filter(pk__in=ids).filter(
                Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)).update(claimed_until=now + lease)
    return ids


class Batch:
    """What one batch shares: steps per track, legal state and hours per site, rendered
    bodies, the SMTP connection and the rate limit."""

    def __init__(self, now, mail_connection=None, pacer=None):
        self.now = now
        self.bodies = BodyCache()
        # the mail templates, rendered once per (site, step) and filled in per mail
        self.frames = FrameCache(strings=("unsubscribe_url", "preferences_url", "body_html", "body_text"),
                                 objects=("lead",))
        self._steps = {}
        self._legal = {}
        self._hours = {}
        self._shared = {}
        self._marketing_ids = {}
        self._tracking_ids = {}
        self._mail = mail_connection
        self._own_mail = mail_connection is None
        self._pacer = pacer or Pacer()
        self._cursors = None
        self._postgresql = connection.vendor == "postgresql"
        self.server_unavailable = False

    def steps(self, track_id):
        if track_id not in self._steps:
            self._steps[track_id] = list(Step.objects.filter(track_id=track_id).order_by("sort_order", "pk"))
        return self._steps[track_id]

    def legal_missing(self, site):
        if site.pk not in self._legal:
            self._legal[site.pk] = legal.missing_items(site)
        return self._legal[site.pk]

    def hours(self, site):
        if site.pk not in self._hours:
            self._hours[site.pk] = BusinessHours.for_site(site)
        return self._hours[site.pk]

    def shared(self, site):
        if site.pk not in self._shared:
            self._shared[site.pk] = marketing_site(site)
        return self._shared[site.pk]

    def purpose_ids(self, site_id):
        if site_id not in self._marketing_ids:
            rows = list(ConsentPurpose.objects.filter(site_id=site_id)
                        .values_list("pk", "is_marketing", "channel"))
            self._marketing_ids[site_id] = {pk for pk, marketing, _channel in rows if marketing}
            self._tracking_ids[site_id] = {pk for pk, _marketing, channel in rows
                                           if channel == ConsentPurpose.TRACKING}
        return self._marketing_ids[site_id], self._tracking_ids[site_id]

    def prepare(self, site):
        """Read what every mail of `site` needs (legal state, business hours, consent purposes,
        sender and footer) now, before the batch's first mail: not inside its transaction, where
        the lead's lock would be held while it is read."""
        if not self.legal_missing(site):
            self.shared(site)
        self.hours(site)
        self.purpose_ids(site.pk)

    def cursors(self):
        """The per-mail statements' cursors (`statements.Cursors`), kept for the batch;
        None on SQLite."""
        if not self._postgresql:
            return None
        self._cursors = statements.Cursors.current(self._cursors)
        return self._cursors

    def mail_connection(self):
        if self._mail is None:
            self._mail = get_connection()
            self._mail.open()
        return self._mail

    def reset_mail(self):
        if self._own_mail and self._mail is not None:
            try:
                self._mail.close()
            except (smtplib.SMTPException, OSError):
                pass
            self._mail = None

    def close(self):
        if self._own_mail and self._mail is not None:
            self._mail.close()
            self._mail = None

    def pace(self):
        self._pacer.pace()


class Pacer:
    """Keeps a dispatcher run to INBOUND_NURTURE_RATE_LIMIT mails per second. One per run, not
    per batch: the first mail of a batch waits for the last one of the batch before it."""

    def __init__(self):
        self._rate = float(conf.get("INBOUND_NURTURE_RATE_LIMIT") or 0)
        self._last_send = None

    def pace(self):
        if self._rate <= 0:
            return
        if self._last_send is not None:
            wait = self._last_send + 1.0 / self._rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._last_send = time.monotonic()


def dispatchers_allowed():
    """INBOUND_NURTURE_DISPATCHERS, or its default: one per CPU core on PostgreSQL, one on SQLite."""
    configured = conf.get("INBOUND_NURTURE_DISPATCHERS")
    if configured is not None:
        return max(1, int(configured))
    return (os.cpu_count() or 1) if connection.vendor == "postgresql" else 1


def more_dispatchers_wanted(now, batch_size):
    """How many dispatchers besides this one the due set keeps busy: one per further batch due,
    up to `dispatchers_allowed() - 1`. Counts at most that many batches (a bounded query)."""
    allowed = dispatchers_allowed()
    if allowed < 2:
        return 0
    count = _due(now).order_by()[:batch_size * allowed].count()
    return min(allowed - 1, max(0, math.ceil(count / batch_size) - 1))


def dispatch_due(now=None, batch_size=None, max_batches=None, mail_connection=None, enrol=True, fan_out=None):
    """One dispatcher run; returns a `DispatchResult`. `now` is injectable for tests.

    `fan_out(count)` (beat's task passes one) is called once, after enrolment, with the number
    of further dispatchers the due set would keep busy, if any; `enrol=False` for those."""
    clock = (lambda: now) if now is not None else timezone.now
    batch_size = batch_size or conf.get("INBOUND_NURTURE_BATCH_SIZE")
    budget = conf.get("INBOUND_NURTURE_TIME_BUDGET")
    started = time.monotonic()
    result = DispatchResult(enrolled=enrolment.enrol_all(clock()) if enrol else 0)
    if fan_out is not None:
        wanted = more_dispatchers_wanted(clock(), batch_size)
        if wanted:
            result.helpers = fan_out(wanted)
    pacer = Pacer()
    while max_batches is None or result.batches < max_batches:
        ids = claim(clock(), batch_size)
        if not ids:
            break
        batch = Batch(clock(), mail_connection, pacer)
        try:
            result.add(process_batch(ids, batch))
        finally:
            batch.close()
        result.batches += 1
        if batch.server_unavailable or time.monotonic() - started > budget:
            break
    return result


def process_batch(ids, batch):
    result = DispatchResult()
    enrolments = list(Enrolment.objects.filter(pk__in=ids).select_related("lead")
                      .order_by("next_due_at", "pk"))
    sites = Site.objects.in_bulk({item.lead.site_id for item in enrolments})
    for item in enrolments:
        item.lead.site = sites[item.lead.site_id]  # one Site object per site, not per lead
    for site in sites.values():
        batch.prepare(site)
    lead_of = {item.pk: item.lead_id for item in enrolments}
    used = {step.condition for track_id in {item.track_id for item in enrolments}
            for step in batch.steps(track_id)}
    facts = conditions.load_facts(ids, lead_of=lead_of, conditions=used)
    personas = _personas(set(lead_of.values()))
    for index, item in enumerate(enrolments):
        if batch.server_unavailable:
            # Not attempted, so no attempt counted: free for the next run, still due.
            rest = [other.pk for other in enrolments[index:]]
            Enrolment.objects.filter(pk__in=rest, claimed_until__gt=batch.now).update(claimed_until=None)
            result.waiting += len(rest)
            break
        outcome = handle(item, batch, facts, personas.get(item.lead_id))
        setattr(result, outcome, getattr(result, outcome) + 1)
    return result


def _personas(lead_ids):
    from personas.assignment import LeadPersona

    return dict(LeadPersona.objects.filter(lead_id__in=lead_ids).values_list("lead_id", "persona_id"))


def _unchanged(item):
    """The enrolment row as the batch read it (no other dispatcher moved it on meanwhile)."""
    return Q(pk=item.pk, position=item.position, last_step_id=item.last_step_id)


def upcoming_steps(item, ordered_steps, handled_step_ids):
    """The steps still ahead of an enrolment, in order: those after its last handled step in
    the track's current order (after its old position if that step was deleted), minus any
    step it already has a delivery for."""
    ids = [step.pk for step in ordered_steps]
    if item.last_step_id in ids:
        ahead = ordered_steps[ids.index(item.last_step_id) + 1:]
    elif item.last_step_id is None and item.position < 0:
        ahead = ordered_steps
    else:
        ahead = [step for step in ordered_steps if step.sort_order > item.position]
    return [step for step in ahead if step.pk not in handled_step_ids]


def handle(item, batch, facts, persona_id):
    """Handle one claimed enrolment; returns the name of the `DispatchResult` counter to bump."""
    own = facts.get(item.pk)
    steps = upcoming_steps(item, batch.steps(item.track_id), own.handled_steps if own else set())
    if not steps:
        _finish(item, batch.now)
        return "completed"
    step = steps[0]
    site = item.lead.site
    due = due_at(step, enrolled_at=item.enrolled_at, last_step_at=item.last_step_at, hours=batch.hours(site))
    if due > batch.now:
        Enrolment.objects.filter(_unchanged(item)).update(next_due_at=due,
                                                                            claimed_until=None)
        return "waiting"
    holds = conditions.holds(step, item, facts)
    if not holds:
        return _condition_failed(item, step, steps, batch)
    try:
        return _send(item, step, steps, batch, persona_id)
    except (smtplib.SMTPException, OSError) as exc:
        batch.reset_mail()
        batch.server_unavailable = not isinstance(exc, MESSAGE_ERRORS)
        return _failed(item, step, batch, exc)


def _send(item, step, steps, batch, persona_id):
    """One mail in one transaction; the statements are in `statements`, the order is:
    lock the lead, lock the enrolment and read the ledger, check (M1), record the send and move
    the enrolment on, send. The commit follows the server's "250 OK"; an exception rolls it all
    back."""
    lead = item.lead
    with transaction.atomic():
        cursors = batch.cursors()
        found = statements.lock_for_send(item, lead, site_id=lead.site_id,
                                         address_hash=address_hash(lead.email), cursors=cursors)
        if found is None:
            return "skipped"  # the lead was erased, or another dispatcher handled it, meanwhile
        states, suppressed = found
        marketing_ids, tracking_ids = batch.purpose_ids(lead.site_id)
        decision = send_decision(lead, states=states, marketing_ids=marketing_ids, suppressed=suppressed,
                                 legal_missing=batch.legal_missing(lead.site))
        if not decision.allowed:
            if decision.reason == "legal notices incomplete":
                _postpone(item, batch.now, LEGAL_RETRY)
                return "waiting"
            _end(item, decision.reason, batch.now)
            return "ended"
        tracked = any(states.get(pk) == ConsentEvent.CONFIRMED for pk in tracking_ids)
        shared = batch.shared(lead.site)
        message_id = make_msgid(domain=shared.message_id_domain)
        delivery_id = statements.record_send(
            item, _next(item, step, steps, batch, batch.hours(lead.site)), lead_id=lead.pk,
            subject=" ".join(str(step.subject).split()), message_id=message_id,
            template_version=TEMPLATE_VERSION, tracked=tracked, now=batch.now, sent_at=timezone.now(),
            cursors=cursors)
        if delivery_id is None:
            return "skipped"  # handled before, never again
        message = build_step_mail(lead, step, persona_id=persona_id, delivery_id=delivery_id, tracked=tracked,
                                  cache=batch.bodies, shared=shared, message_id=message_id,
                                  render=batch.frames.renderer((lead.site_id, step.pk)))
        batch.pace()
        bulkmail.send(message, batch.mail_connection())
    return "sent"


def _next(item, step, steps, batch, hours):
    """Where the enrolment goes once `step` is handled: the next step's due time, or completed."""
    remaining = steps[steps.index(step) + 1:]
    next_due = None
    if remaining:
        next_due = due_at(remaining[0], enrolled_at=item.enrolled_at, last_step_at=batch.now, hours=hours)
    return statements.Advance(step_id=step.pk, position=step.sort_order, at=batch.now, next_due_at=next_due,
                              completed=not remaining)


def _advance(item, step, steps, batch, hours):
    """The enrolment has handled `step`: on to the next one, or completed."""
    statements.advance_enrolment(item, _next(item, step, steps, batch, hours))


def _condition_failed(item, step, steps, batch):
    with transaction.atomic():
        current = (Enrolment.objects.select_for_update(of=("self",))
                   .filter(_unchanged(item), status=Enrolment.ACTIVE).first())
        if current is None:
            return "skipped"
        try:
            with transaction.atomic():
                Delivery.objects.create(enrolment_id=item.pk, step=step, status=Delivery.SKIPPED,
                                        detail=step.get_condition_display()[:255], created_at=batch.now)
        except IntegrityError:
            pass
        if step.on_condition_fail == Step.END:
            _end(current, "condition", batch.now)
            return "ended"
        _advance(current, step, steps, batch, batch.hours(item.lead.site))
    return "skipped"


def _failed(item, step, batch, exc):
    """A send failed: retry with backoff; after the last attempt, record it and stop."""
    attempts = item.attempts + 1
    error = f"{type(exc).__name__}: {exc}"[:255]
    logger.warning("Nurture send failed for enrolment %s step %s (attempt %s): %s",
                   item.pk, step.pk, attempts, type(exc).__name__)
    if attempts >= conf.get("INBOUND_NURTURE_MAX_ATTEMPTS"):
        with transaction.atomic():
            try:
                with transaction.atomic():
                    Delivery.objects.create(enrolment_id=item.pk, step=step, status=Delivery.FAILED,
                                            detail=error, created_at=batch.now)
            except IntegrityError:
                pass
            Enrolment.objects.filter(pk=item.pk).update(
                status=Enrolment.FAILED, attempts=attempts, last_error=error, claimed_until=None,
                next_due_at=None, ended_at=batch.now, exit_reason="send failed")
        return "failed"
    backoff = min(60 * 2 ** (attempts - 1), conf.get("INBOUND_MAIL_BACKOFF_CAP").total_seconds())
    Enrolment.objects.filter(_unchanged(item)).update(
        attempts=attempts, last_error=error, claimed_until=None,
        next_due_at=batch.now + timedelta(seconds=backoff))
    return "retried"


def _postpone(item, now, seconds):
    Enrolment.objects.filter(pk=item.pk).update(claimed_until=None,
                                                next_due_at=now + timedelta(seconds=seconds))


def _end(item, reason, now):
    Enrolment.objects.filter(pk=item.pk).update(status=Enrolment.EXITED, exit_reason=reason[:64],
                                                ended_at=now, next_due_at=None, claimed_until=None)


def _finish(item, now):
    Enrolment.objects.filter(pk=item.pk, status=Enrolment.ACTIVE).update(
        status=Enrolment.COMPLETED, ended_at=now, next_due_at=None, claimed_until=None)


