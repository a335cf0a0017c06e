"""The trial credit of a card setup: whose setup session it is (this box's own, proven by
its metadata's tag), and the grant, once per account and once per card (its fingerprint),
made by billing/webhooks.py when Stripe says the setup completed."""

from __future__ import annotations

from typing import Any

from codelace_box.billing.checkout import METADATA_KIND, METADATA_USER, setup_tag
from codelace_box.billing.claims import carries_tag, made_for
from codelace_box.billing.ledger import append_entry
from codelace_box.db.core import connection, exclusive, utcnow
from codelace_box.db.models import Payment, TrialCard, User

TRIAL_REASON = "trial credit for the first card setup"


def grant_trial(
    session: dict[str, Any], owner: int | None, fingerprint: str | None, trial_nanos: int
) -> str:
    """The trial credit for a completed card setup, once per account and once per card.

    Two setups of one account, or of one card, on two boxes at once take turns here (the
    account's lock, then the card's): both are read after their locks, so the second sees the
    first one's trial, and neither leaves a second trial payment nor fails on the card's row."""
    if owner is not None:
        exclusive(connection(), f"stripe:trial:{owner}")
    if owner is not None and fingerprint:
        exclusive(connection(), f"stripe:trial-card:{fingerprint}")
    user = User.get_or_none(User.id == owner) if owner is not None else None
    if user is None or not made_for(session, user):
        return "unknown_session"
    refusal = _trial_refusal(user, fingerprint, trial_nanos)
    if refusal or fingerprint is None:
        return refusal or "trial_no_card"
    append_entry(user.id, trial_nanos, "trial", TRIAL_REASON, f"trial:{user.id}")
    TrialCard.create(fingerprint=fingerprint, user=user.id)
    now = utcnow()
    User.update(trial_granted_at=now).where(User.id == user.id).execute()
    Payment.create(
        user=user.id,
        amount_nanos=trial_nanos,
        kind="trial",
        status="completed",
        stripe_session_id=str(session["id"]),
        currency="usd",
        completed_at=now,
    )
    return "trial_granted"


def _trial_refusal(user: User, fingerprint: str | None, trial_nanos: int) -> str | None:
    if trial_nanos <= 0:
        return "trial_off"
    if user.trial_granted_at is not None:
        return "trial_already_granted"
    if not fingerprint:
        return "trial_no_card"
    if TrialCard.get_or_none(TrialCard.fingerprint == fingerprint) is not None:
        return "trial_card_used"
    return None


def setup_session_owner(session: dict[str, Any], box_secret: str) -> int | None:
    """The account id of a setup session this box created (its metadata proves it), else None."""
    metadata = session.get("metadata")
    if not isinstance(metadata, dict) or metadata.get(METADATA_KIND) != "setup":
        return None
    raw = str(metadata.get(METADATA_USER, ""))
    if not (raw.isascii() and raw.isdigit()) or raw != str(session.get("client_reference_id")):
        return None
    if not carries_tag(metadata, setup_tag(box_secret, int(raw))):
        return None
    return int(raw)


def setup_intent_id(session: dict[str, Any]) -> str:
    intent = session.get("setup_intent")
    return str(intent.get("id") if isinstance(intent, dict) else intent)
