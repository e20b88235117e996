"""Registration only: the logic lives in the plugin's modules."""

from django.http import Http404
from wagtail import hooks

from . import admin_access


@hooks.register("before_serve_document")
def protect_gated_assets(document, request):
    """D7: a gated asset is never served through the document's own URL to the public."""
    if admin_access.is_gated_asset(document) and not admin_access.can_use_admin(request.user):
        raise Http404


@hooks.register("filter_form_submissions_for_user")
def hide_gated_submissions_without_lead_permission(user, editable_forms):
    """Editors without the lead permission see no personal data from gated forms."""
    return admin_access.filter_form_pages_for_user(user, editable_forms)
