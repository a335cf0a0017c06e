"""The command palette (Ctrl+P) of the dashboard: Textual's, safe against keys read together
with the one that opened it (two of Textual's races there ended the whole dashboard)."""

from __future__ import annotations

import inspect

from textual import work
from textual.command import CommandList, CommandPalette
from textual.css.query import NoMatches
from textual.widgets import OptionList

PAGE_MOVES = ("page_up", "page_down")
_gather = inspect.unwrap(CommandPalette._gather_commands)  # Textual's search, unworked


def not_laid_out(options: OptionList) -> bool:
    """Whether a list shown a moment ago has no line map yet (before its first layout): a page
    move there raises KeyError in Textual (8.2), which ends the app."""
    return (options.highlighted or 0) not in options._index_to_line


class AdminPalette(CommandPalette):
    """Textual's command palette; PgUp/PgDn before its list is first laid out do nothing, and
    a search still starting when the palette is closed ends quietly."""

    def _action_command_list(self, action: str) -> None:
        """Pass a key's action on to the list. Textual's page move reads the list's line map,
        empty until the list is first laid out: PgDn or PgUp read together with Ctrl+P (keys
        an SSH link hands over at once) raised KeyError there and ended the whole dashboard."""
        if action in PAGE_MOVES and not_laid_out(self.query_one(CommandList)):
            return
        super()._action_command_list(action)

    @work(exclusive=True, group=CommandPalette._GATHER_COMMANDS_GROUP)
    async def _gather_commands(self, search_value: str) -> None:
        """Textual's search for what was typed. Escape, Ctrl+P and a letter read together
        closed the palette (the Escape reaches it late) while the letter's search started:
        its worker failed on the removed list and ended the dashboard. Gone, it stops."""
        try:
            await _gather(self, search_value)
        except NoMatches:
            if self.query(CommandList):  # the palette is still up: a failure of its own
                raise
