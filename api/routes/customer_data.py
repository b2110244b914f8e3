"""A customer's data on request: the export (a zip) and the erasure (usecases/customer_data.py).
Managers and admins of the customer's store; an advisor gets 403, another store's customer 404.
Both leave an audit-log row with who did it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO

from fastapi import APIRouter
from pydantic import Field
from starlette.responses import Response, StreamingResponse

from api.deps import CurrentUser, DbId, SessionDep, SettingsDep
from api.schemas import Out
from usecases import customer_data

router = APIRouter(prefix="/customers", tags=["customers"])

SPOOL_BYTES = 8 * 1024 * 1024  # a zip up to this stays in memory; larger ones go to a temp file
CHUNK = 64 * 1024


def _stream(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk
    finally:
        spool.close()


@router.get(
    "/{customer_id}/export",
    response_class=Response,
    responses={
        200: {
            "content": {"application/zip": {}},
            "description": "customer.json (customer, phones, vehicles, repair orders, "
            "purchases, calls with transcripts, thread entries, callbacks, follow-ups) and "
            "recordings/ with the audio files.",
        },
        403: {"description": "Advisors: managers and admins only."},
        404: {"description": "No such customer in your stores."},
    },
)
def export_customer(
    customer_id: DbId, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> Response:
    """Everything Driveline keeps about the customer, as a zip (audited)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - _stream closes it
    try:
        exported = customer_data.export_customer(
            session,
            user,
            customer_id=customer_id,
            recordings_dir=settings.recordings_dir,
            out=spool,
        )
    except BaseException:
        spool.close()
        raise
    size = spool.tell()
    name = f"customer-{exported.customer_id}.zip"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Length": str(size),
        "Cache-Control": "no-store",
    }
    return StreamingResponse(_stream(spool), media_type="application/zip", headers=headers)


class ErasedOut(Out):
    customer_id: int
    counts: dict[str, int] = Field(
        description="Rows emptied of the customer (calls, thread_entries, phones, vehicles, "
        "repair_orders, callbacks, follow_ups) and media deleted (recordings, files_removed, "
        "files_missing, transcripts)."
    )


@router.post(
    "/{customer_id}/erase",
    response_model=ErasedOut,
    responses={
        403: {"description": "Advisors: managers and admins only."},
        404: {"description": "No such customer in your stores."},
        409: {"description": "A call with the customer is in progress."},
    },
)
def erase_customer(
    customer_id: DbId, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> ErasedOut:
    """Erase the customer on request: recordings and transcripts deleted; name, phones,
    thread text and the other personal fields taken out of the rows that stay, so calls and
    repair orders still count in reports (audited). Safe to repeat."""
    erased = customer_data.erase_customer(
        session, user, customer_id=customer_id, recordings_dir=settings.recordings_dir
    )
    return ErasedOut(customer_id=erased.customer_id, counts=erased.counts)
