"""`driveline users`, `driveline tokens`: user and API-token administration."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.auth import MAX_LIFETIME, new_token
from api.schemas import UserIn
from api.web.sessions import MAX_PASSWORD, set_password
from ivr.config import get_settings
from ivr.domain import Role
from records import queries
from records.db import make_engine, session_factory, upgrade
from records.models import User, utcnow


def migrated_engine() -> Engine:
    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    return engine


@click.group()
def users() -> None:
    """Manage users (admin)."""


@users.command("create")
@click.argument("username")
@click.option("--name", required=True, help="Full name, as callers hear it.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.advisor.value)
@click.option("--store", "stores", multiple=True, metavar="DMS_ID", help="Repeat for several.")
@click.option("--email", default=None)
@click.option("--phone", default=None, help="For transfers; any format.")
@click.option("--password", "ask_password", is_flag=True, help="Prompt for a web-page password.")
def users_create(
    username: str,
    name: str,
    role: str,
    stores: tuple[str, ...],
    email: str | None,
    phone: str | None,
    ask_password: bool,
) -> None:
    """Create a user with a role and the stores (by DMS id) they may see."""
    engine = migrated_engine()
    with session_factory(engine)() as session:
        found = queries.stores_by_dms_ids(session, dms_ids=stores)
        missing = sorted(set(stores) - found.keys())
        if missing:
            raise click.BadParameter(f"no such store: {', '.join(missing)}", param_hint="--store")
        try:
            valid = UserIn(
                username=username,
                name=name,
                role=Role(role),
                store_ids=[found[s].id for s in stores],
                email=email,
                phone=phone,
            )
        except ValidationError as exc:
            raise click.ClickException(_first_error(exc)) from None
        if queries.get_user_by_username(session, username=valid.username) is not None:
            raise click.ClickException(f"user {valid.username!r} already exists")
        user = queries.create_user(
            session,
            username=valid.username,
            name=valid.name,
            role=valid.role.value,
            stores=[found[s] for s in stores],
            email=valid.email,
            phone=valid.phone,
        )
        if ask_password:
            set_password(session, user, _prompt_password())
        click.echo(
            f"created {user.role} {user.username} (id {user.id}) in {list(stores) or 'no stores'}"
        )


@users.command("password")
@click.argument("username")
def users_password(username: str) -> None:
    """Set USERNAME's password for the web pages (prompted, never on the command line)."""
    engine = migrated_engine()
    with session_factory(engine)() as session:
        user = _user(session, username)
        set_password(session, user, _prompt_password())
        click.echo(f"password set for {user.username}")


def _user(session: Session, username: str) -> User:
    user = queries.get_user_by_username(session, username=username)
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    return user


def _prompt_password() -> str:
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not 8 <= len(password) <= MAX_PASSWORD:
        raise click.ClickException(f"a password has 8 to {MAX_PASSWORD} characters")
    return password


@click.group()
def tokens() -> None:
    """Manage API tokens."""


class Lifetime(click.ParamType):
    """`90d`, `12h` or a bare number of days."""

    name = "lifetime"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip().lower()
        unit = text[-1:] if text[-1:] in ("d", "h") else "d"
        number = text[:-1] if text[-1:] in ("d", "h") else text
        try:
            amount = float(number)
        except ValueError:
            self.fail(f"{value!r} is not a lifetime like 90d or 12h", param, ctx)
        lifetime = timedelta(days=amount) if unit == "d" else timedelta(hours=amount)
        if not timedelta(0) < lifetime <= MAX_LIFETIME:
            self.fail(f"a token lives more than 0 and at most {MAX_LIFETIME.days} days", param, ctx)
        return lifetime


@tokens.command("create")
@click.argument("username")
@click.option(
    "--name", default="cli", help="What it is for (the DMS webhooks take integrations instead)."
)
@click.option(
    "--expires-in",
    type=Lifetime(),
    default=None,
    help="Lifetime like 30d or 12h (default: the api_token_days setting, 90 days).",
)
def tokens_create(username: str, name: str, expires_in: timedelta | None) -> None:
    """Print a new token for USERNAME (only this once; only its hash is stored), and when it
    expires on stderr."""
    engine = migrated_engine()
    with session_factory(engine)() as session:
        user = _user(session, username)
        row, secret = new_token(session, user, name[:100], expires_in)
        click.echo(secret)
        click.echo(f"expires {row.expires_at:%Y-%m-%d %H:%M} UTC", err=True)


@tokens.command("list")
@click.argument("username")
def tokens_list(username: str) -> None:
    """USERNAME's tokens: id, name, created, expiry, last use, revoked (never the secret)."""
    engine = migrated_engine()
    with session_factory(engine)() as session:
        user = _user(session, username)
        now = utcnow()
        for row in queries.list_tokens(session, user_id=user.id):
            state = (
                "revoked"
                if row.revoked_at is not None
                else "expired"
                if row.expires_at <= now
                else "live"
            )
            used = f"{row.last_used_at:%Y-%m-%d}" if row.last_used_at else "never"
            click.echo(
                f"{row.id:>5} {row.name or '-':<20} {state:<8} created {row.created_at:%Y-%m-%d}"
                f" expires {row.expires_at:%Y-%m-%d %H:%M} UTC, last used {used}"
            )


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
