"""SQLAlchemy 2 models of the shared record. Alembic migrations under records/migrations.

Times are stored as UTC and always come back timezone-aware (SQLite keeps no zone).
DMS ids (`dms_id`) are the keys imports upsert by; our own integer ids never leave the API
without a store scope check.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


user_stores = Table(
    "user_stores",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("store_id", ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True),
)


class Store(Base):
    """A rooftop's service department."""

    __tablename__ = "stores"
    id: Mapped[int] = mapped_column(primary_key=True)
    dms_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    # {"mon": [["07:00", "18:00"]], ...} in the store's time zone; a missing day is closed.
    hours: Mapped[dict[str, list[list[str]]]] = mapped_column(JSON, default=dict)
    recording_consent: Mapped[bool] = mapped_column(Boolean, default=True)
    custom_statuses: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Masked outbound calls: allowed destinations, rate limits, sticky callbacks, proactive
    # pickup calls (ivr.policies.OutboundPolicy; None = its defaults).
    outbound: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Street address, for "where are you located?".
    address: Mapped[str | None] = mapped_column(String(300))
    # Holidays and closures: [{"date": "2026-12-25", "name": "Christmas Day"}, {"date":
    # "2026-12-24", "name": "Christmas Eve", "hours": [["08:00", "12:00"]]}]; no "hours" = closed.
    closures: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=list)
    # Follow-up delays and windows (declined service, silent defectors; None = the defaults).
    follow_ups: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Recordings and transcripts of calls older than this many days are deleted (the daily
    # retention run, usecases/retention.py); None keeps them forever.
    retention_days: Mapped[int | None] = mapped_column(Integer)

    numbers: Mapped[list[StoreNumber]] = relationship(
        back_populates="store", cascade="all, delete-orphan", order_by="StoreNumber.id"
    )

    @property
    def dids(self) -> list[str]:
        return [n.e164 for n in self.numbers]


class StoreNumber(Base):
    """A DID that rings this store; an INVITE is matched to its store by this."""

    __tablename__ = "store_numbers"
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    e164: Mapped[str] = mapped_column(String(20), unique=True)
    # The department this number rings; None: the store's service department.
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL")
    )
    store: Mapped[Store] = relationship(back_populates="numbers")
    department: Mapped[Department | None] = relationship()


class Department(Base):
    """Service, sales, parts or BDC of one store: its own numbers, hours, flow and users.

    The customer record is the store's, shared by all its departments: whichever number a
    customer calls, they are the same customer with the same thread.
    """

    __tablename__ = "departments"
    __table_args__ = (UniqueConstraint("store_id", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # ivr.domain.DepartmentKind
    name: Mapped[str] = mapped_column(String(100))
    # Like Store.hours; None: the store's hours.
    hours: Mapped[dict[str, list[list[str]]] | None] = mapped_column(JSON)
    flow: Mapped[str] = mapped_column(String(100), default="main")  # what its numbers run
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    store: Mapped[Store] = relationship()


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    dms_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="advisor")  # ivr.domain.Role
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164, for transfers and masking
    sip_contact: Mapped[str | None] = mapped_column(String(200))  # sip:alice@10.0.0.5:5062
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)  # ring groups, e.g. ["service"]
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # The department they work in (None: service, or store-wide for managers and admins).
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL")
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    stores: Mapped[list[Store]] = relationship(secondary=user_stores, order_by="Store.id")

    @property
    def store_ids(self) -> list[int]:
        return [s.id for s in self.stores]


