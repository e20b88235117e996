"""What sales learns about a handed-over lead: `summarize(lead)` and its JSON form `as_payload`.

The summary is read with a fixed number of queries, however long the lead's history: the lead
with its site, score, stage and persona (one query), the score history summed per rule, the
consent ledger, the latest content events, the form answers and their field labels (plus the
subjects of clicked nurture mails and the topics of viewed pages when there are any).

What it says, and what it leaves out:

- the score and *why*: the history (`ScoreChange`) summed per rule description and sub-score,
  largest contribution first;
- the consents the lead holds now (confirmed, not withdrawn), with the time of confirmation;
- phone numbers from the form answers only if a confirmed purpose of channel "phone" is among
  them; otherwise the summary says plainly that the lead must not be called (§7a UWG, N4);
- content consumed: downloads always; nurture-mail clicks and page views only while the lead
  holds a confirmed tracking purpose (the same condition under which behaviour counts, N3);
- never the lead's key or any token: the admin link is the only link.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Sum
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from ..consent import ConsentEvent, ConsentPurpose
from ..leads import Lead, LeadEvent
from ..mailing import site_base_url
from ..nurture.clicks import NURTURE_CLICK
from ..scoring.models import SUB_SCORE_CHOICES, ScoreChange
from ..scoring.rules import latest_answers

SCHEMA_VERSION = 1
EVENT = "lead.mql"
CONTENT_LIMIT = 20  # content items in a summary, newest first

# A form field holds a phone number if its name or label looks like one.
PHONE_FIELD = re.compile(r"phone|telefon|mobil|handy|rufnummer|(^|[\s_-])tel([\s_.:-]|$)", re.IGNORECASE)

CONTENT_KINDS = {
    LeadEvent.DOWNLOAD: _("download"),
    NURTURE_CLICK: _("click in a nurture mail"),
    LeadEvent.TRACK_VIEW: _("page view"),
}
BEHAVIOUR_KINDS = (NURTURE_CLICK, LeadEvent.TRACK_VIEW)  # only with tracking consent

NO_PHONE_CONSENT = _("No phone consent: do not call (§7a UWG).")


@dataclass
class Reason:
    description: str
    sub_score: str
    sub_score_label: str
    points: int


@dataclass
class HeldConsent:
    name: str
    channel: str
    channel_label: str
    confirmed_at: datetime


@dataclass
class ContentItem:
    kind: str
    kind_label: str
    title: str
    at: datetime
    topics: list = field(default_factory=list)


@dataclass
class Answer:
    name: str
    label: str
    value: object


@dataclass
class Summary:
    lead_id: int
    email: str
    site_id: int
    site_name: str
    stage: str
    stage_label: str
    total: int
    fit: int
    engagement: int
    reasons: list
    persona: str | None
    content: list
    consents: list
    phone_allowed: bool
    phones: list  # `Answer`s; empty unless phone_allowed
    answers: list  # `Answer`s of the latest answers, never phone fields
    admin_url: str
    created_at: datetime | None = None
    confirmed_at: datetime | None = None

    @property
    def phone_note(self):
        """The line the mail shows instead of a phone number without phone consent."""
        return "" if self.phone_allowed else NO_PHONE_CONSENT


def _related(instance, name):
    """A reverse one-to-one loaded with `select_related`, or None if the row does not exist."""
    try:
        return getattr(instance, name)
    except Exception:  # noqa: BLE001 - <Model>.DoesNotExist of whichever model it is
        return None


def admin_url(lead):
    """Absolute link to the lead in the sales inbox (the lead's admin page if that is missing)."""
    try:
        path = reverse("inbound_sales:detail", args=[lead.pk])
    except NoReverseMatch:
        try:
            path = reverse("leads:inspect", args=[lead.pk])
        except NoReverseMatch:
            return ""
    return site_base_url(lead.site) + path


def _held_consents(lead):
    """The purposes the lead holds now (the fold of `consent.consent_states`), with the time of
    the confirmation that holds; one query."""
    states, since, purposes = {}, {}, {}
    for event in (ConsentEvent.objects.filter(lead_id=lead.pk).select_related("purpose").order_by("seq")
                  .only("seq", "kind", "occurred_at", "purpose__name", "purpose__channel")):
        purposes[event.purpose_id] = event.purpose
        current = states.get(event.purpose_id)
        if event.kind == ConsentEvent.REQUESTED and current != ConsentEvent.CONFIRMED:
            states[event.purpose_id] = "pending"
        elif event.kind in (ConsentEvent.CONFIRMED, ConsentEvent.WITHDRAWN):
            states[event.purpose_id] = event.kind
            if event.kind == ConsentEvent.CONFIRMED and current != ConsentEvent.CONFIRMED:
                since[event.purpose_id] = event.occurred_at
        elif event.kind == ConsentEvent.EXPIRED and current == "pending":
            states.pop(event.purpose_id)
    channels = dict(ConsentPurpose.CHANNEL_CHOICES)
    held = [HeldConsent(name=purposes[pk].name, channel=purposes[pk].channel,
                        channel_label=str(channels.get(purposes[pk].channel, purposes[pk].channel)),
                        confirmed_at=since[pk])
            for pk, state in states.items() if state == ConsentEvent.CONFIRMED]
    return sorted(held, key=lambda consent: (consent.confirmed_at, consent.name))


def _reasons(lead):
    labels = dict(SUB_SCORE_CHOICES)
    rows = (ScoreChange.objects.filter(lead_id=lead.pk).values("rule_description", "sub_score")
            .annotate(sum_points=Sum("points")).exclude(sum_points=0).order_by())
    reasons = [Reason(description=row["rule_description"] or str(_("(rule deleted)")),
                      sub_score=row["sub_score"], sub_score_label=str(labels.get(row["sub_score"], "")),
                      points=row["sum_points"]) for row in rows]
    return sorted(reasons, key=lambda reason: (-reason.points, reason.description))


def _content(lead, tracking):
    from personas.targeting import PageTopicTag

    from ..nurture.models import Step

    kinds = [LeadEvent.DOWNLOAD, *(BEHAVIOUR_KINDS if tracking else ())]
    events = list(LeadEvent.objects.filter(lead_id=lead.pk, kind__in=kinds).select_related("page")
                  .order_by("-occurred_at", "-pk")[:CONTENT_LIMIT])
    step_ids = {event.data.get("step") for event in events if event.kind == NURTURE_CLICK} - {None}
    subjects = dict(Step.objects.filter(pk__in=step_ids).values_list("pk", "subject")) if step_ids else {}
    page_ids = {event.page_id for event in events if event.page_id}
    topics = {}
    if page_ids:
        for page_id, name in (PageTopicTag.objects.filter(page_id__in=page_ids)
                              .order_by("sort_order", "pk").values_list("page_id", "topic__name")):
            topics.setdefault(page_id, []).append(name)
    items = []
    for event in events:
        if event.kind == NURTURE_CLICK:
            title = subjects.get(event.data.get("step")) or str(_("(mail deleted)"))
        else:
            title = event.page.title if event.page is not None else str(_("(page deleted)"))
        items.append(ContentItem(kind=event.kind, kind_label=str(CONTENT_KINDS[event.kind]), title=title,
                                 at=event.occurred_at, topics=topics.get(event.page_id, [])))
    return items


def _answers(lead):
    """(`answers`, `phones`): the latest answer per field, phone fields apart; two queries."""
    from ..pages import GatedFormField, GatedFormSubmission

    rows = list(GatedFormSubmission.objects.filter(lead_id=lead.pk).order_by("submit_time", "pk")
                .values_list("page_id", "form_data"))
    if not rows:
        return [], []
    latest = latest_answers(form_data for _page, form_data in rows)
    labels = dict(GatedFormField.objects.filter(page_id__in={page for page, _data in rows})
                  .values_list("clean_name", "label"))
    answers, phones = [], []
    for name, value in latest.items():
        label = labels.get(name, name)
        item = Answer(name=name, label=label, value=value)
        (phones if PHONE_FIELD.search(name) or PHONE_FIELD.search(label) else answers).append(item)
    return answers, phones


def summarize(lead):
    """The `Summary` of a lead (a `Lead` or its id) for sales; a fixed number of queries."""
    lead_id = getattr(lead, "pk", lead)
    lead = (Lead.objects.select_related("site", "score", "lifecycle", "persona_assignment__persona")
            .get(pk=lead_id))
    score = _related(lead, "score")
    lifecycle = _related(lead, "lifecycle")
    assignment = _related(lead, "persona_assignment")
    persona = assignment.persona if assignment is not None else None
    consents = _held_consents(lead)
    channels = {consent.channel for consent in consents}
    phone_allowed = ConsentPurpose.PHONE in channels
    answers, phones = _answers(lead)
    return Summary(
        lead_id=lead.pk, email=lead.email, site_id=lead.site_id,
        site_name=lead.site.site_name or lead.site.hostname,
        stage=lifecycle.stage if lifecycle else "",
        stage_label=str(lifecycle.get_stage_display()) if lifecycle else "",
        total=score.total if score else 0, fit=score.fit if score else 0,
        engagement=score.engagement if score else 0,
        reasons=_reasons(lead), persona=persona.name if persona is not None else None,
        content=_content(lead, ConsentPurpose.TRACKING in channels), consents=consents,
        phone_allowed=phone_allowed, phones=phones if phone_allowed else [], answers=answers,
        admin_url=admin_url(lead), created_at=lead.created_at, confirmed_at=lead.confirmed_at,
    )


def _iso(value):
    return value.isoformat() if value is not None else None


def as_payload(summary, *, hand_over=None):
    """The webhook's JSON body (a dict) for a summary: event "lead.mql", schema version 1.

    Machine-readable codes rather than translated labels; phone numbers only with phone
    consent (`phone.allowed`); no lead key, no tokens, no links but the admin link.
    """
    payload = {
        "event": EVENT,
        "schema_version": SCHEMA_VERSION,
        "hand_over": ({"id": hand_over.pk, "created_at": _iso(hand_over.created_at), "score": hand_over.score}
                      if hand_over is not None else None),
        "site": {"id": summary.site_id, "name": summary.site_name},
        "lead": {
            "id": summary.lead_id,
            "email": summary.email,
            "stage": summary.stage,
            "created_at": _iso(summary.created_at),
            "confirmed_at": _iso(summary.confirmed_at),
            "persona": summary.persona,
            "answers": {answer.name: answer.value for answer in summary.answers},
        },
        "score": {
            "total": summary.total,
            "fit": summary.fit,
            "engagement": summary.engagement,
            "reasons": [{"rule": reason.description, "part": reason.sub_score, "points": reason.points}
                        for reason in summary.reasons],
        },
        "consents": [{"name": consent.name, "channel": consent.channel,
                      "confirmed_at": _iso(consent.confirmed_at)} for consent in summary.consents],
        "phone": {
            "allowed": summary.phone_allowed,
            "numbers": ([{"field": phone.name, "value": phone.value} for phone in summary.phones]
                        if summary.phone_allowed else []),
        },
        "content": [{"kind": item.kind, "title": item.title, "at": _iso(item.at), "topics": item.topics}
                    for item in summary.content],
        "admin_url": summary.admin_url,
    }
    return payload


__all__ = ["SCHEMA_VERSION", "Summary", "as_payload", "summarize"]
