"""When to recompute scores.

- Every `inbound.activity.lead_activity` (submission, confirmation, download, consented tracking,
  a nurture click, a change of consent, restriction or objection) queues the leads' update. The
  signal arrives after the commit, so the task sees the change; if the broker is down the
  request still succeeds (`enqueue_safely` logs it) and the nightly recomputation catches up.
- Saving or deleting a scoring rule or the scoring settings queues the recomputation of the
  whole site once the change commits: the history then says "rule changed" for what it moved.
"""

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from ..activity import lead_activity
from ..optin import enqueue_safely
from .models import ScoringRule, ScoringSettings


def queue_update(sender, lead_ids, reason, **kwargs):
    from ..tasks import score_leads

    enqueue_safely(score_leads, sorted(lead_ids))


def queue_site_recompute(sender, instance, **kwargs):
    from ..tasks import recompute_site_scores

    site_id = instance.site_id
    transaction.on_commit(lambda: enqueue_safely(recompute_site_scores, site_id))


def queue_recompute_on_personas(sender, instance, action, **kwargs):
    if action.startswith("post_"):
        queue_site_recompute(sender, instance)


def connect_signals():
    lead_activity.connect(queue_update, dispatch_uid="inbound.scoring.queue_update")
    for model in (ScoringRule, ScoringSettings):
        for signal in (post_save, post_delete):
            signal.connect(queue_site_recompute, sender=model,
                           dispatch_uid=f"inbound.scoring.recompute.{model.__name__}.{signal is post_save}")
    m2m_changed.connect(queue_recompute_on_personas, sender=ScoringSettings.mql_personas.through,
                        dispatch_uid="inbound.scoring.recompute.mql_personas")
