"""Demo lead scoring: German B2B rules, an MQL threshold of 60 and the hand-over to the sales team.

Behaviour (confirmation, downloads, mail clicks, page views) counts only for leads with tracking
consent; the profile (company size) counts for every lead. Clicks and page views lose half
their points every 30 days. Idempotent: rules are looked up by name, and a setting is only
filled in while it is empty, so an administrator's changes stay.
"""

from django.contrib.auth.models import Group

from inbound.handover.access import SALES_GROUP_NAME
from inbound.pages import GatedPage
from inbound.scoring.models import ScoringRule, ScoringSettings

from .demo_legal import FICTIONAL_COMPANY
from .demo_personas import clean_name, ensure_topics

MQL_THRESHOLD = 60
EBOOK = "e-book-rechtssicheres-e-mail-marketing"
SIZE_FIELD = "Unternehmensgröße"  # a dropdown on the e-book form ("1-9", "10-49", "50-249", "250+")
TOPIC = "recht-und-compliance"  # tagged on both demo gated pages

RULES = [
    {"name": "Double Opt-in bestätigt", "kind": ScoringRule.CONFIRMED, "points": 10},
    {"name": "Download eines Inhalts", "kind": ScoringRule.DOWNLOAD, "points": 15, "cap": 45},
    {"name": "Download des E-Books", "kind": ScoringRule.PAGE_DOWNLOAD, "points": 10, "page": EBOOK},
    {"name": "Klick in einer Nurture-Mail", "kind": ScoringRule.CLICK, "points": 5, "cap": 25,
     "decay_days": 30},
    {"name": "Seitenaufruf Recht & Compliance", "kind": ScoringRule.TOPIC_VIEW, "points": 2, "cap": 20,
     "decay_days": 30, "topic": TOPIC},
    # The company size is a choice of ranges, not a number: an answer rule, not a number range.
    {"name": "Unternehmen ab 50 Beschäftigten", "kind": ScoringRule.ANSWER, "points": 15,
     "field": SIZE_FIELD, "values": "50-249\n250+"},
    {"name": "Kleinstunternehmen (unter 10 Beschäftigten)", "kind": ScoringRule.ANSWER, "points": -15,
     "field": SIZE_FIELD, "values": "1-9"},
]


def sales_address():
    """vertrieb@ at the demo company's (fictional) domain."""
    return "vertrieb@" + FICTIONAL_COMPANY["email"].rsplit("@", 1)[1]


def ensure_rules(site):
    pages = {page.slug: page for page in GatedPage.objects.descendant_of(site.root_page).filter(slug=EBOOK)}
    topics = ensure_topics()
    created = 0
    for spec in RULES:
        if ScoringRule.objects.filter(site=site, name=spec["name"]).exists():
            continue
        page = pages.get(spec.get("page"))
        if "page" in spec and page is None:
            continue  # the gated page was removed: leave the rule out
        rule = ScoringRule(site=site, name=spec["name"], kind=spec["kind"], points=spec["points"],
                           cap=spec.get("cap"), decay_days=spec.get("decay_days"), page=page,
                           topic=topics.get(spec.get("topic")),
                           field_name=clean_name(spec["field"]) if "field" in spec else "",
                           values=spec.get("values", ""))
        rule.full_clean()
        rule.save()
        created += 1
    return created


def ensure_settings(site):
    """Threshold, sales address and sales team, each only if still empty. No webhook."""
    settings = ScoringSettings.for_site(site)
    changed = False
    if settings.mql_threshold is None:
        settings.mql_threshold = MQL_THRESHOLD
        changed = True
    if not settings.sales_email:
        settings.sales_email = sales_address()
        changed = True
    if settings.sales_group_id is None:
        # Normally made with its permissions after migrate (`ensure_sales_group`); the seed only
        # names it, and the next migrate adds the permissions.
        settings.sales_group, _created = Group.objects.get_or_create(name=SALES_GROUP_NAME)
        changed = True
    if changed:
        settings.save()
    return changed


def seed_scoring(site):
    changes = []
    rules = ensure_rules(site)
    if rules:
        changes.append(f"{rules} scoring rule(s)")
    if ensure_settings(site):
        changes.append("scoring settings (MQL threshold, sales)")
    return changes
