"""Find `@username` mentions in a note's text."""

from __future__ import annotations

import re

# `@` at the start or after a non-word character (so `bob@example.com` is not a mention);
# a username may contain dots and dashes but does not end with one ("thanks @bob." → bob).
MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)")


def parse_mentions(text: str) -> list[str]:
    """Usernames mentioned in `text`, in order of first appearance, without duplicates."""
    seen: dict[str, None] = {}
    for match in MENTION.finditer(text):
        seen.setdefault(match.group(1), None)
    return list(seen)
