"""The web pages, one module per page area; `router` holds them all (URLs as before).

login: logging in and out · home: the advisor's home · followups: the work list, promises,
outcomes · threads: customers and their threads · calls: a call, linking, the call log ·
reports: managers' pages and the flows · errors: error pages · common: what they share.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.web.pages import calls, followups, home, login, reports, threads

router = APIRouter(include_in_schema=False)
for area in (login, home, followups, threads, calls, reports):
    router.include_router(area.router)
