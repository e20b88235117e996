"""The site's own page types (home, standard and contact page) and the worker heartbeat."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalKey
from wagtail.admin.panels import FieldPanel, FieldRowPanel, InlinePanel, MultiFieldPanel
from wagtail.contrib.forms.models import AbstractEmailForm, AbstractFormField
from wagtail.contrib.forms.panels import FormSubmissionsPanel
from wagtail.fields import RichTextField, StreamField
from wagtail.models import Page
from wagtail.search import index

from inbound.legal_pages import RequiresLegalNotices

from .blocks import BodyBlock


class HomePage(Page):
    """The root page of a site."""

    intro = RichTextField(_("intro"), blank=True)
    body = StreamField(BodyBlock(), verbose_name=_("body"), blank=True)

    content_panels = Page.content_panels + [FieldPanel("intro"), FieldPanel("body")]
    search_fields = Page.search_fields + [index.SearchField("intro"), index.SearchField("body")]
    parent_page_types = ["wagtailcore.Page"]

    class Meta:
        verbose_name = _("home page")
        verbose_name_plural = _("home pages")


class StandardPage(Page):
    """A content page with a StreamField body."""

    intro = models.TextField(_("intro"), blank=True, max_length=1000)
    body = StreamField(BodyBlock(), verbose_name=_("body"), blank=True)

    content_panels = Page.content_panels + [FieldPanel("intro"), FieldPanel("body")]
    search_fields = Page.search_fields + [index.SearchField("intro"), index.SearchField("body")]

    class Meta:
        verbose_name = _("standard page")
        verbose_name_plural = _("standard pages")


class ContactFormField(AbstractFormField):
    """A field of the contact form, as the editor defines it."""

    page = ParentalKey("ContactPage", on_delete=models.CASCADE, related_name="form_fields")


class ContactPage(RequiresLegalNotices, AbstractEmailForm):
    """A plain Wagtail form page: a contact form whose answers are stored and optionally mailed.

    It asks for no marketing consent; that is the job of the plugin's gated pages.
    """

    intro = RichTextField(_("intro"), blank=True)
    thank_you_text = RichTextField(_("thank-you text"), blank=True,
                                   help_text=_("Shown after the form was sent."))

    content_panels = AbstractEmailForm.content_panels + [
        FormSubmissionsPanel(),
        FieldPanel("intro"),
        InlinePanel("form_fields", label=_("Form fields")),
        FieldPanel("thank_you_text"),
        MultiFieldPanel([
            FieldRowPanel([FieldPanel("from_address"), FieldPanel("to_address")]),
            FieldPanel("subject"),
        ], heading=_("E-mail notification")),
    ]
    search_fields = AbstractEmailForm.search_fields + [index.SearchField("intro")]

    class Meta:
        verbose_name = _("contact page")
        verbose_name_plural = _("contact pages")


class WorkerHeartbeat(models.Model):
    """One row that the web process stamps when it asks and a Celery worker stamps when it answers.

    It proves, in the database, that a task queued from a request ran on a worker.
    """

    requested_at = models.DateTimeField(_("requested at"), null=True)
    answered_at = models.DateTimeField(_("answered at"), null=True)
    answered_by = models.CharField(_("answered by"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("worker heartbeat")

    def __str__(self):
        return f"heartbeat answered {self.answered_at or 'never'}"
