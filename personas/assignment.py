"""Assigning personas to leads: the current persona, its history, and set-wise recomputation.

`evaluate` decides one lead from its facts; `recompute` does it for any number of leads with a
fixed number of queries (leads, personas, facts, current assignments, and three writes through a
staged table), never a query per lead or per rule.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection, models, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inbound import setwise
from inbound.known_visitor import confirmed_tracking_consent
from inbound.leads import Lead, LeadEvent
from inbound.pages import GatedFormSubmission

from .persona import Persona
from .rules import LeadFacts
from .targeting import PagePersonaTag, PageTopicTag

CHUNK_SIZE = 5000  # leads decided between two progress reports


class LeadPersona(models.Model):
    """A lead's current persona; a pinned one was set by a marketer and is never recomputed."""

    lead = models.OneToOneField(Lead, on_delete=models.CASCADE, related_name="persona_assignment",
                                verbose_name=_("lead"))
    persona = models.ForeignKey(Persona, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+", verbose_name=_("persona"))
    rule = models.ForeignKey("personas.PersonaRule", on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+", verbose_name=_("rule that fired"))
    pinned = models.BooleanField(_("pinned manually"), default=False)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("lead persona")
        verbose_name_plural = _("lead personas")

    def __str__(self):
        return f"{self.lead_id}: {self.persona_id}"


class PersonaChange(models.Model):
    """One change of a lead's persona: when, from what, to what, and which rule fired."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="persona_changes",
                             verbose_name=_("lead"))
    from_persona = models.ForeignKey(Persona, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+", verbose_name=_("from"))
    to_persona = models.ForeignKey(Persona, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+", verbose_name=_("to"))
    rule = models.ForeignKey("personas.PersonaRule", on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+", verbose_name=_("rule that fired"))
    # The rule as it read then, kept when the rule is later edited or deleted.
    rule_description = models.CharField(_("rule"), max_length=255, blank=True)
    manual = models.BooleanField(_("set manually"), default=False)
    changed_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("persona change")
        verbose_name_plural = _("persona changes")
        ordering = ["lead", "changed_at", "pk"]
        indexes = [models.Index(fields=["lead", "changed_at"], name="personas_change_lead_time")]

    def __str__(self):
        return f"{self.lead_id}: {self.from_persona_id} → {self.to_persona_id}"


# --- deciding --------------------------------------------------------------------------------
def evaluate(lead_facts, personas):
    """The first persona (in the given order) with a matching rule, and that rule.

    `personas` must be ordered and have their rules prefetched (`personas_for_sites` does both);
    returns `(None, None)` if none matches. Never queries the database.
    """
    for persona in personas:
        for rule in persona.rules.all():
            if rule.matches(lead_facts, persona):
                return persona, rule
    return None, None


def personas_for_sites(site_ids):
    """`{site_id: [persona, …]}` in matching order, rules prefetched: two queries."""
    by_site = defaultdict(list)
    for persona in Persona.objects.filter(site_id__in=site_ids).order_by(
            "site_id", "sort_order", "pk").prefetch_related("rules"):
        by_site[persona.site_id].append(persona)
    return by_site


def _tag_maps():
    """`({page_id: {topic_id}}, {page_id: {persona_id}})` for every tagged page: two queries."""
    topics, personas = defaultdict(set), defaultdict(set)
    for page_id, topic_id in PageTopicTag.objects.values_list("page_id", "topic_id"):
        topics[page_id].add(topic_id)
    for page_id, persona_id in PagePersonaTag.objects.values_list("page_id", "persona_id"):
        personas[page_id].add(persona_id)
    return topics, personas


def load_facts(leads):
    """`{lead_id: LeadFacts}` for `leads` (a list of ids, or a `Lead` queryset used as a
    subquery): six queries however many leads.

    Answers come from the gated-form submissions (a later answer to a field replaces an earlier
    one), downloads from the leads' `download` events. Page views count only for leads that
    have tracking consent now (T5), and only views linked to the lead (which `inbound.tracking`
    does only with personalisation consent).
    """
    lead_filter = leads.values("pk") if hasattr(leads, "values") else list(leads)
    facts = defaultdict(LeadFacts)
    topics_of, personas_of = _tag_maps()
    submissions = (GatedFormSubmission.objects.filter(lead_id__in=lead_filter)
                   .order_by("lead_id", "submit_time", "pk").values_list("lead_id", "form_data"))
    for lead_id, form_data in submissions.iterator(chunk_size=2000):
        answers = facts[lead_id].answers
        for name, value in (form_data or {}).items():
            if name not in ("email", "consents") and value not in ("", None, []):
                answers[name] = value
    downloads = (LeadEvent.objects.filter(lead_id__in=lead_filter, kind=LeadEvent.DOWNLOAD,
                                          page_id__isnull=False)
                 .values_list("lead_id", "page_id").distinct())
    for lead_id, page_id in downloads.iterator(chunk_size=5000):
        lead_facts = facts[lead_id]
        lead_facts.downloads.add(page_id)
        lead_facts.downloaded_topics.update(topics_of.get(page_id, ()))
    consenting = Lead.objects.filter(pk__in=lead_filter).filter(confirmed_tracking_consent())
    views = (LeadEvent.objects.filter(lead_id__in=consenting.values("pk"), kind=LeadEvent.TRACK_VIEW,
                                      page_id__isnull=False)
             .values("lead_id", "page_id").annotate(views=Count("pk"))
             .values_list("lead_id", "page_id", "views").order_by())
    for lead_id, page_id, count in views.iterator(chunk_size=5000):
        lead_facts = facts[lead_id]
        for topic_id in topics_of.get(page_id, ()):
            lead_facts.topic_views[topic_id] = lead_facts.topic_views.get(topic_id, 0) + count
        for persona_id in personas_of.get(page_id, ()):
            lead_facts.persona_views[persona_id] = lead_facts.persona_views.get(persona_id, 0) + count
    return facts


# --- recomputing -----------------------------------------------------------------------------
@dataclass
class RecomputeResult:
    leads: int = 0
    changed: int = 0
    pinned: int = 0


STAGE_COLUMNS = {"lead_id": "bigint", "persona_id": "bigint", "rule_id": "bigint",
                 "from_persona_id": "bigint", "has_row": "boolean", "changed": "boolean",
                 "description": "text"}


def recompute(leads, progress=None, chunk_size=CHUNK_SIZE):
    """Recompute the persona of every lead in the queryset `leads`; returns a `RecomputeResult`.

    A fixed number of queries however many leads: the leads, their personas and facts are read
    set-wise (the facts with `leads` as a subquery), every lead is decided in memory, and the
    outcomes that differ from the stored ones are written through one staged table
    (`inbound.setwise.staged`): one UPDATE, one INSERT of new assignments, one INSERT of history.
    Pinned leads are skipped. A lead whose processing is restricted or objected to (R3) gets no
    persona, pinned or not: assigning one is profiling. `progress(done, total)` is called as the
    leads are decided (no queries in between).
    """
    rows = list(leads.order_by("pk").values_list("pk", "site_id", "restricted_at", "objected_at"))
    result = RecomputeResult(leads=len(rows))
    if not rows:
        return result
    personas = personas_for_sites({row[1] for row in rows})
    facts = load_facts(leads)
    current = {lead_id: (persona_id, rule_id, pinned) for lead_id, persona_id, rule_id, pinned in
               LeadPersona.objects.filter(lead_id__in=leads.values("pk")).values_list(
                   "lead_id", "persona_id", "rule_id", "pinned").iterator(chunk_size=5000)}
    rules = {rule.pk: rule for site_personas in personas.values() for persona in site_personas
             for rule in persona.rules.all()}
    descriptions = {pk: str(rule.describe())[:255] for pk, rule in rules.items()}
    staged_rows = []
    for index, (lead_id, site_id, restricted_at, objected_at) in enumerate(rows, start=1):
        from_id, from_rule_id, pinned = current.get(lead_id, (None, None, False))
        stopped = restricted_at is not None or objected_at is not None
        if pinned and not stopped:
            result.pinned += 1
        else:
            if stopped:
                persona, rule = None, None
            else:
                persona, rule = evaluate(facts.get(lead_id) or LeadFacts(), personas.get(site_id, ()))
            to_id, rule_id = (persona.pk, rule.pk) if persona else (None, None)
            has_row = lead_id in current
            changed = to_id != from_id
            if changed or (has_row and (rule_id != from_rule_id or pinned)):
                staged_rows.append((lead_id, to_id, rule_id, from_id, has_row, changed,
                                    descriptions.get(rule_id, "")))
                result.changed += changed
        if progress is not None and (index % chunk_size == 0 or index == len(rows)):
            progress(index, len(rows))
    if staged_rows:
        _write(staged_rows)
    return result


def _write(staged_rows):
    qn = connection.ops.quote_name
    assignments = qn(LeadPersona._meta.db_table)
    history = qn(PersonaChange._meta.db_table)
    now = timezone.now()
    with transaction.atomic(), setwise.staged(STAGE_COLUMNS, staged_rows) as stage, \
            connection.cursor() as cursor:
        # A join (`UPDATE … FROM`, PostgreSQL and SQLite >= 3.33), not a correlated subquery per
        # column: the staged table has no index, so a subquery per updated row scans it once per
        # row (quadratic: minutes instead of seconds at 100,000 changed leads).
        cursor.execute(
            f"UPDATE {assignments} SET persona_id = s.persona_id, rule_id = s.rule_id, "
            f"pinned = %s, updated_at = %s "
            f"FROM {stage} s WHERE s.lead_id = {assignments}.lead_id AND s.has_row", [False, now])
        # NOT EXISTS: a concurrent recompute may have created the row meanwhile.
        cursor.execute(
            f"INSERT INTO {assignments} (lead_id, persona_id, rule_id, pinned, updated_at) "
            f"SELECT s.lead_id, s.persona_id, s.rule_id, %s, %s FROM {stage} s "
            f"WHERE NOT s.has_row AND s.persona_id IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {assignments} a WHERE a.lead_id = s.lead_id)", [False, now])
        cursor.execute(
            f"INSERT INTO {history} (lead_id, from_persona_id, to_persona_id, rule_id, "
            f"rule_description, manual, changed_at) "
            f"SELECT s.lead_id, s.from_persona_id, s.persona_id, s.rule_id, "
            f"COALESCE(s.description, ''), %s, %s FROM {stage} s WHERE s.changed", [False, now])


# --- manual pin ------------------------------------------------------------------------------
def pin(lead, persona):
    """Pin `persona` (or no persona, `None`) on `lead`: recomputation leaves it alone."""
    with transaction.atomic():
        assignment, _created = LeadPersona.objects.select_for_update().get_or_create(lead=lead)
        if assignment.persona_id != (persona.pk if persona else None):
            PersonaChange.objects.create(lead=lead, from_persona_id=assignment.persona_id,
                                         to_persona=persona, manual=True)
        assignment.persona = persona
        assignment.rule = None
        assignment.pinned = True
        assignment.updated_at = timezone.now()
        assignment.save()
    return assignment


def unpin(lead):
    """Let the rules decide again; the persona stays until the next recomputation."""
    LeadPersona.objects.filter(lead=lead).update(pinned=False, updated_at=timezone.now())
