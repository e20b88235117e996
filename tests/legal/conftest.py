"""Fixtures for the legal notices: a second site that starts with nothing configured."""

import pytest
from wagtail.models import Page, Site

from inbound.legal import LegalSettings
from inbound.legal_pages import ImprintPage, PrivacyPage
from inbound.pages import GatedPage
from leadsite.demo_legal import FICTIONAL_COMPANY
from leadsite.models import HomePage
from tests.gated.conftest import asset, fresh_cache, media_root, purposes  # noqa: F401


@pytest.fixture
def bare_site(demo_site, settings):
    """Site B (site-b.example): a home page and nothing else."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "site-b.example"]
    home = HomePage(title="Site B", slug="site-b")
    Page.get_first_root_node().add_child(instance=home)
    home.save_revision().publish()
    return Site.objects.create(hostname="site-b.example", port=80, root_page=home, site_name="Site B")


@pytest.fixture
def draft_gated_page(bare_site, asset):  # noqa: F811
    page = GatedPage(title="Checkliste B", slug="checkliste-b", asset=asset, live=False)
    bare_site.root_page.add_child(instance=page)
    page.save_revision()
    return page


def complete_legal_setup(site, company="Firma B GmbH"):
    home = site.root_page
    imprint = ImprintPage(title="Impressum B", slug="impressum")
    home.add_child(instance=imprint)
    imprint.save_revision().publish()
    privacy = PrivacyPage(title="Datenschutz B", slug="datenschutz")
    home.add_child(instance=privacy)
    privacy.save_revision().publish()
    settings = LegalSettings.for_site(site)
    for field, value in FICTIONAL_COMPANY.items():
        setattr(settings, field, value)
    settings.company_name = company
    settings.imprint_page = imprint
    settings.privacy_page = privacy
    settings.full_clean()
    settings.save()
    return settings
