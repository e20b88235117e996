"""Recomputing scores and lifecycle stages: any number of leads, a fixed number of queries.

`recompute(leads)` is both the per-event update (a Celery task passes the few leads an event
concerns) and the full rebuild after a rule change (`manage.py recompute_scores`, the nightly
beat task). Either way, in one transaction:

1. every lead gets a `LeadScore` row if it has none (one INSERT … SELECT), and the rows are
   locked in lead order (`SELECT … FOR UPDATE`): two recomputations of the same lead run one
   after the other, so neither writes history from a stale read. Nothing else locks these
   rows; requests and the nurture dispatcher only read them.
2. the leads, rules, tags, events, answers, the current contributions (the history summed per
   rule and event), the MQL settings, personas and stages are read set-wise, the bulky ones as
   streams sorted by lead that are walked in step, so memory holds one lead at a time;
3. each lead is scored in memory (`rules.score_lead`) and compared with its contributions;
4. the differences are written through staged tables (`inbound.setwise`): one INSERT of score
   changes, one UPDATE of changed totals, one UPDATE of `computed_at`, and one UPDATE plus two
   INSERTs for stages. Updates join the staged table (`UPDATE … FROM`, PostgreSQL and SQLite ≥
   3.33) rather than read it in a correlated subquery per row: the temporary table has no index,
   so a subquery per row would scan it once per updated row (quadratic; 100,000 changed totals
   took minutes that way).

The number of queries depends on the rule configuration (topic rules need the tags, answer
rules the submissions, persona requirements the personas), never on the number of leads or
events. A single lead is recomputed from all its events: still the same fixed number of
queries per event, with rows read growing with the lead's own history (kept small by decay,
caps and the retention of raw events).
"""

import itertools
from dataclasses import dataclass
from operator import itemgetter

from django.db import connection, transaction
from django.db.models import Max, Sum
from django.utils import timezone

from .. import setwise
from ..known_visitor import confirmed_tracking_consent
from ..leads import LeadEvent
from ..pages import GatedFormSubmission
from . import lifecycle
from .models import (
    FIT,
    MQL,
    LeadScore,
    LifecycleStage,
    ScoreChange,
    ScoringRule,
    ScoringSettings,
    StageChange,
)
from .rules import EMPTY, RuleSet, latest_answers, score_lead

CHUNK_SIZE = 5000  # leads scored between two progress reports
FETCH_SIZE = 5000  # rows per fetch of the streamed reads


@dataclass
class RecomputeResult:
    leads: int = 0
    scores_changed: int = 0  # leads whose fit, engagement or total changed
    changes: int = 0  # score-change rows written
    stages_changed: int = 0


class _Stream:
    """Rows sorted by lead id (their first element), handed out one lead at a time."""

    def __init__(self, rows):
        self._rows = rows
        self._groups = itertools.groupby(rows, key=itemgetter(0))
        self._current = next(self._groups, None)

    def take(self, lead_id):
        while self._current is not None and self._current[0] < lead_id:
            self._current = next(self._groups, None)
        if self._current is None or self._current[0] != lead_id:
            return []
        rows = list(self._current[1])
        self._current = next(self._groups, None)
        return rows

    def close(self):
        """Release the cursor (a server-side one on PostgreSQL) before writing."""
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()


def _db_time(value):
    """A datetime as the backend stores it, for raw SQL (SQLite: the ORM's text format)."""
    return connection.ops.adapt_datetimefield_value(value)


def _subquery(leads):
    return leads.order_by().values("pk").query.sql_with_params()


def _ensure_score_rows(leads, now):
    qn = connection.ops.quote_name
    table = qn(LeadScore._meta.db_table)
    lead_table = qn(leads.model._meta.db_table)
    sql, params = _subquery(leads)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (lead_id, fit, engagement, total, computed_at) "
            f"SELECT l.id, 0, 0, 0, %s FROM {lead_table} l WHERE l.id IN ({sql}) AND "
            f"NOT EXISTS (SELECT 1 FROM {table} x WHERE x.lead_id = l.id) "
            f"ORDER BY l.id ON CONFLICT DO NOTHING", [_db_time(now), *params])


def _topics_of_pages():
    from personas.targeting import PageTopicTag

    topics = {}
    for page_id, topic_id in PageTopicTag.objects.values_list("page_id", "topic_id"):
        topics.setdefault(page_id, set()).add(topic_id)
    return topics


