"""The keys a call asks no more, and its answer once none is left: a key that refused the call
(gateway/blind_keys.py) or answered a rate limit or out-of-credit (gateway/upstream.py
`judge_failure`) is in `ChatCall.refused_keys`, passed over by `RouteTable.next_key`; when every
key left is such a key, or the retries are spent on a key's refusal, the client gets the
limited keys' 429 (the shortest wait) or their out-of-credit, not the refusal of a key tried
after them (which says nothing of those)."""

from __future__ import annotations

from codelace_box.errors import CodelaceError, RateLimited, ServiceUnavailable
from codelace_box.gateway.outcome import count_retried_failure
from codelace_box.gateway.request import ChatCall
from codelace_box.gateway.retry_after import sooner
from codelace_box.gateway.routing import KeySlot, RouteTable


def next_key_to_try(
    routes: RouteTable, call: ChatCall, tried: set[int], last: CodelaceError | None
) -> KeySlot:
    """The key of the call's next attempt (added to `tried`); raises the error the client
    should see when none is left (`no_key_left`)."""
    key = routes.next_key(call.route.provider.id, tried, call.refused_keys, call.route.provider)
    if key is None:
        raise no_key_left(call, last)
    tried.add(key.id)
    count_retried_failure(call, last)  # the failure (if any) this attempt hides
    return key


def hold_back(call: ChatCall, key_id: int, error: CodelaceError) -> None:
    """A key that answered a rate limit or out-of-credit `error`: not asked again by the call
    (`refused_keys`), and its answer kept as the call's once no key is left (`no_key_left`):
    the shortest wait of its keys' rate limits, a rate limit before an out-of-credit (a limited
    key comes back; an empty account does not)."""
    call.refused_keys.add(key_id)
    if not isinstance(call.limited, RateLimited) or isinstance(error, RateLimited):
        call.limited = sooner(call.limited, error)


def no_key_left(call: ChatCall, last: CodelaceError | None) -> CodelaceError:
    """The answer of a call that has no key left to try: its keys' rate limit or out-of-credit
    when every key left answered one (a key refused or flagged after says nothing of those),
    else the last failure, else a 503."""
    if call.limited is None:
        name = call.route.provider.name
        return last or ServiceUnavailable(f"{name} has no working key", code="provider_unavailable")
    return _instead(call, call.limited, last)


def retries_spent(call: ChatCall, last: CodelaceError) -> CodelaceError:
    """The answer of a call whose retries are spent: its keys' rate limit or out-of-credit
    rather than a key's refusal of the call (`provider_key_rejected`, final on /v1/messages,
    says nothing of the keys that answer again after their wait), else the last failure."""
    if last.code == "provider_key_rejected" and call.limited is not None:
        return _instead(call, call.limited, last)
    return last


def _instead(call: ChatCall, limited: CodelaceError, last: CodelaceError | None) -> CodelaceError:
    """The keys' `limited` answer, `last` (if another) counted as a failure it hides."""
    if last is not limited:
        count_retried_failure(call, last)
    return limited
