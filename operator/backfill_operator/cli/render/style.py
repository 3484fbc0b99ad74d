"""How ``kubectl backfill`` draws: state glyphs and colours, phase styles, label/value blocks.

Colour is a parameter everywhere: with ``color=False`` (output not a terminal, or
``NO_COLOR``) every state has its own ASCII glyph (:data:`GLYPHS`) so that the grid and the
bar stay readable in logs and in tests; in colour a state is a coloured box or bar segment
(:data:`STYLES`). :func:`kv` lays out the ``label  value`` blocks of ``status`` and the
previews.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from rich.console import Group
from rich.text import Text

#: The partition states in display order (counts lines, legends): each failure state next to
#: ``failed``. The same states as :data:`~backfill_operator.api.model.PARTITION_STATES`.
STATE_ORDER = (
    "succeeded",
    "failed",
    "upstream_failed",
    "running",
    "queued",
    "pending",
    "skipped",
    "marked",
)
#: States a counts line or a legend shows only when some partition (cell) has them, so that
#: a Backfill without Kueue or steps reads as before they existed.
OPTIONAL_STATES = frozenset({"queued", "upstream_failed", "marked"})
#: Grid cell states: the partition states (``queued``: a Job Kueue holds suspended;
#: ``upstream_failed``: not run because a step it depends on failed; ``marked``: recorded as
#: succeeded without a Job), plus "partial" for a multi-partition cell that is partly done.
CELL_STATES = (*STATE_ORDER, "partial")

GLYPHS: Mapping[str, str] = {
    "succeeded": "#",
    "failed": "X",
    "running": ">",
    "queued": "q",
    "pending": ".",
    "skipped": "s",
    "upstream_failed": "u",
    "marked": "m",
    "partial": "+",
}
STYLES: Mapping[str, str] = {
    "succeeded": "green",
    "failed": "red",
    "running": "yellow",
    "queued": "magenta",
    "pending": "bright_black",
    "skipped": "dark_green",
    "upstream_failed": "dark_orange",
    "marked": "blue",
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


def state_word(state: str) -> str:
    """Return a state as text shows it: ``upstream_failed`` is ``upstream failed``."""
    return state.replace("_", " ")


def state_counts(count: Callable[[str], int], *, compact: bool = False) -> Text:
    """Return ``12 succeeded · 0 failed · 5 running · 73 pending · 0 skipped``, coloured.

    ``count(state)`` gives the number of a state (of :data:`STATE_ORDER`). The states of
    :data:`OPTIONAL_STATES` appear only when non-zero; with ``compact`` every zero state is
    left out (``0 pending`` when all are zero).
    """
    text = Text()
    for state in STATE_ORDER:
        value = count(state)
        if not value and (compact or state in OPTIONAL_STATES):
            continue
        if text:
            text.append(" · ")
        text.append(f"{value} {state_word(state)}", style=STYLES[state])
    return text or Text("0 pending", style=STYLES["pending"])


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
