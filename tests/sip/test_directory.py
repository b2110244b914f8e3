"""The worker's directory of stores by DID: the record first, the last answer while it is down."""

from __future__ import annotations

import pytest

from ivr.domain import StoreInfo
from ivr.flow.fakes import FakeRecords
from ivr.flow.records import RecordsUnavailable
from sip.directory import StoreDirectory

DID = "+15550100100"
OTHER = "+15550100199"


class Record(FakeRecords):
    """FakeRecords whose store lookups can be switched off, like a database that went away."""

    down = False

    async def store_for_did(self, did: str) -> StoreInfo | None:
        if self.down:
            raise RecordsUnavailable("no answer from the database in 1.5 s")
        return await super().store_for_did(did)


@pytest.fixture
def record() -> Record:
    made = Record.from_dict({"store": {"name": "Hometown Motors", "dids": [DID]}})
    return made  # type: ignore[return-value]


async def test_a_number_seen_before_the_outage_still_finds_its_store(record: Record) -> None:
    directory = StoreDirectory(record)
    first = await directory.lookup(DID)
    assert first.fresh and first.store is not None
    record.down = True
    during = await directory.lookup(DID)
    assert (during.store, during.fresh) == (first.store, False)
    with pytest.raises(RecordsUnavailable):  # never seen: nothing to go on (503)
        await directory.lookup(OTHER)


async def test_the_stores_loaded_at_start_answer_the_first_call_of_an_outage(
    record: Record,
) -> None:
    directory = StoreDirectory(record)
    assert await directory.load(lambda: _stores(record))
    record.down = True
    during = await directory.lookup(DID)
    assert during.store is not None and during.store.name == "Hometown Motors"


async def test_a_failed_load_is_not_fatal_and_a_number_the_record_drops_is_forgotten(
    record: Record,
) -> None:
    directory = StoreDirectory(record)

    async def unreachable() -> list[StoreInfo]:
        raise RecordsUnavailable("connection refused")

    assert not await directory.load(unreachable)
    assert (await directory.lookup(DID)).store is not None
    record.stores[0] = StoreInfo(id=1, name="Hometown Motors", timezone="America/New_York")
    assert (await directory.lookup(DID)).store is None  # the number no longer rings it: 404
    record.down = True
    with pytest.raises(RecordsUnavailable):
        await directory.lookup(DID)


async def _stores(record: Record) -> list[StoreInfo]:
    return list(record.stores)
