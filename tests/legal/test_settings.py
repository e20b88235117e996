"""Legal settings per site (L2): validation and what counts as complete."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from inbound import legal
from inbound.legal import LegalSettings
from tests.legal.conftest import complete_legal_setup

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """The labels are checked in English; German users get them translated."""
    with translation.override("en"):
        yield


def _settings(site, **values):
    settings = LegalSettings.for_site(site)
    for field, value in values.items():
        setattr(settings, field, value)
    return settings


@pytest.mark.parametrize("street", ["Postfach 1234", "PO Box 99", "P.O. Box 7", "postfach 12"])
def test_po_box_is_refused_as_street_address(bare_site, street):
    with pytest.raises(ValidationError) as error:
        _settings(bare_site, street_address=street).full_clean()
    assert "street_address" in error.value.message_dict


@pytest.mark.parametrize("field,value", [
    ("postal_code", "1234"), ("postal_code", "ABCDE"), ("vat_id", "DE12345"),
    ("phone", "call me"), ("street_address", "Musterstraße"),
])
def test_malformed_fields_are_refused(bare_site, field, value):
    with pytest.raises(ValidationError) as error:
        _settings(bare_site, **{field: value}).full_clean()
    assert field in error.value.message_dict


def test_valid_fields_pass(bare_site):
    _settings(bare_site, street_address="Hauptstr. 12a", postal_code="01067", vat_id="de 123456789",
              phone="+49 (351) 123-456").full_clean()


def test_a_foreign_postal_code_is_accepted_for_a_foreign_country(bare_site):
    _settings(bare_site, country="Österreich", postal_code="1010", street_address="Ring 1").full_clean()


def test_missing_items_name_every_gap(bare_site):
    missing = [str(item) for item in legal.missing_items(bare_site)]
    for label in ("name and legal form", "street and number", "postal code", "city",
                  "authorised representatives", "e-mail address", "phone number",
                  "a published imprint page", "a published privacy page"):
        assert any(label in item for item in missing), (label, missing)


def test_complete_setup_has_nothing_missing(bare_site):
    complete_legal_setup(bare_site)
    assert legal.missing_items(bare_site) == []


def test_registered_company_needs_register_entry(bare_site):
    settings = complete_legal_setup(bare_site)
    settings.register_court = settings.register_number = ""
    settings.save()
    assert any("register" in str(item) for item in legal.missing_items(bare_site))


def test_unpublished_legal_page_counts_as_missing(bare_site):
    settings = complete_legal_setup(bare_site)
    type(settings.privacy_page).objects.filter(pk=settings.privacy_page_id).update(live=False)
    missing = [str(item) for item in legal.missing_items(bare_site)]
    assert any("privacy" in item for item in missing)


def test_system_check_warns_in_development_and_errors_in_production(bare_site, settings):
    from django.core import checks as django_checks

    from inbound.checks import check_legal_notices

    messages = check_legal_notices()
    assert [m.id for m in messages] == ["inbound.W001"]
    assert "site-b.example" in messages[0].msg
    assert messages[0].level == django_checks.WARNING
    settings.INBOUND_LEGAL_CHECK_LEVEL = "error"
    messages = check_legal_notices()
    assert [m.id for m in messages] == ["inbound.E001"]
    complete_legal_setup(bare_site)
    assert check_legal_notices() == []
