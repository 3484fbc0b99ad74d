"""How ``kubectl backfill`` draws: state glyphs and colours, phase styles, label/value blocks.

Colour is a parameter everywhere: with ``color=False`` (output not a terminal, or
``NO_COLOR``) every state has its own ASCII glyph (:data:`GLYPHS`) so that the grid and the
bar stay readable in logs and in tests; in colour a state is a coloured box or bar segment
(:data:`STYLES`). :func:`kv` lays out the ``label  value`` blocks of ``status`` and the
previews.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.console import Group
from rich.text import Text

from ...api.model import PARTITION_STATES

#: Grid cell states: the partition states (``queued``: a Job Kueue holds suspended), plus
#: "partial" for a multi-partition cell that is partly done.
CELL_STATES = (*PARTITION_STATES, "partial")

GLYPHS: Mapping[str, str] = {
    "succeeded": "#",
    "failed": "X",
    "running": ">",
    "queued": "q",
    "pending": ".",
    "skipped": "s",
    "partial": "+",
}
STYLES: Mapping[str, str] = {
    "succeeded": "green",
    "failed": "red",
    "running": "yellow",
    "queued": "magenta",
    "pending": "bright_black",
    "skipped": "dark_green",
    "partial": "cyan",
}
PHASE_STYLES: Mapping[str, str] = {
    "Succeeded": "bold green",
    "Failed": "bold red",
    "Invalid": "bold red",
    "Running": "bold blue",
    "Suspended": "bold yellow",
    "Pending": "bold",
}
#: A grid cell in colour.
BOX = "■"
#: A progress bar segment in colour.
BAR = "━"


def span(first: str, last: str) -> str:
    """Return ``"first … last"``, or just the key when both are the same."""
    return first if first == last else f"{first} … {last}"


def kv(rows: Iterable[tuple[str, Text]]) -> Group:
    """Return ``label  value`` lines, labels bold and padded to the longest.

    No trailing spaces and no wrapping of its own: long values wrap where the terminal does.
    """
    materialised = list(rows)
    width = max((len(k) for k, _ in materialised), default=0)
    lines = []
    for key, value in materialised:
        line = Text()
        line.append(key.ljust(width) + "  ", style="bold")
        line.append_text(value)
        lines.append(line)
    return Group(*lines)
