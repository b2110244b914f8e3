"""Render a worker's static prompts when it starts, so the first caller hears cached audio."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from ivr.speech import TTS


async def prerender(tts: TTS, texts: Iterable[str]) -> dict[str, Path]:
    """Render every distinct text (cache hits cost a file lookup); text -> WAV path.

    All renders are queued at once: an engine that synthesizes one at a time (piper) works
    through them back to back. The first failure is raised, so a worker does not start with a
    prompt it cannot play.
    """
    unique = list(dict.fromkeys(texts))
    paths = await asyncio.gather(*(tts.render(text) for text in unique))
    return dict(zip(unique, paths, strict=True))
