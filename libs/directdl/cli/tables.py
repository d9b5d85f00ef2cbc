"""Tables that fit a width without cutting an id or a name: others wrap, or are hidden."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

# Columns a reader copies from (ids, names): always shown whole, on one line.
KEY_COLUMNS = frozenset({"id", "name", "alias", "host", "template", "deploy", "service"})
# A wrapped column keeps at least this many characters a line (or its header's length).
NARROWEST = 6


def is_key(column: str) -> bool:
    return column in KEY_COLUMNS or column.endswith("_id")


@dataclass(frozen=True)
class Layout:
    """The columns shown, each one's width, and the columns left out to fit."""

    columns: tuple[str, ...]
    widths: tuple[int, ...]
    hidden: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(self.widths) + overhead(len(self.columns), boxed=True)


def overhead(count: int, *, boxed: bool) -> int:
    """What a table adds to its cells: one space each side of a cell, and the borders."""
    return 2 * count + (count + 1 if boxed else 0)


def natural_width(header: str, cells: Sequence[str]) -> int:
    return max([len(header), *(len(line) for cell in cells for line in cell.splitlines())])


def fit(columns: Sequence[str], cells: Sequence[Sequence[str]], width: int) -> Layout:
    """Which columns fit in `width` (boxed), and how wide: key columns whole; the others
    wrap down to NARROWEST, and the last of them (the least important) go first when even
    that is too wide. Key columns are never left out, so the table may still be wider."""
    natural = [natural_width(c, [row[i] for row in cells]) for i, c in enumerate(columns)]
    floor = [
        w if is_key(c) else min(w, max(len(c), NARROWEST))
        for c, w in zip(columns, natural, strict=True)
    ]
    shown = list(range(len(columns)))

    def needed() -> int:
        return sum(floor[i] for i in shown) + overhead(len(shown), boxed=True)

    while needed() > width and (droppable := [i for i in shown if not is_key(columns[i])]):
        shown.remove(droppable[-1])
    widths = {i: floor[i] for i in shown}
    spare = width - needed()
    # Room left goes to the wrapped columns, a character at a time, the first ones first.
    while spare > 0 and (wanting := [i for i in shown if widths[i] < natural[i]]):
        for i in wanting[:spare]:
            widths[i] += 1
        spare -= len(wanting[:spare])
    return Layout(
        columns=tuple(columns[i] for i in shown),
        widths=tuple(widths[i] for i in shown),
        hidden=tuple(c for i, c in enumerate(columns) if i not in shown),
    )


def boxed_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], width: int, caption: str | None
) -> Table:
    """A bordered table of `rows` fitted to `width`; the caption names what was hidden."""
    layout = fit(columns, rows, width)
    if layout.hidden:
        hidden = f"hidden: {', '.join(layout.hidden)}; use --fields or -o json"
        caption = f"{caption}; {hidden}" if caption else hidden
    table = Table(caption=caption, caption_justify="left", width=layout.total)
    for column, column_width in zip(layout.columns, layout.widths, strict=True):
        keep = is_key(column)
        table.add_column(
            column, width=column_width, no_wrap=keep, overflow="ignore" if keep else "fold"
        )
    shown = [columns.index(c) for c in layout.columns]
    for row in rows:
        table.add_row(*(Text(row[i]) for i in shown))
    return table


def plain_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], caption: str | None
) -> Table:
    """No borders and no wrapping: one line a row, for `grep`, `awk` and `cut -c`."""
    table = Table(box=None, caption=caption, caption_justify="left", show_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table
