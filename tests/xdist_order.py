"""The order in which `--dist loadscope` hands the modules to the workers: the longest first.

pytest-xdist hands out whole modules (their servers and fakes start once), by default those
with the most tests first. A module of one or two long tests (a worker held 40 s waiting out a
timeout of Sanic's, a box's clock run through midnight) then comes last, and the other workers
stand idle while it runs: the suite's tail. Here the modules are given out longest first (the
classic longest-processing-time rule): those listed in LONG_MODULES by their measured seconds,
the others by their number of tests times SECONDS_PER_TEST (the suite's mean). The list only
orders the run: a module missing from it, or a figure gone stale, costs time, never a test
(tests/test_xdist_order.py checks that every listed module exists).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sized
from typing import Any

from xdist.scheduler import LoadScopeScheduling

SECONDS_PER_TEST = 0.45  # a worker's seconds per test, over the whole suite (4 workers, 2 cores)

# Modules that hold a worker longer than their number of tests says: their worker-seconds in a
# full run (`make test`, 4 workers on 2 cores; --durations=200 --durations-min=1.5, a run slowed
# by other load scaled to 15 minutes, the tests under 1.5 s counted 0.3 s), rounded.
LONG_MODULES: dict[str, float] = {
    "tests/foundation/test_server_stopping.py": 126,  # 15 tests
    "tests/portal/test_tabs_and_slow_box.py": 70,  # 12 tests
    "tests/admin/test_bad_input.py": 70,  # 24 tests
    "tests/gateway/test_large_answers.py": 53,  # 3 tests
    "tests/foundation/test_stop_window.py": 52,  # 12 tests
    "tests/acceptance/test_backup_while_stopping.py": 46,  # 3 tests
    "tests/foundation/test_worker_start.py": 43,  # 2 tests
    "tests/admin/test_polish.py": 42,  # 15 tests
    "tests/acceptance/test_cli_readme_operator.py": 42,  # 5 tests
    "tests/gateway/test_money_stress.py": 41,  # 3 tests
    "tests/billing/test_stripe_outage.py": 40,  # 9 tests
    "tests/messages/test_claude_code_turns.py": 39,  # 14 tests
    "tests/observability/test_log_lines.py": 38,  # 24 tests
    "tests/observability/test_log_reader_stalls.py": 37,  # 5 tests
    "tests/gateway/test_key_safety.py": 32,  # 22 tests
    "tests/foundation/test_disk_trouble.py": 32,  # 14 tests
    "tests/foundation/test_orphaned_workers.py": 31,  # 6 tests
    "tests/gateway/test_money_review.py": 31,  # 13 tests
    "tests/messages/test_claude_code_sessions.py": 28,  # 12 tests
    "tests/admin/test_models.py": 27,  # 13 tests
    "tests/limits/test_real_midnight.py": 26,  # 1 tests
    "tests/foundation/test_migrations.py": 25,  # 15 tests
    "tests/admin/test_locked_database.py": 24,  # 4 tests
    "tests/billing/test_many_boxes.py": 23,  # 4 tests
    "tests/gateway/test_pg_lookups.py": 23,  # 9 tests
    "tests/foundation/test_server.py": 23,  # 26 tests
    "tests/portal/test_server_waits.py": 23,  # 4 tests
    "tests/admin/test_palette.py": 22,  # 7 tests
    "tests/acceptance/test_cli_commands_accounts.py": 21,  # 25 tests
    "tests/limits/test_limits_review.py": 21,  # 3 tests
    "tests/gateway/test_unsettled_holds.py": 21,  # 1 tests
    "tests/admin/test_limits.py": 20,  # 7 tests
    "tests/gateway/test_worker_killed.py": 19,  # 3 tests
    "tests/gateway/test_stream_leavers.py": 18,  # 3 tests
    "tests/foundation/test_doctor_calls.py": 18,  # 2 tests
    "tests/admin/test_many_users.py": 18,  # 3 tests
    "tests/admin/test_form_echo.py": 16,  # 3 tests
    "tests/portal/test_user_experience.py": 16,  # 17 tests
    "tests/acceptance/test_alert_delivery.py": 15,  # 5 tests
    "tests/observability/test_metrics_and_logs.py": 15,  # 14 tests
    "tests/acceptance/test_cli_commands_providers.py": 14,  # 11 tests
    "tests/messages/test_claude_code_readme.py": 14,  # 3 tests
    "tests/messages/test_translation_errors.py": 14,  # 16 tests
    "tests/gateway/test_many_boxes.py": 14,  # 6 tests
    "tests/foundation/test_file_modes.py": 13,  # 10 tests
    "tests/admin/test_operator_edits.py": 13,  # 6 tests
    "tests/observability/test_killed_worker.py": 13,  # 3 tests
    "tests/admin/test_pasted_key.py": 12,  # 4 tests
    "tests/admin/test_dated_history.py": 12,  # 3 tests
    "tests/foundation/test_data_folder_rights.py": 12,  # 13 tests
    "tests/foundation/test_copy_round_trip.py": 12,  # 3 tests
    "tests/foundation/test_db_copy.py": 12,  # 14 tests
    "tests/foundation/test_postgres.py": 11,  # 13 tests
    "tests/observability/test_audit_at_scale.py": 11,  # 5 tests
    "tests/admin/test_key_ids_reused.py": 11,  # 3 tests
    "tests/fuzz/test_routes.py": 11,  # 5 tests
    "tests/billing/test_currency_change.py": 10,  # 3 tests
}


def weight(scope: str, tests: int) -> float:
    """A module's (or a test class's) expected seconds on a worker."""
    return LONG_MODULES.get(scope, tests * SECONDS_PER_TEST)


def longest_first(queue: Mapping[str, Sized]) -> list[str]:
    """The scopes of xdist's work queue (scope: its tests), the longest expected first; ties
    keep the queue's order (xdist's: the most tests first)."""
    return sorted(queue, key=lambda scope: -weight(scope, len(queue[scope])))


class LongestFirstScheduling(LoadScopeScheduling):
    """`--dist loadscope`, the modules given out longest first."""

    _ordered = False

    def _assign_work_unit(self, node: Any) -> None:
        if not self._ordered:  # the first assignment: the work queue is complete
            self._ordered = True
            queue = self.workqueue
            self.workqueue = OrderedDict((scope, queue[scope]) for scope in longest_first(queue))
        super()._assign_work_unit(node)
