"""Synthetic demo leads, so the dashboard, the sales inbox and the reports have data on a first run.

`seed_demo` makes 300 of them on the demo site (`--demo-leads N` for another number,
`--no-demo-leads` for none). Each is clearly marked: `Lead.synthetic` is set and the address
is `demo-lead-0001@beispiel.invalid` (the top-level domain .invalid never resolves, RFC 2606).
`manage.py remove_demo_leads` deletes them with everything attached and notes that in the
audit log, so the next `seed_demo` (every `make run`) leaves them out.

Every lead tells a plausible story over the last 90 days, drawn from its own random generator
seeded with its number, so a second run would draw the same lead (and skips the addresses that
exist): a submission on a demo gated page with answers and consents, the confirmation mail
"sent", most requests confirmed (a few recent ones still pending), downloads, a second download
for some, and for leads with tracking consent page views and clicks in nurture mails.

The rows are written set-wise (a bulk INSERT per table, no query per lead or event); the consent
ledger exactly as `inbound.consent.append_events` writes it, with the same hash chain, so the
consent proof of a synthetic lead verifies. Then personas and scores are recomputed set-wise
with the engines, and "sales" accepts or rejects a few of the new MQLs.

Nothing is sent or queued: no mail task is enqueued here, and the marketing send check, the
nurture enrolment and the confirmation mail all refuse synthetic leads (nor does an MQL among
them get a hand-over to sales).
"""

import random
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from wagtail.log_actions import log
from wagtail.models import ModelLogEntry, Site

from inbound import conf
from inbound.consent import ConsentEvent, ConsentPurpose, current_versions
from inbound.leads import Lead, LeadEvent
from inbound.nurture.clicks import NURTURE_CLICK
from inbound.nurture.models import Step
from inbound.optin import MAIL_TEMPLATE_VERSION, OptInRequest
from inbound.pages import GatedFormSubmission, GatedPage
from inbound.scoring import engine, lifecycle
from inbound.scoring.models import MQL
from personas import assignment

from .demo_personas import OTHER_CHOICE, SELF_SELECTION_LABEL

DEFAULT_COUNT = 300
DOMAIN = "beispiel.invalid"
SEED = "leadsite-demo-leads/1"
DAYS = 90
# Pending requests are younger than the retention of unconfirmed requests (14 days by default),
# so the nightly retention run does not delete them at once.
PENDING_DAYS = 10
PENDING_SHARE = 0.12
SECOND_DOWNLOAD_SHARE = 0.25
CONSENT_SHARES = {"email-nurture": 0.93, "tracking": 0.6, "phone": 0.07}
ACCEPT_SHARE, REJECT_SHARE = 0.3, 0.15
REMOVED_ACTION = "leadsite.demo_leads_removed"
REJECT_REASONS = ["Kein Budget in diesem Jahr", "Falsche Ansprechperson, keine Entscheidungsbefugnis",
                  "Bereits Kunde bei einem Wettbewerber", "Nur Studienarbeit, kein Projekt"]
ACCEPT_NOTES = ["Erstgespräch vereinbart", "Angebot angefragt", "Rückruf erbeten, Termin steht"]

ROLES = [("Geschäftsführung", 25), ("Marketing", 35), ("IT", 25), ("Andere", 15)]
SIZES = [("1-9", 20), ("10-49", 35), ("50-249", 30), ("250+", 15)]
COMPANY_WORDS = (["Nordlicht", "Alpen", "Rhein", "Elbtal", "Hanse", "Spree", "Bergwerk", "Lindenhof",
                  "Sonnenfeld", "Weserbogen", "Taunus", "Ostsee"],
                 ["Logistik", "Maschinenbau", "Software", "Beratung", "Handel", "Medien", "Bau",
                  "Energie", "Pflege", "Druck"],
                 ["GmbH", "GmbH & Co. KG", "AG", "UG (haftungsbeschränkt)", "e. K."])
PERSONA_BY_ROLE = {"IT": "IT-Leiterin im Mittelstand", "Marketing": "Marketing-Managerin",
                   "Geschäftsführung": "Geschäftsführer kleines Unternehmen"}
VIEW_SLUGS = ("ueber-uns", "ressourcen", "kontakt")  # untagged pages viewed besides the gated ones


def address(number):
    return f"demo-lead-{number:04d}@{DOMAIN}"


def _weighted(rng, choices):
    values, weights = zip(*choices, strict=True)
    return rng.choices(values, weights=weights)[0]


# --- the stories -------------------------------------------------------------------------------

@dataclass
class Conversion:
    """One submission of a gated form, its confirmation mail and (maybe) its confirmation."""

    page: GatedPage
    at: object
    purposes: list
    answers: dict
    confirmed_at: object = None
    downloads: list = field(default_factory=list)


