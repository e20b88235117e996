"""Demo content for `make run`: a German home page with a few standard pages and a contact page.

Every function here is idempotent: it looks things up by slug and only creates
what is missing, so running the seed twice changes nothing.
"""

from django.db import transaction
from wagtail.models import Page, Site

from .models import ContactFormField, ContactPage, HomePage, StandardPage

HOME_SLUG = "home"
DEV_HOSTNAME, DEV_PORT = "127.0.0.1", 8000  # links in mails then open the `make run` site

STANDARD_PAGES = [
    {
        "slug": "ueber-uns",
        "title": "Über uns",
        "intro": "Wir helfen mittelständischen Unternehmen, rechtssicher neue Kunden zu gewinnen.",
        "paragraph": "<p>Die Beispiel GmbH ist ein frei erfundenes Unternehmen für diese Demo.</p>",
    },
    {
        "slug": "ressourcen",
        "title": "Ressourcen",
        "intro": "E-Books, Checklisten und Leitfäden für Marketing nach DSGVO und UWG.",
        "paragraph": "<p>Hier finden Sie unsere kostenlosen Inhalte zum Herunterladen.</p>",
    },
]

CONTACT_PAGE = {
    "slug": "kontakt",
    "title": "Kontakt",
    "intro": "<p>Schreiben Sie uns: Wir antworten in der Regel innerhalb eines Werktags.</p>",
    "thank_you_text": "<p>Vielen Dank für Ihre Nachricht. Wir melden uns bei Ihnen.</p>",
    # (label, field type, required); no to_address, so the demo sends no mail
    "fields": [("Name", "singleline", True), ("E-Mail", "email", True), ("Nachricht", "multiline", True)],
}


def _paragraph(html):
    return [{"type": "paragraph", "value": html}]


def ensure_home_page():
    """Make the default site's root a `HomePage`, replacing Wagtail's placeholder page."""
    site = Site.objects.filter(is_default_site=True).select_related("root_page").first()
    if site and isinstance(site.root_page.specific, HomePage):
        return site, False
    tree_root = Page.get_first_root_node() or Page.add_root(
        instance=Page(title="Root", slug="root")
    )
    home = HomePage.objects.filter(slug=HOME_SLUG, depth=2).first()
    created = home is None
    if created:
        placeholder = tree_root.get_children().filter(slug=HOME_SLUG).first()
        if placeholder is not None:  # Wagtail's "Welcome" page: free its slug, delete it below
            Page.objects.filter(pk=placeholder.pk).update(slug="wagtail-welcome")
        home = HomePage(
            title="Willkommen bei der Beispiel GmbH",
            slug=HOME_SLUG,
            intro="<p>Rechtssicheres Inbound-Marketing: Inhalte, Einwilligung, Vertrauen.</p>",
        )
        tree_root.add_child(instance=home)
        home.save_revision().publish()
    if site is None:
        site = Site.objects.create(
            hostname=DEV_HOSTNAME, port=DEV_PORT, root_page=home, is_default_site=True,
            site_name="Beispiel GmbH",
        )
    else:
        old_root = site.root_page
        site.root_page = home
        site.site_name = site.site_name or "Beispiel GmbH"
        if (site.hostname, site.port) == ("localhost", 80):  # Wagtail's default: point at `make run`
            site.hostname, site.port = DEV_HOSTNAME, DEV_PORT
        site.save()
        if old_root.pk != home.pk and not old_root.get_children().exists():
            old_root.delete()
    return site, created


def ensure_standard_pages(home):
    created = 0
    for spec in STANDARD_PAGES:
        if home.get_children().filter(slug=spec["slug"]).exists():
            continue
        page = StandardPage(
            title=spec["title"],
            slug=spec["slug"],
            intro=spec["intro"],
            body=_paragraph(spec["paragraph"]),
            show_in_menus=True,
        )
        home.add_child(instance=page)
        page.save_revision().publish()
        created += 1
    return created


def ensure_contact_page(home):
    spec = CONTACT_PAGE
    if home.get_children().filter(slug=spec["slug"]).exists():
        return False
    page = ContactPage(title=spec["title"], slug=spec["slug"], intro=spec["intro"],
                       thank_you_text=spec["thank_you_text"], show_in_menus=True)
    home.add_child(instance=page)
    for order, (label, field_type, required) in enumerate(spec["fields"]):
        page.form_fields.add(ContactFormField(sort_order=order, label=label, field_type=field_type,
                                              required=required))
    page.save_revision().publish()
    return True


@transaction.atomic
def seed(personas=True, scoring=None):
    """Create the demo site. Returns a list of human-readable lines about what changed.

    `personas=False` leaves out the demo personas, their tags and the self-selection question
    (most tests want a site without personas). `scoring` (default: as `personas`) adds the demo
    scoring rules, the MQL threshold and the sales settings. The synthetic demo leads are not
    part of this: `seed_demo` adds them with `demo_leads.seed_demo_leads`."""
    site, home_created = ensure_home_page()
    home = site.root_page.specific
    changes = []
    if home_created:
        changes.append(f"home page '{home.title}'")
    pages = ensure_standard_pages(home)
    if pages:
        changes.append(f"{pages} standard page(s)")
    changes += seed_legal_notices(site, home)  # before any page with a form (L4)
    if ensure_contact_page(home):
        changes.append("contact page")
    changes += seed_gated_content(site, home)
    if personas:
        changes += seed_personas(site)
    if personas if scoring is None else scoring:
        changes += seed_scoring(site)
    if seed_cookie_banner(site):
        changes.append("cookie banner texts")
    return site, changes


def seed_cookie_banner(site):
    """The banner's German and English default texts, as text version 1."""
    from inbound.cookie_banner import CookieBannerSettings

    _settings, created = CookieBannerSettings.objects.get_or_create(site=site)
    return created


def seed_legal_notices(site, home):
    from . import demo_legal

    pages, settings_changed = demo_legal.ensure_legal_pages(site, home)
    changes = [f"{pages} legal page(s)"] if pages else []
    if settings_changed:
        changes.append("legal settings")
    return changes


def seed_personas(site):
    from . import demo_personas

    return demo_personas.seed_personas(site)


def seed_scoring(site):
    from . import demo_scoring

    return demo_scoring.seed_scoring(site)


def seed_gated_content(site, home):
    from . import demo_gated

    changes = []
    purposes = demo_gated.ensure_purposes(site)
    if purposes:
        changes.append(f"{purposes} consent purpose(s)")
    resources = home.get_children().filter(slug="ressourcen").first() or home
    pages = demo_gated.ensure_gated_pages(site, resources.specific)
    if pages:
        changes.append(f"{pages} gated page(s)")
    return changes