class ApiToken(Base):
    """A bearer token bound to one user; only its sha256 is kept."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Past this the token is refused ("token expired"); every token has one (api_token_days).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    user: Mapped[User] = relationship()


class Integration(Base):
    """A system that posts to the webhooks for one store (the DMS): its own kind of credential,
    never a user's token. Each request is signed with HMAC-SHA256 over timestamp and body
    (api/webhook_auth.py), so the secret is kept as it is: it is shown once, when made, and
    never listed."""

    __tablename__ = "integrations"
    __table_args__ = (UniqueConstraint("store_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    key_id: Mapped[str] = mapped_column(String(32), unique=True)  # sent as X-Driveline-Key
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    store: Mapped[Store] = relationship()


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("store_id", "dms_id"),
        Index("ix_customers_store_name", "store_id", "last_name", "first_name"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    dms_id: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(200))
    advisor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    do_not_call: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set by an erasure on request (usecases/customer_data.py): the row stays, nameless and
    # without phones, so the calls and repair orders it had still count in reports.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    store: Mapped[Store] = relationship()
    advisor: Mapped[User | None] = relationship()
    phones: Mapped[list[PhoneNumber]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="PhoneNumber.id"
    )
    vehicles: Mapped[list[Vehicle]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Vehicle.id"
    )
    repair_orders: Mapped[list[RepairOrder]] = relationship(
        back_populates="customer", order_by="RepairOrder.opened_at"
    )

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class PhoneNumber(Base):
    """Always E.164 (`phonenumbers`), so any way a caller ID or a DMS writes it matches."""

    __tablename__ = "phone_numbers"
    __table_args__ = (
        UniqueConstraint("customer_id", "e164"),
        Index("ix_phone_numbers_store_e164", "store_id", "e164"),
        Index("ix_phone_numbers_e164", "e164"),  # lookups across all of an admin's stores
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    e164: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(20), default="mobile")
    customer: Mapped[Customer] = relationship(back_populates="phones")


class Vehicle(Base):
    __tablename__ = "vehicles"
    __table_args__ = (UniqueConstraint("store_id", "dms_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    dms_id: Mapped[str | None] = mapped_column(String(64))
    year: Mapped[int | None] = mapped_column(Integer)
    make: Mapped[str] = mapped_column(String(50), default="")
    model: Mapped[str] = mapped_column(String(50), default="")
    vin: Mapped[str | None] = mapped_column(String(17), index=True)
    plate: Mapped[str | None] = mapped_column(String(16))
    customer: Mapped[Customer] = relationship(back_populates="vehicles")


class RepairOrder(Base):
    __tablename__ = "repair_orders"
    __table_args__ = (
        UniqueConstraint("store_id", "number"),
        Index("ix_repair_orders_customer_status", "customer_id", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(32))  # the RO number the DMS prints; also its key
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id", ondelete="SET NULL"))
    advisor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(50))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    promised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    concern: Mapped[str | None] = mapped_column(Text)

    customer: Mapped[Customer] = relationship(back_populates="repair_orders")
    vehicle: Mapped[Vehicle | None] = relationship()
    advisor: Mapped[User | None] = relationship()
    events: Mapped[list[StatusEventRow]] = relationship(
        back_populates="repair_order",
        cascade="all, delete-orphan",
        order_by="(StatusEventRow.at, StatusEventRow.id)",
    )
    line_items: Mapped[list[RoLineItem]] = relationship(
        back_populates="repair_order", cascade="all, delete-orphan", order_by="RoLineItem.id"
    )


class RoLineItem(Base):
    """A recommended repair on a repair order; a declined one becomes a follow-up."""

    __tablename__ = "ro_line_items"
    __table_args__ = (UniqueConstraint("repair_order_id", "dms_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    repair_order_id: Mapped[int] = mapped_column(
        ForeignKey("repair_orders.id", ondelete="CASCADE"), index=True
    )
    dms_id: Mapped[str | None] = mapped_column(String(64))  # the DMS's line (operation) code
    description: Mapped[str] = mapped_column(Text)
    estimate_cents: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="recommended")  # ivr.domain.LineStatus
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    repair_order: Mapped[RepairOrder] = relationship(back_populates="line_items")


class VehiclePurchase(Base):
    """A vehicle the customer bought here, with the salesperson (sales data from the DMS)."""

    __tablename__ = "vehicle_purchases"
    __table_args__ = (UniqueConstraint("store_id", "dms_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    dms_id: Mapped[str | None] = mapped_column(String(64))  # the deal number
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id", ondelete="SET NULL"))
    purchased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    salesperson_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # As the DMS names them; kept when they are not (or no longer) a user here.
    salesperson_name: Mapped[str] = mapped_column(String(200), default="")
    condition: Mapped[str] = mapped_column(String(10), default="new")  # new / used / cpo
    vehicle: Mapped[Vehicle | None] = relationship()
    salesperson: Mapped[User | None] = relationship()


class StatusEventRow(Base):
    """One step of a repair order's status history (from import, webhook or the API)."""

    __tablename__ = "ro_status_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    repair_order_id: Mapped[int] = mapped_column(
        ForeignKey("repair_orders.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(50))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(20), default="api")  # import, webhook, api, demo
    note: Mapped[str | None] = mapped_column(Text)
    repair_order: Mapped[RepairOrder] = relationship(back_populates="events")


class Call(Base):
    """The call record (CDR); written by the event consumer, never by the flow engine."""

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_store_started", "store_id", "started_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    call_uuid: Mapped[str] = mapped_column(String(64), unique=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    advisor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    direction: Mapped[str] = mapped_column(String(10))  # inbound / outbound
    from_number: Mapped[str] = mapped_column(String(40))
    to_number: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # handled_by_ivr / transferred / voicemail / abandoned / missed / failed
    disposition: Mapped[str | None] = mapped_column(String(20))
    # The department whose number was called (inbound) or who called (outbound).
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL"), index=True
    )
    flow_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    legs: Mapped[list[CallLeg]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="CallLeg.id"
    )


class CallLeg(Base):
    __tablename__ = "call_legs"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10))  # caller / advisor
    party: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    call: Mapped[Call] = relationship(back_populates="legs")


