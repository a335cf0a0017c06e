"""The numbered migrations, listed explicitly so the single binary carries them all.

Each module has NAME and apply(db); they run in order, each in its own transaction, and the
`schema_migration` table records what ran. Never edit a released migration: add the next one.
"""

from __future__ import annotations

from types import ModuleType

from codelace_box.db.migrations import (
    m0001_initial,
    m0002_hold_owner,
    m0003_public_uuids,
    m0004_money_bounds,
    m0005_allowed_fields,
    m0006_messages_cache_aliases,
    m0007_responses_api,
    m0008_key_limits,
    m0009_usage_totals,
    m0010_observability,
    m0011_portal_sessions,
    m0012_key_rows,
    m0013_account_days,
    m0014_usage_key_index,
    m0015_usage_user_order,
    m0016_key_management_scope,
    m0017_audit_head,
    m0018_stripe_reversals,
    m0019_key_days,
    m0020_payment_order,
    m0021_provider_key_ids,
    m0022_account_days_from_keys,
    m0023_parked_keys,
    m0024_open_alerts,
    m0025_anthropic_containers,
    m0026_advisor_prices,
    m0027_ledger_user_order,
)

MIGRATIONS: list[tuple[int, ModuleType]] = [
    (1, m0001_initial),
    (2, m0002_hold_owner),
    (3, m0003_public_uuids),
    (4, m0004_money_bounds),
    (5, m0005_allowed_fields),
    (6, m0006_messages_cache_aliases),
    (7, m0007_responses_api),
    (8, m0008_key_limits),
    (9, m0009_usage_totals),
    (10, m0010_observability),
    (11, m0011_portal_sessions),
    (12, m0012_key_rows),
    (13, m0013_account_days),
    (14, m0014_usage_key_index),
    (15, m0015_usage_user_order),
    (16, m0016_key_management_scope),
    (17, m0017_audit_head),
    (18, m0018_stripe_reversals),
    (19, m0019_key_days),
    (20, m0020_payment_order),
    (21, m0021_provider_key_ids),
    (22, m0022_account_days_from_keys),
    (23, m0023_parked_keys),
    (24, m0024_open_alerts),
    (25, m0025_anthropic_containers),
    (26, m0026_advisor_prices),
    (27, m0027_ledger_user_order),
]

# Migrations main recorded under another number for a while: (the version recorded, its name)
# -> its version now. From 2026-12-02 10:02 to 10:41 UTC the portal's sessions were migration
# 12, with no 11 (then renumbered 11; 12 became the key rows): a database made then says
# (12, "portal sessions"), which is 11 applied and 12 not.
RENUMBERED: dict[tuple[int, str], int] = {(12, "portal sessions"): 11}
