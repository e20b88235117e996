"""The "Persona" panel on the lead detail page of the admin.

`inbound` knows nothing about personas: its lead detail view renders whatever the hook
`inbound_lead_detail_panels` returns, and `render_lead_panel` is this app's answer. It shows the
lead's persona, whether a marketer pinned it, the rule that fired and the history, and to users
who may change leads a form to pin a persona of the lead's site, or no persona, or to unpin.
"""

from django.template.loader import render_to_string
from django.urls import reverse

from inbound import admin_access

from .assignment import LeadPersona, PersonaChange
from .persona import Persona

HISTORY_LIMIT = 50
PIN_URL_NAME = "personas_lead_pin"


def pin_url(lead):
    return reverse(PIN_URL_NAME, args=(lead.pk,))


def lead_panel_context(request, lead):
    """Everything the panel shows: four queries at most, whatever the length of the history."""
    assignment = (LeadPersona.objects.filter(lead=lead).select_related("persona", "rule").first())
    changes = list(PersonaChange.objects.filter(lead=lead).select_related("from_persona", "to_persona")
                   .order_by("-changed_at", "-pk")[:HISTORY_LIMIT])
    may_change = admin_access.can_change_leads(request.user)
    return {
        "lead": lead,
        "assignment": assignment,
        "persona": assignment.persona if assignment else None,
        "pinned": bool(assignment and assignment.pinned),
        "rule_description": assignment.rule.describe() if assignment and assignment.rule else "",
        "changes": changes,
        "history_limited": len(changes) == HISTORY_LIMIT,
        "may_change": may_change,
        "choices": list(Persona.objects.filter(site_id=lead.site_id).order_by("sort_order", "pk"))
        if may_change else [],
        "pin_url": pin_url(lead) if may_change else "",
    }


def render_lead_panel(request, lead):
    """The panel's HTML for the hook `inbound_lead_detail_panels`."""
    return render_to_string("personas/admin/lead_panel.html", lead_panel_context(request, lead),
                            request=request)
