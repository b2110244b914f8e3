"""What a use case refuses, in words the caller can act on; `api/` maps each kind to a 4xx.

`field` names the input to blame as a location tuple (`("body", "phone")`), so the API can
answer in FastAPI's validation shape and the pages can put the message beside the right field.
"""

from __future__ import annotations


class UseCaseError(Exception):
    """Base: a refusal with a message and, when one input is to blame, its location."""

    def __init__(self, message: str, field: tuple[str | int, ...] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(UseCaseError):
    """Nonexistent, or outside the actor's stores (the two look the same on purpose)."""


class Forbidden(UseCaseError):
    """The actor may see the thing but not do this to it (another advisor's callback)."""


class Conflict(UseCaseError):
    """The thing is not in a state that allows this (a callback already completed)."""


class Invalid(UseCaseError):
    """The input is well-formed but makes no sense here (an unknown status for the store)."""


class TooMany(UseCaseError):
    """A rate limit: try again later."""


class Unavailable(UseCaseError):
    """A service the workflow needs is away (Redis, so no SIP worker can take a call)."""
