"""F6 Audit in the dashboard: the audit log (a change made there shows up at once, as client
admin) and the refusal counts of the last 24 hours."""

from __future__ import annotations

from pathlib import Path

import pytest

from admin_tui.app import create_admin_app
from codelace_box.db.core import close_database, utcnow, write_transaction
from codelace_box.db.observability import bump_refusal
from tests.admin.pilot import column, make_env, rows, screen_name, until

pytestmark = pytest.mark.timeout(60)


async def test_the_audit_screen_lists_changes_and_refusals(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    hour = utcnow().strftime("%Y-%m-%d %H")
    with write_transaction() as tx:
        bump_refusal(tx, hour, 402, "insufficient_credits", 3)
        bump_refusal(tx, "2000-01-01 00", 404, "model_not_found", 9)  # long ago: not shown
    app = create_admin_app(env.config)
    async with app.run_test(size=(140, 30)) as pilot:
        await app.services.run(app.services.create_user, "ines@example.com")
        await app.services.run(app.services.set_user_active, "ines@example.com", False)
        await pilot.press("f6")
        await until(pilot, lambda: screen_name(pilot) == "AuditScreen", "the audit screen")
        await until(pilot, lambda: len(column(pilot, "#audit")) == 2, "two entries")
        newest = rows(pilot, "#audit")[0]
        assert newest[2:5] == ["admin", "users disable", "ines@example.com"]
        assert "status: active -> disabled" in newest[5]
        assert rows(pilot, "#audit")[1][3:6] == ["users create", "ines@example.com", "created"]
        await until(pilot, lambda: column(pilot, "#refusals") == ["402"], "the refusals")
        assert rows(pilot, "#refusals")[0][1:] == ["insufficient_credits", "3"]
    close_database()


def test_a_refused_stripe_refund_shows_why_not_created() -> None:
    """A refund the box did not apply (billing/refused.py) has no before: "created" said
    nothing of it on F6; the reason does."""
    from admin_tui.screens.audit import changes
    from codelace_box.audit import Entry

    after = {"event": "evt_1", "refused": "no top-up of this box is paid by this charge"}
    entry = Entry(1, "2026-01-01T00:00:00Z", "root", "stripe", "stripe refund refused",
                  "re_1", None, after, "", "h")  # fmt: skip
    assert changes(entry) == "not applied: no top-up of this box is paid by this charge"
