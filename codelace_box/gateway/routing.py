"""Routing: a model id to its provider, upstream model, prices and the next provider key.

Each server process keeps a snapshot of the enabled catalog, reloaded when it is older than
`ttl_sec` (0.5 s), so a change made by the CLI or the admin dashboard in another process is
seen within a second without a restart. On SQLite a lookup that finds it stale reloads it
there (a few local reads, twice a second at most); on PostgreSQL a task reloads it on the
database thread and lookups never wait for the server (gateway/refreshed_routes.py).
Provider keys are decrypted once per reload (and remembered by ciphertext, so a reload
decrypts only new keys), never per request, and are never part of a repr, a log line or an
error. Requests spread over a provider's keys round robin; a key whose refusal (401/403) a
probe confirmed is flagged in the database and leaves the rotation (catalog/keyprobe.py puts
it back once a later probe works).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from codelace_box.catalog.keyprobe import flag_failing
from codelace_box.crypto import decrypt_secret, mask_secret
from codelace_box.db.core import query_all
from codelace_box.db.migrate import LATEST_VERSION
from codelace_box.db.offload import run_db_work
from codelace_box.db.text import composed
from codelace_box.errors import ConfigError, InvalidRequest, NotFound, ServiceUnavailable
from codelace_box.gateway.hints import RefusedHints

log = logging.getLogger("codelace_box.gateway")
DEFAULT_TTL_SEC = 0.5


@dataclass(frozen=True)
class KeySlot:
    """One usable provider key; the secret never shows in a repr."""

    id: int
    secret: str = field(repr=False)


@dataclass(frozen=True)
class ProviderRoute:
    id: int
    name: str
    kind: str
    base_url: str
    enabled: bool
    keys: tuple[KeySlot, ...]
    allowed_fields: frozenset[str] = frozenset()  # billed fields the operator allowed
    responses_api: bool = False  # serves /v1/responses itself (`providers add --responses-api`)


@dataclass(frozen=True)
class ModelRoute:
    """An enabled catalog model with its provider and prices (nano-USD per 1M tokens)."""

    id: str
    provider: ProviderRoute
    upstream_model: str
    input_per_1m_nanos: int
    output_per_1m_nanos: int
    max_output_tokens: int | None
    created: int  # unix seconds, for /v1/models
    context_tokens: int | None = None  # None: gateway.default_context_tokens
    cache_read_per_1m_nanos: int = 0  # resolved: the input price when the catalog has none
    cache_write_per_1m_nanos: int = 0
    cache_write_1h_per_1m_nanos: int = 0

    @cached_property  # (read by every call's hold: found once a route, not by max() each time)
    def max_input_per_1m_nanos(self) -> int:
        """The dearest price an input token can be billed at (a hold's worst case)."""
        prices = (self.input_per_1m_nanos, self.cache_read_per_1m_nanos)
        return max(*prices, self.cache_write_per_1m_nanos, self.cache_write_1h_per_1m_nanos)


_MODELS_SQL = (
    "SELECT m.id, m.upstream_model, m.input_per_1m_nanos, m.output_per_1m_nanos, "
    "m.max_output_tokens, m.created_at, m.provider_id, m.cache_read_per_1m_nanos, "
    "m.cache_write_per_1m_nanos, m.cache_write_1h_per_1m_nanos, m.context_tokens "
    "FROM catalog_model m "
    "WHERE m.enabled = 1 ORDER BY m.id"
)
_ALIASES_SQL = "SELECT name, model_id FROM model_alias"
_SCHEMA_SQL = "SELECT MAX(version) FROM schema_migration"
_PROVIDERS_SQL = (
    "SELECT id, name, kind, base_url, enabled, allowed_fields, responses_api FROM provider"
)
_KEYS_SQL = (
    "SELECT id, provider_id, key_encrypted FROM provider_key "
    "WHERE enabled = 1 AND failing = 0 ORDER BY id"
)


def _unix(value: object) -> int:
    """Unix seconds of a stored (naive UTC) timestamp."""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return 0
    return int(moment.replace(tzinfo=UTC).timestamp())


def _model_route(row: tuple[Any, ...], providers: dict[int, ProviderRoute]) -> ModelRoute:
    """A route from a row of _MODELS_SQL; unset cache prices resolved (read and write: the
    input price; the 1-hour write: the write price)."""
    input_price = int(row[2])
    cache_write = input_price if row[8] is None else int(row[8])
    return ModelRoute(
        id=row[0],
        provider=providers[int(row[6])],
        upstream_model=row[1],
        input_per_1m_nanos=input_price,
        output_per_1m_nanos=int(row[3]),
        max_output_tokens=None if row[4] is None else int(row[4]),
        created=_unix(row[5]),
        cache_read_per_1m_nanos=input_price if row[7] is None else int(row[7]),
        cache_write_per_1m_nanos=cache_write,
        cache_write_1h_per_1m_nanos=cache_write if row[9] is None else int(row[9]),
        context_tokens=None if row[10] is None else int(row[10]),
    )


def _field_set(stored: object) -> frozenset[str]:
    """The allowed fields from their stored JSON list (nothing, should it be unreadable)."""
    try:
        names = json.loads(str(stored or "[]"))
    except ValueError:
        return frozenset()
    return frozenset(str(n) for n in names) if isinstance(names, list) else frozenset()


@dataclass(frozen=True)
class Snapshot:
    """What one reload read: the enabled models, every provider, the decrypted keys by id and
    ciphertext, the aliases."""

    models: dict[str, ModelRoute]
    providers: dict[int, ProviderRoute]
    plain: dict[tuple[int, bytes], str | None] = field(repr=False)
    aliases: dict[str, str]
    schema: int = 0  # the database's newest migration (a newer release's: this box stops)


class ProviderUnavailable(ServiceUnavailable):
    """503 `provider_unavailable`: the model exists but its provider cannot serve it now. It
    names the model (`model_id`), so an inference route checks the key's allow-list first:
    a key that may not call the model gets the final 403, not a 503 clients retry."""

    def __init__(self, model_id: str, state: str) -> None:
        super().__init__(f"the provider of {model_id} {state}", code="provider_unavailable")
        self.model_id = model_id


class RouteTable:
    """The per-process routing snapshot with its round-robin counters."""

    def __init__(
        self,
        secret_key: str,
        ttl_sec: float = DEFAULT_TTL_SEC,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_key = secret_key
        self._ttl = ttl_sec
        self._clock = clock
        self._loaded_at = float("-inf")
        self._models: dict[str, ModelRoute] = {}
        self._providers: dict[int, ProviderRoute] = {}
        self._plain: dict[tuple[int, bytes], str | None] = {}
        self._aliases: dict[str, str] = {}
        self._schema = 0
        self._turn: dict[int, int] = {}
        self._flagged = 0  # keys taken out of the rotation here (a reload read before: stale)
        self._leaving: set[int] = set()  # keys being flagged: out of every snapshot installed
        self.refused_hints = RefusedHints(clock)  # hints providers refused (gateway/hints.py)

    def _fresh(self) -> None:
        now = self._clock()
        if now - self._loaded_at >= self._ttl:
            self._reload()
            self._loaded_at = now

    def as_loaded(self) -> RouteTable:
        """This table as loaded now, for a call prepared on a thread (gateway/body_work.py)."""
        self._fresh()
        loaded = LoadedRoutes.__new__(LoadedRoutes)  # whose lookups never reload
        loaded.__dict__.update(self.__dict__)  # the same snapshot, counters and hints
        return loaded

    def invalidate(self) -> None:
        """Reload on the next lookup."""
        self._loaded_at = float("-inf")

    async def start(self) -> None:
        """Before serving (SQLite: nothing; the first lookup loads the snapshot)."""

    async def stop(self) -> None:
        """After serving."""

    def _reload(self) -> None:
        self._install(self.load())

    def load(self) -> Snapshot:
        """Read the catalog (on any one thread at a time; keys already known are not
        decrypted again)."""
        keys: dict[int, list[KeySlot]] = {}
        plain: dict[tuple[int, bytes], str | None] = {}
        for key_id, provider_id, token in query_all(_KEYS_SQL):
            secret = self._decrypt(int(key_id), bytes(token))
            plain[(int(key_id), bytes(token))] = secret  # None: unusable (logged once)
            if secret is not None:
                keys.setdefault(int(provider_id), []).append(KeySlot(int(key_id), secret))
        providers = {
            int(pid): ProviderRoute(
                int(pid), name, kind, base_url or "", bool(enabled), tuple(keys.get(int(pid), ())),
                _field_set(allowed), bool(native),
            )
            for pid, name, kind, base_url, enabled, allowed, native in query_all(_PROVIDERS_SQL)
        }  # fmt: skip
        models = {row[0]: _model_route(row, providers) for row in query_all(_MODELS_SQL)}
        aliases = {str(name): str(target) for name, target in query_all(_ALIASES_SQL)}
        [(schema,)] = query_all(_SCHEMA_SQL)
        return Snapshot(models, providers, plain, aliases, int(schema or 0))

    def _install(self, snapshot: Snapshot) -> None:
        """Serve from `snapshot` from now on (on the loop's thread), without the keys being
        flagged (a reload may read them before their flag is written)."""
        self._plain = snapshot.plain
        self._providers = snapshot.providers
        for key_id in self._leaving:
            self._forget_key(key_id)
        self._models = snapshot.models
        self._aliases = snapshot.aliases
        self._schema = snapshot.schema

    def _decrypt(self, key_id: int, token: bytes) -> str | None:
        if (key_id, token) in self._plain:  # known, or known to be unusable (said once)
            return self._plain[(key_id, token)]
        try:
            return decrypt_secret(self._secret_key, token)
        except ConfigError as exc:
            log.error("provider key %d is unusable: %s", key_id, exc.message)
            return None

    def enabled_models(self) -> list[ModelRoute]:
        """The enabled catalog, by id."""
        self._fresh()
        return list(self._models.values())

    def servable_models(self) -> list[ModelRoute]:
        """The models a request can be served by: enabled, with their provider enabled."""
        self._fresh()
        return [m for m in self._models.values() if self._provider_on(m)]

    def servable_aliases(self) -> dict[str, ModelRoute]:
        """The aliases of servable models."""
        return {name: m for name, m in self.aliases().items() if self._provider_on(m)}

    def _provider_on(self, model: ModelRoute) -> bool:
        return self._providers.get(model.provider.id, model.provider).enabled

    def aliases(self) -> dict[str, ModelRoute]:
        """Every alias whose model is enabled, with its route."""
        self._fresh()
        return {
            name: self._models[target]
            for name, target in self._aliases.items()
            if target in self._models
        }

    def resolve(self, model_id: str) -> ModelRoute:
        """The route of a model id or alias: 400 malformed, 404 unknown/disabled, 503 unusable
        provider (`ProviderUnavailable`)."""
        self._fresh()
        if self._schema > LATEST_VERSION:
            raise _newer_schema(self._schema)
        sent, model_id = model_id, self._aliases.get(model_id, model_id)
        provider_name, _, model_name = model_id.partition("/")
        if not provider_name or not model_name:
            raise InvalidRequest(
                f"model must look like provider/model (or be an alias), got {model_id!r}",
                code="invalid_model",
                param="model",
            )
        route = self._models.get(model_id) or self._in_any_form(model_id)
        if route is None:
            named = model_id if sent == model_id else f"{sent} (an alias of {model_id})"
            raise NotFound(f"the model {named} does not exist", code="model_not_found")
        provider = self._providers.get(route.provider.id, route.provider)
        if not provider.enabled:
            raise ProviderUnavailable(model_id, "is disabled")
        if not provider.keys:
            raise ProviderUnavailable(model_id, "has no working key")
        return route

    def _in_any_form(self, model_id: str) -> ModelRoute | None:
        """The route of an id beyond ASCII sent in another Unicode form than the catalog's (an
        id kept decomposed before ids were composed is found composed too)."""
        if model_id.isascii():
            return None
        wanted = composed(model_id)
        found = self._models.get(wanted)
        return found or next((m for k, m in self._models.items() if composed(k) == wanted), None)

    def next_key(
        self,
        provider_id: int,
        avoid: Collection[int] = (),
        refused: Collection[int] = (),
        at: ProviderRoute | None = None,
    ) -> KeySlot | None:
        """The next usable key of a provider, round robin, passing over the keys in `avoid` (a
        call's retry: those it tried) unless there is no other, and never one in `refused`
        (that refused the call, or answered a 429 or no credit: they would again); None when it has
        none left, or when the provider was disabled or no longer is at `at`'s address and kind
        (a call admitted before the operator disabled or moved it: its retry is a new call to
        the provider, and the keys now belong to the new address, never sent to the old)."""
        self._fresh()
        provider = self._providers.get(provider_id)
        if provider is None:
            return None
        keys = provider.keys  # (a first try has no refused key: no copy on the hot path)
        if refused:
            keys = tuple(k for k in keys if k.id not in refused)
        if not keys:
            return None
        if at is not None and not (provider.enabled and self.still_at(at)):
            return None
        turn = self._turn.get(provider_id, 0)
        self._turn[provider_id] = turn + 1
        for step in range(len(keys) if avoid else 1):
            key = keys[(turn + step) % len(keys)]
            if key.id not in avoid:
                return key
        return keys[turn % len(keys)]

    def still_at(self, at: ProviderRoute) -> bool:
        """Whether a call's provider is still at the address and kind the call was admitted
        with (the operator may have moved it since)."""
        self._fresh()
        provider = self._providers.get(at.id)
        return provider is not None and (provider.base_url, provider.kind) == (at.base_url, at.kind)

    def has_other_key(self, provider_id: int, key_id: int) -> bool:
        """Whether the provider has a key in rotation besides this one."""
        provider = self._providers.get(provider_id)
        return provider is not None and any(k.id != key_id for k in provider.keys)

    async def mark_failing(self, key: KeySlot, reason: str, parked: bool = False) -> bool:
        """Flag a key the upstream refused (in the database, off the loop on PostgreSQL;
        `parked`: refused on calls though its probe works, back only by the operator); it
        leaves this process's rotation at once (before its write, which may wait on
        PostgreSQL) and every other's at its next reload. False: not parked, being its
        provider's last key in rotation in the database (catalog/keyprobe.py `flag_failing`):
        it comes back at the reload."""
        self._leaving.add(key.id)
        self._forget_key(key.id)
        try:
            flagged = await run_db_work(flag_failing, key.id, reason, parked)
        finally:
            self._forget_key(key.id)  # a reload read before the flag was written is stale
            self._leaving.discard(key.id)
            self.invalidate()
        if flagged:
            log.warning(
                "provider key %d (%s) flagged as failing, out of rotation: %s",
                *(key.id, mask_secret(key.secret), reason[:200]),
            )
        return flagged

    def _forget_key(self, key_id: int) -> None:
        """Take a key out of this snapshot's rotation (until a reload reads it back)."""
        self._flagged += 1
        self._providers = {
            pid: replace(p, keys=tuple(k for k in p.keys if k.id != key_id))
            for pid, p in self._providers.items()
        }


def _newer_schema(schema: int) -> ServiceUnavailable:
    """A newer release migrated the database while this box ran (many boxes, upgraded one at a
    time): no request may reach a provider, whose work it could no longer settle."""
    return ServiceUnavailable(
        f"the database was migrated to schema {schema} by a newer codelace-box (this one knows "
        f"{LATEST_VERSION}): restart this box with the new release",
        code="database_newer",
    )


class LoadedRoutes(RouteTable):
    """A RouteTable that never reloads (`RouteTable.as_loaded`: the database is the loop's)."""

    def _fresh(self) -> None: ...
