"""How many keys an account may make itself: at most MAX_ACTIVE_KEYS, checked in the new key's
transaction (accounts/keys.py create_key, `capped`)."""

from __future__ import annotations

from codelace_box.db.models import ApiKey
from codelace_box.errors import InvalidRequest

MAX_ACTIVE_KEYS = 1000  # of one account, made by its own keys or the portal


def check_room_for_a_key(user_id: int) -> None:
    """400 `too_many_keys` when an account holds MAX_ACTIVE_KEYS keys not revoked, expired ones
    too (a script with one key could otherwise mint them without end: each a durable write, a
    row every lookup and listing carries). Sign-in and the operator's tools are not held to it."""
    held = ApiKey.select().where(ApiKey.user == user_id, ApiKey.revoked_at.is_null()).count()
    if held >= MAX_ACTIVE_KEYS:
        raise InvalidRequest(
            f"this account has {held:,} API keys (not revoked, expired ones too), the most it "
            "may hold: revoke keys it no longer uses first",
            code="too_many_keys",
        )
