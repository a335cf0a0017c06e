"""A DataTable whose rows are replaced wholesale on each refresh, keeping the cursor's row and
the view still, and whose long text columns shrink (with an ellipsis) to fit the terminal."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.coordinate import Coordinate
from textual.widgets import DataTable

Cell = str | Text
Row = tuple[str, Sequence[Cell]]  # (row key, cells)

MIN_FLEX_WIDTH = 12


def visible(text: str) -> str:
    """`text` with its control characters (ESC, a C1 CSI...) written as escapes, line breaks
    and tabs kept: Textual hands ESC on to the terminal, and text from outside the box (an
    upstream's error, which may quote what a client sent) must not clear the operator's screen
    or set their clipboard."""
    if text.isprintable():
        return text
    return "".join(
        c if c in "\n\t" or unicodedata.category(c) != "Cc" else repr(c)[1:-1] for c in text
    )


def as_text(cell: Cell) -> Text:
    """A cell as one line of Text cut with an ellipsis (plain strings are never markup, and
    their control characters are shown as escapes)."""
    text = Text(visible(cell)) if isinstance(cell, str) else cell.copy()
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def fit_widths(natural: Sequence[int], flex: Sequence[int], available: int) -> list[int]:
    """Content widths for columns (without padding) so that they fit `available` cells.

    Columns not in `flex` keep their natural width; flex columns share what is left fairly
    (max-min: a column that needs less than an equal share keeps its natural width and leaves
    the rest to the others), none narrower than MIN_FLEX_WIDTH unless its text is.
    """
    widths = list(natural)
    room = available - sum(w for i, w in enumerate(natural) if i not in flex)
    pending = sorted(flex, key=lambda i: natural[i])
    for done, index in enumerate(pending):
        share = room // (len(pending) - done)
        widths[index] = min(natural[index], max(share, MIN_FLEX_WIDTH))
        room -= widths[index]
    return widths


class LiveTable(DataTable[Cell]):
    """Row-cursor table fed with (key, cells) rows; a refresh with unchanged rows is a no-op.

    `flex` names the columns (by label) that give up width when the table is too narrow for
    everything (emails, model ids, reasons), on every refresh and resize: their cells end in
    an ellipsis instead of pushing the other columns off the screen. A refresh keeps the row
    under the cursor where it is on screen; on a live feed (`follows_head`: newest row on top)
    whose cursor sits on the newest row, the cursor stays on top. Elsewhere (a catalog sorted
    by name) the cursor always stays on its row: a row added above it must not take the
    selection that the next action (enable, remove) works on.
    """

    def __init__(
        self,
        *columns: str,
        flex: Sequence[str] = (),
        id: str | None = None,
        follows_head: bool = False,
    ) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._follows_head = follows_head
        self._columns = columns
        self._flex = [columns.index(label) for label in flex]
        self._natural = [len(label) for label in columns]
        self._shown: list[tuple[str, tuple[str, ...]]] = []
        self._wanted: str | None = None

    def on_mount(self) -> None:
        self.add_columns(*self._columns)

    def replace_rows(self, rows: Sequence[Row]) -> None:
        """Show these rows; the cursor stays on the same key when it is still there."""
        signature = [(key, tuple(str(c) for c in cells)) for key, cells in rows]
        if signature == self._shown:
            return
        current, old_row, old_scroll = self.selected_key(), self.cursor_row, self.scroll_y
        self._shown = signature
        cells = [[as_text(c) for c in row_cells] for _, row_cells in rows]
        self._natural = [
            max([len(label), *(row[i].cell_len for row in cells)])
            for i, label in enumerate(self._columns)
        ]
        self.clear()
        self._fit_columns()
        for (key, _), row in zip(rows, cells, strict=True):
            self.add_row(*row, key=key)
        keys = [key for key, _ in rows]
        following_head = self._follows_head and old_row == 0 and old_scroll == 0
        if self._wanted in keys:
            self.move_cursor(row=keys.index(self._wanted), animate=False)
            self._wanted = None
        elif current in keys and not following_head:
            new_row = keys.index(current)
            self.move_cursor(row=new_row, animate=False, scroll=False)
            self.scroll_to(y=max(0, old_scroll + new_row - old_row), animate=False, force=True)

    def _fit_columns(self) -> None:
        """Give each column its width for the table's current size."""
        padding = 2 * self.cell_padding
        available = self.size.width - self.styles.scrollbar_size_vertical
        available -= padding * len(self._columns)
        widths = (
            fit_widths(self._natural, self._flex, available) if self.size.width else self._natural
        )
        for index, column in enumerate(self.ordered_columns):
            column.content_width = widths[index]
            column.width = widths[index]
            column.auto_width = False
        self._clear_caches()  # Textual's own render caches hold the old widths
        self._require_update_dimensions = True
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        if self.ordered_columns:
            self._fit_columns()

    def select_when_shown(self, key: str) -> None:
        """Put the cursor on this row when a refresh brings it (e.g. what was just added)."""
        self._wanted = key

    def selected_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if self.row_count == 0:
            return None
        row = min(self.cursor_row, self.row_count - 1)
        key = self.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value
        return str(key) if key is not None else None
