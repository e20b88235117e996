"""Registration only: the logic lives in the plugin's modules."""

from django.http import Http404
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.permissions import register_permission_policy
from wagtail.snippets.models import register_snippet

from . import admin_access, admin_views, legal_admin, privacy, reports, retention, tracking
from .consent import ConsentPurpose
from .leads import Lead
from .nurture import admin_views as nurture_admin
from .nurture.conditions import SCORES_HOOK
from .nurture.models import Track
from .nurture.viewsets import TrackPermissionPolicy, TrackViewSet
from .retention import RetentionRun
from .scoring import engine as scoring_engine
from .scoring.export import scoring_export
from .scoring.models import ScoringRule
from .scoring.viewsets import ScoringRulePermissionPolicy, ScoringRuleViewSet
from .viewsets import (
    ConsentPurposeViewSet,
    LeadPermissionPolicy,
    LeadViewSetGroup,
    NoDeletePermissionPolicy,
    RetentionRunPermissionPolicy,
)

register_permission_policy(Lead, LeadPermissionPolicy(Lead))
register_permission_policy(RetentionRun, RetentionRunPermissionPolicy(RetentionRun))
register_permission_policy(ConsentPurpose, NoDeletePermissionPolicy(ConsentPurpose))
register_snippet(ConsentPurposeViewSet)


@hooks.register("register_admin_viewset")
def register_lead_admin():
    return LeadViewSetGroup()


@hooks.register("register_log_actions")
def register_lead_log_actions(actions):
    actions.register_action(admin_views.VIEW_ACTION, _("View lead"), _("Lead viewed"))
    actions.register_action(admin_views.EXPORT_ACTION, _("Export consent proof"),
                            _("Consent proof exported"))
    actions.register_action(admin_views.DATA_EXPORT_ACTION, _("Export lead data"),
                            _("All data of the lead exported"))
    actions.register_action(retention.RETENTION_DELETE_ACTION, _("Delete lead (retention)"),
                            _("Lead deleted when its retention period ended"))


@hooks.register("before_serve_document")
def protect_gated_assets(document, request):
    """D7: a gated asset is never served through the document's own URL to the public."""
    if admin_access.is_gated_asset(document) and not admin_access.can_use_admin(request.user):
        raise Http404


@hooks.register("filter_form_submissions_for_user")
def hide_gated_submissions_without_lead_permission(user, editable_forms):
    """Editors without the lead permission, or outside the page's site, see no gated answers."""
    return admin_access.filter_form_pages_for_user(user, editable_forms)


# --- legal notices (L1, L4) ------------------------------------------------------------------
hooks.register("before_publish_page", legal_admin.refuse_publish_without_legal_notices)
hooks.register("before_unpublish_page", legal_admin.refuse_removing_legal_page)
hooks.register("before_delete_page", legal_admin.refuse_removing_legal_page)
hooks.register("construct_homepage_panels", legal_admin.add_legal_status_panel)


@hooks.register("register_log_actions")
def register_legal_log_actions(actions):
    actions.register_action("inbound.publish_refused", _("Publishing refused"),
                            _("Publishing refused: legal notices incomplete"))


@hooks.register("register_log_actions")
def register_privacy_log_actions(actions):
    actions.register_action(privacy.ERASE_ACTION, _("Erase lead"), _("Lead erased"))
    actions.register_action(privacy.RESTRICT_ACTION, _("Restrict lead"), _("Lead restriction changed"))
    actions.register_action(privacy.OBJECT_ACTION, _("Lead objection"), _("Lead objection changed"))
    actions.register_action(privacy.EXPORT_SELF_ACTION, _("Self-service export"),
                            _("Lead data exported by the person"))


# --- tracking and cookie banner (T1-T5) ---------------------------------------------------------
@hooks.register("before_serve_page")
def note_page_view(page, request, serve_args, serve_kwargs):
    """Recorded after the response, and only with statistics consent (inbound/tracking.py)."""
    tracking.note_page_view(request, page)


hooks.register("register_admin_urls", reports.admin_urls)
hooks.register("register_reports_menu_item", reports.menu_item)


# --- nurture tracks (issue 8) -----------------------------------------------------------------

register_permission_policy(Track, TrackPermissionPolicy(Track))
register_snippet(TrackViewSet)
hooks.register(admin_views.LEAD_DETAIL_PANELS_HOOK, nurture_admin.lead_mails_panel)


@hooks.register("register_log_actions")
def register_nurture_log_actions(actions):
    actions.register_action(nurture_admin.PAUSE_ACTION, _("Pause track"), _("Nurture track paused"))
    actions.register_action(nurture_admin.RESUME_ACTION, _("Resume track"), _("Nurture track resumed"))
    actions.register_action(nurture_admin.ENROL_ACTION, _("Enrol leads"), _("Leads enrolled in the track"))
    actions.register_action(nurture_admin.TEST_MAIL_ACTION, _("Send test mail"),
                            _("Test mail of a step sent to staff"))


# --- lead scoring (issue 9) -------------------------------------------------------------------

register_permission_policy(ScoringRule, ScoringRulePermissionPolicy(ScoringRule))
register_snippet(ScoringRuleViewSet)
hooks.register(SCORES_HOOK, scoring_engine.totals)  # nurture's "score at least N"
hooks.register(privacy.EXPORT_HOOK, scoring_export)  # `scores` and `lifecycle_history` (R1)


# --- sales inbox (issue 9, N5) ----------------------------------------------------------------
from .handover import sales_admin  # noqa: E402

hooks.register("register_admin_urls", sales_admin.admin_urls)
hooks.register("register_admin_menu_item", sales_admin.menu_item)  # shown with inbound.view_handover
hooks.register("construct_homepage_panels", sales_admin.add_waiting_panel)
hooks.register("register_log_actions", sales_admin.register_log_actions)


# --- hand-over to sales (issue 9) ---------------------------------------------------------------
from .handover import viewsets as handover_viewsets  # noqa: E402
from .handover.models import HandOver, WebhookDelivery  # noqa: E402

register_permission_policy(HandOver, handover_viewsets.HandOverLogPermissionPolicy(HandOver))
register_permission_policy(WebhookDelivery, handover_viewsets.HandOverLogPermissionPolicy(WebhookDelivery))


@hooks.register("register_admin_viewset")
def register_hand_over_log():
    return handover_viewsets.HandOverViewSetGroup()


@hooks.register("register_log_actions")
def register_hand_over_log_actions(actions):
    actions.register_action(handover_viewsets.RETRY_ACTION, _("Retry webhook delivery"),
                            _("Failed webhook delivery queued again"))


# --- funnel dashboard and score history (issue 9) ---------------------------------------------
from .scoring import lead_panel as scoring_lead_panel  # noqa: E402
from .scoring import report_views as funnel_report  # noqa: E402

hooks.register(admin_views.LEAD_DETAIL_PANELS_HOOK, scoring_lead_panel.render_lead_score_panel)
hooks.register("register_admin_urls", funnel_report.admin_urls)
hooks.register("register_reports_menu_item", funnel_report.menu_item)  # shown with inbound.view_lead
hooks.register("construct_homepage_panels", funnel_report.add_funnel_panel)
