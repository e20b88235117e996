"""Lead scoring (issue 9): rules per site, explainable scores, lifecycle stages.

- `models.py`: the site setting (MQL threshold), rules, the current score of a lead with its
  history of changes, and the lifecycle stage with its log.
- `rules.py`: what a lead's events and answers are worth under a site's rules; pure functions.
- `engine.py`: recomputing scores and stages for any number of leads with a fixed number of
  queries; the per-event update is the same function for a few leads.
- `lifecycle.py`: which stage a lead is in, and the sales decisions accept / reject.
- `triggers.py`: when to recompute (lead activity, rule and setting changes).
"""
