"""Query parameters and response building shared by every paged list."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import BaseModel

from api.deps import field_error
from api.schemas import Page

NO_NUL = r"^[^\x00]*$"  # for free-text query and path strings (PostgreSQL refuses NUL)
Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip.")]
Cursor = Annotated[
    str | None, Query(max_length=100, description="`next_cursor` of the previous page.")
]

M = TypeVar("M", bound=BaseModel)


def page(rows: Sequence[Any], model: type[M], *, limit: int, offset: int) -> Page[M]:
    """`rows` was fetched with limit + 1: the extra row only says whether a next page exists."""
    more = len(rows) > limit
    page_type: type[Page[M]] = Page[model]  # type: ignore[valid-type]
    return page_type(
        items=[model.model_validate(r) for r in rows[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
    )


def encode_cursor(at: datetime, row_id: int) -> str:
    raw = f"{at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Raises a 422 naming `cursor` for anything we did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_text, _, id_text = raw.partition("|")
        at = datetime.fromisoformat(at_text)
        row_id = int(id_text)
        if at.tzinfo is None or not 1970 <= at.year <= 2200 or not 0 < row_id < 2**31:
            raise ValueError(raw)
        return at, row_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise field_error(("query", "cursor"), "not a cursor this API returned") from None
