"""The priced model ids of the catalog: which provider and upstream model serve an id, at what
prices per 1M tokens, with what output cap and context window, and whether it is enabled."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from codelace_box.catalog.providers import get_provider
from codelace_box.db.core import MAX_SQLITE_INTEGER, utcnow, write_transaction
from codelace_box.db.models import CatalogModel, ModelAlias, Provider
from codelace_box.db.text import composed
from codelace_box.errors import InvalidRequest, NotFound
from codelace_box.money import PLAIN_USD_TAKEN, AmountTooLarge, is_plain_usd, usd_to_nanos

MAX_PRICE_PER_1M_NANOS = 1_000_000 * 1_000_000_000  # far above any real price; fits SQLite
_MODEL_ID_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}/\S{1,200}")  # fullmatch
_UPSTREAM_RE = re.compile(r"\S{1,200}")  # fullmatch


def parse_price(value: Decimal | str | float | int, what: str) -> int:
    """A USD-per-1M-tokens price to nano-USD; InvalidRequest when it is not a price (text in
    plain decimals only, as the CLI takes it)."""
    if not is_plain_usd(value):
        raise InvalidRequest(f"{what} must be {PLAIN_USD_TAKEN}, got {str(value).strip()[:40]!r}")
    try:
        nanos = usd_to_nanos(value)
    except AmountTooLarge:
        raise InvalidRequest(f"{what} must be between 0 and 1,000,000 USD per 1M tokens") from None
    except ValueError as exc:  # a number, but finer than the nano-dollar: says so (short:
        if str(exc).startswith("more precise"):  # the dashboard's form shows one line)
            raise InvalidRequest(f"{what} is more precise than a nano-dollar: {value!r}") from None
        raise InvalidRequest(f"{what} must be a non-negative USD amount, got {value!r}") from None
    if nanos < 0:
        raise InvalidRequest(f"{what} must not be negative, got {value!r}")
    if nanos > MAX_PRICE_PER_1M_NANOS:
        raise InvalidRequest(f"{what} must be at most 1,000,000 USD per 1M tokens")
    return nanos


@dataclass(frozen=True)
class CachePrices:
    """Prompt-cache prices in USD per 1M tokens as given; None: not given."""

    read_per_1m: Decimal | str | None = None
    write_per_1m: Decimal | str | None = None
    write_1h_per_1m: Decimal | str | None = None


_CACHE_COLUMNS = (
    ("read_per_1m", "cache_read_per_1m_nanos", "cache read price"),
    ("write_per_1m", "cache_write_per_1m_nanos", "cache write price"),
    ("write_1h_per_1m", "cache_write_1h_per_1m_nanos", "1-hour cache write price"),
)


def _cache_fields(prices: CachePrices, current: CatalogModel | None) -> dict[str, int | None]:
    """The cache price columns to store: the given ones parsed ("none": NULL again, so the
    price follows the input price, or the write price, once more), the others kept."""
    fields: dict[str, int | None] = {}
    for name, column, what in _CACHE_COLUMNS:
        given = getattr(prices, name)
        if isinstance(given, str) and given.strip().lower() == "none":
            fields[column] = None
        elif given is not None:
            fields[column] = parse_price(given, what)
        else:
            fields[column] = getattr(current, column) if current is not None else None
    return fields


def _check_token_count(tokens: int | None, what: str) -> None:
    if tokens is not None and tokens < 1:
        raise InvalidRequest(f"{what} must be at least 1")
    if tokens is not None and tokens > MAX_SQLITE_INTEGER:
        raise InvalidRequest(f"{what} must be at most {MAX_SQLITE_INTEGER}")


class Clear(enum.Enum):
    """`models set ... --max-output-tokens none`: unset the value (None keeps it)."""

    CLEAR = "clear"


CLEAR = Clear.CLEAR


def _setting(given: int | Clear | None, current: int | None) -> int | None:
    """A token setting to store: the given one, None when cleared, else the current one."""
    if given is CLEAR:
        return None
    return current if given is None else given


def set_model(
    model_id: str,
    input_per_1m: Decimal | str | float | None,
    output_per_1m: Decimal | str | float | None,
    *,
    provider: str | None = None,
    upstream_model: str | None = None,
    max_output_tokens: int | Clear | None = None,
    context_tokens: int | Clear | None = None,
    keep_unset: bool = False,
    cache_prices: CachePrices | None = None,
) -> CatalogModel:
    """Add a model id to the catalog, or change its prices, provider or upstream name. With
    `keep_unset` (`models set ID --input-per-1m X`) what is not given is kept; a price of None
    keeps the current one (a new id needs both); CLEAR unsets an output cap or context window.
    Cache prices never set are the input price when billed. An id is kept composed (NFC)."""
    model_id = composed(model_id)
    _check_names(model_id, provider, upstream_model)
    prefix, rest = model_id.split("/", 1)
    existing = find_model(model_id)  # one kept in another form is changed, not doubled
    current = existing if keep_unset else None
    input_nanos, output_nanos = _prices(model_id, input_per_1m, output_per_1m, current)
    if current is not None:
        provider = provider or current.provider.name
        upstream_model = upstream_model or current.upstream_model
    owner = get_provider(provider or prefix)
    max_output, context = _token_limits(max_output_tokens, context_tokens, current)
    fields = {
        "provider": owner.id,
        "upstream_model": upstream_model or rest,
        "input_per_1m_nanos": input_nanos,
        "output_per_1m_nanos": output_nanos,
        "max_output_tokens": max_output,
        "context_tokens": context,
        "updated_at": utcnow(),
        **_cache_fields(cache_prices or CachePrices(), current),
    }
    return _kept(model_id if existing is None else str(existing.id), fields)


def _kept(model_id: str, fields: Mapping[str, object]) -> CatalogModel:
    """Write a catalog row, new or changed, and read it back."""
    with write_transaction():
        if CatalogModel.get_or_none(CatalogModel.id == model_id) is None:
            CatalogModel.create(id=model_id, **fields)
        else:
            CatalogModel.update(**fields).where(CatalogModel.id == model_id).execute()
    return CatalogModel.get_by_id(model_id)


def _token_limits(
    max_output_tokens: int | Clear | None,
    context_tokens: int | Clear | None,
    current: CatalogModel | None,
) -> tuple[int | None, int | None]:
    """The output cap and context window to store: given, cleared, or the current ones."""
    kept = (current.max_output_tokens, current.context_tokens) if current else (None, None)
    max_output, context = _setting(max_output_tokens, kept[0]), _setting(context_tokens, kept[1])
    _check_token_count(max_output, "max output tokens")
    _check_token_count(context, "context tokens")
    return max_output, context


def _check_names(model_id: str, provider: str | None, upstream_model: str | None) -> None:
    """Refuse a model id, provider name or upstream name `set_model` cannot store."""
    for given in (model_id, provider, upstream_model):
        if given:  # bytes no UTF-8 (argv's lone surrogates): the CLI's "is not UTF-8 text"
            given.encode("utf-8")
    if not (_MODEL_ID_RE.fullmatch(model_id) and model_id.isprintable()):
        raise InvalidRequest(
            "model id must look like provider/model (a provider's name: lower-case, at most 63; "
            f"then a model name of at most 200 characters, no spaces), got {model_id!r}"
        )
    for option, given in (("provider", provider), ("upstream-model", upstream_model)):
        if given == "":  # a script's unset variable: leave the option out to keep it
            raise InvalidRequest(f"--{option} must not be empty: leave it out to keep the model's")
    if upstream_model and not (
        _UPSTREAM_RE.fullmatch(upstream_model) and upstream_model.isprintable()
    ):
        raise InvalidRequest(
            "upstream model name must have no spaces (at most 200 characters), "
            f"got {upstream_model!r}"
        )


def _prices(
    model_id: str,
    input_per_1m: Decimal | str | float | None,
    output_per_1m: Decimal | str | float | None,
    current: CatalogModel | None,
) -> tuple[int, int]:
    """The input and output prices to store, nano-USD: the given ones, else the current ones."""
    if current is None and (input_per_1m is None or output_per_1m is None):
        raise InvalidRequest(
            f"{model_id} is not in the catalog yet: a new model needs both its input and its "
            "output price (--input-per-1m and --output-per-1m)"
        )
    if current is not None:
        input_per_1m = usd_of(current.input_per_1m_nanos) if input_per_1m is None else input_per_1m
        output_per_1m = (
            usd_of(current.output_per_1m_nanos) if output_per_1m is None else output_per_1m
        )
    assert input_per_1m is not None and output_per_1m is not None  # checked above
    return parse_price(input_per_1m, "input price"), parse_price(output_per_1m, "output price")


def usd_of(nanos: int) -> Decimal:
    """nano-USD as an exact USD amount."""
    return Decimal(nanos) / Decimal(1_000_000_000)


def remove_model(model_id: str) -> list[str]:
    """Delete a model id from the catalog (its usage rows stay); the aliases removed with it."""
    model = get_model(model_id)
    with write_transaction():
        aliases = [
            a.name
            for a in ModelAlias.select(ModelAlias.name)
            .where(ModelAlias.model == model.id)
            .order_by(ModelAlias.name)
        ]
        ModelAlias.delete().where(ModelAlias.model == model.id).execute()
        CatalogModel.delete().where(CatalogModel.id == model.id).execute()
    return aliases


def find_model(model_id: str) -> CatalogModel | None:
    """A catalog entry, or None; the id in either Unicode form (one kept decomposed, before
    ids were composed, is found as typed and composed alike)."""
    found = CatalogModel.get_or_none(CatalogModel.id == model_id)
    if found is not None or model_id.isascii():
        return found
    wanted = composed(model_id)
    prefix = wanted.split("/", 1)[0] + "/"  # ASCII (_MODEL_ID_RE): no other form of it
    same = CatalogModel.select().where(CatalogModel.id.startswith(prefix))
    return next((m for m in same if composed(str(m.id)) == wanted), None)


def get_model(model_id: str) -> CatalogModel:
    """A catalog entry; NotFound if there is none."""
    model = find_model(model_id)
    if model is None:
        raise NotFound(f"no model {model_id} in the catalog", code="model_not_found")
    return model


def set_model_enabled(model_id: str, enabled: bool) -> CatalogModel:
    """Enable or disable a model id (disabled ids answer 404)."""
    model = get_model(model_id)
    with write_transaction():
        CatalogModel.update(enabled=enabled, updated_at=utcnow()).where(
            CatalogModel.id == model.id
        ).execute()
    model.enabled = enabled
    return model


def list_models(enabled_only: bool = False) -> list[CatalogModel]:
    """The catalog, by id, with each model's provider loaded."""
    query = CatalogModel.select(CatalogModel, Provider).join(Provider).order_by(CatalogModel.id)
    if enabled_only:
        query = query.where(CatalogModel.enabled == True)  # noqa: E712
    return list(query)
