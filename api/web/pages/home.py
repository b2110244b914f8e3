"""The advisor's home: their open callbacks, the notes that mention them, unknown callers."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from api.deps import BusDep, DbId, SessionDep
from api.web.deps import CsrfLogin, LoginDep
from api.web.pages.common import PAGE, UNMATCHED_DAYS, home_tz, render, see_other
from records import queries
from records.models import utcnow
from usecases import callbacks

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, session: SessionDep, login: LoginDep) -> HTMLResponse:
    now = utcnow()
    mine = queries.list_callbacks(
        session,
        scope=login.scope,
        owner_id=login.user.id,
        state="open",
        store_id=None,
        now=now,
        limit=PAGE,
        offset=0,
    )
    mentions = queries.mentions_of(
        session, scope=login.scope, user_id=login.user.id, unseen_only=False, limit=20, offset=0
    )
    unknown = queries.list_calls(
        session, scope=login.scope, unmatched=True, since=now - UNMATCHED_DAYS, limit=10, offset=0
    )
    return render(
        request,
        "home.html",
        login,
        tz=home_tz(session, login),
        callbacks=mine,
        mentions=mentions,
        unknown=unknown,
        now=now,
    )


@router.post("/callbacks/{task_id}/done")
def callback_done(task_id: DbId, session: SessionDep, login: CsrfLogin, bus: BusDep) -> Response:
    """The API's rule: advisors close only their own callbacks, managers their stores'."""
    callbacks.complete_callback(session, login.user, bus, task_id)
    return see_other("/")


@router.post("/mentions/{mention_id}/seen")
def mention_seen(mention_id: DbId, session: SessionDep, login: CsrfLogin) -> Response:
    mention = queries.mark_mention_seen(
        session, scope=login.scope, user_id=login.user.id, mention_id=mention_id
    )
    if mention is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="mention not found")
    return see_other("/")
