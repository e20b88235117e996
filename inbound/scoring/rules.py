"""What one lead's events and answers are worth under its site's rules. No database access.

`RuleSet` indexes a site's active rules by what they count; `score_lead` turns one lead's events
(oldest first) and latest answers into *contributions*, keyed by (rule id, event id, sub-score)
(answer rules have no event id). The engine compares them with the stored history.

Definitions (docs/decisions.md, "Lead scoring"):

- **Decay:** an event rule with a half-life of N days gives an event its points in full for N
  days, then half, after 2N days a quarter, and so on (`points / 2**k` with `k = age // N`,
  rounded half away from zero, so 5 → 5, 3, 1, 1, 0). The age is taken at recomputation time.
- **Cap:** the contributions of one rule to one lead, added oldest event first, never exceed
  the cap in absolute value: the event that reaches the cap gets the rest, later ones nothing.
  With decay, room under the cap frees up as older events lose points.
- **Consent:** without a confirmed tracking purpose the lead has no engagement contributions at
  all (T5, N3); fit contributions need none.
"""

from collections import defaultdict
from dataclasses import dataclass

from personas.rules import _answer_values, _as_number

from .models import ENGAGEMENT, FIT, ScoringRule

DAY = 86400


@dataclass(frozen=True)
class Contribution:
    """What one rule gives for one event (or answer): `points` after decay and cap, and the
    values before them (`full` = the rule's points, `decayed` = after decay) for the reason."""

    points: int
    event_kind: str
    full: int
    decayed: int


def halve(points, times):
    """`points / 2**times`, rounded half away from zero (integer arithmetic)."""
    if times <= 0:
        return points
    if times > 62:
        return 0
    magnitude = (2 * abs(points) + (1 << times)) >> (times + 1)
    return magnitude if points >= 0 else -magnitude


def halvings(rule, age_seconds):
    if not rule.decay_days or age_seconds <= 0:
        return 0
    return int(age_seconds // (rule.decay_days * DAY))


def within_cap(running, points, cap):
    """How much of `points` still fits under `cap` after `running` (same sign) was given."""
    if cap is None:
        return points
    if points >= 0:
        return max(0, min(points, cap - running))
    return min(0, max(points, -cap - running))


def answer_matches(rule, answers):
    answer = answers.get(rule.field_name)
    if rule.kind == ScoringRule.ANSWER:
        wanted = set(rule.value_list())
        return any(value in wanted for value in _answer_values(answer))
    if rule.kind == ScoringRule.NUMBER_RANGE:
        number = _as_number(answer)
        if number is None or (rule.min_value is None and rule.max_value is None):
            return False
        return ((rule.min_value is None or number >= rule.min_value)
                and (rule.max_value is None or number <= rule.max_value))
    return False


class RuleSet:
    """One site's active rules, indexed for a single pass over a lead's events."""

    def __init__(self, rules, topics_of=None):
        self.rules = {rule.pk: rule for rule in rules}
        self.fit = [rule for rule in rules if rule.sub_score == FIT]
        self.by_event = defaultdict(list)  # event kind → rules counting every such event
        self.by_page = defaultdict(list)  # page id → page download rules
        self.by_topic = defaultdict(list)  # topic id → topic view rules
        self.topics_of = topics_of or {}  # page id → topic ids
        for rule in rules:
            if rule.kind == ScoringRule.PAGE_DOWNLOAD:
                if rule.page_id is not None:
                    self.by_page[rule.page_id].append(rule)
            elif rule.kind == ScoringRule.TOPIC_VIEW:
                if rule.topic_id is not None:
                    self.by_topic[rule.topic_id].append(rule)
            elif rule.sub_score == ENGAGEMENT:
                self.by_event[rule.event_kind].append(rule)
        self.event_kinds = {rule.event_kind for rule in rules if rule.sub_score == ENGAGEMENT}

    def rules_for(self, kind, page_id):
        found = self.by_event.get(kind, [])
        if kind == ScoringRule.EVENT_KINDS[ScoringRule.PAGE_DOWNLOAD] and page_id in self.by_page:
            found = found + self.by_page[page_id]
        elif kind == ScoringRule.EVENT_KINDS[ScoringRule.TOPIC_VIEW] and self.by_topic:
            for topic_id in self.topics_of.get(page_id, ()):
                found = found + self.by_topic.get(topic_id, [])
        return found


EMPTY = RuleSet([])


def score_lead(ruleset, events, answers, *, now, tracking):
    """`{(rule_id, event_id, sub_score): Contribution}` for one lead.

    `events` are `(event_id, kind, page_id, occurred_at)` oldest first; `answers` maps a field
    name to the latest answer; `tracking` says whether the lead has tracking consent now.
    Contributions of 0 points (decayed or capped away) are included: the engine uses them to
    say why a contribution went.
    """
    result = {}
    if tracking:
        given = defaultdict(int)  # rule id → points given so far (for the cap)
        for event_id, kind, page_id, occurred_at in events:
            rules = ruleset.rules_for(kind, page_id)
            if not rules:
                continue
            age = (now - occurred_at).total_seconds()
            for rule in rules:
                decayed = halve(rule.points, halvings(rule, age))
                points = within_cap(given[rule.pk], decayed, rule.cap)
                given[rule.pk] += points
                result[(rule.pk, event_id, ENGAGEMENT)] = Contribution(points, kind, rule.points, decayed)
    for rule in ruleset.fit:
        if answer_matches(rule, answers):
            points = within_cap(0, rule.points, rule.cap)
            result[(rule.pk, None, FIT)] = Contribution(points, "answer", rule.points, rule.points)
    return result


def latest_answers(form_data_rows, answers=None):
    """The latest answer per field from submissions' `form_data` (oldest first), like personas."""
    answers = {} if answers is None else answers
    for form_data in form_data_rows:
        for name, value in (form_data or {}).items():
            if name not in ("email", "consents") and value not in ("", None, []):
                answers[name] = value
    return answers
