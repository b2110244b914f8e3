"""A customer's export and erasure on request, on real SQLite and PostgreSQL with real files:
the zip holds everything (audio bytes too), the erasure takes the person out and deletes their
media but keeps every count, refusals change nothing, and each act is audited with its actor."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from records import morning, queries
from records.customer_data import ERASED
from records.models import (
    AuditLog,
    Call,
    CallbackTask,
    Customer,
    Recording,
    RepairOrder,
    Store,
    ThreadEntry,
    Transcript,
    User,
)
from records.queries import Scope
from tests.api.conftest import NOW, SHARED_PHONE, World
from tests.usecases.media import add_call
from usecases import customer_data
from usecases.errors import Conflict, Forbidden, NotFound


@dataclass
class Calls:
    root: Path
    linked: int  # Jo's (customer A) call
    unmatched: int  # from Jo's number, not linked: Jo's too
    zed: int  # another customer of A, calling from Jo's number (a household): Zed's call
    b_joan: int  # store B's customer with the same number: never touched


@pytest.fixture
def calls(world: World, sessions: sessionmaker[Session], tmp_path: Path) -> Calls:
    root = tmp_path / "recordings"
    a, b = world.stores["A"], world.stores["B"]
    with sessions.begin() as session:
        zed = session.scalars(select(Customer).where(Customer.dms_id == "C-A2")).one()
        made = Calls(
            root,
            add_call(session, root, store_id=a, started_at=NOW - timedelta(days=2),
                     customer_id=world.customers["A"], from_number=SHARED_PHONE).id,
            add_call(session, root, store_id=a, started_at=NOW - timedelta(days=1),
                     from_number=SHARED_PHONE, said="unmatched words").id,
            add_call(session, root, store_id=a, started_at=NOW - timedelta(days=1),
                     customer_id=zed.id, from_number=SHARED_PHONE).id,
            add_call(session, root, store_id=b, started_at=NOW - timedelta(days=1),
                     customer_id=world.customers["B"], from_number=SHARED_PHONE).id,
        )  # fmt: skip
    return made


def _user(session: Session, world: World, name: str) -> User:
    user = session.get(User, world.users[name])
    assert user is not None
    return user


def _file(session: Session, root: Path, call_id: int) -> Path:
    return root / session.scalars(select(Recording.path).where(Recording.call_id == call_id)).one()


def _export(session: Session, world: World, who: str, calls: Calls) -> dict[str, Any]:
    out = io.BytesIO()
    customer_data.export_customer(
        session,
        _user(session, world, who),
        customer_id=world.customers["A"],
        recordings_dir=calls.root,
        out=out,
    )
    archive = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    return {name: archive.read(name) for name in archive.namelist()}


def test_the_export_holds_everything_about_the_customer_with_the_audio(
    world: World, sessions: sessionmaker[Session], calls: Calls
) -> None:
    with sessions() as session:
        files = _export(session, world, "mary", calls)
        linked_audio = _file(session, calls.root, calls.linked).read_bytes()
    doc = json.loads(files.pop("customer.json"))
    assert doc["exported_by"] == "mary"
    assert doc["customer"]["first_name"] == "Jo" and doc["customer"]["email"] == "jo@example.com"
    assert doc["phones"] == [{"e164": SHARED_PHONE, "label": "mobile"}]
    assert [v["vin"] for v in doc["vehicles"]] == ["VINA"]
    assert {ro["number"] for ro in doc["repair_orders"]} == {"1001", "9A"}
    ro = next(r for r in doc["repair_orders"] if r["number"] == "1001")
    assert ro["concern"] == "brakes squeal" and len(ro["status_history"]) == 2
    assert [c["id"] for c in doc["calls"]] == [calls.linked, calls.unmatched]  # not B's, not Zed's
    unmatched = doc["calls"][1]
    assert unmatched["transcript"]["segments"][0]["text"] == "unmatched words"
    assert {e["body"] for e in doc["thread"]} >= {"@ann call them back"}
    assert [t["reason"] for t in doc["callbacks"]] == ["missed call"]
    # recordings/: each call's audio, byte for byte, named as customer.json says.
    named = [r["file"] for c in doc["calls"] for r in c["recordings"]]
    assert sorted(named) == sorted(files) and len(files) == 2
    assert files[doc["calls"][0]["recordings"][0]["file"]] == linked_audio
    assert all(content.startswith(b"RIFF") for content in files.values())
    with sessions() as session:
        (row,) = session.scalars(select(AuditLog)).all()
    assert (row.action, row.actor_id, row.subject) == (
        "customer.export",
        world.users["mary"],
        f"customer:{world.customers['A']}",
    )
    assert row.actor_name == "Mary (mary)" and row.details["recordings"] == 2


def test_a_recording_whose_file_is_gone_is_listed_without_a_file(
    world: World, sessions: sessionmaker[Session], calls: Calls
) -> None:
    with sessions() as session:
        _file(session, calls.root, calls.linked).unlink()
        files = _export(session, world, "root", calls)  # an admin may too
    doc = json.loads(files.pop("customer.json"))
    assert doc["calls"][0]["recordings"][0]["file"] is None and len(files) == 1


def _state(session: Session, world: World) -> dict[str, Any]:
    """What an erasure of customer A would change."""
    jo = session.get(Customer, world.customers["A"])
    assert jo is not None
    return {
        "jo": (jo.first_name, jo.email, [p.e164 for p in jo.phones], jo.erased_at),
        "recordings": sorted(session.scalars(select(Recording.call_id))),
        "transcripts": session.scalar(select(func.count()).select_from(Transcript)),
        "bodies": sorted(session.scalars(select(ThreadEntry.body))),
        "audit": session.scalar(select(func.count()).select_from(AuditLog)),
    }


def test_an_erasure_takes_the_person_out_and_keeps_the_counts(
    world: World, sessions: sessionmaker[Session], calls: Calls
) -> None:
    a = world.stores["A"]
    first, last = NOW.date() - timedelta(days=5), NOW.date()
    with sessions() as session:
        store = session.get(Store, a)
        assert store is not None
        counted = morning.morning_report(session, store=store, first=first, last=last, now=NOW)
        before = counted.total.ids["calls_in"]
        entries = session.scalar(select(func.count()).where(ThreadEntry.store_id == a))
        ros = session.scalar(select(func.count()).where(RepairOrder.store_id == a))
        audio = [_file(session, calls.root, c) for c in (calls.linked, calls.unmatched)]
        kept_audio = [_file(session, calls.root, c) for c in (calls.zed, calls.b_joan)]
        erased = customer_data.erase_customer(
            session,
            _user(session, world, "mary"),
            customer_id=world.customers["A"],
            recordings_dir=calls.root,
        )
    assert erased.counts["recordings"] == erased.counts["files_removed"] == 2
    assert erased.counts["transcripts"] == 2 and erased.counts["phones"] == 1
    assert not any(p.exists() for p in audio) and all(p.is_file() for p in kept_audio)
    with sessions() as session:
        jo = session.get(Customer, world.customers["A"])
        assert jo is not None and jo.erased_at is not None
        assert (jo.first_name, jo.last_name, jo.email, jo.dms_id, jo.phones) == (
            "",
            "",
            None,
            None,
            [],
        )
        assert [v.vin for v in jo.vehicles] == [None]
        assert sorted(session.scalars(select(Recording.call_id))) == sorted(
            [calls.zed, calls.b_joan]
        )
        for call_id in (calls.linked, calls.unmatched):
            call = session.get(Call, call_id)
            assert call is not None and call.from_number == ERASED and call.customer_id == jo.id
            assert {leg.party for leg in call.legs} == {ERASED}
        theirs = session.scalars(select(ThreadEntry).where(ThreadEntry.customer_id == jo.id)).all()
        assert theirs and all(e.body == "" and e.data.get("erased") for e in theirs)
        assert all("caller" not in e.data for e in theirs)
        task = session.get(CallbackTask, world.callbacks["A"])
        assert task is not None and (task.phone, task.reason) == ("", "")
        assert all(ro.concern is None for ro in jo.repair_orders)
        # Counts: every call, entry and RO is still there and still counted.
        store = session.get(Store, a)
        assert store is not None
        counted = morning.morning_report(session, store=store, first=first, last=last, now=NOW)
        assert counted.total.ids["calls_in"] == before and calls.linked in before
        assert session.scalar(select(func.count()).where(ThreadEntry.store_id == a)) == entries
        assert session.scalar(select(func.count()).where(RepairOrder.store_id == a)) == ros
        # Nobody finds the person any more; store B's customer with the same number is intact.
        found = queries.find_customers(session, scope=Scope(None), phone_e164=SHARED_PHONE,
                                       limit=10, offset=0)  # fmt: skip
        assert [c.id for c in found] == [world.customers["B"]]
        named = queries.find_customers(session, scope=Scope(None), name="jo", limit=10, offset=0)
        assert [c.id for c in named] == [world.customers["B"]]  # Joan; not the nameless row
        joan = session.get(Customer, world.customers["B"])
        assert joan is not None and joan.first_name == "Joan" and joan.phones
        for kept in (calls.b_joan, calls.zed):
            other = session.get(Call, kept)
            assert other is not None and other.from_number == SHARED_PHONE
        (row,) = session.scalars(select(AuditLog)).all()
        assert (row.action, row.actor_id, row.actor_name) == (
            "customer.erase",
            world.users["mary"],
            "Mary (mary)",
        )
        assert row.details["recordings"] == 2 and "Jo" not in json.dumps(row.details)
        # Again: nothing more to take out, audited again.
        again = customer_data.erase_customer(
            session,
            _user(session, world, "root"),
            customer_id=world.customers["A"],
            recordings_dir=calls.root,
        )
        assert again.counts["recordings"] == 0 and again.counts["phones"] == 0
        assert session.scalar(select(func.count()).select_from(AuditLog)) == 2


@pytest.mark.parametrize(
    ("who", "refusal"), [("ann", Forbidden), ("bea", NotFound), ("bob", NotFound)]
)
def test_advisors_and_other_stores_are_refused_and_nothing_changes(
    world: World, sessions: sessionmaker[Session], calls: Calls, who: str, refusal: type[Exception]
) -> None:
    """ann, an advisor of A, may see Jo but not export or erase her; bea (manager of B) and bob
    (advisor of B) are told Jo does not exist."""
    with sessions() as session:
        before = _state(session, world)
        actor = _user(session, world, who)
        with pytest.raises(refusal):
            customer_data.erase_customer(
                session, actor, customer_id=world.customers["A"], recordings_dir=calls.root
            )
        with pytest.raises(refusal):
            customer_data.export_customer(
                session,
                actor,
                customer_id=world.customers["A"],
                recordings_dir=calls.root,
                out=io.BytesIO(),
            )
        session.rollback()
        assert _state(session, world) == before


def test_no_erasure_while_a_call_with_the_customer_is_in_progress(
    world: World, sessions: sessionmaker[Session], calls: Calls
) -> None:
    with sessions() as session:
        live = NOW - timedelta(minutes=3)
        add_call(session, calls.root, store_id=world.stores["A"], started_at=live,
                 customer_id=world.customers["A"], ended=False)  # fmt: skip
        session.commit()
        before = _state(session, world)
        with pytest.raises(Conflict, match="in progress"):
            customer_data.erase_customer(
                session,
                _user(session, world, "mary"),
                customer_id=world.customers["A"],
                recordings_dir=calls.root,
                now=NOW,
            )
        session.rollback()
        assert _state(session, world) == before
