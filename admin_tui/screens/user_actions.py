"""Actions on one account shared by the users table and the user detail screen: adjust the
balance (with a reason, confirmed), disable/enable (disabling confirmed) and its request
limits (per minute and at once)."""

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
            nanos = check_adjustment(amount, values["reason"])  # what will move, exactly
            verb = "Remove" if nanos < 0 else "Add"
            exact = usd_exact(abs(nanos)).lstrip("$")
            question = f"{verb} {exact} USD {'from' if verb == 'Remove' else 'to'}"
            if not await self.confirm(
                "Adjust balance",
                f"{question} {user.shown_email}?\nReason: {values['reason'].strip()}",
                confirm_label=verb,
            ):
                raise Abandon
            return await self.services.run(
                self.services.adjust_balance, user.email, amount, values["reason"]
            )

        balance = await self.app.push_screen_wait(
            FormDialog(
                f"Adjust balance of {user.shown_email}",
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
            self.notify(f"{user.shown_email}: balance now {usd_exact(balance)}")
            self.reload()

    def action_toggle_status(self) -> None:
        user = self._require_user()
        if user is not None:
            self.start(self._toggle_status, user)

    async def _toggle_status(self, user: UserRow) -> None:
        enable = user.status != "active"
        if not enable and not await self.confirm(
            "Disable account",
            f"Disable {user.shown_email}? Every key of the account stops working at once.",
            confirm_label="Disable",
        ):
            return
        await self.act(
            lambda: self.services.run(self.services.set_user_active, user.email, enable),
            f"{user.shown_email} {'enabled' if enable else 'disabled'}",
        )

    def action_request_limits(self) -> None:
        user = self._require_user()
        if user is not None:
            self.start(self._request_limits, user)

    async def _request_limits(self, user: UserRow) -> None:
        async def submit(values: dict[str, str]) -> bool:
            await self.services.run(
                self.services.set_user_limits,
                user.email,
                values["rpm"],
                values["concurrent"],
                user,
            )
            return True

        defaults = await self.services.run(self.services.limit_defaults)
        saved = await self.app.push_screen_wait(
            FormDialog(f"Request limits of {user.shown_email}", [
                FormField("rpm", "Requests per minute (0: unlimited, blank: default)",
                          _own(user.rpm), placeholder=str(defaults[0])),
                FormField("concurrent", "Requests at once (0: unlimited, blank: default)",
                          _own(user.max_concurrent), placeholder=str(defaults[1])),
            ], submit, note=request_limits_text(user, defaults))
        )  # fmt: skip
        if saved:
            self.notify(f"{user.shown_email}: request limits saved")
            self.reload()


def _own(value: int | None) -> str:
    return "" if value is None else str(value)


def request_limits_text(user: UserRow, defaults: tuple[int, int]) -> str:
    """'requests: 60 per minute (default), unlimited at once'."""
    parts = []
    for own, default, what in ((user.rpm, defaults[0], "per minute"),
                               (user.max_concurrent, defaults[1], "at once")):  # fmt: skip
        value = default if own is None else own
        text = f"unlimited {what}" if value == 0 else f"{value} {what}"
        parts.append(text + (" (default)" if own is None else ""))
    return "requests: " + ", ".join(parts)
