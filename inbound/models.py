"""Models of the plugin, defined in the module of their concept and collected here for Django."""

from .consent import ConsentEvent, ConsentPurpose, ConsentTextVersion
from .cookie_banner import CookieBannerSettings, CookieBannerTextVersion
from .handover.models import HandOver, WebhookDelivery
from .leads import Lead, LeadEvent
from .legal import LegalSettings
from .legal_pages import ImprintPage, PrivacyPage
from .mailing import SentMail
from .nurture.models import Delivery, Enrolment, NurtureSettings, Step, Track
from .optin import OptInRequest
from .pages import GatedFormField, GatedFormSubmission, GatedPage
from .retention import RetentionRun
from .scoring.models import LeadScore, LifecycleStage, ScoreChange, ScoringRule, ScoringSettings, StageChange
from .suppression import SuppressionEntry

__all__ = [
    "ConsentEvent", "ConsentPurpose", "ConsentTextVersion", "CookieBannerSettings",
    "CookieBannerTextVersion", "Delivery", "Enrolment", "GatedFormField",
    "GatedFormSubmission", "GatedPage", "ImprintPage", "Lead", "LeadEvent", "LegalSettings",
    "NurtureSettings", "OptInRequest", "PrivacyPage", "RetentionRun", "SentMail", "Step",
    "SuppressionEntry", "Track",
    "HandOver", "WebhookDelivery", "LeadScore", "LifecycleStage", "ScoreChange", "ScoringRule",
    "ScoringSettings", "StageChange",
]
