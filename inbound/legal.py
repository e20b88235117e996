"""The site's legal identity as mails and pages need it.

Until the legal settings (imprint fields, legal pages) exist, this returns a clearly marked
placeholder, so every mail already carries a footer slot that the legal-notices work fills.
"""

from django.utils.translation import gettext as _


def footer_context(site):
    """Controller identity and legal links for a site, for page and mail footers."""
    return {
        "controller_lines": [_("[Imprint details not configured yet]")],
        "imprint_url": None,
        "privacy_url": None,
        "complete": False,
    }
