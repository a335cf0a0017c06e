"""The WARNING of a Stripe webhook delivery refused for its signature, in words that say what to
check, at most one a minute per process for every reason together (Stripe retries each event
for days: a refusal is the operator's setup or network, and every delivery meets it alike);
never the Stripe-Signature header's value."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("codelace_box.billing.stripe")
WARN_EVERY_SEC = 60.0
_last_warning = [float("-inf")]  # this process's last warning (monotonic time)

_AFTER = "(refused, 400; no credit is given for its event)"
_REPEATS = "this warning repeats at most once a minute"
WRONG_SECRET = (
    f"a Stripe webhook's signature matched no signing secret {_AFTER}: check "
    "stripe.webhook_secret is this endpoint's signing secret (whsec_...) in Stripe's dashboard"
)
OUT_OF_TOLERANCE = (
    f"a Stripe webhook's timestamp outside Stripe's tolerance (5 minutes) {_AFTER}: the box's "
    "clock may be off: check NTP (timedatectl, chronyc tracking)"
)
NO_HEADER = (
    f"a Stripe webhook came with its Stripe-Signature header missing or unreadable {_AFTER}: "
    "something between Stripe and the box (a proxy, a load balancer, a WAF) strips or rewrites "
    "headers, or the request is not from Stripe"
)


def warn_refused(reason: str | None, signature: str | None) -> None:
    """A WARNING (see the module) for a signature the Stripe library refused with `reason` (its
    words' first sentence), or for `signature` that is no header at all (None, not ASCII)."""
    words = _words(reason, signature)
    now = time.monotonic()
    if words is None or now - _last_warning[0] < WARN_EVERY_SEC:
        return
    _last_warning[0] = now
    log.warning("%s; %s", words, _REPEATS)


def _words(reason: str | None, signature: str | None) -> str | None:
    if not signature or not signature.isascii():
        return NO_HEADER
    if reason is None or reason.startswith("Timestamp outside the tolerance zone"):
        return OUT_OF_TOLERANCE  # (None: a timestamp from the future, which the box refuses)
    if reason.startswith("No signatures found matching"):
        return WRONG_SECRET
    if reason.startswith(("Unable to extract", "No signatures found with expected scheme")):
        return NO_HEADER
    return None
