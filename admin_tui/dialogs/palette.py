"""The command palette (Ctrl+P) of the dashboard: Textual's, safe against a page key read
together with the key that opened it."""

from __future__ import annotations

from textual.command import CommandList, CommandPalette

PAGE_MOVES = ("page_up", "page_down")


class AdminPalette(CommandPalette):
    """Textual's command palette; PgUp/PgDn before its list is first laid out do nothing."""

    def _action_command_list(self, action: str) -> None:
        """Pass a key's action on to the list. Textual's page move reads the list's line map,
        empty until the list is first laid out: PgDn or PgUp read together with Ctrl+P (keys
        an SSH link hands over at once) raised KeyError there and ended the whole dashboard."""
        if action in PAGE_MOVES:
            commands = self.query_one(CommandList)
            if (commands.highlighted or 0) not in commands._index_to_line:
                return
        super()._action_command_list(action)
