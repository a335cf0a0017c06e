"""The README said the dashboard refreshes every 2 s; only F1 and Activity do (the others every
5 or 10 s, a request's detail never). It now says each screen's interval: held to the code."""

from __future__ import annotations

import re
from pathlib import Path

from admin_tui.screens.activity import ActivityScreen
from admin_tui.screens.audit import AuditScreen
from admin_tui.screens.base import REFRESH_BACKOFF, AdminScreen
from admin_tui.screens.dashboard import DashboardScreen
from admin_tui.screens.models import ModelsScreen
from admin_tui.screens.providers import ProvidersScreen
from admin_tui.screens.request_detail import RequestDetailScreen
from admin_tui.screens.spend import SpendScreen
from admin_tui.screens.user_detail import UserDetailScreen
from admin_tui.screens.users import UsersScreen

README = Path(__file__).resolve().parents[2] / "README.md"
NAMED: dict[str, type[AdminScreen]] = {  # as the README names each screen
    "the Dashboard (F1)": DashboardScreen,
    "Users (F2)": UsersScreen,
    "a user's detail": UserDetailScreen,
    "Models (F3)": ModelsScreen,
    "Providers (F4)": ProvidersScreen,
    "Activity (F5)": ActivityScreen,
    "the spend report": SpendScreen,
    "Audit (F6)": AuditScreen,
}
WORDS = {3: "three"}


def refresh_sentence() -> str:
    """The README's sentence on how often the dashboard's screens read their data again."""
    section = README.read_text().split("## The admin dashboard", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"Each screen reads its data again[^.]*\.", " ".join(section.split()))
    assert found, "the dashboard section no longer says how often its screens refresh"
    return found.group(0)


def test_the_readme_says_how_often_each_screen_refreshes() -> None:
    sentence = refresh_sentence()
    clauses = {
        float(m.group(2)): m.group(1) for m in re.finditer(r"([^:;]*?) every (\d+) s", sentence)
    }
    for name, screen in NAMED.items():
        assert screen.REFRESH_SECONDS in clauses, (name, screen.REFRESH_SECONDS, sentence)
        assert name in clauses[screen.REFRESH_SECONDS], (name, screen.REFRESH_SECONDS, sentence)
    assert RequestDetailScreen.REFRESH_SECONDS is None and "request's detail" in sentence
    assert f"{WORDS[REFRESH_BACKOFF]} times as long" in sentence
