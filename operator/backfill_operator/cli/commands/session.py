"""One invocation of ``kubectl backfill``: where to connect, the consoles, prompts allowed."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from rich.console import Console

from ..client import Client, Target, connect

#: Seconds between two reads of a followed Backfill.
DEFAULT_INTERVAL_SECONDS = 1.0


@dataclass
class Session:
    """One invocation: where to connect, the consoles, whether a person can answer prompts.

    The client connects on first use, so usage errors never need a cluster.
    """

    target: Target
    out: Console
    err: Console
    interactive: bool
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        """The API client (connects on first use; raises CliError)."""
        if self._client is None:
            self._client = connect(self.target)
        return self._client

    @property
    def namespace(self) -> str:
        """The namespace commands act in."""
        return self.client.namespace

    def write(self, text: str) -> None:
        """Write ``text`` to stdout as is (machine-readable output, logs)."""
        sys.stdout.write(text)
        sys.stdout.flush()

    @property
    def color(self) -> bool:
        """True when stdout shows colours (a terminal, no NO_COLOR)."""
        return self.out.color_system is not None and not self.out.no_color
