"""The dashboard's search boxes (Users, Activity): an Input that takes at most SEARCH_MAX
characters, a longer paste keeping its start. A paste gone wrong (50,000 characters) was
searched whole: SQLite refuses a LIKE pattern that long ("unexpected OperationalError")."""

from __future__ import annotations

from textual.widgets import Input

SEARCH_MAX = 320  # room for any address an account can have (254) and a few more words


class SearchBox(Input):
    """A compact search Input of at most SEARCH_MAX characters."""

    def __init__(self, placeholder: str, *, id: str) -> None:
        super().__init__(placeholder=placeholder, id=id, compact=True, max_length=SEARCH_MAX)

    def replace(self, text: str, start: int, end: int) -> None:
        """Put `text` in place of start..end, cut to the room left (Input refuses the whole of
        a text that does not fit: a long paste would do nothing at all)."""
        low, high = sorted((max(0, start), min(len(self.value), end)))
        room = SEARCH_MAX - (len(self.value) - (high - low))
        super().replace(text[: max(room, 0)], start, end)
