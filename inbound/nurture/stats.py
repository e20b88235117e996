"""Numbers for the nurture admin: enrolments per track and what happened at each step.

Plain functions with a fixed number of queries, however many steps, enrolments or deliveries a
track has: the counting happens in the database (`COUNT … FILTER` / `CASE`), never in Python
over loaded rows.

What each number means:

- **sent**: deliveries with status "sent" (the mail was accepted by the mail server).
- **tracked**: of those, the ones sent with click tracking, i.e. to leads with tracking consent
  at send time (M7). Only these can ever count as clicked, so "clicked" is out of "tracked",
  not out of "sent".
- **clicked**: sent deliveries with a recorded first click.
- **unsubscribed**: enrolments of the track that *left* (status "exited") for a consent
  reason (see `UNSUBSCRIBE_REASONS`: marketing consent withdrawn, objection to direct
  marketing, address on the suppression list), counted at the step whose mail was the last
  one *sent* to them before they left (latest sent delivery by time, then id). Leads that left
  before any mail of the track reached them are counted once per track, in
  `TrackStatistics.unsubscribed_before_first_mail`. Restriction of processing (Art. 18) is a
  data-subject request handled by staff, not an unsubscribe, and is not counted here; nor are
  exits for a failed condition or a hand-over to sales.
- **failed**: deliveries with status "failed" (the last retry of the send failed).
- **skipped**: deliveries with status "skipped" (the step's condition did not hold).
- **blocked**: deliveries with status "blocked" (not sent for lack of consent).

Test mails ("send a test to me") are not deliveries and never appear here.
"""

from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q, Subquery

from .models import Delivery, Enrolment, Step

# `Enrolment.exit_reason` values that mean the person said no to the mails. The dispatcher
# ends an enrolment with the reason of the failed send-time check (`marketing.send_decision`);
# anything mentioning consent counts as well, so a later "consent withdrawn" reason is covered.
UNSUBSCRIBE_REASONS = ("no confirmed marketing consent", "objected", "suppressed", "withdrawn",
                       "unsubscribed")


def unsubscribed_exit():
    """A Q for `Enrolment` querysets: left the track because the person said no (see above)."""
    return Q(status=Enrolment.EXITED) & (Q(exit_reason__in=UNSUBSCRIBE_REASONS)
                                         | Q(exit_reason__icontains="consent"))


# --- enrolment counts per track (the track list) ---------------------------------------------

ENDED_EARLY = (Enrolment.EXITED, Enrolment.FAILED)


def with_enrolment_counts(tracks):
    """The tracks annotated with `enrolments_active`, `enrolments_completed` and
    `enrolments_left` (left the track before its end: exited, or stopped after failed sends).

    One aggregate over the join, so a list page costs one query however many tracks it shows."""
    return tracks.annotate(
        enrolments_active=Count("enrolments", filter=Q(enrolments__status=Enrolment.ACTIVE)),
        enrolments_completed=Count("enrolments", filter=Q(enrolments__status=Enrolment.COMPLETED)),
        enrolments_left=Count("enrolments", filter=Q(enrolments__status__in=ENDED_EARLY)),
    )


def enrolment_counts(track):
    """`{status: count}` of the track's enrolments, every status present (one query)."""
    counts = dict.fromkeys((status for status, _label in Enrolment.STATUS_CHOICES), 0)
    for status, number in (Enrolment.objects.filter(track=track).values_list("status")
                           .annotate(n=Count("pk")).order_by()):
        counts[status] = number
    return counts


# --- per step ---------------------------------------------------------------------------------

@dataclass
class StepStatistics:
    step: Step | None  # None: the deliveries of steps deleted since
    number: int | None = None  # 1-based position in the track's current order
    sent: int = 0
    tracked: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    failed: int = 0
    skipped: int = 0
    blocked: int = 0

    @property
    def click_rate(self):
        """Clicked out of tracked sends, in per cent (None without tracked sends)."""
        return round(100 * self.clicked / self.tracked, 1) if self.tracked else None


@dataclass
class TrackStatistics:
    steps: list[StepStatistics] = field(default_factory=list)
    deleted_steps: StepStatistics | None = None
    unsubscribed_before_first_mail: int = 0

    def total(self, name):
        rows = [*self.steps, *([self.deleted_steps] if self.deleted_steps else [])]
        return sum(getattr(row, name) for row in rows)


def _delivery_counts(track):
    return (Delivery.objects.filter(enrolment__track=track).values("step_id").order_by()
            .annotate(sent=Count("pk", filter=Q(status=Delivery.SENT)),
                      tracked=Count("pk", filter=Q(status=Delivery.SENT, tracked=True)),
                      clicked=Count("pk", filter=Q(status=Delivery.SENT, clicked_at__isnull=False)),
                      failed=Count("pk", filter=Q(status=Delivery.FAILED)),
                      skipped=Count("pk", filter=Q(status=Delivery.SKIPPED)),
                      blocked=Count("pk", filter=Q(status=Delivery.BLOCKED))))


def _unsubscribes(track):
    """`[(step_id of the last sent mail or None, any mail sent, count)]` of the track's
    unsubscribed enrolments: one query (a correlated subquery per enrolment, grouped)."""
    sent = Delivery.objects.filter(enrolment_id=OuterRef("pk"), status=Delivery.SENT)
    last_sent_step = sent.order_by("-created_at", "-pk").values("step_id")[:1]
    return (Enrolment.objects.filter(track=track).filter(unsubscribed_exit())
            .annotate(last_sent_step=Subquery(last_sent_step), any_sent=Exists(sent))
            .values_list("last_sent_step", "any_sent").annotate(n=Count("pk")).order_by())


def step_statistics(track):
    """A `TrackStatistics` of the track: one row per current step, in order. Three queries."""
    steps = list(Step.objects.filter(track=track).order_by("sort_order", "pk"))
    rows = {step.pk: StepStatistics(step=step, number=index)
            for index, step in enumerate(steps, start=1)}
    deleted = StepStatistics(step=None)
    for counts in _delivery_counts(track):
        row = rows.get(counts.pop("step_id"), deleted)
        for name, value in counts.items():
            setattr(row, name, getattr(row, name) + value)
    result = TrackStatistics(steps=list(rows.values()))
    for step_id, any_sent, number in _unsubscribes(track):
        if not any_sent:
            result.unsubscribed_before_first_mail += number
        else:
            rows.get(step_id, deleted).unsubscribed += number
    if any((deleted.sent, deleted.failed, deleted.skipped, deleted.blocked, deleted.unsubscribed)):
        result.deleted_steps = deleted
    return result


__all__ = ["UNSUBSCRIBE_REASONS", "StepStatistics", "TrackStatistics", "enrolment_counts",
           "step_statistics", "unsubscribed_exit", "with_enrolment_counts"]
