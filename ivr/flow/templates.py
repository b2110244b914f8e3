"""Templates and conditions in flows: Jinja2's sandbox, plus filters that read well aloud.

Flows are written by store staff, so everything runs in `SandboxedEnvironment` (no attribute
tricks, no file access). Templates and conditions are compiled once and cached; the loader calls
the same functions so a syntax error is found when the flow is loaded, not mid-call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from ivr.phone import spoken

# What every template and condition can read (see engine.Call.context).
CONTEXT_NAMES: frozenset[str] = frozenset(
    {
        "store",
        "customer",
        "ro",
        "advisor",
        "caller",
        "vars",
        "slots",
        "now",
        "store_open",
        "department",
        "hours",
    }
)


def clock(value: datetime) -> str:
    """`17:30` → "5:30 PM", `09:00` → "9 AM": how people say times on the phone."""
    hour = value.hour % 12 or 12
    suffix = "AM" if value.hour < 12 else "PM"
    return f"{hour} {suffix}" if value.minute == 0 else f"{hour}:{value.minute:02d} {suffix}"


def _local(value: datetime, now: datetime) -> datetime:
    # Stored times without a zone are UTC (that is how the database keeps them).
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(now.tzinfo) if now.tzinfo else value


def spoken_date(value: datetime | date, now: datetime) -> str:
    """ "today", "tomorrow", "Friday" within a week, else "Monday, March 3"."""
    day = _local(value, now).date() if isinstance(value, datetime) else value
    delta = (day - now.date()).days
    if delta == 0:
        return "today"
    if delta == 1:
        return "tomorrow"
    if delta == -1:
        return "yesterday"
    if 1 < delta < 7:
        return f"{day:%A}"
    return f"{day:%A, %B} {day.day}"


def _now_of(ctx: Context) -> datetime:
    now = ctx.get("now")
    return now if isinstance(now, datetime) else datetime.now(UTC)


@pass_context
def _spoken_datetime(ctx: Context, value: datetime | None) -> str:
    """ "today at 5:30 PM", "tomorrow at 9 AM"; empty for a missing time."""
    if value is None:
        return ""
    now = _now_of(ctx)
    return f"{spoken_date(value, now)} at {clock(_local(value, now))}"


@pass_context
def _spoken_date(ctx: Context, value: datetime | date | None) -> str:
    return "" if value is None else spoken_date(value, _now_of(ctx))


@pass_context
def _spoken_time(ctx: Context, value: datetime | None) -> str:
    return "" if value is None else clock(_local(value, _now_of(ctx)))


def digits(value: Any) -> str:
    """ "4711" → "4 7 1 1", so TTS reads a number digit by digit."""
    return " ".join(ch for ch in str(value or "") if not ch.isspace())


def _spoken_phone(value: str | None) -> str:
    return spoken(value) if value else ""


def _plus_days(value: datetime, days: int) -> datetime:
    return value + timedelta(days=int(days))


ENV = SandboxedEnvironment(autoescape=False, trim_blocks=True, lstrip_blocks=True)
ENV.filters.update(
    spoken_datetime=_spoken_datetime,
    spoken_date=_spoken_date,
    spoken_time=_spoken_time,
    digits=digits,
    spoken_phone=_spoken_phone,
    plus_days=_plus_days,
)


@lru_cache(maxsize=1024)
def template(source: str) -> Any:
    """Compiled template (cached); raises jinja2.TemplateSyntaxError."""
    return ENV.from_string(source)


@lru_cache(maxsize=1024)
def condition(source: str) -> Callable[..., Any]:
    """Compiled sandboxed expression (cached); raises jinja2.TemplateSyntaxError."""
    return ENV.compile_expression(source)


def render(source: str, context: dict[str, Any]) -> str:
    return " ".join(str(template(source).render(context)).split())


def evaluate(source: str, context: dict[str, Any]) -> bool:
    return bool(condition(source)(**context))


def undefined_names(
    source: str, *, expression: bool, known_vars: set[str], known_slots: set[str] | None = None
) -> list[str]:
    """Names a template uses that nothing provides: typos like `custmer` or `vars.ro_numbr`.

    `known_vars` are the variables some step in the flows sets (set, gather input, record);
    `known_slots` the slots some gather fills (None: not checked).
    """
    text = f"{{{{ {source} }}}}" if expression else source
    ast = ENV.parse(text)
    problems = [
        f"undefined name {name!r}"
        for name in sorted(find_undeclared_variables(ast))
        if name not in CONTEXT_NAMES and name not in ENV.globals
    ]
    for node in ast.find_all(nodes.Getattr):
        target = node.node
        if isinstance(target, nodes.Name) and target.name == "vars" and node.attr not in known_vars:
            problems.append(f"undefined variable vars.{node.attr} (no step sets it)")
        if (
            isinstance(target, nodes.Name)
            and target.name == "slots"
            and known_slots is not None
            and node.attr not in known_slots
        ):
            problems.append(f"undefined slot slots.{node.attr} (no gather fills it)")
    return problems