def _mql_rules(site_ids):
    """`{site_id: lifecycle.MqlRule}` from the sites' scoring settings."""
    thresholds = dict(ScoringSettings.objects.filter(site_id__in=site_ids, mql_threshold__isnull=False)
                      .values_list("site_id", "mql_threshold"))
    if not thresholds:
        return {}
    personas = {}
    through = ScoringSettings.mql_personas.through
    for site_id, persona_id in through.objects.filter(
            scoringsettings__site_id__in=list(thresholds)).values_list("scoringsettings__site_id",
                                                                        "persona_id"):
        personas.setdefault(site_id, set()).add(persona_id)
    return {site_id: lifecycle.MqlRule(threshold, frozenset(personas.get(site_id, ())))
            for site_id, threshold in thresholds.items()}


def _lead_personas(leads):
    from personas.assignment import LeadPersona

    return dict(LeadPersona.objects.filter(lead_id__in=leads.values("pk"), persona__isnull=False)
                .values_list("lead_id", "persona_id").iterator(chunk_size=FETCH_SIZE))


def recompute(leads, *, now=None, progress=None, chunk_size=CHUNK_SIZE):
    """Recompute the scores and stages of the leads in the queryset `leads` (see the module
    docstring); returns a `RecomputeResult`. `now` is the time decay is measured at and the
    changes are stamped with. `progress(done, total)` is called as leads are scored."""
    now = now or timezone.now()
    result = RecomputeResult()
    with transaction.atomic():
        _ensure_score_rows(leads, now)
        stored = {row[0]: row[1:] for row in LeadScore.objects.select_for_update()
                  .filter(lead_id__in=leads.values("pk")).order_by("lead_id")
                  .values_list("lead_id", "fit", "engagement", "total", "computed_at")}
        rows = [row for row in leads.order_by("pk").annotate(tracking=confirmed_tracking_consent())
                .values_list("pk", "site_id", "confirmed_at", "restricted_at", "objected_at", "tracking")
                if row[0] in stored]
        result.leads = len(rows)
        if not rows:
            return result
        site_ids = sorted({row[1] for row in rows})
        rules = list(ScoringRule.objects.filter(site_id__in=site_ids, active=True).order_by("pk"))
        topics_of = _topics_of_pages() if any(r.kind == ScoringRule.TOPIC_VIEW for r in rules) else {}
        rulesets = {site_id: RuleSet([r for r in rules if r.site_id == site_id], topics_of)
                    for site_id in site_ids}
        descriptions = {rule.pk: str(rule.describe())[:255] for rule in rules}
        streams = _open_streams(leads, rules)
        mql = _mql_rules(site_ids)
        personas = _lead_personas(leads) if any(rule.personas for rule in mql.values()) else {}
        stages = dict(LifecycleStage.objects.filter(lead_id__in=leads.values("pk"))
                      .values_list("lead_id", "stage").iterator(chunk_size=FETCH_SIZE))

        changes, scores, stage_rows = [], [], []
        for index, (lead_id, site_id, confirmed_at, restricted_at, objected_at, tracking) in enumerate(
                rows, start=1):
            stopped = restricted_at is not None or objected_at is not None
            ruleset = rulesets.get(site_id, EMPTY)
            events = [row[1:] for row in streams["events"].take(lead_id)]
            answers = latest_answers(row[1] for row in streams["answers"].take(lead_id))
            current = {tuple(row[1:4]): row[4:] for row in streams["ledger"].take(lead_id)}
            desired = {} if stopped else score_lead(ruleset, events, answers, now=now, tracking=tracking)
            fit_before, engagement_before, total_before, computed_at = stored[lead_id]
            lead = _LeadState(lead_id, stopped, bool(tracking), computed_at != now and computed_at,
                              {event[0] for event in events})
            fit, engagement = _diff(lead, desired, current, ruleset, descriptions, changes)
            total = fit + engagement
            if (fit, engagement, total) != (fit_before, engagement_before, total_before):
                scores.append((lead_id, fit, engagement, total))
            stage, reason = lifecycle.next_stage(
                stages.get(lead_id), confirmed=confirmed_at is not None, stopped=stopped, total=total,
                mql=mql.get(site_id, lifecycle.NEVER), persona_id=personas.get(lead_id))
            if reason is not None:
                stage_rows.append((lead_id, stages.get(lead_id), stage, lead_id in stages, reason, total,
                                   len(stage_rows)))
            if progress is not None and (index % chunk_size == 0 or index == len(rows)):
                progress(index, len(rows))
        for stream in streams.values():
            stream.close()

        _write_changes(changes, now)
        _write_scores(scores, leads, now)
        _write_stages(stage_rows, now)
    result.scores_changed, result.changes, result.stages_changed = len(scores), len(changes), len(stage_rows)
    return result


