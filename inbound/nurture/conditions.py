"""Step conditions: score ≥ N, clicked the previous mail, has / has not downloaded page X.

`load_facts(enrolment_ids)` reads what the conditions (and the choice of the next step) need for
a whole batch in a fixed number of queries;
`holds(step, enrolment, facts)` then decides without a query.

Scores come from the Wagtail hook `inbound_lead_scores`: a function of a list of lead ids
returning `{lead_id: total score}` (scoring registers it). Without scoring, every score is 0.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from wagtail import hooks

from ..leads import LeadEvent
from .models import Delivery, Enrolment, Step

SCORES_HOOK = "inbound_lead_scores"


@dataclass
class EnrolmentFacts:
    downloads: set = field(default_factory=set)
    score: int = 0
    # sort order of the last step whose mail was sent, and whether it was clicked
    last_sent_order: int | None = None
    last_sent_clicked: bool = False
    handled_steps: set = field(default_factory=set)  # ids of the steps with a delivery row


SCORE_CONDITIONS = {Step.MIN_SCORE}
DOWNLOAD_CONDITIONS = {Step.DOWNLOADED, Step.NOT_DOWNLOADED}


def load_facts(enrolment_ids, lead_of=None, conditions=None):
    """`{enrolment_id: EnrolmentFacts}` for a batch.

    `lead_of` ({enrolment id: lead id}) saves reading it; `conditions` (the step conditions the
    batch's tracks use) leaves out the downloads and scores no step asks for. Without it,
    everything is read. The deliveries (steps handled, the last one sent and its click) are
    always read, in one query."""
    if lead_of is None:
        lead_of = dict(Enrolment.objects.filter(pk__in=enrolment_ids).values_list("pk", "lead_id"))
    facts = defaultdict(EnrolmentFacts)
    by_lead = defaultdict(list)
    for enrolment_id, lead_id in lead_of.items():
        by_lead[lead_id].append(enrolment_id)
    if conditions is None or conditions & DOWNLOAD_CONDITIONS:
        for lead_id, page_id in (LeadEvent.objects.filter(lead_id__in=by_lead, kind=LeadEvent.DOWNLOAD,
                                                          page_id__isnull=False)
                                 .values_list("lead_id", "page_id").distinct()):
            for enrolment_id in by_lead[lead_id]:
                facts[enrolment_id].downloads.add(page_id)
    latest = {}  # enrolment id: (sort order of the last step sent, clicked?)
    for enrolment_id, step_id, status, order, clicked_at in (
            Delivery.objects.filter(enrolment_id__in=list(lead_of))
            .values_list("enrolment_id", "step_id", "status", "step__sort_order", "clicked_at")):
        facts[enrolment_id].handled_steps.add(step_id)
        if status != Delivery.SENT:
            continue
        order_so_far, clicked = latest.get(enrolment_id, (None, False))
        if order_so_far is None or order > order_so_far:
            latest[enrolment_id] = (order, clicked_at is not None)
        elif order == order_so_far:
            latest[enrolment_id] = (order, clicked or clicked_at is not None)
    for enrolment_id, (order, clicked) in latest.items():
        facts[enrolment_id].last_sent_order = order
        facts[enrolment_id].last_sent_clicked = clicked
    scores = {}
    if conditions is None or conditions & SCORE_CONDITIONS:
        for lookup in hooks.get_hooks(SCORES_HOOK):
            scores.update(lookup(list(by_lead)))
    for enrolment_id, lead_id in lead_of.items():
        facts[enrolment_id].score = int(scores.get(lead_id, 0) or 0)
    return facts


def holds(step, enrolment, facts):
    """Whether `step`'s condition holds for the enrolment (no query)."""
    own = facts.get(enrolment.pk) or EnrolmentFacts()
    if step.condition == Step.MIN_SCORE:
        return own.score >= (step.condition_score or 0)
    if step.condition == Step.CLICKED_PREVIOUS:
        return own.last_sent_order is not None and own.last_sent_clicked
    if step.condition == Step.DOWNLOADED:
        return step.condition_page_id in own.downloads
    if step.condition == Step.NOT_DOWNLOADED:
        return step.condition_page_id not in own.downloads
    return True
