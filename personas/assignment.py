"""Assigning personas to leads: the current persona, its history, and set-wise recomputation.

`evaluate` decides one lead from its facts; `recompute` does it for any number of leads in batches
with a fixed number of queries per batch (facts, current assignments, and writes grouped by
outcome), so the number of queries depends on the number of batches, personas and rules, never
on a query per lead or per rule.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inbound.leads import Lead, LeadEvent
from inbound.pages import GatedFormSubmission

from .persona import Persona
from .rules import LeadFacts

BATCH_SIZE = 5000


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


def load_facts(lead_ids):
    """`{lead_id: LeadFacts}` for the given leads: two queries however many leads.

    Answers come from the gated-form submissions (a later answer to a field replaces an earlier
    one), downloads from the leads' `download` events.
    """
    facts = defaultdict(LeadFacts)
    submissions = (GatedFormSubmission.objects.filter(lead_id__in=lead_ids)
                   .order_by("lead_id", "submit_time", "pk").values_list("lead_id", "form_data"))
    for lead_id, form_data in submissions:
        answers = facts[lead_id].answers
        for name, value in (form_data or {}).items():
            if name not in ("email", "consents") and value not in ("", None, []):
                answers[name] = value
    downloads = (LeadEvent.objects.filter(lead_id__in=lead_ids, kind=LeadEvent.DOWNLOAD,
                                          page_id__isnull=False)
                 .values_list("lead_id", "page_id").distinct())
    for lead_id, page_id in downloads:
        facts[lead_id].downloads.add(page_id)
    return facts


# --- recomputing -----------------------------------------------------------------------------
@dataclass
class RecomputeResult:
    leads: int = 0
    changed: int = 0
    pinned: int = 0


def recompute(leads, batch_size=BATCH_SIZE, progress=None):
    """Recompute the persona of every lead in the queryset `leads`; returns a `RecomputeResult`.

    Pinned leads are skipped; a history row is written only when the persona changes.
    `progress(done, total)` is called after each batch.
    """
    rows = list(leads.order_by("pk").values_list("pk", "site_id"))
    result = RecomputeResult(leads=len(rows))
    if not rows:
        return result
    personas = personas_for_sites({site_id for _pk, site_id in rows})
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        _recompute_batch(batch, personas, result)
        if progress is not None:
            progress(start + len(batch), len(rows))
    return result


def _recompute_batch(batch, personas, result):
    lead_ids = [pk for pk, _site_id in batch]
    facts = load_facts(lead_ids)
    current = {lead_id: (persona_id, rule_id, pinned) for lead_id, persona_id, rule_id, pinned in
               LeadPersona.objects.filter(lead_id__in=lead_ids).values_list(
                   "lead_id", "persona_id", "rule_id", "pinned")}
    rules = {rule.pk: rule for site_personas in personas.values() for persona in site_personas
             for rule in persona.rules.all()}
    updates = defaultdict(list)   # (persona_id, rule_id) -> lead ids with a row
    inserts = defaultdict(list)   # (persona_id, rule_id) -> lead ids without a row
    changes = defaultdict(list)   # (from_id, to_id, rule_id) -> lead ids
    for lead_id, site_id in batch:
        from_id, from_rule_id, pinned = current.get(lead_id, (None, None, False))
        if pinned:
            result.pinned += 1
            continue
        persona, rule = evaluate(facts.get(lead_id) or LeadFacts(), personas.get(site_id, ()))
        to_id, rule_id = (persona.pk, rule.pk) if persona else (None, None)
        if lead_id not in current:
            if to_id is not None:
                inserts[(to_id, rule_id)].append(lead_id)
        elif (to_id, rule_id) != (from_id, from_rule_id):
            updates[(to_id, rule_id)].append(lead_id)
        if to_id != from_id:
            changes[(from_id, to_id, rule_id)].append(lead_id)
            result.changed += 1
    if not (updates or inserts or changes):
        return
    now = timezone.now()
    with transaction.atomic():
        for (to_id, rule_id), ids in updates.items():
            LeadPersona.objects.filter(lead_id__in=ids, pinned=False).update(
                persona_id=to_id, rule_id=rule_id, updated_at=now)
        for (to_id, rule_id), ids in inserts.items():
            _insert_for_leads(LeadPersona, ids, persona=to_id, rule=rule_id, pinned=False,
                              updated_at=now)
        for (from_id, to_id, rule_id), ids in changes.items():
            description = str(rules[rule_id].describe())[:255] if rule_id in rules else ""
            _insert_for_leads(PersonaChange, ids, from_persona=from_id, to_persona=to_id, rule=rule_id,
                              rule_description=description, manual=False, changed_at=now)


def _insert_for_leads(model, lead_ids, **values):
    """One `INSERT … SELECT` writing a row of `model` with the same `values` for every lead.

    `bulk_create` would split the rows into many statements on SQLite (999 parameters each), so
    the number of queries would grow with the number of leads.
    """
    qn = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in values]
    params = [field.get_db_prep_save(value, connection) for field, value in zip(fields, values.values(),
                                                                                   strict=True)]
    if connection.vendor == "sqlite":
        placeholders = ["%s"] * len(fields)
    else:  # typed, so that NULLs and literals take the columns' types
        placeholders = [f"CAST(%s AS {field.db_type(connection)})" for field in fields]
    lead_pk = qn(Lead._meta.pk.column)
    sql = (f"INSERT INTO {qn(model._meta.db_table)} ({qn(model._meta.get_field('lead').column)}, "
           f"{', '.join(qn(field.column) for field in fields)}) "
           f"SELECT {lead_pk}, {', '.join(placeholders)} FROM {qn(Lead._meta.db_table)} "
           f"WHERE {lead_pk} IN ({', '.join(['%s'] * len(lead_ids))})")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *lead_ids])


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
