"""Which store a dialled number rings, also while the database is unreachable.

Each call still asks the record (a store's hours, departments or numbers may have changed since
the last call) and the answer is remembered per DID; the worker also loads every store once when
it starts, so even the first call to a number after an outage began finds its store. When the
record does not answer, the last answer for that DID is used: the call is answered as that store
(by the `records_down` flow, sip/lifecycle.py) instead of 503. A DID the record says rings no
store is forgotten (404 from then on).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ivr.domain import StoreInfo
from ivr.flow.records import Records

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreLookup:
    store: StoreInfo | None
    fresh: bool  # False: remembered, because the record did not answer


class StoreDirectory:
    def __init__(self, records: Records) -> None:
        self.records = records
        self._known: dict[str, StoreInfo] = {}

    def remember(self, stores: list[StoreInfo]) -> None:
        for store in stores:
            for did in store.dids:  # E.164, as `InboundCall.did`
                self._known[did] = store

    async def load(self, fetch: Callable[[], Awaitable[list[StoreInfo]]]) -> bool:
        """Remember every store `fetch` returns; False (logged) when the record is down: the
        directory then fills in call by call."""
        try:
            stores = await fetch()
        except Exception as exc:  # noqa: BLE001 - the worker still starts and answers
            log.warning("could not load the stores' numbers: %s", exc)
            return False
        self.remember(stores)
        log.info("%d store(s), %d number(s) known", len(stores), len(self._known))
        return True

    async def lookup(self, did: str) -> StoreLookup:
        """The store for `did` from the record, else the one last seen for it; raises what the
        record raised when this DID was never seen."""
        try:
            store = await self.records.store_for_did(did)
        except Exception as exc:
            known = self._known.get(did)
            if known is None:
                raise
            log.warning(
                "store lookup for %s failed (%s); using the store last seen for it", did, exc
            )
            return StoreLookup(known, fresh=False)
        if store is None:
            self._known.pop(did, None)
        else:
            self._known[did] = store
        return StoreLookup(store, fresh=True)
