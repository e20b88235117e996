"""The gated page type: an e-book or checklist exchanged for an e-mail address and consent.

Extension points follow `wagtail.contrib.forms`: override `get_form_class`,
`process_form_submission` or `render_landing_page` to change one step.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.template.response import TemplateResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalKey, ParentalManyToManyField
from wagtail.admin.panels import FieldPanel, FieldRowPanel, InlinePanel, MultiFieldPanel
from wagtail.contrib.forms.models import AbstractForm, AbstractFormField, AbstractFormSubmission
from wagtail.contrib.forms.panels import FormSubmissionsPanel
from wagtail.fields import RichTextField, StreamField
from wagtail.models import Site
from wagtail.search import index

from . import capture, conf, form_cache, known_visitor, legal, profiling
from .blocks import IntroBlock
from .client import ClientInfo, hit_rate_limit
from .consent import current_versions
from .forms import GatedFormBuilder, is_reserved_name
from .legal_pages import RequiresLegalNotices
from .page_forms import GatedPageAdminForm


class GatedFormField(AbstractFormField):
    """An extra question an editor adds to a gated form."""

    page = ParentalKey("GatedPage", on_delete=models.CASCADE, related_name="form_fields")
    ask_once = models.BooleanField(
        _("ask once"), default=False,
        help_text=_("Progressive profiling: a known visitor with personalisation consent who "
                    "already answered this question is not asked again."),
    )

    panels = AbstractFormField.panels + [FieldPanel("ask_once")]

    def clean(self):
        super().clean()
        name = self.clean_name or self.get_field_clean_name()
        if is_reserved_name(name):
            raise ValidationError({"label": _("This label is reserved for the built-in fields; "
                                              "please choose another one.")})


class GatedFormSubmission(AbstractFormSubmission):
    """The answers of one submission, linked to the lead so erasure can find them."""

    lead = models.ForeignKey("inbound.Lead", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="submissions")

    class Meta(AbstractFormSubmission.Meta):
        verbose_name = _("form submission")
        verbose_name_plural = _("form submissions")


class GatedPage(RequiresLegalNotices, AbstractForm):
    """An e-book or checklist that visitors download after double opt-in."""

    EBOOK = "ebook"
    CHECKLIST = "checklist"
    KIND_CHOICES = [(EBOOK, _("E-book")), (CHECKLIST, _("Checklist"))]

    kind = models.CharField(_("kind"), max_length=16, choices=KIND_CHOICES, default=EBOOK)
    intro = StreamField(IntroBlock(), verbose_name=_("intro"), blank=True)
    cover_image = models.ForeignKey("wagtailimages.Image", on_delete=models.SET_NULL, null=True,
                                    blank=True, related_name="+", verbose_name=_("cover image"))
    asset = models.ForeignKey(
        "wagtaildocs.Document", on_delete=models.PROTECT, null=True, blank=False, related_name="+",
        verbose_name=_("file to download"),
        help_text=_("Keep it in a private collection: it is only delivered through expiring "
                    "per-lead links."),
    )
    thank_you_text = RichTextField(
        _("thank-you text"), blank=True,
        help_text=_("Shown after submitting, next to the request to check the inbox."),
    )
    confirmation_text = RichTextField(
        _("confirmation text"), blank=True,
        help_text=_("Shown after the visitor confirmed their address, above the download."),
    )
    purposes = ParentalManyToManyField(
        "inbound.ConsentPurpose", blank=True, verbose_name=_("consent purposes offered"),
        help_text=_("Each purpose is shown as its own unticked checkbox."),
    )
    require_marketing_consent = models.BooleanField(
        _("download requires marketing consent"), default=False,
        help_text=_("Off by default (coupling ban, Art. 7(4) GDPR). If on, a plain notice before "
                    "the form says that consent is the price of the download."),
    )
    coupling_notice = models.TextField(
        _("coupling notice"), blank=True, max_length=1000,
        help_text=_("Optional wording of that notice; a default text is used if empty."),
    )

    progressive_questions = models.PositiveSmallIntegerField(
        _("new questions per visit"), default=0,
        help_text=_("Progressive profiling: how many unanswered \"ask once\" questions a known "
                    "visitor with personalisation consent sees per form (0: all of them). "
                    "Everyone else sees the whole form."),
    )

    content_panels = AbstractForm.content_panels + [
        FormSubmissionsPanel(),
        FieldPanel("kind"),
        FieldPanel("intro"),
        FieldRowPanel([FieldPanel("cover_image"), FieldPanel("asset")]),
        MultiFieldPanel([
            FieldPanel("purposes", widget=forms.CheckboxSelectMultiple),
            FieldPanel("require_marketing_consent"),
            FieldPanel("coupling_notice"),
        ], heading=_("Consent")),
        InlinePanel("form_fields", label=_("Extra form fields"),
                    help_text=_("The e-mail field and the consent checkboxes are always present.")),
        FieldPanel("progressive_questions"),
        FieldPanel("thank_you_text"),
        FieldPanel("confirmation_text"),
    ]
    search_fields = AbstractForm.search_fields + [index.SearchField("intro")]

    template = "inbound/gated_page.html"
    landing_page_template = "inbound/gated_page_landing.html"
    base_form_class = GatedPageAdminForm

    class Meta:
        verbose_name = _("gated download page")
        verbose_name_plural = _("gated download pages")

    # --- validation --------------------------------------------------------------------
    def clean(self):
        super().clean()
        site = self.get_site()
        if self.pk and site:
            foreign = [p.name for p in self.purposes.all() if p.site_id != site.pk]
            if foreign:
                raise ValidationError({"purposes": _("These purposes belong to another site: %s")
                                       % ", ".join(foreign)})

    # --- form --------------------------------------------------------------------------
    def offered_purposes(self):
        return sorted(self.purposes.filter(active=True), key=lambda p: (p.sort_order, p.name))

    def required_purpose_keys(self, purposes):
        if not self.require_marketing_consent:
            return set()
        return {p.key for p in purposes if p.is_marketing}

    def site_for_request(self, request):
        """The site of this page, as `get_site()` finds it, without a query where the site
        serving the request is that site (routing has already looked it up)."""
        if request is None:
            return self.get_site()
        candidates = self._get_relevant_site_root_paths(request)  # cached on the request
        site = Site.find_for_request(request)
        if candidates and site is not None and candidates[0].site_id == site.pk:
            return site
        return self.get_site()

    def privacy_url(self, request=None):
        """Absolute URL of the site's live privacy page, for the consent labels (None if missing).

        With a request of this page's site, the lookup is shared with the page footer."""
        site = self.site_for_request(request)
        if site is None:
            return None
        if request is not None and site is Site.find_for_request(request):
            return legal.links_for_request(request)["privacy_full_url"]
        return legal.page_urls(site)["privacy_url"]

    def known_lead_id(self, request):
        """The lead whose answers shorten the form for this request (progressive profiling,
        `inbound.profiling`), or None: the visitor is not known, or it is a preview, which
        shows the editor the whole form."""
        if request is None or getattr(request, "is_preview", False):
            return None
        return known_visitor.known_lead_id(request)

    def form_fields_for(self, request):
        """The extra questions this request's visitor is asked: all of them, or for a known
        visitor those progressive profiling leaves (`inbound.profiling.fields_to_ask`).
        Override to choose the questions differently."""
        fields = self.get_form_fields()
        lead_id = self.known_lead_id(request)
        if lead_id is None:
            return fields
        answered = profiling.answered_field_names(lead_id, Site.find_for_request(request))
        return profiling.fields_to_ask(fields, answered, self.progressive_questions)

    def get_form_class(self, purposes=None, request=None, versions=None):
        """The form class; `versions` as `consent.current_versions` returns them (looked up
        if not given), `request` to share the per-request site and legal lookups and to
        leave out what a known visitor already answered (`form_fields_for`)."""
        purposes = self.offered_purposes() if purposes is None else purposes
        language = (get_language() or "de")[:2]
        builder = GatedFormBuilder(
            self.form_fields_for(request), purposes=purposes, language=language,
            privacy_url=self.privacy_url(request),
            required_purpose_keys=self.required_purpose_keys(purposes),
            versions=current_versions(purposes, language) if versions is None else versions,
        )
        return builder.get_form_class()

    def get_form(self, *args, request=None, **kwargs):
        purposes = self.offered_purposes()
        language = (get_language() or "de")[:2]
        versions = current_versions(purposes, language)
        form_class = self.get_form_class(purposes, request=request, versions=versions)
        kwargs.setdefault("page", self)
        return form_class(*args, purposes=purposes, text_versions=versions, text_language=language,
                          **kwargs)

    def get_submission_class(self):
        return GatedFormSubmission

    def get_data_fields(self):
        return [("submit_time", _("Submission date")), ("email", _("E-mail address"))] + [
            (field.clean_name, field.label) for field in self.get_form_fields()
        ] + [("consents", _("Consents given"))]

    # --- serving -----------------------------------------------------------------------
    def client_is_rate_limited(self, client):
        limit = conf.get("INBOUND_SUBMISSIONS_PER_CLIENT_PER_HOUR")
        return hit_rate_limit("client", client.ip_truncated or "unknown", limit)

    def process_form_submission(self, form, client=None, site=None):
        """Store the submission and start the double opt-in. Returns the submission or None."""
        return capture.capture_submission(self, form, client or ClientInfo("", "de"),
                                          site=site).submission

    def serve(self, request, *args, **kwargs):
        response = self.serve_form(request, *args, **kwargs)
        if self.known_lead_id(request) is not None:  # cached on the request: no query here
            # The form is this visitor's own (progressive profiling): no shared cache may keep it.
            patch_cache_control(response, private=True)
            patch_vary_headers(response, ("Cookie",))
        return response

    def serve_form(self, request, *args, **kwargs):
        """The form (GET), or the submission and its landing page (POST)."""
        if request.method == "POST":
            form = self.get_form(request.POST, request=request, user=request.user)
            client = ClientInfo.from_request(request)
            if self.client_is_rate_limited(client):
                form.is_valid()
                form.add_error(None, _("Too many requests from your network. Please try again in "
                                       "an hour."))
                return self.render_form(request, form, status=429)
            if form.is_valid():
                submission = self.process_form_submission(form, client,
                                                          site=self.site_for_request(request))
                return self.render_landing_page(request, submission, *args, **kwargs)
            return self.render_form(request, form, status=400)
        return self.serve_unbound_form(request)

    def serve_unbound_form(self, request):
        """The page with its form as every visitor first sees it.

        The form's HTML comes from `inbound.form_cache` (the CSRF token stays per request);
        only on a cache miss is the form built and rendered. Previews are never cached, nor is
        the form of a known visitor, which leaves out what they already answered.
        """
        if not form_cache.is_cacheable(request) or self.known_lead_id(request) is not None:
            return self.render_form(request, self.get_form(request=request, user=request.user))
        key = form_cache.key_for(self, request)
        fields_html = form_cache.get(key)
        if fields_html is None:
            fields_html = self.render_form_fields(request, self.get_form(request=request,
                                                                        user=request.user))
            form_cache.store(key, fields_html)
        return self.render_form(request, None, form_fields_html=fields_html)

    def render_form_fields(self, request, form):
        """The HTML inside the page's `<form>` except the CSRF token, as the page shows it."""
        context = self.get_context(request)
        context["form"] = form
        return form_cache.render_fields(self.get_template(request), context, request)

    def render_form(self, request, form, status=200, form_fields_html=None):
        """The page with the form; `form_fields_html` (from `render_form_fields`) instead of
        rendering `form` again."""
        context = self.get_context(request)
        context["form"] = form
        if form_fields_html is not None:
            context["form_fields_html"] = form_fields_html
        return TemplateResponse(request, self.get_template(request), context, status=status)

    def render_landing_page(self, request, form_submission=None, *args, **kwargs):
        """The same "check your inbox" answer whether or not the address was known (D8)."""
        context = self.get_context(request)
        return TemplateResponse(request, self.get_landing_page_template(request), context)

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["coupling_notice"] = self.coupling_notice_text() if self.require_marketing_consent else ""
        return context

    def coupling_notice_text(self):
        return self.coupling_notice or _(
            "Please note: this download is offered in exchange for your e-mail address and your "
            "consent to receive marketing e-mails from us. You can withdraw that consent at any time."
        )
