"""Who may see and work what: one answer for the JSON API and the web pages alike.

A use case derives the actor's scope and owner filter here instead of trusting its caller, so a
route that forgets a check cannot open another advisor's work or another store's data.
"""

from __future__ import annotations

from ivr.domain import Role
from records.models import User
from records.queries import Scope
from usecases.errors import Forbidden


def scope_of(user: User) -> Scope:
    """Admins see every store; everyone else only the stores they are assigned to."""
    if user.role == Role.admin:
        return Scope(store_ids=None)
    return Scope(store_ids=frozenset(user.store_ids))


def own_only(user: User) -> int | None:
    """The owner filter for work items: advisors work their own callbacks and follow-ups;
    managers and admins their stores'. Another's item then looks like a missing one."""
    return user.id if user.role == Role.advisor else None


def require_manager(user: User) -> None:
    """Managers and admins only (a customer's export or erasure): an advisor is refused."""
    if user.role not in (Role.manager, Role.admin):
        raise Forbidden("managers and admins only")
