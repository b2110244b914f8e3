"""A store's policies: the rules the API, the pages, the call writer and the SIP worker share.

Stored per store as JSON (`Store.outbound`, `Store.follow_ups`); every field has a default, so a
store that set nothing gets the safe behaviour. Pure: records/ reads the JSON and hands it here.
Data retention (`Store.retention_days`) is a plain column; its rules are at the end.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ivr.phone import DestinationRule, destination_rule

PromiseState = Literal["waiting", "pending", "kept", "late", "broken"]


class OutboundPolicy(BaseModel):
    """A store's outbound settings (`Store.outbound`, JSON); every field has a safe default."""

    model_config = ConfigDict(extra="forbid")

    geographic: bool = Field(
        default=True,
        description="US and Canadian geographic numbers (fixed and mobile) may be called; "
        "premium, toll-free, Caribbean and other +1 countries may not (ivr.phone).",
    )
    allow: list[str] = Field(
        default_factory=list,
        description="Further destinations: regular expressions an E.164 number fully matches.",
    )
    caller_id: str | None = Field(
        default=None, description="The DID customers see; default the store's first number."
    )
    per_advisor_hour: int = Field(default=20, ge=0)
    per_store_hour: int = Field(default=200, ge=0)
    advisor_ring_s: float = Field(default=25.0, gt=0, le=120)
    customer_ring_s: float = Field(default=30.0, gt=0, le=120)
    sticky_hours: float = Field(default=72.0, ge=0, description="0 turns sticky callbacks off.")
    sticky_mode: Literal["direct", "offer"] = "direct"
    pickup_calls: bool = Field(default=False, description="Call when an RO is Ready for Pickup.")
    pickup_retry_s: float = Field(default=600.0, ge=0)
    pickup_per_customer_day: int = Field(
        default=2,
        ge=0,
        description="Pickup calls to one customer in 24 hours at most, so a DMS status that "
        "flaps in and out of Ready for Pickup cannot ring them again and again.",
    )

    @field_validator("allow")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        try:
            destination_rule(True, patterns)
        except ValueError as exc:
            raise ValueError(f"allow: {exc}") from None
        return patterns

    @property
    def rule(self) -> DestinationRule:
        return DestinationRule(geographic=self.geographic, allow=tuple(self.allow))

    def allows(self, number: str) -> bool:
        return self.rule.allows(number)


class FollowUpPolicy(BaseModel):
    """A store's follow-up settings (`Store.follow_ups`, JSON); every field has a default."""

    model_config = ConfigDict(extra="forbid")

    declined_delay_days: float = Field(
        default=30, ge=0, le=3650, description="A declined repair is offered again after this."
    )
    defector_months: int = Field(
        default=9, ge=1, le=120, description="No visit for this long and no open RO: a defector."
    )
    no_answer_retry_days: float = Field(
        default=2, gt=0, le=365, description="A follow-up nobody answered is due again after this."
    )
    max_attempts: int = Field(
        default=3, ge=1, le=20, description="After this many attempts it closes as no_answer."
    )
    promise_grace_minutes: float = Field(
        default=15, ge=0, le=24 * 60, description="A promise done this late still counts as kept."
    )


class Promised(Protocol):
    """What `promise_state` reads of a follow-up (records.models.FollowUp has both)."""

    due_at: datetime | None
    done_at: datetime | None


def promise_state(fu: Promised, *, now: datetime, grace: timedelta) -> PromiseState:
    """kept: done by due_at + grace; late: done after that; broken: still open past due_at +
    grace; pending: open and not yet past; waiting: its DMS event has not come (no due_at).

    Any closing counts as done here (a booked or no-answer call was still made). A promise
    retried after no answer is measured against its latest due time.
    """
    if fu.due_at is None:
        return "waiting" if fu.done_at is None else "kept"
    limit = fu.due_at + grace
    if fu.done_at is not None:
        return "kept" if fu.done_at <= limit else "late"
    return "broken" if now > limit else "pending"


# --- data retention -------------------------------------------------------------------------

RETENTION_DAYS_MAX = 3650  # ten years; a longer wish is "keep forever" (None)
# A call row with no end this long after its start is a lost record (a worker died), not a
# call in progress: retention and erasure may then touch it.
CALL_MAX_HOURS = 12.0


def check_retention_days(days: int | None) -> int | None:
    """A store's retention period as given (None: keep forever); a ValueError says why not."""
    if days is None:
        return None
    if not 1 <= days <= RETENTION_DAYS_MAX:
        raise ValueError(f"retention days must be 1 to {RETENTION_DAYS_MAX} (empty: keep forever)")
    return days


def retention_cutoff(now: datetime, days: int | None, timezone: str) -> datetime | None:
    """Calls that started before this instant are past the store's retention period: the
    start of the local day `days` days before today, in the store's zone. Whole local days,
    so every run on one local day deletes the same calls and nothing younger than `days` full
    days goes; None (keep forever) when the store sets no period."""
    if days is None:
        return None
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    start = datetime.combine(today - timedelta(days=days), time.min, tzinfo=zone)
    return start.astimezone(UTC)


def call_in_progress(*, started_at: datetime, ended_at: datetime | None, now: datetime) -> bool:
    """Still going: no end yet, and started recently enough to be a live call. Its recordings
    are being written, so neither retention nor an erasure may touch it."""
    return ended_at is None and now - started_at < timedelta(hours=CALL_MAX_HOURS)
