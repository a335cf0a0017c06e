"""Keys a probe cannot judge: refused on calls (401/403 about the key) while the probe works.

A key may list models (the probe) but not call the model, or belong to an organisation the
provider blocked: its probe keeps saying it works, and without more it would stay in rotation
for ever, every call it gets refused once and retried on another key. The first such refusal
keeps the key (a probe just said it works: the refusal may have been passing); one on a call
of another account, with no call answered with the key in between, parks it (one account alone
never does: its own requests, a beta flag or content of its choosing, may be what the upstream
refuses, and it could otherwise take the operator's keys out one by one): flagged with a
reason saying so (catalog/keyprobe.py `parked_reason`), which no scheduled probe clears, and
which the operator is told of (`providers list`, the dashboard, the alert webhook) until
they put the key back (`providers key-enable`). The provider's last key in rotation is not
parked (that would turn every model of the provider to 503, those the key may still call
included): it stays, and is not probed again call after call. A refusal met at an address
the provider was moved from since the call began judges nothing: the key is left as it is.
"""

from __future__ import annotations

import logging
from typing import Protocol

from codelace_box.catalog.keycheck import KeyCheckResult
from codelace_box.catalog.keyprobe import KeyProber, StoredKey, parked_reason
from codelace_box.crypto import mask_secret
from codelace_box.gateway.request import ChatCall
from codelace_box.gateway.routing import KeySlot, RouteTable

log = logging.getLogger("codelace_box.gateway")
PARK_AFTER = 2  # accounts with calls refused while the probe works


class KeyRefusal(Protocol):
    key_failure_reason: str


async def key_left_rotation(
    prober: KeyProber, routes: RouteTable, call: ChatCall, key: KeySlot, refusal: KeyRefusal
) -> bool:
    """Judge an upstream's refusal of the key (401, or a 403 about the key): True when the key
    left the rotation (a probe confirmed the refusal, or the key was parked), False when it
    stays (the next key is tried as for a 5xx, and never this one again by this call)."""
    call.refused_keys.add(key.id)
    provider = call.route.provider
    if not routes.still_at(provider):  # refused where the provider no longer is: says nothing
        log.warning(  # of the key where it is now, so the key is neither probed nor flagged
            "%s key %d (%s) was refused (%s) at the address %s was moved from since the "
            "call began; the key stays as it is",
            *(provider.name, key.id, mask_secret(key.secret), refusal.key_failure_reason),
            provider.name,
        )  # fmt: skip
        return False
    if prober.refusals_since_probe(key.id) == 0:
        return await _judged_by_probe(prober, routes, call, key, refusal)
    if prober.note_refused_though_probe_works(key.id, call.user_id) < PARK_AFTER:
        return False
    return await _park_unless_last(prober, routes, call, key, refusal)


def _unanswered(result: KeyCheckResult) -> bool:
    """Whether a probe found the upstream unable to answer for now (down, overloaded); not a
    501 Not Implemented (no model list, for good: as a 404)."""
    status = result.status
    return status is None or status == 429 or (status >= 500 and status != 501)


async def _judged_by_probe(
    prober: KeyProber, routes: RouteTable, call: ChatCall, key: KeySlot, refusal: KeyRefusal
) -> bool:
    """Probe a refused key: True when the probe confirmed the refusal (the key is flagged). A
    probe that works (or that cannot judge keys: an upstream without a model list answers 404)
    counts the refusal toward parking; one the upstream did not answer for now (no answer, a
    429, a 5xx) shows nothing, so counts nothing: the next refusal probes again."""
    provider = call.route.provider
    stored = StoredKey(key.id, provider.name, provider.kind, provider.base_url, key.secret)
    result = await prober.probe(stored)
    if result.refused:
        await routes.mark_failing(key, refusal.key_failure_reason)
        prober.answered(key.id)
        return True
    if not _unanswered(result):
        prober.note_refused_though_probe_works(key.id, call.user_id)
    log.warning(
        "%s key %d (%s) was refused (%s) but its probe says: %s; it stays in rotation",
        *(provider.name, key.id, mask_secret(key.secret), refusal.key_failure_reason),
        result.message,
    )
    return False


async def _park_unless_last(
    prober: KeyProber, routes: RouteTable, call: ChatCall, key: KeySlot, refusal: KeyRefusal
) -> bool:
    """Park a key refused for several accounts though its probe works, unless it is its
    provider's last key in rotation; True when parked."""
    provider = call.route.provider
    reason = parked_reason(refusal.key_failure_reason, provider.name, key.id)
    if not routes.has_other_key(provider.id, key.id) or not await routes.mark_failing(
        key, reason, parked=True
    ):  # the last key of this snapshot, or of the database (another box parked the others)
        log.warning(
            "%s key %d (%s) is refused on calls (%s) though its probe works; it stays in "
            "rotation, being its last key in rotation: check what the key may call",
            *(provider.name, key.id, mask_secret(key.secret), refusal.key_failure_reason),
        )  # fmt: skip
        return False
    prober.answered(key.id)
    log.warning(
        "provider key %d (%s) parked: %s refuses it on calls (%s) though its probe works; "
        "it stays out of rotation until the operator puts it back (providers key-enable %s %d)",
        *(key.id, mask_secret(key.secret), provider.name, refusal.key_failure_reason[:200]),
        *(provider.name, key.id),
    )
    return True
