"""The gated form: the editor's fields from the Wagtail form builder, plus the fixed parts.

The fixed parts cannot be removed by editors: the e-mail field first, one unticked checkbox
per offered consent purpose (F1, F2), and a honeypot. Every field has a length limit.
"""

import re
from collections import OrderedDict

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from wagtail.contrib.forms.forms import BaseForm, FormBuilder

from .consent import current_versions
from .leads import normalise_email

EMAIL_FIELD = "email"
HONEYPOT_FIELD = "website"
CONSENT_PREFIX = "consent_"
RESERVED_NAMES = {EMAIL_FIELD, HONEYPOT_FIELD}
MULTILINE_MAX_LENGTH = 5000
SINGLELINE_MAX_LENGTH = 255
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x85]")


def consent_field_name(purpose):
    return f"{CONSENT_PREFIX}{purpose.key.replace('-', '_')}"


def is_reserved_name(clean_name):
    return clean_name in RESERVED_NAMES or clean_name.startswith(CONSENT_PREFIX)


class SingleLineField(forms.CharField):
    """A one-line text: no line breaks or control characters, so it can never inject headers."""

    def validate(self, value):
        super().validate(value)
        if value and (LINE_BREAKS.search(value) or CONTROL_CHARACTERS.search(value)):
            raise ValidationError(_("Please enter a single line without control characters."),
                                  code="line_break")


class MultiLineField(forms.CharField):
    def validate(self, value):
        super().validate(value)
        if value and CONTROL_CHARACTERS.search(value):
            raise ValidationError(_("Please remove control characters."), code="control")


class NormalisedEmailField(forms.EmailField):
    default_error_messages = {"invalid": _("Please enter a valid e-mail address, e.g. name@example.com.")}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return normalise_email(value) if value else value

    def validate(self, value):
        if value and (LINE_BREAKS.search(value) or CONTROL_CHARACTERS.search(value)):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        super().validate(value)


class GatedFormBuilder(FormBuilder):
    """Builds the form of a gated page: e-mail, the editor's fields, consents, honeypot.

    `versions` is `{purpose_id: ConsentTextVersion}` as `consent.current_versions` returns it
    for the purposes and language; it is looked up (in one query) when not given.
    """

    def __init__(self, fields, purposes=(), language="de", privacy_url=None,
                 required_purpose_keys=(), versions=None):
        super().__init__(fields)
        self.purposes = list(purposes)
        self.language = language
        self.privacy_url = privacy_url
        self.required_purpose_keys = set(required_purpose_keys)
        self.versions = current_versions(self.purposes, language) if versions is None else versions

    def create_singleline_field(self, field, options):
        options["max_length"] = SINGLELINE_MAX_LENGTH
        return SingleLineField(**options)

    def create_multiline_field(self, field, options):
        options["max_length"] = MULTILINE_MAX_LENGTH
        options["widget"] = forms.Textarea(attrs={"rows": 4})
        return MultiLineField(**options)

    def create_email_field(self, field, options):
        return NormalisedEmailField(**options)

    def create_url_field(self, field, options):
        options["max_length"] = 2000
        return forms.URLField(**options)

    def consent_label(self, purpose):
        version = self.versions.get(purpose.pk)
        text = version.text if version else purpose.text_for(self.language)
        if self.privacy_url:
            return format_html('{} <a href="{}" target="_blank" rel="noopener">{}</a>', text,
                               self.privacy_url, _("Privacy notice"))
        return text

    @property
    def formfields(self):
        fields = OrderedDict()
        fields[EMAIL_FIELD] = NormalisedEmailField(
            label=_("E-mail address"), required=True,
            widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        )
        for name, field in super().formfields.items():
            if not is_reserved_name(name):
                fields[name] = field
        for purpose in self.purposes:
            fields[consent_field_name(purpose)] = forms.BooleanField(
                label=self.consent_label(purpose),
                required=purpose.key in self.required_purpose_keys,
                initial=False,  # F1: never pre-ticked
                error_messages={"required": _("The download on this page requires this consent.")},
            )
        fields[HONEYPOT_FIELD] = forms.CharField(
            label=_("Leave this field empty"), required=False, max_length=200,
            widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
        )
        return fields

    def get_form_class(self):
        return type("GatedForm", (GatedForm,), self.formfields)


class GatedForm(BaseForm):
    """Validation shared by every gated form."""

    def __init__(self, *args, purposes=(), text_versions=None, text_language=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.purposes = list(purposes)
        # The text versions the consent labels were built from ({purpose_id: version}) and
        # their language, so that capturing the submission need not look them up again.
        self.text_versions = text_versions
        self.text_language = text_language

    @property
    def is_bot(self):
        return bool(self.cleaned_data.get(HONEYPOT_FIELD))

    def ticked_purposes(self):
        return [p for p in self.purposes if self.cleaned_data.get(consent_field_name(p))]

    def answers(self):
        """The editor-defined answers, without e-mail, consents and honeypot."""
        return {name: value for name, value in self.cleaned_data.items()
                if not is_reserved_name(name)}

    def consent_field_names(self):
        return [consent_field_name(p) for p in self.purposes]
