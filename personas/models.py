"""The app's models, defined by concept in their own modules."""

from .assignment import LeadPersona, PersonaChange
from .persona import Persona
from .rules import PersonaRule
from .targeting import PagePersonaTag, PageTopicTag, Topic

__all__ = ["LeadPersona", "PagePersonaTag", "PageTopicTag", "Persona", "PersonaChange", "PersonaRule",
           "Topic"]
