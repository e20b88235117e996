"""The app's models, defined by concept in their own modules."""

from .assignment import LeadPersona, PersonaChange
from .persona import Persona
from .rules import PersonaRule

__all__ = ["LeadPersona", "Persona", "PersonaChange", "PersonaRule"]
