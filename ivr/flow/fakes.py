"""In-memory stand-ins for a call and for the database, scripted like a play.

Used by the unit tests, by `driveline flows test` (store-written flow tests) and, for the
channel, by `driveline flows run` against the real database.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ivr.domain import (
    AdvisorInfo,
    CustomerInfo,
    DepartmentInfo,
    RepairOrderInfo,
    StoreInfo,
    VehicleInfo,
    parse_closures,
)
from ivr.flow.channel import (
    CallerHungUp,
    GatherResult,
    HungUp,
    Prompt,
    PromptFinished,
    Recording,
    SpeechHeard,
    TransferResult,
    TransferStatus,
)
from ivr.flow.records import LastContact
from ivr.phone import to_e164
from ivr.speech import STT, hint_prompt

# --- the caller's side: a script of inputs ----------------------------------------------------


@dataclass(frozen=True)
class Press:
    digits: str  # keys pressed in one go, e.g. "1" or "4711#"


@dataclass(frozen=True)
class Silence:
    """The caller says nothing: the gather times out."""


@dataclass(frozen=True)
class SpokenAudio:
    """The caller speaks a recording (a WAV file): the channel's recogniser transcribes it."""

    path: str


ScriptItem = Press | SpeechHeard | SpokenAudio | Silence | HungUp


def parse_input(text: str) -> ScriptItem:
    """How tests and `--input` write what the caller does: `1`, `4711#`, `silence`, `hangup`,
    `wav:FILE` (speech from a WAV file), `say:TEXT` (speech, even `say:one`), anything else is
    speech."""
    value = text.strip()
    if value.lower().startswith("wav:"):
        return SpokenAudio(value[4:].strip())
    if value.lower().startswith("say:"):
        return SpeechHeard(value[4:].strip())
    if re.fullmatch(r"[0-9*#]+", value):
        return Press(value)
    if value.lower() in ("silence", "timeout", ""):
        return Silence()
    if value.lower() in ("hangup", "hang up"):
        return HungUp()
    return SpeechHeard(value)


class FakeChannel:
    """A `CallChannel` that plays a scripted caller and remembers everything that happened.

    Each gather takes the next script item (none left = silence); a `SpokenAudio` item is
    transcribed by `stt` (a real recogniser: `driveline flows run --input wav:FILE`) with the
    gather's hints as its prompt. `record` takes the next item only if it is speech (the
    message) or a hang-up. A pending hang-up wins over any other
    channel call, which then raises `CallerHungUp`, like a caller hanging up mid-prompt.
    """

    def __init__(
        self,
        script: Iterable[ScriptItem | str] = (),
        *,
        transfers: Mapping[str, str] | None = None,
        recordings_dir: str = "var/recordings",
        stt: STT | None = None,
    ) -> None:
        self.stt = stt
        self.script: list[ScriptItem] = [
            parse_input(item) if isinstance(item, str) else item for item in script
        ]
        self.transfer_results = {k: TransferStatus(v) for k, v in (transfers or {}).items()}
        self.recordings_dir = recordings_dir
        self.actions: list[tuple[str, str]] = []  # ("say", text), ("transfer", contact), ...
        self.hung_up = False

    @property
    def said(self) -> list[str]:
        return [text for kind, text in self.actions if kind in ("say", "prompt")]

    @property
    def remaining(self) -> list[ScriptItem]:
        return list(self.script)

    def _check(self) -> None:
        if self.hung_up:
            raise CallerHungUp()
        if self.script and isinstance(self.script[0], HungUp):
            self.script.pop(0)
            self.hung_up = True
            self.actions.append(("caller_hangup", ""))
            raise CallerHungUp()

    async def say(self, text: str) -> PromptFinished:
        self._check()
        self.actions.append(("say", text))
        return PromptFinished()

    async def play(self, path: str) -> PromptFinished:
        self._check()
        self.actions.append(("play", path))
        return PromptFinished()

    async def gather(
        self,
        prompt: Prompt | None,
        *,
        max_digits: int = 1,
        terminator: str | None = "#",
        timeout: float = 5.0,
        inter_digit_timeout: float = 3.0,
        speech: bool = False,
        barge_in: bool = True,
        hints: Sequence[str] = (),
        sensitive: bool = False,
    ) -> GatherResult:
        self._check()
        if prompt is not None:
            self.actions.append(("prompt", str(prompt)))
        item = self.script.pop(0) if self.script else Silence()
        if isinstance(item, SpokenAudio):
            item = SpeechHeard(await self._transcribe(item.path, hints))
        if isinstance(item, Press):
            digits = item.digits
            if terminator and terminator in digits:
                digits = digits.split(terminator, 1)[0]
            return GatherResult(digits=digits[:max_digits])
        if isinstance(item, SpeechHeard):
            return GatherResult(heard=item.text) if speech else GatherResult()
        return GatherResult()

    async def _transcribe(self, path: str, hints: Sequence[str]) -> str:
        if self.stt is None:
            raise ValueError(f"cannot hear {path}: this channel has no recogniser")
        stt, prompt = self.stt, hint_prompt(hints)
        segments = await asyncio.to_thread(lambda: stt.transcribe(Path(path), prompt=prompt))
        heard = " ".join(s.text for s in segments).strip()
        self.actions.append(("heard", heard))
        return heard

    async def record(
        self, *, max_seconds: float = 120.0, silence_timeout: float = 5.0, beep: bool = True
    ) -> Recording:
        self._check()
        path = f"{self.recordings_dir}/fake-{len(self.actions)}.wav"
        self.actions.append(("record", path))
        duration, hung_up = 0.0, False
        message = self.script[0] if self.script else None
        if isinstance(message, SpeechHeard):  # what the caller says into the recording
            self.script.pop(0)
            duration = min(max_seconds, 0.4 * len(message.text.split()) + 1)
        if self.script and isinstance(self.script[0], HungUp):
            self.script.pop(0)
            self.hung_up = hung_up = True
        return Recording(path=path, duration=duration, hung_up=hung_up)

    async def transfer(
        self, contacts: Sequence[str], *, ring_seconds: float = 20.0
    ) -> TransferResult:
        self._check()
        for contact in contacts:
            status = self.transfer_results.get(contact, TransferStatus.answered)
            self.actions.append(("transfer", f"{contact} {status}"))
            if status == TransferStatus.answered:
                return TransferResult(status, contact)
        last = self.transfer_results.get(contacts[-1], TransferStatus.no_answer)
        return TransferResult(last)

    async def hangup(self) -> None:
        self.actions.append(("hangup", ""))


