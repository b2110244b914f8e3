"""Use cases: one function per workflow, called alike by the JSON API, the web pages, the
importer, the webhooks and the flow steps.

A route parses the request, authorizes, calls one function here and renders what it returns; the
function does the whole workflow (rows, thread entries, events, jobs) in one place, so a status
change that arrives through the webhook and one that arrives through `driveline import` have the
same effects, and a rule the API keeps is kept by the pages too. Functions here take a SQLAlchemy
session and the acting user (or integration), raise `usecases.errors` exceptions that say what is
wrong and never name an HTTP status; `api/` maps those to 4xx answers.
"""
