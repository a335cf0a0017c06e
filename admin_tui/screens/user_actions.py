"""Actions on one account shared by the users table and the user detail screen: adjust the
balance (with a reason, confirmed) and disable/enable (disabling confirmed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from admin_tui.dialogs.form import Abandon, FormDialog, FormField
from admin_tui.screens.formatting import usd_exact
from admin_tui.services import UserRow, check_adjustment

if TYPE_CHECKING:
    from admin_tui.screens.base import AdminScreen as _Host  # what the mixin is mixed into
else:
    _Host = object


class UserActions(_Host):
    """Mixin for an AdminScreen that says which user is selected; the actions do the rest."""

    def selected_user(self) -> UserRow | None:
        raise NotImplementedError

    def _require_user(self) -> UserRow | None:
        user = self.selected_user()
        if user is None:
            self.notify("No user selected", severity="warning")
        return user

    def action_adjust_balance(self) -> None:
        user = self._require_user()
        if user is not None:
            self.start(self._adjust_balance, user)

    async def _adjust_balance(self, user: UserRow) -> None:
        async def submit(values: dict[str, str]) -> int:
            amount = values["amount"].strip()
            verb = "Remove" if check_adjustment(amount, values["reason"]) < 0 else "Add"
            question = f"{verb} {amount.lstrip('-+')} USD {'from' if verb == 'Remove' else 'to'}"
            if not await self.confirm(
                "Adjust balance",
                f"{question} {user.email}?\nReason: {values['reason'].strip()}",
                confirm_label=verb,
            ):
                raise Abandon
            return await self.services.run(
                self.services.adjust_balance, user.email, amount, values["reason"]
            )

        balance = await self.app.push_screen_wait(
            FormDialog(
                f"Adjust balance of {user.email}",
                [
                    FormField(
                        "amount", "Amount in USD (negative removes credit)", placeholder="25.00"
                    ),
                    FormField(
                        "reason", "Reason (kept in the ledger)", placeholder="refund for ..."
                    ),
                ],
                submit,
                submit_label="Adjust",
                note=f"Balance now {usd_exact(user.balance_nanos)}",
            )
        )
        if balance is not None:
            self.notify(f"{user.email}: balance now {usd_exact(balance)}")
            self.reload()

    def action_toggle_status(self) -> None:
        user = self._require_user()
        if user is not None:
            self.start(self._toggle_status, user)

    async def _toggle_status(self, user: UserRow) -> None:
        enable = user.status != "active"
        if not enable and not await self.confirm(
            "Disable account",
            f"Disable {user.email}? Every key of the account stops working at once.",
            confirm_label="Disable",
        ):
            return
        await self.act(
            lambda: self.services.run(self.services.set_user_active, user.email, enable),
            f"{user.email} {'enabled' if enable else 'disabled'}",
        )
