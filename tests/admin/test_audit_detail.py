"""F6 Audit at 80x24: the Changes column is cut to a few characters, so the highlighted entry
is shown in full under the table: a Stripe refund the box did not apply, with why and how much,
and an admin change with every field it changed."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.billing.refused import NOT_OURS, record_not_ours
from codelace_box.billing.reversal_amounts import Reversal
from tests.admin.pilot import AdminEnv, column, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)
NARROW = (80, 24)


async def test_the_highlighted_audit_entry_is_shown_in_full_at_80_columns(
    admin_env: AdminEnv,
) -> None:
    refund = Reversal("re_narrow_0001", "refund", "pi_narrow_0001", 1234, "usd", "succeeded",
                      charge="ch_narrow_0001")  # fmt: skip
    record_not_ours(("evt_narrow_0001", "refund.created"), [refund], "ch_narrow_0001")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=NARROW) as pilot:
        await app.services.run(app.services.create_user, "ines@example.com")
        await app.services.run(app.services.set_user_limits, "ines@example.com", "120", "4")
        await pilot.press("f6")
        await until(pilot, lambda: screen_name(pilot) == "AuditScreen", "the audit screen")
        await until(pilot, lambda: len(column(pilot, "#audit")) == 3, "three entries")
        line = lambda: text_of(pilot, "#audit-detail").replace("\n", " ")  # noqa: E731
        await until(pilot, lambda: "users limits" in line(), "the newest entry in full")
        assert "rpm: null -> 120" in line() and "max_concurrent: null -> 4" in line(), line()
        await pilot.press("down", "down")  # the refused refund, oldest
        await until(pilot, lambda: "re_narrow_0001" in line(), "the refund in full")
        assert f"not applied: {NOT_OURS}" in line(), line()
        assert "1234 usd" in line() and "evt_narrow_0001" in line(), line()
