"""`driveline import`: CSV and JSON upserts, idempotency, bad rows with row numbers, exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from driveline.cli import main
from events import outbound
from events.bus import STREAM, Event, EventBus
from ivr.phone import FICTIONAL
from records import views
from records.importer import (
    ImportFileError,
    import_path,
    import_rows,
    parse_hours_text,
    read_rows,
)
from records.models import (
    Base,
    Call,
    Customer,
    FollowUp,
    RepairOrder,
    StatusEventRow,
    Store,
    ThreadEntry,
    User,
)

EXAMPLE = Path(__file__).parents[2] / "records" / "examples" / "dms_export.csv"


def _counts(report: Any) -> dict[str, dict[str, int]]:
    return {kind: dict(c) for kind, c in report.counts.items()}


def _table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }


def _ro(sessions: sessionmaker[Session], number: str) -> RepairOrder:
    with sessions() as s:
        return s.scalars(
            select(RepairOrder)
            .where(RepairOrder.number == number)
            .options(selectinload(RepairOrder.events))
        ).one()


def _write_json(tmp_path: Path, rows: Any, name: str = "feed.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(rows))
    return path


def test_example_csv_imports_then_changes_nothing(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    first = import_path(engine, EXAMPLE)
    assert first.errors == []
    assert _counts(first) == {
        "store": {"created": 1},
        "advisor": {"created": 3},
        "customer": {"created": 2},
        "vehicle": {"created": 2},
        "repair_order": {"created": 3},
    }
    after_first = _table_counts(engine)
    second = import_path(engine, EXAMPLE)
    assert second.errors == [] and second.ok
    assert _counts(second) == {
        "store": {"unchanged": 1},
        "advisor": {"unchanged": 3},
        "customer": {"unchanged": 2},
        "vehicle": {"unchanged": 2},
        "repair_order": {"unchanged": 3},
    }
    assert _table_counts(engine) == after_first  # no duplicate phones, scopes or status events


def test_example_csv_lands_in_the_views(engine: Engine, sessions: sessionmaker[Session]) -> None:
    import_path(engine, EXAMPLE)
    with sessions() as s:
        store = views.load_store_for_did(s, "+15550300100")
        assert store is not None
        ann = views.load_customer_by_phone(s, store.id, "555-030-2001")  # her home phone
        service = views.load_group(s, store.id, "service")
        express = views.load_group(s, store.id, "express")
        pat = s.scalars(select(User).where(User.username == "pquinn")).one()
    assert store.name == "Example Chevrolet" and store.timezone == "America/Chicago"
    assert store.hours == {
        **{d: [["07:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
        "sat": [["08:00", "14:00"]],
    }
    assert store.statuses[-1] == "Waiting on Parts" and store.recording_consent is True
    assert [a.username for a in service] == ["srivera", "jpark"]
    assert [a.username for a in express] == ["srivera"]
    assert service[0].contact == "sip:srivera@10.0.0.21:5060"
    assert service[1].contact == "+15550300202"
    assert (pat.role, pat.groups, pat.dms_id) == ("manager", [], "M1")

    assert ann is not None and ann.name == "Ann Lee"
    assert ann.phones == ("+15550301001", "+15550302001")
    assert ann.advisor is not None and ann.advisor.username == "srivera"
    assert ann.vehicles[0].vin == "2GNAXUEV1M6123456" and ann.vehicles[0].plate == "ABC-1234"
    (ro,) = ann.open_repair_orders
    assert (ro.number, ro.status) == ("70123", "Tech Working")
    # Times without an offset are the store's (Chicago, UTC-6 in November).
    assert ro.opened_at == datetime(2026, 11, 25, 14, 10, tzinfo=UTC)
    assert ro.promised_at == datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
    assert [(e.status, e.at) for e in ro.history] == [
        ("Tech Working", datetime(2026, 11, 25, 16, 30, tzinfo=UTC))
    ]
    closed = _ro(sessions, "70100")
    assert closed.status == "Picked Up"
    assert closed.closed_at == datetime(2026, 10, 2, 21, 20, tzinfo=UTC)  # CDT, UTC-5
    assert [e.source for e in closed.events] == ["import"]


def test_json_status_change_appends_one_event(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    import_path(engine, EXAMPLE)
    before = _ro(sessions, "70123")
    update = [
        {
            "type": "repair_order",
            "store": "EX1",
            "number": 70123,
            "status": "ready for pickup",
            "status_at": "2026-11-25T17:45:00Z",
        }
    ]
    for attempt in range(2):  # the second run must not add another event
        report = import_path(engine, _write_json(tmp_path, {"rows": update}))
        assert report.errors == []
        assert _counts(report) == {"repair_order": {"updated" if attempt == 0 else "unchanged": 1}}
    ro = _ro(sessions, "70123")
    assert ro.status == "Ready for Pickup"  # the store's spelling
    assert [(e.status, e.source) for e in ro.events] == [
        ("Tech Working", "import"),
        ("Ready for Pickup", "import"),
    ]
    assert ro.events[-1].at == datetime(2026, 11, 25, 17, 45, tzinfo=UTC)
    # Fields absent from the JSON object are left alone.
    assert (ro.promised_at, ro.concern, ro.advisor_id) == (
        before.promised_at,
        before.concern,
        before.advisor_id,
    )
    assert ro.closed_at is None

    pickup = [
        {
            "type": "repair_order",
            "store": "EX1",
            "number": "70123",
            "status": "Picked Up",
            "status_at": "11/25/2026 6:05 PM",
        }
    ]
    import_path(engine, _write_json(tmp_path, pickup, "pickup.json"))
    ro = _ro(sessions, "70123")
    assert ro.closed_at == datetime(2026, 11, 26, 0, 5, tzinfo=UTC)  # 18:05 Chicago
    assert len(ro.events) == 3


def test_an_imported_ready_for_pickup_is_a_status_change(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path, redis_url: str
) -> None:
    """The same workflow as the status webhook (usecases/status.py): thread entry, promise made
    due, pickup call row and job, events; the same file again does nothing more."""
    bus = EventBus(redis_url)
    bus.redis.delete(outbound.QUEUE, outbound.DELAYED, STREAM)
    import_path(engine, EXAMPLE, bus=bus)
    with sessions.begin() as s:  # the store opted in to pickup calls, open around the clock
        store = s.scalars(select(Store).where(Store.dms_id == "EX1")).one()
        store.outbound = {"pickup_calls": True, "allow": [FICTIONAL]}  # +1 555
        store.hours = {d: [["00:00", "23:59"]] for d in ("mon", "tue", "wed", "thu", "fri")} | {
            d: [["00:00", "23:59"]] for d in ("sat", "sun")
        }
        ro = s.scalars(select(RepairOrder).where(RepairOrder.number == "70123")).one()
        promise = FollowUp(store_id=store.id, kind="promise", customer_id=ro.customer_id,
                           repair_order_id=ro.id, trigger="status:Ready for Pickup",
                           text="call when ready")  # fmt: skip
        s.add(promise)
    assert _events(bus) == []
    ready = [{"type": "repair_order", "store": "EX1", "number": "70123",
              "status": "Ready for Pickup", "status_at": "2026-11-25T17:45:00Z"}]  # fmt: skip
    for attempt in range(2):
        report = import_path(engine, _write_json(tmp_path, ready), bus=bus)
        assert report.errors == []
        assert _counts(report) == {"repair_order": {"updated" if attempt == 0 else "unchanged": 1}}
    with sessions() as s:
        ro = s.scalars(select(RepairOrder).where(RepairOrder.number == "70123")).one()
        entries = s.scalars(select(ThreadEntry).where(ThreadEntry.kind == "status_change")).all()
        calls = s.scalars(select(Call)).all()
        fired = s.scalars(select(FollowUp)).one()
    assert [e.body for e in entries] == ["RO 70123: Tech Working → Ready for Pickup"]
    assert entries[0].data["source"] == "import" and entries[0].customer_id == ro.customer_id
    assert fired.due_at == datetime(2026, 11, 25, 17, 45, tzinfo=UTC)
    assert [(c.direction, c.advisor_id, c.customer_id) for c in calls] == [
        ("outbound", None, ro.customer_id)
    ]
    queued = [f[b"job"] for _i, f in bus.redis.xrange(outbound.QUEUE)]
    queued += bus.redis.zrange(outbound.DELAYED, 0, -1)  # the last minute of a day: scheduled
    jobs = [outbound.OutboundJob.model_validate_json(job) for job in queued]
    assert [(j.kind, j.call_id, j.destination) for j in jobs] == [
        ("pickup", calls[0].id, "+15550301001")
    ]
    assert [e.type for e in _events(bus)] == ["ro.status_changed", "thread.updated",
                                             "follow_up.changed"]  # fmt: skip
    bus.close()


def _events(bus: EventBus) -> list[Event]:
    return [Event.decode(fields[b"event"]) for _id, fields in bus.redis.xrange(STREAM)]


def test_customer_row_phones_are_the_whole_list(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    import_path(engine, EXAMPLE)
    rows = [
        {
            "type": "customer",
            "store": "EX1",
            "id": "C5001",
            "phone": "+1 (555) 030-1001",
            "work_phone": "555 030 3001",
        }
    ]
    report = import_path(engine, _write_json(tmp_path, rows))
    assert _counts(report) == {"customer": {"updated": 1}}
    with sessions() as s:
        ann = s.scalars(
            select(Customer)
            .where(Customer.dms_id == "C5001")
            .options(selectinload(Customer.phones))
        ).one()
        assert {(p.e164, p.label) for p in ann.phones} == {
            ("+15550301001", "mobile"),
            ("+15550303001", "work"),
        }
        assert ann.first_name == "Ann"  # not in the JSON object: unchanged
        store_id = ann.store_id
        assert views.load_customer_by_phone(s, store_id, "555-030-2001") is None
        assert views.load_customer_by_phone(s, store_id, "(555) 030-3001") is not None


BAD_CSV = """\
type,store,id,number,name,first_name,last_name,phone,customer,vin,status,opened_at,model
repair_order,S9,,R1,,,,,C1,,In Shop,2026-11-25 08:00,
store,S9,,,Nine,,,,,,,,
customer,S9,C0,,,Bad,Phone,abc,,,,,
customer,S9,C1,,,Good,Row,(555) 030-1111,,,,,
vehicle,S9,V1,,,,,,NOPE,,,,Tahoe
repair_order,S9,,R2,,,,,C1,,Parts,,
widget,S9,,,,,,,,,,,
customer,S9,C2,,,Odd,Column,,,,,,Tahoe
vehicle,S9,V2,,,,,,C1,ABC,,,Tahoe
repair_order,S9,,R3,,,,,C1,,In Shop,yesterday-ish,
"""


def test_bad_rows_are_reported_by_row_number_and_good_rows_kept(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_text(BAD_CSV)
    report = import_path(engine, path)
    assert not report.ok and report.failed == 7
    messages = sorted(report.errors, key=lambda m: int(m.split()[1].rstrip(":")))
    assert messages[0] == "row 4: phone: not a phone number: 'abc'"
    assert messages[1] == "row 6: customer: no customer 'NOPE' at store 'S9'"
    assert messages[2].startswith("row 7: status: unknown status 'Parts' (store 'S9' knows: ")
    assert messages[3].startswith("row 8: type: unknown type 'widget'")
    assert messages[4] == "row 9: model: not a field of a customer row"
    assert messages[5].startswith("row 10: vin: not a VIN")
    assert messages[6].startswith("row 11: opened_at: not a date and time: 'yesterday-ish'")
    assert _counts(report) == {
        "widget": {"failed": 1},
        "store": {"created": 1},
        "customer": {"created": 1, "failed": 2},
        "vehicle": {"failed": 2},
        "repair_order": {"created": 1, "failed": 2},
    }
    with sessions() as s:
        # Row 4 had already created its customer when the phone failed: rolled back with it.
        assert s.scalars(select(Customer.dms_id).order_by(Customer.dms_id)).all() == ["C1"]
        # Row 2 comes before its store and customer in the file and still imports.
        assert s.scalars(select(RepairOrder.number)).all() == ["R1"]
        assert s.scalar(select(func.count()).select_from(StatusEventRow)) == 1


def test_advisor_rules(engine: Engine, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        s.add(User(username="legacy", name="Made By CLI", role="advisor", groups=[]))
    rows = [
        (2, {"type": "store", "store": "S1", "name": "One", "dids": "555-030-0100"}),
        (3, {"type": "store", "store": "S2", "name": "Two", "dids": "+15550300100"}),
        (
            4,
            {
                "type": "advisor",
                "id": "U1",
                "store": "S1",
                "username": "legacy",
                "name": "Lee Gacy",
            },
        ),
        (
            5,
            {
                "type": "advisor",
                "id": "U2",
                "store": "S1",
                "username": "boss",
                "name": "B",
                "role": "admin",
            },
        ),
        (6, {"type": "advisor", "id": "U3", "store": "S1", "username": "legacy", "name": "Dup"}),
        (7, {"type": "advisor", "id": "U4", "store": "S1;S404", "username": "x", "name": "X"}),
        (
            8,
            {
                "type": "advisor",
                "id": "U5",
                "store": "S1",
                "username": "y",
                "name": "Y",
                "sip_contact": "10.0.0.9",
            },
        ),
    ]
    report = import_rows(engine, rows)
    errors = sorted(report.errors)
    assert errors[0] == "row 3: dids: +15550300100 already rings store 'S1'"
    assert errors[1].startswith("row 5: role: 'admin'")
    assert errors[2] == "row 6: username: 'legacy' belongs to DMS user 'U1'"
    assert errors[3] == "row 7: store: no store with DMS id 'S404'"
    assert errors[4].startswith("row 8: sip_contact: expected a SIP URI")
    with sessions() as s:
        legacy = s.scalars(select(User).where(User.username == "legacy")).one()
        assert (legacy.dms_id, legacy.name) == ("U1", "Lee Gacy")  # adopted, not duplicated
        assert s.scalar(select(func.count()).select_from(User)) == 1
        assert s.scalars(select(Store.dms_id)).all() == ["S1"]


def test_read_rows_formats(tmp_path: Path) -> None:
    listed = _write_json(tmp_path, [{"Type": "store", "Store": "A"}], "a.json")
    wrapped = _write_json(tmp_path, {"rows": [{"type": "store"}, "oops"]}, "b.json")
    assert read_rows(listed) == [(1, {"type": "store", "store": "A"})]
    assert [n for n, _ in read_rows(wrapped)] == [1, 2]
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("\ufeffType,Store\nstore,A\n\nstore,B\n")  # BOM and a blank line
    assert read_rows(csv_path) == [
        (2, {"type": "store", "store": "A"}),
        (4, {"type": "store", "store": "B"}),
    ]
    for text, name in [("store,A\n", "d.csv"), ("{not json", "e.json"), ('{"a": 1}', "f.json")]:
        bad = tmp_path / name
        bad.write_text(text)
        with pytest.raises(ImportFileError):
            read_rows(bad)


def test_parse_hours_text() -> None:
    assert parse_hours_text("mon-wed 7:00-12:00,13:00-18:00; sat 08:00-14:00") == {
        "mon": [["07:00", "12:00"], ["13:00", "18:00"]],
        "tue": [["07:00", "12:00"], ["13:00", "18:00"]],
        "wed": [["07:00", "12:00"], ["13:00", "18:00"]],
        "sat": [["08:00", "14:00"]],
    }
    assert parse_hours_text('{"sun": [["10:00", "14:00"]]}') == {"sun": [["10:00", "14:00"]]}
    assert parse_hours_text({"Mon": [["07:00", "18:00"]]}) == {"mon": [["07:00", "18:00"]]}
    for bad in ("monday 07:00-18:00", "fri-mon 07:00-18:00", "mon 18:00-07:00", "mon 7-6"):
        with pytest.raises(ValueError):
            parse_hours_text(bad)


def test_import_command_exit_codes(db_url: str, tmp_path: Path, fresh_settings: None) -> None:
    runner = CliRunner()
    env = {"DRIVELINE_DATABASE_URL": db_url}
    good = runner.invoke(main, ["import", str(EXAMPLE)], env=env)
    assert good.exit_code == 0, good.output
    assert "repair_order created 3  updated 0  unchanged 0  failed 0" in good.output

    bad_path = tmp_path / "bad.csv"
    bad_path.write_text(
        "type,store,id,first_name,phone\ncustomer,EX1,C7,Ok,555-030-7777\ncustomer,EX1,C8,Bad,abc\n"
    )
    bad = runner.invoke(main, ["import", str(bad_path)], env=env)
    assert bad.exit_code == 1
    assert "row 3: phone: not a phone number: 'abc'" in bad.output
    assert "customer     created 1  updated 0  unchanged 0  failed 1" in bad.output

    again = runner.invoke(main, ["import", str(EXAMPLE)], env=env)
    assert again.exit_code == 0
    assert "repair_order created 0  updated 0  unchanged 3  failed 0" in again.output

    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    result = runner.invoke(main, ["import", str(broken)], env=env)
    assert result.exit_code == 1 and "not valid JSON" in result.output


def test_the_import_command_queues_the_pickup_call(
    db_url: str,
    redis_url: str,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    fresh_settings: None,
) -> None:
    """`driveline import` announces on the configured Redis: the pickup job is queued."""
    r = redis.Redis.from_url(redis_url)
    r.delete(outbound.QUEUE, outbound.DELAYED)
    env = {"DRIVELINE_DATABASE_URL": db_url, "DRIVELINE_REDIS_URL": redis_url}
    runner = CliRunner()
    assert runner.invoke(main, ["import", str(EXAMPLE)], env=env).exit_code == 0
    with sessions.begin() as s:
        store = s.scalars(select(Store).where(Store.dms_id == "EX1")).one()
        store.outbound = {"pickup_calls": True, "allow": [FICTIONAL]}  # +1 555
    ready = [{"type": "repair_order", "store": "EX1", "number": "70123",
              "status": "Ready for Pickup"}]  # fmt: skip
    result = runner.invoke(main, ["import", str(_write_json(tmp_path, ready))], env=env)
    assert result.exit_code == 0, result.output
    queued = [f[b"job"] for _i, f in r.xrange(outbound.QUEUE)] + r.zrange(outbound.DELAYED, 0, -1)
    assert [outbound.OutboundJob.model_validate_json(j).kind for j in queued] == ["pickup"]
