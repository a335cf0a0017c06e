"""Probing stored provider keys: one probe (keycheck.check_key) for the whole box.

The gateway confirms an upstream's refusal with a probe before a key leaves the rotation
(`KeyProber`, one probe per key at a time however many requests were refused), and every serve
process re-probes the flagged keys every `gateway.key_probe_sec`, putting back those that work
(`reprobe_flagged`). The dashboard's key test asks the same `check_key`.

A key its upstream refuses on calls while its probe works (it may list models but not call the
model; its organisation is blocked) cannot be judged by a probe: the gateway parks it
(gateway/blind_keys.py): failing, and `provider_key.parked` (its reason, `parked_reason`, says
what brings it back). No scheduled probe brings a parked key back: only the operator
(`providers key-enable`, the dashboard).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from codelace_box.catalog.keycheck import KeyCheckResult, check_key
from codelace_box.catalog.providers import get_provider, provider_key, set_key_enabled
from codelace_box.crypto import decrypt_secret, mask_secret
from codelace_box.db.core import exclusive, query_all, utcnow, write_transaction
from codelace_box.db.models import ProviderKey
from codelace_box.db.offload import run_in_db_thread
from codelace_box.db.text import storable_text
from codelace_box.errors import ConfigError
from codelace_box.providers import adapter_for

log = logging.getLogger("codelace_box.gateway")
_FLAGGED_SQL = (
    "SELECT k.id, k.key_encrypted, p.name, p.kind, p.base_url "
    "FROM provider_key k "
    "JOIN provider p ON p.id = k.provider_id WHERE k.enabled = 1 AND k.failing = 1 "
    "AND k.parked = 0 AND p.enabled = 1 ORDER BY k.id"
)


REASON_ROOM = 300  # of the upstream's refusal, in a parked key's reason (which holds 500)


def parked_reason(refusal: str, provider: str, key_id: int) -> str:
    """The failure reason of a parked key: the refusal, and what brings the key back."""
    return (
        f"{refusal[:REASON_ROOM]} (refused on calls though its probe works: parked until the "
        f"operator puts it "
        f"back: providers key-enable {provider} {key_id})"
    )


@dataclass(frozen=True)
class StoredKey:
    """A provider key with what it takes to probe it; the secret never shows in a repr."""

    id: int
    provider: str
    kind: str
    base_url: str
    secret: str = field(repr=False)

    @property
    def hint(self) -> str:
        """The key masked, for log lines."""
        return mask_secret(self.secret)


def probe_url_base(kind: str, base_url: str) -> str:
    """The provider's base URL, or its kind's own when none is set."""
    return base_url or adapter_for(kind).default_base_url


async def probe(key: StoredKey, timeout_sec: float) -> KeyCheckResult:
    """Ask the key's upstream whether it accepts the key."""
    base = probe_url_base(key.kind, key.base_url)
    return await check_key(key.kind, base, key.secret, timeout_sec=timeout_sec)


class KeyProber:
    """Probes for one process, at most one per key at a time (concurrent asks share it)."""

    def __init__(self, timeout_sec: float) -> None:
        self.timeout_sec = timeout_sec
        self._running: dict[int, asyncio.Future[KeyCheckResult]] = {}
        # keys refused on calls since a probe said they work (and since they last answered):
        # the accounts whose calls were refused, as one account alone may provoke refusals
        self._refused_since_probe: dict[int, set[int]] = {}

    def refusals_since_probe(self, key_id: int) -> int:
        """How many accounts had calls refused with this key since a probe said it works."""
        return len(self._refused_since_probe.get(key_id, ()))

    def note_refused_though_probe_works(self, key_id: int, user_id: int) -> int:
        """One more such refusal, of a call of `user_id`; how many accounts had one now."""
        accounts = self._refused_since_probe.setdefault(key_id, set())
        accounts.add(user_id)
        return len(accounts)

    def answered(self, key_id: int) -> None:
        """A call with this key was answered (or the key left the rotation): start again."""
        if self._refused_since_probe:
            self._refused_since_probe.pop(key_id, None)

    async def probe(self, key: StoredKey) -> KeyCheckResult:
        """The verdict on a key, from a probe already under way if there is one."""
        running = self._running.get(key.id)
        if running is None:
            running = asyncio.ensure_future(probe(key, self.timeout_sec))
            self._running[key.id] = running
            running.add_done_callback(lambda _: self._running.pop(key.id, None))
        return await asyncio.shield(running)


