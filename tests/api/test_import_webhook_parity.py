"""An imported status change has exactly the status webhook's effects (usecases/status.py), on
both databases: the example export imported, then RO 70123 moved to Ready for Pickup by an
export file and RO 70124 by the signed webhook; each leaves the same trail (status event, thread
entry, promise made due, pickup call row and job, events), and neither does it twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.webhook_auth import signed_headers
from events import outbound
from events.bus import STREAM, Event, EventBus
from ivr.phone import FICTIONAL
from records import integrations
from records.importer import import_path
from records.models import Call, FollowUp, RepairOrder, StatusEventRow, Store, ThreadEntry

EXAMPLE = Path(__file__).parents[2] / "records" / "examples" / "dms_export.csv"
AT = "2026-11-25T17:45:00+00:00"


def _trail(session: Session, number: str, r: redis.Redis) -> dict[str, Any]:
    """What the change to Ready for Pickup left behind, with the RO's own ids taken out."""
    ro = session.scalars(select(RepairOrder).where(RepairOrder.number == number)).one()
    events = session.scalars(
        select(StatusEventRow).where(StatusEventRow.repair_order_id == ro.id)
    ).all()
    entries = session.scalars(
        select(ThreadEntry).where(
            ThreadEntry.customer_id == ro.customer_id, ThreadEntry.kind == "status_change"
        )
    ).all()
    fired = session.scalars(select(FollowUp).where(FollowUp.repair_order_id == ro.id)).all()
    calls = session.scalars(select(Call).where(Call.customer_id == ro.customer_id)).all()
    raw_jobs = [f[b"job"] for _i, f in r.xrange(outbound.QUEUE)] + r.zrange(outbound.DELAYED, 0, -1)
    jobs = [outbound.OutboundJob.model_validate_json(j) for j in raw_jobs]
    published = [Event.decode(f[b"event"]) for _i, f in r.xrange(STREAM)]
    mine = [e for e in published if e.data.get("customer_id") == ro.customer_id]
    return {
        "status": ro.status,
        "events": [(e.status, e.at.isoformat(), e.note) for e in events],
        "sources": [e.source for e in events],
        "entries": [
            (
                e.body.replace(number, "N"),
                e.author_id,
                e.at.isoformat(),
                {
                    k: v
                    for k, v in e.data.items()
                    if k not in ("repair_order_id", "number", "source")
                },
            )
            for e in entries
        ],  # fmt: skip
        "fired": [(f.due_at.isoformat() if f.due_at else None, f.text) for f in fired],
        "calls": [(c.direction, c.advisor_id, c.flow_path) for c in calls],
        "jobs": [
            (j.kind, j.flow, j.retries, j.not_before is not None, j.call_id == calls[0].id)
            for j in jobs
            if j.repair_order_id == ro.id
        ],
        "published": [(e.type, sorted(e.data)) for e in mine],
    }


def test_an_import_and_the_webhook_leave_the_same_trail(
    app_client: TestClient, sessions: sessionmaker[Session], engine: Any, bus: EventBus,
    tmp_path: Path,
) -> None:  # fmt: skip
    r = bus.redis
    r.delete(outbound.QUEUE, outbound.DELAYED, STREAM)
    assert import_path(engine, EXAMPLE, bus=bus).ok
    with sessions.begin() as session:
        store = session.scalars(select(Store).where(Store.dms_id == "EX1")).one()
        store.outbound = {"pickup_calls": True, "allow": [FICTIONAL]}  # +1 555
        integration, secret = integrations.create(session, store=store, name="DMS")
        key_id = integration.key_id
        for ro in session.scalars(
            select(RepairOrder).where(RepairOrder.number.in_(["70123", "70124"]))
        ):
            session.add(FollowUp(store_id=store.id, kind="promise", customer_id=ro.customer_id,
                                 repair_order_id=ro.id, trigger="status:Ready for Pickup",
                                 text="call when ready"))  # fmt: skip
        # Both ROs start from the same status, as of the same time, so the trails compare.
        twin = session.scalars(select(RepairOrder).where(RepairOrder.number == "70124")).one()
        (first,) = twin.events
        twin.status = first.status = "Tech Working"
        first.at = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)

    export = tmp_path / "ready.json"
    export.write_text(json.dumps([{"type": "repair_order", "store": "EX1", "number": "70123",
                                   "status": "Ready for Pickup", "status_at": AT}]))  # fmt: skip
    body = json.dumps({"status": "Ready for Pickup", "at": AT}).encode()
    for attempt in range(2):  # each a second time: a repeated file, a redelivered webhook
        assert import_path(engine, export, bus=bus).ok
        response = app_client.post(
            "/api/v1/repair-orders/70124/status",
            content=body,
            headers=signed_headers(key_id, secret, body, delivery=f"d{attempt}"),
        )
        assert response.status_code == 200, response.text
        assert response.json()["duplicate"] is (attempt == 1)

    with sessions() as session:
        imported, hooked = _trail(session, "70123", r), _trail(session, "70124", r)
    assert imported["sources"][-1] == "import" and hooked["sources"][-1] == "webhook"
    del imported["sources"], hooked["sources"]
    assert imported == hooked
    assert imported["status"] == "Ready for Pickup"
    assert [e[0] for e in imported["entries"]] == ["RO N: Tech Working → Ready for Pickup"]
    assert imported["fired"] == [("2026-11-25T17:45:00+00:00", "call when ready")]
    assert imported["calls"] == [("outbound", None, [])]
    assert [j[:3] for j in imported["jobs"]] == [("pickup", "pickup_confirm", 1)]
    assert [t for t, _keys in imported["published"]] == [
        "ro.status_changed",
        "thread.updated",
        "follow_up.changed",
    ]