# --- the shared record, in memory -------------------------------------------------------------


@dataclass
class FakeRecords:
    """A `Records` over plain lists; writes are kept in lists for tests to assert on."""

    stores: list[StoreInfo] = field(default_factory=list)
    customers: list[CustomerInfo] = field(default_factory=list)
    users: list[AdvisorInfo] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)  # name → usernames
    repair_orders: list[RepairOrderInfo] = field(default_factory=list)  # besides customers' own
    thread_entries: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    promises: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    last_contacted: dict[str, str] = field(default_factory=dict)  # phone → username
    sticky_mode: Literal["direct", "offer"] = "direct"

    async def store_for_did(self, did: str) -> StoreInfo | None:
        return next((s for s in self.stores if did in s.dids), None)

    async def store(self, store_id: int) -> StoreInfo | None:
        return next((s for s in self.stores if s.id == store_id), None)

    async def customer_by_phone(self, store_id: int, phone_e164: str) -> CustomerInfo | None:
        return next((c for c in self.customers if phone_e164 in c.phones), None)

    async def repair_order(self, store_id: int, number: str) -> RepairOrderInfo | None:
        every = [*self.repair_orders, *(r for c in self.customers for r in c.open_repair_orders)]
        return next((r for r in every if r.number == number), None)

    async def user(self, store_id: int, username: str) -> AdvisorInfo | None:
        return next((u for u in self.users if u.username == username), None)

    async def group(self, store_id: int, name: str) -> list[AdvisorInfo]:
        if name in self.groups:
            return [u for n in self.groups[name] for u in self.users if u.username == n]
        in_group = [u for u in self.users if name in u.groups]
        return in_group or (list(self.users) if name == "service" else [])

    async def last_contact(self, store_id: int, phone_e164: str) -> LastContact | None:
        username = self.last_contacted.get(phone_e164)
        advisor = next((u for u in self.users if u.username == username), None)
        return LastContact(advisor, self.sticky_mode) if advisor else None

    async def add_thread_entry(
        self,
        store_id: int,
        customer_id: int | None,
        kind: str,
        body: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        entry = dict(store_id=store_id, customer_id=customer_id, kind=kind, body=body, data=data)
        self.thread_entries.append(entry)

    async def create_callback(
        self,
        store_id: int,
        customer_id: int | None,
        phone_e164: str,
        owner_id: int | None,
        due_at: datetime,
        reason: str,
    ) -> None:
        self.callbacks.append(
            dict(
                store_id=store_id,
                customer_id=customer_id,
                phone=phone_e164,
                owner_id=owner_id,
                due_at=due_at,
                reason=reason,
            )
        )

    async def create_promise(
        self,
        store_id: int,
        repair_order_id: int,
        text: str,
        trigger: str | None = None,
        due_at: datetime | None = None,
    ) -> None:
        self.promises.append(
            dict(
                store_id=store_id,
                repair_order_id=repair_order_id,
                text=text,
                trigger=trigger,
                due_at=due_at,
            )
        )

    async def publish(self, store_id: int, event_type: str, payload: dict[str, Any]) -> None:
        self.events.append(dict(store_id=store_id, type=event_type, data=payload))

    # --- building one from plain data (flow tests) ---------------------------------------------

    @classmethod
    def from_dict(cls, given: Mapping[str, Any]) -> FakeRecords:
        """Build from a flow test's `given:` (see flows/README.md): store, users, groups,
        customer (with repair_orders and advisor) and other repair_orders."""
        store = store_from_dict(given.get("store") or {})
        users = [
            AdvisorInfo(
                id=i,
                name=u["name"],
                username=u["username"],
                contact=u.get("contact"),
                groups=tuple(u.get("groups", ())),
            )
            for i, u in enumerate(given.get("users") or [], start=1)
        ]
        by_username = {u.username: u for u in users}

        def advisor(username: str | None) -> AdvisorInfo | None:
            if username is None:
                return None
            if username not in by_username:
                raise ValueError(f"advisor {username!r} is not among the users")
            return by_username[username]

        def repair_order(
            i: int, data: Mapping[str, Any], customer_id: int | None
        ) -> RepairOrderInfo:
            vehicle = data.get("vehicle")
            return RepairOrderInfo(
                id=i,
                number=str(data["number"]),
                status=data.get("status", "In Shop"),
                opened_at=local_time(data.get("opened"), store)
                or datetime(2000, 1, 1, tzinfo=store.tz),
                promised_at=local_time(data.get("promised"), store),
                vehicle=_vehicle(vehicle) if vehicle else None,
                advisor=advisor(data.get("advisor")),
                customer_id=customer_id,
            )

        customers = []
        ro_id = 100
        if given.get("customer"):
            data = given["customer"]
            ros = []
            for ro in data.get("repair_orders") or []:
                ro_id += 1
                ro = {"advisor": data.get("advisor"), **ro}
                ros.append(repair_order(ro_id, ro, 1))
            phone = data.get("phone") or given.get("caller")
            customers.append(
                CustomerInfo(
                    id=1,
                    first_name=data.get("first_name", ""),
                    last_name=data.get("last_name", ""),
                    phones=(to_e164(str(phone)),) if phone else (),
                    open_repair_orders=tuple(r for r in ros if r.is_open),
                    advisor=advisor(data.get("advisor")),
                )
            )
        others = []
        for ro in given.get("repair_orders") or []:
            ro_id += 1
            others.append(repair_order(ro_id, ro, None))
        return cls(
            stores=[store],
            customers=customers,
            users=users,
            groups={k: list(v) for k, v in (given.get("groups") or {}).items()},
            repair_orders=others,
            # {phone: username}: who called that number within the sticky window
            last_contacted={
                str(k): advisor(v).username  # type: ignore[union-attr]
                for k, v in (given.get("last_contacted") or {}).items()
            },
        )


DEFAULT_HOURS = {day: [["07:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")} | {
    "sat": [["08:00", "13:00"]]
}


def store_from_dict(data: Mapping[str, Any]) -> StoreInfo:
    """`departments`: `[{kind: sales, name: Sales, hours: {...}, flow: sales, numbers: [...]}]`."""
    departments, numbers = [], {}
    for i, dept in enumerate(data.get("departments") or [], start=1):
        kind = str(dept["kind"])
        departments.append(
            DepartmentInfo(
                id=i,
                kind=kind,
                name=str(dept.get("name") or kind.title()),
                hours=dept.get("hours"),
                flow=str(dept.get("flow") or "main"),
            )
        )
        numbers.update({to_e164(str(n)): kind for n in dept.get("numbers") or []})
    return StoreInfo(
        id=int(data.get("id", 1)),
        name=data.get("name", "Hometown Motors"),
        timezone=data.get("timezone", "America/New_York"),
        hours=data.get("hours", DEFAULT_HOURS),
        dids=tuple(to_e164(str(d)) for d in data.get("dids", ["+15550100000"])) + tuple(numbers),
        address=data.get("address"),
        closures=parse_closures(data.get("closures")),
        departments=tuple(departments),
        number_departments=numbers,
    )


def local_time(value: Any, store: StoreInfo) -> datetime | None:
    """A test's time: naive times are the store's local time."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=store.tz) if moment.tzinfo is None else moment


def _vehicle(value: Any) -> VehicleInfo:
    """`"2021 Honda CR-V"` or `{year, make, model}`."""
    if isinstance(value, Mapping):
        return VehicleInfo(
            id=1, year=value.get("year"), make=value.get("make", ""), model=value.get("model", "")
        )
    parts = str(value).split(maxsplit=2)
    year = int(parts[0]) if parts and parts[0].isdigit() else None
    rest = parts[1:] if year else parts
    return VehicleInfo(id=1, year=year, make=rest[0] if rest else "", model=" ".join(rest[1:]))
