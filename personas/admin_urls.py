"""Admin URLs of the personas app, mounted by the `register_admin_urls` hook in wagtail_hooks."""

from django.urls import include, path

from . import preview_views

preview_patterns = [
    path("<int:page_id>/", preview_views.ChoosePersonaView.as_view(), name="choose"),
    path("<int:page_id>/default/", preview_views.preview, name="default"),
    path("<int:page_id>/<int:persona_id>/", preview_views.preview, name="persona"),
]


def preview_urls():
    """Hook `register_admin_urls`: "preview as persona" under /admin/personas/preview/."""
    namespace = preview_views.URL_NAMESPACE
    return [path("personas/preview/", include((preview_patterns, namespace), namespace=namespace))]