@dataclass
class Story:
    number: int
    visitor_id: str
    conversions: list = field(default_factory=list)
    views: list = field(default_factory=list)  # (page, time)
    clicks: list = field(default_factory=list)  # (step, time)

    @property
    def created_at(self):
        return self.conversions[0].at

    @property
    def confirmed_at(self):
        return self.conversions[0].confirmed_at

    @property
    def tracking(self):
        return self.confirmed_at is not None and any(
            p.channel == ConsentPurpose.TRACKING for p in self.conversions[0].purposes)

    def times(self):
        for conversion in self.conversions:
            yield conversion.at
            if conversion.confirmed_at:
                yield conversion.confirmed_at
            yield from conversion.downloads
        yield from (at for _page, at in self.views)
        yield from (at for _step, at in self.clicks)


@dataclass
class Context:
    """What the stories draw from: the demo site's gated pages, purposes, pages and mail steps."""

    pages: list
    purposes: dict  # key → purpose
    view_pages: list
    steps: list
    now: object

    @classmethod
    def for_site(cls, site, now):
        pages = list(GatedPage.objects.descendant_of(site.root_page).live().select_related("asset")
                     .prefetch_related("purposes", "form_fields").order_by("path"))
        return cls(
            pages=pages,
            purposes={p.key: p for p in ConsentPurpose.objects.filter(site=site, active=True)},
            view_pages=list(site.root_page.get_descendants(inclusive=True).live()
                            .filter(slug__in=(*VIEW_SLUGS, site.root_page.slug))),
            steps=list(Step.objects.filter(track__site=site).select_related("track").order_by("pk")),
            now=now,
        )


def _profile(rng):
    role, size = _weighted(rng, ROLES), _weighted(rng, SIZES)
    persona = PERSONA_BY_ROLE.get(role, OTHER_CHOICE)
    if role == "Geschäftsführung" and size not in ("1-9", "10-49"):
        persona = OTHER_CHOICE
    return {
        "Ihre Rolle": role,
        "Unternehmensgröße": size,
        "Firma": " ".join(rng.choice(words) for words in COMPANY_WORDS),
        SELF_SELECTION_LABEL: persona if rng.random() < 0.7 else "",
    }


def _answers(page, profile):
    """`{field name: answer}` for the page's form fields the profile can answer."""
    answers = {}
    for form_field in page.form_fields.all():
        value = profile.get(form_field.label, "")
        choices = [c.strip() for c in (form_field.choices or "").splitlines() if c.strip()]
        if value and (not choices or value in choices):
            answers[form_field.clean_name or form_field.get_field_clean_name()] = value
    return answers


def _purposes(rng, page, context):
    offered = {p.pk for p in page.purposes.all()}
    ticked = [purpose for key, share in CONSENT_SHARES.items()
              if (purpose := context.purposes.get(key)) is not None and purpose.pk in offered
              and rng.random() < share]
    if not ticked:
        ticked = [p for p in page.purposes.all() if p.is_marketing][:1]
    return sorted(ticked, key=lambda p: (p.sort_order, p.name))


def _between(rng, start, end):
    return start + (end - start) * rng.random()


def draw_story(number, context):
    """One synthetic lead's story; the same number always gives the same story (for a `now`)."""
    rng = random.Random(f"{SEED}:{number}")
    now = context.now
    latest = now - timedelta(minutes=5)
    pending = rng.random() < PENDING_SHARE
    age = rng.uniform(0.05, PENDING_DAYS) if pending else rng.uniform(0.3, DAYS)
    story = Story(number=number, visitor_id=f"{rng.getrandbits(128):032x}")
    profile = _profile(rng)
    pages = list(context.pages)
    rng.shuffle(pages)  # the first download, and the second for some
    first = Conversion(page=pages[0], at=now - timedelta(days=age), purposes=[], answers={})
    first.purposes = _purposes(rng, first.page, context)
    first.answers = _answers(first.page, profile)
    story.conversions.append(first)
    if pending:
        return story
    first.confirmed_at = min(first.at + timedelta(minutes=rng.uniform(2, 240)), latest)
    if rng.random() < 0.9:
        first.downloads.append(min(first.confirmed_at + timedelta(minutes=rng.uniform(0.2, 30)), latest))
    if len(pages) > 1 and rng.random() < SECOND_DOWNLOAD_SHARE:
        at = first.confirmed_at + timedelta(days=rng.uniform(1, 40))
        if at < latest - timedelta(hours=5):
            second = Conversion(page=pages[1], at=at, purposes=first.purposes,
                                answers=_answers(pages[1], profile),
                                confirmed_at=at + timedelta(minutes=rng.uniform(2, 180)))
            second.downloads.append(second.confirmed_at + timedelta(minutes=rng.uniform(0.2, 20)))
            story.conversions.append(second)
    if story.tracking:
        level = rng.random() ** 2  # most leads are quiet, a few very active
        view_pages = context.pages * 2 + context.view_pages
        for _index in range(round(level * 12)):
            story.views.append((rng.choice(view_pages),
                                _between(rng, first.at - timedelta(days=2), latest)))
        marketing = any(p.is_marketing for p in first.purposes)
        start = first.confirmed_at + timedelta(days=1)
        if marketing and context.steps and start < latest:
            for _index in range(round(level * 5)):
                story.clicks.append((rng.choice(context.steps), _between(rng, start, latest)))
    return story