def _open_streams(leads, rules):
    """The streamed reads: events (only of leads with tracking consent whose processing is not
    stopped), answers (leads not stopped) and current contributions, each sorted by lead."""
    active = leads.filter(restricted_at__isnull=True, objected_at__isnull=True)
    event_kinds = sorted({rule.event_kind for rule in rules if rule.event_kind})
    events = ()
    if event_kinds:
        consenting = active.filter(confirmed_tracking_consent())
        events = (LeadEvent.objects.filter(lead_id__in=consenting.values("pk"), kind__in=event_kinds)
                  .order_by("lead_id", "occurred_at", "pk")
                  .values_list("lead_id", "pk", "kind", "page_id", "occurred_at")
                  .iterator(chunk_size=FETCH_SIZE))
    answers = ()
    if any(rule.sub_score == FIT for rule in rules):
        answers = (GatedFormSubmission.objects.filter(lead_id__in=active.values("pk"))
                   .order_by("lead_id", "submit_time", "pk").values_list("lead_id", "form_data")
                   .iterator(chunk_size=FETCH_SIZE))
    ledger = (ScoreChange.objects.filter(lead_id__in=leads.values("pk"))
              .values("lead_id", "rule_id", "event_id", "sub_score")
              .annotate(sum_points=Sum("points"), kind=Max("event_kind"), description=Max("rule_description"))
              .exclude(sum_points=0).order_by("lead_id")
              .values_list("lead_id", "rule_id", "event_id", "sub_score", "sum_points", "kind", "description")
              .iterator(chunk_size=FETCH_SIZE))
    return {"events": _Stream(events), "answers": _Stream(answers), "ledger": _Stream(ledger)}


@dataclass
class _LeadState:
    lead_id: int
    stopped: bool
    tracking: bool
    computed_at: object  # the last computation's time; False for a lead scored the first time
    event_ids: set


def _diff(lead, desired, current, ruleset, descriptions, changes):
    """Append the change rows that turn `current` into `desired`; returns (fit, engagement)."""
    fit = engagement = 0
    for key, contribution in desired.items():
        rule_id, event_id, sub_score = key
        before = current.pop(key, (0,))[0]
        if sub_score == FIT:
            fit += contribution.points
        else:
            engagement += contribution.points
        if contribution.points != before:
            reason = _reason_for_change(lead, ruleset.rules[rule_id], contribution, before)
            changes.append((lead.lead_id, rule_id, event_id, contribution.event_kind, sub_score,
                            contribution.points - before, reason, descriptions.get(rule_id, ""),
                            len(changes)))
    for (rule_id, event_id, sub_score), (before, kind, description) in current.items():
        reason = _reason_for_removal(lead, ruleset, rule_id, event_id, sub_score)
        changes.append((lead.lead_id, rule_id, event_id, kind, sub_score, -before, reason,
                        description or "", len(changes)))
    return fit, engagement


def _rule_changed(lead, rule):
    return bool(lead.computed_at) and rule.updated_at > lead.computed_at


def _reason_for_change(lead, rule, contribution, before):
    if before == 0:
        return ScoreChange.SCORED
    if _rule_changed(lead, rule):
        return ScoreChange.RULE
    if abs(contribution.points) < abs(before):
        return ScoreChange.DECAY if contribution.points == contribution.decayed else ScoreChange.CAP
    return ScoreChange.CAP  # room under the cap freed up as older events decayed


def _reason_for_removal(lead, ruleset, rule_id, event_id, sub_score):
    if lead.stopped:
        return ScoreChange.STOPPED
    if sub_score != FIT and not lead.tracking:
        return ScoreChange.NO_CONSENT
    rule = ruleset.rules.get(rule_id)
    if rule is None or rule.sub_score != sub_score or _rule_changed(lead, rule):
        return ScoreChange.RULE
    if sub_score == FIT:
        return ScoreChange.ANSWER
    if event_id not in lead.event_ids:
        return ScoreChange.EVENT_REMOVED
    return ScoreChange.RULE  # the event no longer matches (e.g. its page lost the topic)


# --- writing ---------------------------------------------------------------------------------

CHANGE_COLUMNS = {"lead_id": "bigint", "rule_id": "bigint", "event_id": "bigint", "event_kind": "text",
                  "sub_score": "text", "points": "integer", "reason": "text", "description": "text",
                  "seq": "integer"}
SCORE_COLUMNS = {"lead_id": "bigint", "fit": "integer", "engagement": "integer", "total": "integer"}
STAGE_COLUMNS = {"lead_id": "bigint", "from_stage": "text", "to_stage": "text", "has_row": "boolean",
                 "reason": "text", "score": "integer", "seq": "integer"}


