"""Which existing leads an (unsaved) persona would match, before a marketer saves it.

The persona comes straight from the bound admin form (`form.save(commit=False)`), so its rules
live only in memory. It is tested with the same `load_facts` and `evaluate` that the
recomputation uses, against all leads of its site at once: a fixed number of queries, however
many leads (never a query per lead), and nothing is written.
"""

from dataclasses import dataclass, field

from inbound.leads import Lead

from .assignment import LeadPersona, evaluate, load_facts, personas_for_sites
from .rules import LeadFacts

SAMPLE_SIZE = 20


@dataclass
class SampleLead:
    pk: int
    masked_email: str
    # The persona the lead would get (this one, an earlier one that also matches, or the pinned one).
    gets_persona: object = None
    gets_this: bool = False
    pinned: bool = False
    url: str = ""  # the lead's detail page in the admin, set by the view


@dataclass
class MatchPreview:
    persona: object
    # Leads whose facts match at least one rule of the persona (the order of personas aside).
    matching: int = 0
    # Leads that would have the persona after the next recomputation: the first match among the
    # site's personas in order (pinned leads keep theirs), plus leads pinned to it already.
    would_get: int = 0
    # Leads whose first match is this persona but that are pinned to another one (or none).
    pinned_elsewhere: int = 0
    # Leads that match, but an earlier persona matches too and wins.
    taken_by_earlier: int = 0
    # Leads left out: their processing is restricted or objected to, so they get no persona.
    stopped: int = 0
    sample: list = field(default_factory=list)
    order: list = field(default_factory=list)  # the site's personas in matching order, this one included


def mask_email(address):
    """'anna@example.com' → 'a…@example.com': enough to tell leads apart, not to read the address."""
    local, _sep, domain = (address or "").rpartition("@")
    if not local:
        return "…"
    return f"{local[0]}…@{domain}"


def _position(persona):
    """Where a persona is tried: by `sort_order`, then by id; an unsaved one goes after the saved
    ones with the same `sort_order`, as it will once saved (its id is the highest)."""
    return (persona.sort_order, persona.pk if persona.pk is not None else float("inf"))


def site_order(persona):
    """The personas of `persona`'s site in matching order, with `persona` (saved or not) in place
    of its stored version: two queries."""
    others = [other for other in personas_for_sites([persona.site_id]).get(persona.site_id, [])
              if persona.pk is None or other.pk != persona.pk]
    return sorted([*others, persona], key=_position)


def preview_matches(persona, sample_size=SAMPLE_SIZE):
    """A `MatchPreview` of `persona` against the leads of its site. Never writes.

    Queries: the lead ids, the facts (`load_facts`), the site's other personas and their rules,
    the pinned assignments, and the sample's addresses: a fixed number whatever the site's size.
    """
    order = site_order(persona)
    preview = MatchPreview(persona=persona, order=order)
    site_leads = Lead.objects.filter(site_id=persona.site_id)
    rows = list(site_leads.order_by("-pk").values_list("pk", "restricted_at", "objected_at"))
    if not rows:
        return preview
    active = site_leads.filter(restricted_at__isnull=True, objected_at__isnull=True)
    facts = load_facts(active)
    pinned = dict(LeadPersona.objects.filter(lead__in=active, pinned=True)
                  .values_list("lead_id", "persona_id"))
    by_id = {other.pk: other for other in order if other.pk is not None}
    rules = list(persona.rules.all())
    sample = []
    for lead_id, restricted_at, objected_at in rows:
        if restricted_at is not None or objected_at is not None:
            preview.stopped += 1
            continue
        is_pinned = lead_id in pinned
        pinned_here = is_pinned and persona.pk is not None and pinned[lead_id] == persona.pk
        lead_facts = facts.get(lead_id) or LeadFacts()
        if not any(rule.matches(lead_facts, persona) for rule in rules):
            if pinned_here:
                preview.would_get += 1
            continue
        preview.matching += 1
        winner, _rule = evaluate(lead_facts, order)
        if is_pinned:
            gets = persona if pinned_here else by_id.get(pinned[lead_id])
            if winner is persona and not pinned_here:
                preview.pinned_elsewhere += 1
        else:
            gets = winner
            if winner is not persona:
                preview.taken_by_earlier += 1
        if gets is persona:
            preview.would_get += 1
        if len(sample) < sample_size:
            sample.append(SampleLead(pk=lead_id, masked_email="", gets_persona=gets,
                                     gets_this=gets is persona, pinned=is_pinned))
    emails = dict(Lead.objects.filter(pk__in=[lead.pk for lead in sample]).values_list("pk", "email"))
    for lead in sample:
        lead.masked_email = mask_email(emails.get(lead.pk, ""))
    preview.sample = sample
    return preview
