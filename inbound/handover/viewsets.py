"""The hand-over log in the admin: hand-overs and webhook deliveries, read-only and per site (S4).

Both lists are for marketers and administrators: they need `inbound.view_handover` and the
lead permission `inbound.view_lead`, and show only rows of the sites whose leads the user may
see (`admin_access.sites_for_user`); a row of another site does not exist (404). Sales users
(the "Sales" group has no `inbound.view_lead`) see their leads only in the sales inbox, so
rejected leads and the webhook log stay hidden from them (N5).
A failed delivery can be sent again ("retry now", POST with a confirmation page), which needs
`inbound.change_webhookdelivery` as well and is written to Wagtail's audit log.
Registered in `inbound/wagtail_hooks.py`.
"""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from wagtail.admin.ui.menus import MenuItem
from wagtail.admin.ui.tables import Column, DateColumn, StatusTagColumn
from wagtail.admin.views import generic
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.viewsets.base import ViewSetGroup
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.log_actions import log
from wagtail.permission_policies import ModelPermissionPolicy

from .. import admin_access
from . import access, webhooks
from .models import HandOver, WebhookDelivery

RETRY_ACTION = "inbound.webhook_retry"
RETRY_PERMISSION = "inbound.change_webhookdelivery"


def sites_for_user(user):
    """The sites whose hand-overs the user sees (none without `inbound.view_handover` and
    `inbound.view_lead`)."""
    from wagtail.models import Site

    if not may_view_log(user):
        return Site.objects.none()
    return admin_access.sites_for_user(user)


def may_view_log(user):
    return access.can_view_handovers(user) and admin_access.can_view_leads(user)


def may_retry(user):
    return may_view_log(user) and user.has_perm(RETRY_PERMISSION)


class HandOverLogPermissionPolicy(ModelPermissionPolicy):
    """"view" with `inbound.view_handover`, per row only on the user's sites; nobody adds, edits
    or deletes (the processor writes these rows)."""

    def user_has_permission(self, user, action):
        return action == "view" and may_view_log(user)

    def user_has_any_permission(self, user, actions):
        return any(self.user_has_permission(user, action) for action in actions)

    def users_with_any_permission(self, actions):
        if "view" not in actions:
            return get_user_model().objects.none()
        return ModelPermissionPolicy(HandOver).users_with_permission("view")

    def user_has_permission_for_instance(self, user, action, instance):
        return (self.user_has_permission(user, action)
                and sites_for_user(user).filter(pk=instance.site_id).exists())

    def user_has_any_permission_for_instance(self, user, actions, instance):
        return any(self.user_has_permission_for_instance(user, action, instance) for action in actions)

    def instances_user_has_any_permission_for(self, user, actions):
        if not self.user_has_any_permission(user, actions):
            return self.model._default_manager.none()
        return self.model._default_manager.filter(site__in=sites_for_user(user))


# --- lists -----------------------------------------------------------------------------------

class HandOverIndexView(generic.IndexView):
    any_permission_required = ["view"]
    page_title = _("Hand-overs to sales")

    def get_base_queryset(self):
        return (HandOver.objects.filter(site__in=sites_for_user(self.request.user))
                .select_related("lead", "site"))


class WebhookDeliveryIndexView(generic.IndexView):
    any_permission_required = ["view"]
    page_title = _("Webhook deliveries")

    def get_base_queryset(self):
        return (WebhookDelivery.objects.filter(site__in=sites_for_user(self.request.user))
                .select_related("site"))

    def get_list_more_buttons(self, instance):
        buttons = super().get_list_more_buttons(instance)
        if instance.status == WebhookDelivery.FAILED and may_retry(self.request.user):
            url = reverse("webhook_deliveries:retry", args=[instance.pk])
            buttons.append(MenuItem(_("Retry now"), url=url, icon_name="resubmit", priority=10))
        return buttons


def _status(handover):
    if handover.processed_at is None:
        return gettext("waiting") if handover.attempts == 0 else gettext("retrying")
    return gettext("not handed over") if handover.last_error else gettext("done")


