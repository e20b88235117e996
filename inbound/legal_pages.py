"""The imprint and privacy pages, and the publishing rule for pages with forms (L4).

- `ImprintPage` renders the site's legal settings plus optional rich text.
- `PrivacyPage` holds the editor's rich text plus a section generated from the plugin's live
  configuration (L3), see `privacy_notice.py`.
- `RequiresLegalNotices` is mixed into every page type with a form. Publishing such a page,
  through any path (admin, scheduled, code), is refused while its site's legal notices are
  incomplete. A legal page cannot be unpublished or deleted while live form pages depend on it.
"""

import logging

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel
from wagtail.fields import RichTextField
from wagtail.log_actions import log
from wagtail.models import Page

from . import legal

logger = logging.getLogger(__name__)


class RequiresLegalNotices(models.Model):
    """Mixin for page types with a form: no publishing without complete legal notices."""

    class Meta:
        abstract = True

    def _is_being_published(self, update_fields):
        return self.live and (update_fields is None or {"live", "live_revision"} & set(update_fields))

    def save(self, *args, **kwargs):
        if self._is_being_published(kwargs.get("update_fields")):
            site = self.get_site()
            if site is not None:
                legal.ensure_complete(site)
        return super().save(*args, **kwargs)

    def publish(self, revision, *args, log_action=True, **kwargs):
        """Scheduled publishing must not crash the scheduler: a refused go-live is cancelled,
        logged in the page history, and the draft is kept."""
        try:
            return super().publish(revision, *args, log_action=log_action, **kwargs)
        except legal.LegalSetupIncomplete as exc:
            if log_action != "wagtail.publish.scheduled":
                raise
            type(revision).objects.filter(pk=revision.pk).update(approved_go_live_at=None)
            log(instance=self, action="inbound.publish_refused",
                data={"missing": [str(item) for item in exc.missing]})
            logger.warning("Scheduled publishing of page %s refused: legal notices incomplete", self.pk)
            return None


class LegalPage(Page):
    """Base of the imprint and privacy pages: protected while form pages depend on them."""

    body = RichTextField(_("text"), blank=True)
    content_panels = Page.content_panels + [FieldPanel("body")]
    max_count_per_parent = 1
    legal_setting_field = None  # "imprint_page" or "privacy_page"

    class Meta:
        abstract = True

    def dependent_live_form_pages(self):
        """Live pages with forms on the same site, while this page is the site's legal page."""
        site = self.get_site()
        if site is None:
            return []
        settings = legal.settings_for(site)
        if getattr(settings, f"{self.legal_setting_field}_id") != self.pk:
            return []
        return [page for page in site.root_page.get_descendants(inclusive=True).live().specific()
                if isinstance(page, RequiresLegalNotices)]

    def refuse_if_needed(self):
        dependents = self.dependent_live_form_pages()
        if dependents:
            raise ValidationError(
                gettext("This page is required while these pages with forms are live: %(pages)s. "
                        "Unpublish them first.") % {"pages": ", ".join(p.title for p in dependents)},
                code="legal_page_in_use",
            )

    def save(self, *args, **kwargs):
        if self.pk and not self.live:
            was_live = type(self).objects.filter(pk=self.pk, live=True).exists()
            if was_live:
                self.refuse_if_needed()
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self.refuse_if_needed()
        return super().delete(*args, **kwargs)


class ImprintPage(LegalPage):
    legal_setting_field = "imprint_page"
    template = "inbound/legal/imprint_page.html"

    class Meta:
        verbose_name = _("imprint page")
        verbose_name_plural = _("imprint pages")

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["legal_settings"] = legal.settings_for(self.get_site())
        return context


class PrivacyPage(LegalPage):
    legal_setting_field = "privacy_page"
    template = "inbound/legal/privacy_page.html"

    class Meta:
        verbose_name = _("privacy page")
        verbose_name_plural = _("privacy pages")

    def get_context(self, request, *args, **kwargs):
        from .privacy_notice import generated_notice

        context = super().get_context(request, *args, **kwargs)
        context["notice"] = generated_notice(self.get_site())
        return context
