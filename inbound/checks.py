"""System check: sites whose legal notices are incomplete (warning; error if configured).

The production settings set INBOUND_LEGAL_CHECK_LEVEL = "error".
"""

from django.core import checks
from django.db import DatabaseError

from . import conf


@checks.register()
def check_legal_notices(app_configs=None, **kwargs):
    from .legal_admin import site_legal_statuses

    level = checks.Error if conf.get("INBOUND_LEGAL_CHECK_LEVEL") == "error" else checks.Warning
    try:
        statuses = site_legal_statuses()
    except DatabaseError:  # not migrated yet, or no database: nothing to check
        return []
    return [
        level(
            f"Site '{site.hostname}:{site.port}' has incomplete legal notices: "
            + "; ".join(str(item) for item in missing),
            hint="Complete Settings → Legal notices and publish an imprint and a privacy page.",
            obj=site, id="inbound.E001" if level is checks.Error else "inbound.W001",
        )
        for site, missing in statuses if missing
    ]


@checks.register()
def check_form_pages_require_legal_notices(app_configs=None, **kwargs):
    """Every page type with a form must use RequiresLegalNotices, so L4 holds for it."""
    from wagtail.contrib.forms.models import FormMixin
    from wagtail.models import get_page_models

    from .legal_pages import RequiresLegalNotices

    return [
        checks.Warning(
            f"{model.__name__} has a form but does not use RequiresLegalNotices, so it can be "
            "published without imprint and privacy notice.",
            hint="Add inbound.legal_pages.RequiresLegalNotices as the first base class.",
            obj=model, id="inbound.W002",
        )
        for model in get_page_models()
        if issubclass(model, FormMixin) and not issubclass(model, RequiresLegalNotices)
    ]
