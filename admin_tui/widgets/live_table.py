"""A DataTable whose rows are replaced wholesale on each refresh, keeping the cursor's row."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

Cell = str | Text
Row = tuple[str, Sequence[Cell]]  # (row key, cells)


class LiveTable(DataTable[Cell]):
    """Row-cursor table fed with (key, cells) rows; a refresh with unchanged rows is a no-op.

    Plain strings are shown literally (never as markup: emails and reasons are user text).
    """

    def __init__(self, *columns: str, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._columns = columns
        self._shown: list[tuple[str, tuple[str, ...]]] = []

    def on_mount(self) -> None:
        self.add_columns(*self._columns)

    def replace_rows(self, rows: Sequence[Row]) -> None:
        """Show these rows; the cursor stays on the same key when it is still there."""
        signature = [(key, tuple(str(c) for c in cells)) for key, cells in rows]
        if signature == self._shown:
            return
        current = self.selected_key()
        self._shown = signature
        self.clear()
        for key, cells in rows:
            self.add_row(*(Text(c) if isinstance(c, str) else c for c in cells), key=key)
        keys = [key for key, _ in rows]
        if current in keys:
            self.move_cursor(row=keys.index(current), animate=False, scroll=False)

    def selected_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if self.row_count == 0:
            return None
        row = min(self.cursor_row, self.row_count - 1)
        key = self.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value
        return str(key) if key is not None else None
