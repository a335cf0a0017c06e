"""Text from outside the box reaches the operator's terminal through the dashboard: a failing
provider key's reason (the upstream's words) and a request's upstream error (an upstream quotes
what the client sent, escape sequences too). Textual passes ESC through to the terminal, so
such text could clear the screen, retitle the window or set the clipboard (OSC 52). The
dashboard shows control characters as visible escapes instead."""

from __future__ import annotations

from datetime import timedelta

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.catalog.providers import add_provider
from codelace_box.db.core import utcnow, write_transaction
from codelace_box.db.models import ProviderKey, UsageRecord
from codelace_box.db.observability import set_upstream_error
from tests.admin.pilot import (
    SECRET,
    AdminEnv,
    add_usage,
    column,
    screen_name,
    text_of,
    until,
)

pytestmark = pytest.mark.timeout(60)
HOSTILE = "bad key \x1b[2J\x1b]52;c;SGVsbG8=\x1b\\ \x9b31m done"
SHOWN = "bad key \\x1b[2J\\x1b]52;c;SGVsbG8=\\x1b\\ \\x9b31m done"


def no_controls(text: str) -> bool:
    return "\x1b" not in text and "\x9b" not in text


async def test_a_failing_keys_reason_reaches_the_screen_without_its_escapes(
    admin_env: AdminEnv,
) -> None:
    add_provider("openai", "openai", SECRET, "sk-proj-controls-key-00001111")
    failed = {"failing": True, "failure_reason": HOSTILE, "last_failed_at": utcnow()}
    ProviderKey.update(**failed).execute()
    async with create_admin_app(admin_env.config).run_test(size=(120, 30)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["failing"], "the failing key")
        await until(pilot, lambda: "bad key" in text_of(pilot, "#key-check"), "the reason")
        (reason,) = column(pilot, "#keys", 3)
        assert no_controls(reason) and reason.startswith("bad key \\x1b[2J"), reason
        assert no_controls(text_of(pilot, "#key-check"))
        assert SHOWN in text_of(pilot, "#key-check")

        await pilot.press("tab", "x")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the question")
        assert no_controls(text_of(pilot, "#confirm-message"))
        assert SHOWN in text_of(pilot, "#confirm-message")


async def test_a_requests_upstream_error_reaches_the_screen_without_its_escapes(
    admin_env: AdminEnv,
) -> None:
    user = create_user("ana@example.com")
    add_usage(user.id, utcnow() - timedelta(minutes=1), request_id="req-ctl", status="error")
    with write_transaction() as tx:
        set_upstream_error(tx, "req-ctl", HOSTILE)
    row_id = UsageRecord.get(UsageRecord.request_id == "req-ctl").id
    async with create_admin_app(admin_env.config).run_test(size=(120, 30)) as pilot:
        pilot.app.screen.open_request(row_id)  # type: ignore[attr-defined]
        await until(pilot, lambda: "req-ctl" in text_of(pilot, "#request-detail"), "the detail")
        shown = text_of(pilot, "#request-detail")
        assert no_controls(shown) and SHOWN in shown, shown
