from django.utils.translation import gettext_lazy as _
from wagtail import hooks

from .demo_leads import REMOVED_ACTION


@hooks.register("register_log_actions")
def register_demo_log_actions(actions):
    actions.register_action(REMOVED_ACTION, _("Remove demo leads"), _("Synthetic demo leads removed"))
