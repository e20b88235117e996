"""Progressive profiling: a known visitor is not asked again what they already answered.

An editor marks extra questions of a gated form as *ask once* (`GatedFormField.ask_once`) and
sets how many of them a form asks per visit (`GatedPage.progressive_questions`, 0: no limit).
For a *known* visitor (`inbound.known_visitor`: personalisation cookie choice, visitor id linked
to a lead after double opt-in with tracking consent, processing neither restricted nor objected
to) the form shows every normal question plus the ask-once questions that lead has not yet
answered, in the editor's order and at most `progressive_questions` of them. Everyone else
(no cookie choice, statistics only, an unlinked or foreign visitor id, a preview) sees the
whole form. Each submission is stored as usual with the answers given, so the lead's profile,
the union of all its answers (`personas.assignment.load_facts`), grows from form to form.

Decisions, and why:
- *The e-mail address is never prefilled.* The browser may be a shared computer: prefilling
  would show the lead's address to whoever uses it next, and a link cookie is no proof that
  the person in front of the screen is that lead. The visitor types the address every time,
  and the submission belongs to whichever address was typed (with its own double opt-in), as
  for anyone else. What a known visitor sees reveals only *which* questions were answered
  before, never an answer.
- *An answer counts once it is non-empty* in any of the lead's submissions on the site (on any
  of its gated pages, matched by the field's clean name, which comes from its label): an empty
  text, an unticked checkbox or no choice is asked again, since it cannot be told apart from a
  skipped question.
- *Hidden questions are not in the form at all*, neither on the page nor when the POST is
  validated (the POST builds the same reduced form), so a required ask-once question that was
  answered before cannot fail validation, and a value posted for a hidden question is not a
  field of the form: Django's form ignores it, and nothing is stored or overwritten.
- *Pages for a known visitor are built per request*: never taken from or put into the shared
  form cache (`inbound.form_cache`), and sent as `Cache-Control: private` with `Vary: Cookie`
  so that no shared cache hands one visitor's form to another.
"""

from .forms import is_reserved_name


def answered_field_names(lead_id, site):
    """The clean names of the questions the lead has answered with a non-empty value on any gated
    page of `site` (one query)."""
    from .pages import GatedFormSubmission

    submissions = GatedFormSubmission.objects.filter(lead_id=lead_id, lead__site_id=site.pk)
    answered = set()
    for form_data in submissions.values_list("form_data", flat=True):
        for name, value in (form_data or {}).items():
            if not is_reserved_name(name) and name != "consents" and is_answer(value):
                answered.add(name)
    return answered


def is_answer(value):
    """A value that says something: not empty, not an unticked checkbox."""
    if isinstance(value, str):
        return bool(value.strip())
    return value not in (None, False, [], {})


def fields_to_ask(form_fields, answered, limit):
    """The form fields to show, in their order: every field not marked *ask once*, and the ask-once
    fields whose clean name is not in `answered`, at most `limit` of these (all when 0)."""
    chosen = []
    new_questions = 0
    for field in form_fields:
        if field.ask_once:
            if field.clean_name in answered or (limit and new_questions >= limit):
                continue
            new_questions += 1
        chosen.append(field)
    return chosen
