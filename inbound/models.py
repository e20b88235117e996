"""Models of the plugin, defined in the module of their concept and collected here for Django."""

from .consent import ConsentEvent, ConsentPurpose, ConsentTextVersion
from .leads import Lead, LeadEvent
from .optin import OptInRequest
from .pages import GatedFormField, GatedFormSubmission, GatedPage

__all__ = [
    "ConsentEvent", "ConsentPurpose", "ConsentTextVersion", "GatedFormField",
    "GatedFormSubmission", "GatedPage", "Lead", "LeadEvent", "OptInRequest",
]