class Recording(Base):
    __tablename__ = "recordings"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    leg_id: Mapped[int | None] = mapped_column(ForeignKey("call_legs.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(12), default="leg")  # leg / voicemail
    path: Mapped[str] = mapped_column(String(500))  # relative to Settings.recordings_dir
    sha256: Mapped[str] = mapped_column(String(64))
    duration_s: Mapped[float] = mapped_column(Float)
    consent_played: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Transcript(Base):
    __tablename__ = "transcripts"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    model: Mapped[str] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(10), default="en")
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    segments: Mapped[list[TranscriptSegment]] = relationship(
        back_populates="transcript",
        cascade="all, delete-orphan",
        order_by="TranscriptSegment.start_s",
    )


class TranscriptSegment(Base):
    """One line of a call's transcript; times are seconds from the call start. Full-text search
    over `text` is in migration 0002 only (SQLite FTS5 table kept by triggers, PostgreSQL GIN
    index): both are dialect-specific; records/transcripts.py queries them."""

    __tablename__ = "transcript_segments"
    id: Mapped[int] = mapped_column(primary_key=True)
    transcript_id: Mapped[int] = mapped_column(
        ForeignKey("transcripts.id", ondelete="CASCADE"), index=True
    )
    speaker: Mapped[str] = mapped_column(String(10))  # Caller / Advisor / IVR
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    transcript: Mapped[Transcript] = relationship(back_populates="segments")


class ThreadEntry(Base):
    """One item on a customer's thread: call, voicemail, note, status change, pickup, audit."""

    __tablename__ = "thread_entries"
    __table_args__ = (
        Index("ix_thread_entries_customer_at", "customer_id", "at"),
        Index("ix_thread_entries_store_at", "store_id", "at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    # None for a call from an unknown number, until a user links it to a customer.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # ivr.domain.ThreadKind
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    # Makes writes idempotent when an event is delivered twice (e.g. "call:<uuid>").
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)

    author: Mapped[User | None] = relationship()
    mentions: Mapped[list[Mention]] = relationship(
        back_populates="entry", cascade="all, delete-orphan"
    )


class Mention(Base):
    __tablename__ = "mentions"
    __table_args__ = (UniqueConstraint("entry_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("thread_entries.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    entry: Mapped[ThreadEntry] = relationship(back_populates="mentions")
    user: Mapped[User] = relationship()


class CallbackTask(Base):
    """Somebody owes this caller a call back; a missed call always gets one with an owner."""

    __tablename__ = "callback_tasks"
    __table_args__ = (Index("ix_callback_tasks_owner_open", "owner_id", "done_at", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    customer: Mapped[Customer | None] = relationship()


class FollowUp(Base):
    """A call somebody owes a customer, beyond a missed call's callback: a declined repair to
    offer again, a promise to keep, an outreach to a customer who stopped coming.

    A promise tied to a DMS event ("call when the part arrives") waits with `trigger` set and
    no `due_at` until the event comes; then it is due. Kept / late / broken is read off
    `done_at` against `due_at`.
    """

    __tablename__ = "follow_ups"
    __table_args__ = (
        Index("ix_follow_ups_owner_open", "owner_id", "done_at", "due_at"),
        Index("ix_follow_ups_store_due", "store_id", "due_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL")
    )
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    repair_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("repair_orders.id", ondelete="SET NULL")
    )
    line_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("ro_line_items.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(20))  # ivr.domain.FollowUpKind
    text: Mapped[str] = mapped_column(Text, default="")  # "call when the part arrives"
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # A DMS event the promise waits for ("part_arrived", "status:Ready for Pickup"); None: a time.
    trigger: Mapped[str | None] = mapped_column(String(80))
    triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None while waiting
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # booked / not_interested / no_answer (retried) / done; None while open.
    outcome: Mapped[str | None] = mapped_column(String(20))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Makes creation idempotent ("declined:<line item id>").
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)

    customer: Mapped[Customer] = relationship()
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])


class AuditLog(Base):
    """Who did what to whose data, and when: a customer's export and erasure, a retention run
    (`actor_id` None: the daily job). Kept when the user is gone (`actor_name`), never edited.
    `details` says what was touched (counts, ids), never the personal data itself."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_store_action_at", "store_id", "action", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(200))  # "Mary Manager (mary)", "retention job"
    action: Mapped[str] = mapped_column(String(40))  # ivr.domain.AuditAction
    subject: Mapped[str] = mapped_column(String(80), default="")  # "customer:12"
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --- web pages (issue 6) ------------------------------------------------------------------------


class WebSession(Base):
    """A browser login: the cookie holds a random secret, the database only its sha256.

    Logging out or an expiry ends it server-side (a stolen cookie dies with the session), and
    each session carries its own CSRF secret for the forms it renders.
    """

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    user: Mapped[User] = relationship()
