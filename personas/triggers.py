"""When to recompute: every `inbound.activity.lead_activity` queues the leads' recomputation.

The signal arrives after the commit of the change, so the task sees it. If the broker is down the
request still succeeds (`enqueue_safely` logs it) and the nightly `recompute_all_personas` beat
task catches up.
"""

from inbound.activity import lead_activity
from inbound.optin import enqueue_safely


def queue_recompute(sender, lead_ids, reason, **kwargs):
    from .tasks import recompute_lead_personas

    enqueue_safely(recompute_lead_personas, sorted(lead_ids))


def connect_signals():
    lead_activity.connect(queue_recompute, dispatch_uid="personas.triggers.queue_recompute")