def flagged_keys(secret_key: str) -> list[StoredKey]:
    """The enabled keys flagged as failing, decrypted (an undecryptable one is skipped), but
    not those parked (its probe works, and said nothing: the operator decides), nor those of
    a disabled provider (the operator stopped sending anything there)."""
    found: list[StoredKey] = []
    for key_id, token, name, kind, base_url in query_all(_FLAGGED_SQL):
        try:
            secret = decrypt_secret(secret_key, bytes(token))
        except ConfigError as exc:
            log.error("provider key %d is unusable: %s", key_id, exc.message)
            continue
        found.append(StoredKey(int(key_id), name, kind, base_url or "", secret))
    return found


_PROVIDER_OF_KEY_SQL = "SELECT provider_id FROM provider_key WHERE id = ?"
_OTHER_IN_ROTATION_SQL = (
    "SELECT 1 FROM provider_key WHERE provider_id = ? AND id != ? AND enabled = 1 AND failing = 0"
)


def flag_failing(key_id: int, reason: str, parked: bool) -> bool:
    """Take a key out of rotation in the database: flagged (a probe confirmed its refusal) or
    `parked` (refused on calls though its probe works) only while its provider has another key
    in rotation, read under the provider's lock: another process (a worker, a box on the same
    database) may have taken the others out a moment ago, which its own catalog snapshot cannot
    know yet. False: not parked, the provider's last key in rotation stays."""
    with write_transaction() as tx:
        found = query_all(_PROVIDER_OF_KEY_SQL, (key_id,))
        if not found:
            return False
        exclusive(tx, f"provider-keys:{found[0][0]}")  # one judge of its keys at a time
        others = query_all(_OTHER_IN_ROTATION_SQL, (found[0][0], key_id))
        if parked and not others:
            return False
        ProviderKey.update(
            failing=True,
            parked=parked,
            failure_reason=storable_text(reason[:500]),  # an upstream's words: a NUL too
            last_failed_at=utcnow(),
        ).where(ProviderKey.id == key_id).execute()
    return True


def return_to_rotation(key_id: int) -> bool:
    """Clear a key's failing flag; False if it was not flagged (any more)."""
    with write_transaction():
        changed = (
            ProviderKey.update(failing=False, failure_reason="")
            .where(
                ProviderKey.id == key_id,
                ProviderKey.failing == True,  # noqa: E712
                ProviderKey.parked == False,  # noqa: E712
            )
            .execute()
        )
    return bool(changed)


async def reprobe_flagged(secret_key: str, timeout_sec: float) -> int:
    """Probe every flagged key; those that work return to the rotation. Returns how many.
    Its reads and writes run on the database thread (the server's periodic task: a database
    host that stops answering holds them there, not the event loop)."""
    returned = 0
    for key in await run_in_db_thread(flagged_keys, secret_key):
        result = await probe(key, timeout_sec)
        if not result.ok:
            log.info("provider key %d (%s) of %s still fails its probe: %s",
                     key.id, key.hint, key.provider, result.message)  # fmt: skip
        elif await run_in_db_thread(return_to_rotation, key.id):
            returned += 1
            log.warning("provider key %d (%s) of %s is back in rotation: its probe works",
                        key.id, key.hint, key.provider)  # fmt: skip
    return returned


async def enable_after_probe(
    name: str,
    key_id: int,
    secret_key: str,
    timeout_sec: float,
    enable: Callable[[int], object] | None = None,
) -> KeyCheckResult:
    """Probe a provider's key and, when its upstream accepts it, put it back in rotation
    (enabled, failing flag cleared) with `enable(key id)` (default: `set_key_enabled`; a client
    passes its audited change); a refused probe changes nothing. The probe's verdict."""
    key = provider_key(name, key_id)
    provider = get_provider(name)
    secret = decrypt_secret(secret_key, bytes(key.key_encrypted))
    stored = StoredKey(key.id, provider.name, provider.kind, provider.base_url or "", secret)
    result = await probe(stored, timeout_sec)
    if result.ok:
        if enable is None:
            set_key_enabled(key.id, True)
        else:
            enable(key.id)
    return result