# --- writing -----------------------------------------------------------------------------------

def _ledger(lead, story, optins, versions):
    """The lead's consent events, chained exactly as `consent.append_events` chains them."""
    events, seq, prev_hash = [], 0, ""
    for conversion, optin in zip(story.conversions, optins, strict=True):
        page = conversion.page
        steps = [(ConsentEvent.REQUESTED, conversion.at, "web-form", ""),
                 (ConsentEvent.DOI_SENT, optin.mail_sent_at, "mail", MAIL_TEMPLATE_VERSION)]
        if conversion.confirmed_at:
            steps.append((ConsentEvent.CONFIRMED, conversion.confirmed_at, "doi-link", ""))
        for kind, at, channel, template_version in steps:
            for purpose in conversion.purposes:
                seq += 1
                event = ConsentEvent(
                    lead=lead, seq=seq, purpose=purpose, text_version=versions[purpose.pk], kind=kind,
                    occurred_at=at.astimezone(UTC), channel=channel, opt_in=optin,
                    source_page_id=page.pk, source_page_title=page.title[:255],
                    asset_id=page.asset_id, asset_title=(page.asset.title if page.asset else "")[:255],
                    ip_truncated="", mail_template_version=template_version, prev_hash=prev_hash)
                event.ip_digest = event.compute_ip_digest()
                event.hash = event.compute_hash()
                prev_hash = event.hash
                events.append(event)
    return events


def _events(site, lead, story, optins):
    events = []

    def add(kind, at, page=None, visitor=False, **data):
        events.append(LeadEvent(site_id=site.pk, lead=lead, kind=kind, page=page, occurred_at=at, data=data,
                                visitor_id=story.visitor_id if visitor else None))

    for index, (conversion, optin) in enumerate(zip(story.conversions, optins, strict=True)):
        if story.tracking:
            add(LeadEvent.TRACK_SUBMIT, conversion.at, conversion.page, visitor=True)
        if conversion.confirmed_at is None:
            continue
        add(LeadEvent.OPTIN_CONFIRMED, conversion.confirmed_at, conversion.page, optin=optin.pk)
        if story.tracking:
            add(LeadEvent.TRACK_CONFIRM, conversion.confirmed_at, conversion.page, visitor=True,
                optin=optin.pk)
            if index == 0:
                add(LeadEvent.TRACK_LINKED, conversion.confirmed_at, conversion.page, visitor=True)
        for at in conversion.downloads:
            add(LeadEvent.DOWNLOAD, at, conversion.page, document=conversion.page.asset_id, optin=optin.pk)
    for page, at in story.views:
        add(LeadEvent.TRACK_VIEW, at, page, visitor=True)
    for step, at in story.clicks:
        add(NURTURE_CLICK, at, None, step=step.pk, track=step.track_id)
    return events