class HandOverViewSet(ModelViewSet):
    name = "hand_overs"
    model = HandOver
    icon = "user"
    menu_label = _("Hand-overs")
    menu_order = 1
    add_to_reference_index = False
    inspect_view_enabled = False
    copy_view_enabled = False
    index_view_class = HandOverIndexView
    ordering = ["-created_at", "-pk"]
    list_per_page = 50
    list_display = [
        Column("lead", label=_("Lead"), accessor="lead.email"),
        Column("site", label=_("Site"), accessor="site.site_name"),
        Column("score", label=_("Score"), sort_key="score"),
        DateColumn("created_at", label=_("Handed over"), sort_key="created_at"),
        StatusTagColumn("status", label=_("Status"), accessor=_status,
                        primary=lambda handover: handover.processed_at is not None),
        DateColumn("mail_sent_at", label=_("Sales notified")),
        Column("attempts", label=_("Attempts")),
        DateColumn("next_attempt_at", label=_("Next attempt")),
        Column("last_error", label=_("Note or last error")),
    ]

    def get_common_view_kwargs(self, **kwargs):
        return super().get_common_view_kwargs(add_url_name=None, edit_url_name=None, delete_url_name=None,
                                              history_url_name=None, usage_url_name=None, **kwargs)

    def get_urlpatterns(self):
        return [path("", self.index_view, name="index"),
                path("results/", self.index_results_view, name="index_results")]

    def get_permissions_to_register(self):
        return Permission.objects.filter(content_type=ContentType.objects.get_for_model(HandOver),
                                         codename__in=["view_handover"])


class WebhookRetryView(WagtailAdminTemplateMixin, TemplateView):
    """Retry a failed delivery: GET asks for confirmation, POST queues it for the next run."""

    template_name = "inbound/handover/retry_confirm.html"
    page_title = _("Retry webhook delivery")
    header_icon = "resubmit"

    def dispatch(self, request, *args, **kwargs):
        if not may_retry(request.user):
            raise PermissionDenied
        self.delivery = get_object_or_404(
            WebhookDelivery.objects.filter(site__in=sites_for_user(request.user)), pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_page_subtitle(self):
        return f"#{self.delivery.pk}"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update({"delivery": self.delivery, "failed": self.delivery.status == WebhookDelivery.FAILED,
                        "index_url": reverse("webhook_deliveries:index")})
        return context

    def post(self, request, *args, **kwargs):
        if webhooks.retry_now(self.delivery):
            log(self.delivery, RETRY_ACTION, user=request.user, data={"attempts": self.delivery.attempts})
            self._queue()
            messages.success(request, gettext("The delivery is sent again with the next run (within a "
                                              "minute)."))
        else:
            messages.error(request, gettext("Only a failed delivery can be retried."))
        return redirect("webhook_deliveries:index")

    @staticmethod
    def _queue():
        from django.db import transaction

        from ..optin import enqueue_safely
        from ..tasks import deliver_webhooks

        transaction.on_commit(lambda: enqueue_safely(deliver_webhooks))


class WebhookDeliveryViewSet(ModelViewSet):
    name = "webhook_deliveries"
    model = WebhookDelivery
    icon = "link-external"
    menu_label = _("Webhook deliveries")
    menu_order = 2
    add_to_reference_index = False
    inspect_view_enabled = False
    copy_view_enabled = False
    index_view_class = WebhookDeliveryIndexView
    ordering = ["-created_at", "-pk"]
    list_per_page = 50
    list_filter = ["status"]
    list_display = [
        "event",  # the title column, which carries the row's "retry now" button
        Column("id", label=_("Delivery"), accessor="pk"),
        Column("site", label=_("Site"), accessor="site.site_name"),
        StatusTagColumn("status", label=_("Status"), accessor="get_status_display",
                        primary=lambda delivery: delivery.status == WebhookDelivery.DELIVERED),
        Column("attempts", label=_("Attempts")),
        Column("last_status_code", label=_("Last HTTP status")),
        Column("last_error", label=_("Last error")),
        DateColumn("next_attempt_at", label=_("Next attempt")),
        DateColumn("created_at", label=_("Created"), sort_key="created_at"),
        DateColumn("delivered_at", label=_("Delivered")),
    ]

    def get_common_view_kwargs(self, **kwargs):
        return super().get_common_view_kwargs(add_url_name=None, edit_url_name=None, delete_url_name=None,
                                              history_url_name=None, usage_url_name=None, **kwargs)

    def get_urlpatterns(self):
        return [path("", self.index_view, name="index"),
                path("results/", self.index_results_view, name="index_results"),
                path("<int:pk>/retry/", WebhookRetryView.as_view(), name="retry")]

    def get_permissions_to_register(self):
        return Permission.objects.filter(content_type=ContentType.objects.get_for_model(WebhookDelivery),
                                         codename__in=["change_webhookdelivery"])


class HandOverViewSetGroup(ViewSetGroup):
    menu_label = _("Hand-over log")
    menu_icon = "resubmit"
    menu_order = 280
    items = (HandOverViewSet, WebhookDeliveryViewSet)
