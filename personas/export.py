"""The lead's persona history for the data export (R1), added through `inbound_lead_export`."""

from inbound.proof import iso

from .assignment import PersonaChange


def persona_export(lead):
    """`persona_history`: every change of the lead's persona, oldest first, with the rule that
    fired (as it read then) or `manual` for a marketer's pin. The last entry is the current one."""
    changes = (PersonaChange.objects.filter(lead=lead).select_related("from_persona", "to_persona")
               .order_by("changed_at", "pk"))
    return {"persona_history": [{
        "changed_at": iso(change.changed_at),
        "from": change.from_persona.name if change.from_persona else None,
        "to": change.to_persona.name if change.to_persona else None,
        "rule": change.rule_description or None,
        "manual": change.manual,
    } for change in changes]}
