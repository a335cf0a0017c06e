"""A provider key's failure reason is kept cut to 500 characters (gateway/routing.py); an
upstream that echoes the key near the end of a long 401 message leaves only the start of the
key in it: the dashboard must mask that too, not only the whole key."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.catalog.providers import add_provider
from codelace_box.db.core import utcnow
from codelace_box.db.models import ProviderKey
from tests.admin.pilot import SECRET, AdminEnv, column, rows, text_of, until

pytestmark = pytest.mark.timeout(60)
KEY = "sk-proj-cutreason-Q7w9E2r4T6y8U0i1O3p5A7s9D"
KEPT = 500  # what serve keeps of a reason


def echoed_reason() -> str:
    """An upstream 401 whose long message ends with the key, as serve stores it (cut)."""
    head = "HTTP 401: Incorrect API key. "
    head += "See the docs. " * ((KEPT - 24 - len(head)) // 14)
    head += "." * (KEPT - 24 - len(head) - len("Key: ")) + "Key: "
    reason = f"{head}{KEY}."[:KEPT]
    assert reason.endswith(KEY[:24])  # only the key's start survives the cut
    return reason


@pytest.mark.parametrize("size", [(80, 24), (240, 40)])
async def test_a_key_cut_off_in_its_failure_reason_is_masked(
    admin_env: AdminEnv, size: tuple[int, int]
) -> None:
    add_provider("openai", "openai", SECRET, KEY)
    ProviderKey.update(
        failing=True, failure_reason=echoed_reason(), last_failed_at=utcnow()
    ).execute()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=size) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["failing"], "the failing key")
        await pilot.press("tab")
        await until(pilot, lambda: "failing since" in text_of(pilot, "#key-check"), "the reason")
        shown = [text_of(pilot, "#key-check"), *rows(pilot, "#keys")[0], app.export_screenshot()]
    for text in shown:
        assert KEY[:12] not in text  # 'sk-proj-cutr': the hint shows 'sk-' and the last four
    assert "Key: sk-…" in text_of_reason(shown[0])


def text_of_reason(line: str) -> str:
    return line.replace("\n", " ")
