"""The `promise` flow step over the SQL records (both databases): a flow records a promise on
the caller's RO, owned by its advisor, waiting for part_arrived or due after a while."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.flow import FlowEngine, load_flows
from ivr.flow.fakes import FakeChannel
from ivr.flow.loader import FlowLoadError
from records.flow_records import SqlRecords
from records.models import FollowUp
from tests.records.helpers import make_customer, make_ro, make_store, make_user

PHONE = "+15550201234"
FLOW = """\
name: promise_demo
start: find
steps:
  find:
    lookup: {query: open_repair_order, none: bye}
    next: part
  part:
    promise:
      text: "Call {{ customer.first_name }} when the part for RO {{ ro.number }} arrives"
      trigger: part_arrived
    next: later
  later:
    promise: {text: "Call back with the estimate", due_in: 2h}
    next: bye
  bye:
    hangup: Goodbye.
"""


def test_a_flow_records_promises_for_the_ros_advisor(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions.begin() as session:
        store = make_store()
        session.add(store)
        session.flush()
        ann = make_user(store, "ann")
        jo = make_customer(store, "Jo", PHONE)
        session.add_all([ann, jo])
        session.flush()
        session.add(make_ro(jo, "4711", ["In Shop"], advisor=ann))
        store_id, ann_id = store.id, ann.id
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "promise_demo.yaml").write_text(FLOW)
    records = SqlRecords(sessions.kw["bind"])
    info = asyncio.run(records.store(store_id))
    assert info is not None
    now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    engine = FlowEngine(load_flows(tmp_path / "flows"), records)
    channel = FakeChannel([], recordings_dir=str(tmp_path))
    result = asyncio.run(
        engine.run(channel, store=info, caller=PHONE, flow="promise_demo", clock=lambda: now)
    )
    assert result.outcome.kind == "hangup"
    with sessions() as session:
        rows = session.scalars(select(FollowUp).order_by(FollowUp.id)).all()
        got = [(f.text, f.trigger, f.due_at, f.owner_id, f.created_by_id) for f in rows]
        assert got == [
            ("Call Jo when the part for RO 4711 arrives", "part_arrived", None, ann_id, None),
            ("Call back with the estimate", None, now + timedelta(hours=2), ann_id, None),
        ]
        assert {f.kind for f in rows} == {"promise"}


def test_promise_step_needs_one_of_trigger_or_due_in(tmp_path: Path) -> None:
    bad = FLOW.replace("trigger: part_arrived", "trigger: part_arrived\n      due_in: 1h")
    (tmp_path / "promise_demo.yaml").write_text(bad)
    with pytest.raises(FlowLoadError, match="either trigger or due_in"):
        load_flows(tmp_path)
