"""What a process does with its flows folder when it starts: load it, or name every problem
and exit, so a bad flow stops a worker or a server loudly instead of half-loading."""

from __future__ import annotations

from pathlib import Path

import click

from ivr.flow import FlowLoadError, FlowSet, load_flows


def load_or_exit(directory: Path, *, refusing: str | None = None) -> FlowSet:
    """Load a flows folder or print every problem as `file:line: field: message` and exit 1.

    `refusing` names what will not start (e.g. "serve"), so a bad flow stops a server loudly
    instead of replacing good flows with half of a bad set.
    """
    try:
        return load_flows(directory)
    except FlowLoadError as exc:
        if refusing:
            click.echo(f"{refusing}: refusing to load the flows in {directory}:", err=True)
        for problem in exc.problems:
            click.echo(str(problem), err=bool(refusing))
        raise click.exceptions.Exit(1) from None
