"""Full-text search over call transcripts, within the caller's stores."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from api.deps import ScopeDep, SessionDep, field_error
from api.paging import NO_NUL, Limit, Offset, page
from api.schemas import Out, Page
from records.transcripts import HIGHLIGHT, search_terms, search_transcripts

router = APIRouter(tags=["search"])


class TranscriptHitOut(Out):
    call_id: int
    call_uuid: str
    store_id: int
    started_at: datetime
    customer_id: int | None = Field(description="null for a call not linked to a customer")
    customer_name: str | None
    entry_id: int | None = Field(description="The call's thread entry.")
    transcript_id: int
    segment_id: int
    speaker: str = Field(description="Caller, Advisor or IVR")
    start_s: float = Field(description="Seconds from the call start: seek the recording here.")
    end_s: float
    snippet: str = Field(description=f"Matched words between {HIGHLIGHT[0]} and {HIGHLIGHT[1]}.")


SearchText = Annotated[
    str,
    Query(
        min_length=1,
        max_length=200,
        pattern=NO_NUL,
        description="Words that must all occur in one transcript line (stemmed: brake ~ brakes).",
    ),
]


@router.get("/search/transcripts", response_model=Page[TranscriptHitOut])
def search(
    session: SessionDep,
    scope: ScopeDep,
    q: SearchText,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[TranscriptHitOut]:
    """Transcript lines of your stores' calls matching `q`, newest call first."""
    terms = search_terms(q)
    if not terms:
        raise field_error(("query", "q"), "needs at least one word", 422)
    hits = search_transcripts(session, scope, terms, limit=limit, offset=offset)
    return page(hits, TranscriptHitOut, limit=limit, offset=offset)