def _write_changes(rows, now):
    if not rows:
        return
    history = connection.ops.quote_name(ScoreChange._meta.db_table)
    with setwise.staged(CHANGE_COLUMNS, rows) as stage, connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {history} (lead_id, rule_id, rule_description, sub_score, event_id, event_kind, "
            f"points, reason, changed_at) "
            f"SELECT s.lead_id, s.rule_id, COALESCE(s.description, ''), s.sub_score, s.event_id, "
            f"COALESCE(s.event_kind, ''), s.points, s.reason, %s FROM {stage} s ORDER BY s.seq",
            [_db_time(now)])


def _write_scores(rows, leads, now):
    qn = connection.ops.quote_name
    scores = qn(LeadScore._meta.db_table)
    if rows:
        with setwise.staged(SCORE_COLUMNS, rows) as stage, connection.cursor() as cursor:
            cursor.execute(f"UPDATE {scores} SET fit = s.fit, engagement = s.engagement, total = s.total "
                           f"FROM {stage} s WHERE s.lead_id = {scores}.lead_id")
    sql, params = _subquery(leads)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {scores} SET computed_at = %s WHERE lead_id IN ({sql})",
                       [_db_time(now), *params])


def _write_stages(rows, now):
    """Moves computed from the stage read earlier apply only if the lead is still in that stage
    (a sales decision may have come in between); only the moves that applied are logged."""
    if not rows:
        return
    qn = connection.ops.quote_name
    stages = qn(LifecycleStage._meta.db_table)
    log = qn(StageChange._meta.db_table)
    when = _db_time(now)
    with setwise.staged(STAGE_COLUMNS, rows) as stage, connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {stages} SET stage = s.to_stage, since = %s FROM {stage} s "
            f"WHERE s.lead_id = {stages}.lead_id AND s.has_row AND s.from_stage = {stages}.stage", [when])
        cursor.execute(
            f"INSERT INTO {stages} (lead_id, stage, since) SELECT s.lead_id, s.to_stage, %s FROM {stage} s "
            f"WHERE NOT s.has_row AND NOT EXISTS (SELECT 1 FROM {stages} x WHERE x.lead_id = s.lead_id) "
            f"ORDER BY s.lead_id", [when])
        cursor.execute(
            f"INSERT INTO {log} (lead_id, from_stage, to_stage, reason, note, score, user_id, changed_at) "
            f"SELECT s.lead_id, COALESCE(s.from_stage, ''), s.to_stage, s.reason, '', s.score, NULL, %s "
            f"FROM {stage} s JOIN {stages} l ON l.lead_id = s.lead_id "
            f"WHERE l.stage = s.to_stage AND l.since = %s ORDER BY s.seq", [when, when])
        if any(row[2] == MQL and row[4] == StageChange.THRESHOLD for row in rows):
            _write_hand_overs(cursor, stage, when)


# --- hand-over to sales (issue 9) ------------------------------------------------------------

def _write_hand_overs(cursor, stage, when):
    """A `HandOver` for every move to MQL just logged (one INSERT … SELECT, synthetic demo leads
    excepted), in the recomputation's transaction; after the commit a task processes them (the
    beat task `process_hand_overs` catches up if the broker is down)."""
    from ..handover.models import HandOver
    from ..leads import Lead

    qn = connection.ops.quote_name
    log = qn(StageChange._meta.db_table)
    hand_overs = qn(HandOver._meta.db_table)
    lead_table = qn(Lead._meta.db_table)
    cursor.execute(
        f"INSERT INTO {hand_overs} (lead_id, site_id, stage_change_id, score, created_at, attempts, "
        f"mail_message_id, last_error) "
        f"SELECT c.lead_id, l.site_id, c.id, c.score, %s, 0, '', '' FROM {log} c "
        f"JOIN {stage} s ON s.lead_id = c.lead_id AND s.to_stage = c.to_stage "
        f"JOIN {lead_table} l ON l.id = c.lead_id "
        f"WHERE c.changed_at = %s AND c.to_stage = %s AND c.reason = %s AND NOT l.synthetic "
        f"AND NOT EXISTS (SELECT 1 FROM {hand_overs} h WHERE h.stage_change_id = c.id) ORDER BY c.id",
        [when, when, MQL, StageChange.THRESHOLD])
    if cursor.rowcount:
        from ..optin import enqueue_safely
        from ..tasks import process_hand_overs

        transaction.on_commit(lambda: enqueue_safely(process_hand_overs))


# --- reading ---------------------------------------------------------------------------------

def totals(lead_ids):
    """`{lead_id: total}` (hook `inbound_lead_scores`, used by nurture conditions): one query."""
    return dict(LeadScore.objects.filter(lead_id__in=list(lead_ids)).values_list("lead_id", "total"))