def _write(site, stories, context):
    """Insert the stories: a bulk INSERT per table, whatever the number of leads and events."""
    leads = Lead.objects.bulk_create([
        Lead(site=site, email=address(story.number), synthetic=True, created_at=story.created_at,
             confirmed_at=story.confirmed_at, last_activity_at=max(story.times()))
        for story in stories])
    pairs = [(lead, story, conversion) for lead, story in zip(leads, stories, strict=True)
             for conversion in story.conversions]
    submissions = GatedFormSubmission.objects.bulk_create([
        GatedFormSubmission(page=conversion.page, lead=lead, form_data={
            "email": lead.email, **conversion.answers, "consents": [p.key for p in conversion.purposes]})
        for lead, _story, conversion in pairs])
    for submission, (_lead, _story, conversion) in zip(submissions, pairs, strict=True):
        submission.submit_time = conversion.at  # `auto_now_add` ignored the value on insert
    GatedFormSubmission.objects.bulk_update(submissions, ["submit_time"])
    max_age = conf.get("INBOUND_OPTIN_LINK_MAX_AGE")
    optins = OptInRequest.objects.bulk_create([
        OptInRequest(lead=lead, page=conversion.page, submission=submission, language="de",
                     created_at=conversion.at, expires_at=conversion.at + max_age,
                     mail_sent_at=conversion.at + timedelta(seconds=3), mail_attempts=1,
                     mail_template_version=MAIL_TEMPLATE_VERSION, confirmed_at=conversion.confirmed_at)
        for submission, (lead, _story, conversion) in zip(submissions, pairs, strict=True)])
    OptInRequest.purposes.through.objects.bulk_create([
        OptInRequest.purposes.through(optinrequest_id=optin.pk, consentpurpose_id=purpose.pk)
        for optin, (_lead, _story, conversion) in zip(optins, pairs, strict=True)
        for purpose in conversion.purposes])
    versions = current_versions(context.purposes.values(), "de")
    optins_of = {}
    for optin, (lead, _story, _conversion) in zip(optins, pairs, strict=True):
        optins_of.setdefault(lead.pk, []).append(optin)
    ledger, events = [], []
    for lead, story in zip(leads, stories, strict=True):
        ledger += _ledger(lead, story, optins_of[lead.pk], versions)
        events += _events(site, lead, story, optins_of[lead.pk])
    ConsentEvent.objects.bulk_create(ledger)
    LeadEvent.objects.bulk_create(events)
    return leads


def _decide(lead_ids):
    """"Sales" accepts or rejects a share of the new MQLs (a few queries per decision)."""
    rng = random.Random(f"{SEED}:sales")
    accepted = rejected = 0
    for lead in Lead.objects.filter(pk__in=lead_ids, lifecycle__stage=MQL).order_by("pk"):
        draw = rng.random()
        if draw < ACCEPT_SHARE:
            lifecycle.accept(lead, note=rng.choice(ACCEPT_NOTES))
            accepted += 1
        elif draw < ACCEPT_SHARE + REJECT_SHARE:
            lifecycle.reject(lead, rng.choice(REJECT_REASONS))
            rejected += 1
    return accepted, rejected


@dataclass
class SeedResult:
    created: int = 0
    mql: int = 0
    sql: int = 0
    rejected: int = 0

    def lines(self):
        if not self.created:
            return []
        return [f"{self.created} synthetic demo lead(s) ({self.mql} reached the MQL threshold, "
                f"{self.sql} accepted and {self.rejected} rejected by sales)"]


def seed_demo_leads(site, count=DEFAULT_COUNT, now=None):
    """Create the synthetic leads numbered 1 to `count` that do not exist yet on the site, then
    recompute personas and scores of all synthetic leads of the site. Returns a `SeedResult`."""
    now = now or timezone.now()
    result = SeedResult()
    wanted = {address(number): number for number in range(1, count + 1)}
    existing = set(Lead.objects.filter(site=site, email__in=list(wanted)).values_list("email", flat=True))
    numbers = [number for email, number in wanted.items() if email not in existing]
    if not numbers:
        return result
    context = Context.for_site(site, now)
    if not context.pages:
        return result  # no gated page to tell a story about
    with transaction.atomic():
        stories = [draw_story(number, context) for number in numbers]
        leads = _write(site, stories, context)
        synthetic = Lead.objects.filter(site=site, synthetic=True)
        assignment.recompute(synthetic)
        engine.recompute(synthetic, now=now)
        new_ids = [lead.pk for lead in leads]
        result.created = len(leads)
        result.mql = Lead.objects.filter(pk__in=new_ids, lifecycle__stage=MQL).count()
        result.sql, result.rejected = _decide(new_ids)
    return result


def were_removed(site):
    """Whether `remove_demo_leads` ran for the site: then `seed_demo` (run by every `make run`)
    does not bring the leads back unless asked to."""
    return ModelLogEntry.objects.for_instance(site).filter(action=REMOVED_ACTION).exists()


def remove_demo_leads(dry_run=False):
    """Delete every synthetic lead with everything attached (answers, ledger, opt-in requests,
    events, scores, stages, personas: all cascade from the lead, as in `privacy.erase_lead`).
    Real leads are never touched. Each site's removal is written to the audit log, which also
    keeps `seed_demo` from re-creating them. Returns how many leads were (or, `dry_run`, would
    be) deleted."""
    leads = Lead.objects.filter(synthetic=True)
    if dry_run:
        return leads.count()
    with transaction.atomic():
        per_site = dict(leads.order_by().values_list("site_id").annotate(count=Count("pk")))
        leads.delete()
        sites = Site.objects.filter(pk__in=per_site) if per_site else Site.objects.filter(
            is_default_site=True)  # nothing to delete: still remember the wish
        for site in sites:
            log(site, REMOVED_ACTION, data={"leads": per_site.get(site.pk, 0)})
    return sum(per_site.values())
