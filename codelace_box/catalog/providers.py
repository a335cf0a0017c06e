"""The upstream providers of the catalog and their keys (encrypted at rest, shown by hint)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from peewee import IntegrityError

from codelace_box.config import Config, ensure_secret_key, existing_secret_key
from codelace_box.config.secret import secret_key_path
from codelace_box.config.values import lower_scheme_and_host
from codelace_box.crypto import decrypt_secret, encrypt_secret, mask_secret, mask_tokens
from codelace_box.db.core import write_transaction
from codelace_box.db.models import CatalogModel, Provider, ProviderKey
from codelace_box.errors import ConfigError, Conflict, InvalidRequest, NotFound
from codelace_box.providers import PROVIDER_KINDS, adapter_for
from codelace_box.providers.billed_fields import BILLED_FIELDS, field_named, is_billed_field

MAX_PROVIDER_KEY_CHARS = 4096  # the longest keys seen (JWTs) are about 1,000
# what comes before the host: a user and perhaps a password (never quoted in a message)
_USERINFO_RE = re.compile(r"^([^/?#]*//)?[^/?#]*@")
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")  # fullmatch


def add_provider(
    name: str,
    kind: str,
    secret_key: str,
    key: str,
    base_url: str = "",
    allowed_fields: Iterable[str] = (),
    responses_api: bool = False,
) -> Provider:
    """Register an upstream provider with its first key (and the billed fields it allows;
    `responses_api`: it serves OpenAI's Responses API itself)."""
    if not _NAME_RE.fullmatch(name):
        raise InvalidRequest(  # a key pasted into the name's field is not quoted back
            f"provider name {mask_tokens(name)!r}: use lower-case letters, digits, '-', '_', '.' "
            "(at most 63; start with a letter or digit)"
        )
    _check_kind(kind)
    base_url = lower_scheme_and_host(base_url)
    _check_base_url(base_url)
    fields = _checked_fields(allowed_fields)
    _check_responses_api(kind, responses_api)
    try:
        with write_transaction():
            provider = Provider.create(
                name=name,
                kind=kind,
                base_url=base_url.rstrip("/"),
                allowed_fields=json.dumps(fields),
                responses_api=responses_api,
            )
            _store_key(provider.id, secret_key, key)
    except IntegrityError:
        raise Conflict(f"a provider named {name} already exists", code="provider_exists") from None
    return provider


def update_provider(
    name: str,
    *,
    base_url: str | None = None,
    kind: str | None = None,
    allow: Iterable[str] = (),
    disallow: Iterable[str] = (),
    responses_api: bool | None = None,
) -> Provider:
    """Change what is given of a provider: its base URL ('' for the kind's own), its kind, and
    the billed fields it allows (added by `allow`, removed by `disallow`)."""
    provider = get_provider(name)
    if kind is not None:
        _check_kind(kind)
        provider.kind = kind
    if base_url is not None:
        base_url = lower_scheme_and_host(base_url)
        _check_base_url(base_url)
        provider.base_url = base_url.rstrip("/")
    if responses_api is not None:
        provider.responses_api = responses_api
    _check_responses_api(provider.kind, bool(provider.responses_api))
    allow, disallow = _checked_fields(allow), _checked_fields(disallow)
    both = sorted(set(allow) & set(disallow))
    if both:
        raise InvalidRequest(f"both allowed and not allowed: {', '.join(both)}")
    fields = (set(allowed_fields(provider)) | set(allow)) - set(disallow)
    provider.allowed_fields = json.dumps(sorted(fields))
    with write_transaction():
        provider.save()
    return provider


def allowed_fields(provider: Provider) -> list[str]:
    """The billed fields a provider allows, by name."""
    try:
        stored = json.loads(provider.allowed_fields or "[]")
    except ValueError:
        return []
    return sorted(str(f) for f in stored) if isinstance(stored, list) else []


def _check_responses_api(kind: str, responses_api: bool) -> None:
    if responses_api and kind != "openai":
        raise InvalidRequest("--responses-api is for openai providers (OpenAI's own API)")


def _check_kind(kind: str) -> None:
    if kind not in PROVIDER_KINDS:
        raise InvalidRequest(
            f"provider kind must be one of {', '.join(PROVIDER_KINDS)}, got {kind!r}"
        )


def _check_base_url(base_url: str) -> None:
    if not base_url:
        return
    if not base_url.startswith(("http://", "https://")):
        raise InvalidRequest(
            f"base URL must start with http:// or https://, got {_shown_url(base_url)!r}"
        )
    try:
        parts = urlsplit(base_url)
        usable = bool(parts.hostname) and parts.port != 0 and base_url.isprintable()
        usable = usable and not re.search(r"\s", base_url)
    except ValueError:  # a port out of range, a malformed [IPv6] host
        usable = False
    if usable and ("@" in parts.netloc or "?" in base_url or "#" in base_url):
        # not echoed: a password in it would reach the terminal, and its shell's scrollback
        raise InvalidRequest(
            "base URL must have no user or password (give the key with --key), no query and "
            "no fragment: paths such as /chat/completions are appended to it"
        )
    if not usable:
        raise InvalidRequest(
            "base URL must name a host (and a port from 1 to 65535, if any), with no spaces "
            f"or control characters: got {_shown_url(base_url)!r}"
        )


def _shown_url(base_url: str) -> str:
    """A refused base URL as its message may quote it: without what may be a credential (a
    user and password before the host, a query or a fragment, where keys are put too, and
    anything key-like: a provider key pasted into the URL's field, or after the URL)."""
    shown = _USERINFO_RE.sub(r"\1…@", base_url)
    cut = min((i for i in (shown.find("?"), shown.find("#")) if i >= 0), default=-1)
    return mask_tokens(shown if cut < 0 else shown[:cut] + "…")


def _checked_fields(names: Iterable[str]) -> list[str]:
    fields = sorted({field_named(n.strip()) for n in names})
    unknown = [f for f in fields if not is_billed_field(f)]
    if unknown:
        raise InvalidRequest(
            f"cannot allow {', '.join(repr(mask_tokens(f)) for f in unknown)}: the fields that "
            f"need the operator's permission are {', '.join(BILLED_FIELDS)} (other fields pass "
            "anyway)"
        )
    return fields


def _store_key(provider_id: int, secret_key: str, key: str) -> ProviderKey:
    key = key.strip()
    if not key:
        raise InvalidRequest("a provider key must not be empty")
    if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
        raise InvalidRequest(  # an HTTP header could never carry it; the key is not echoed
            "a provider key is printable ASCII without spaces, and this one is not "
            "(a masked hint such as 'sk-…abcd' is not the key itself)"
        )
    if len(key) > MAX_PROVIDER_KEY_CHARS:  # sent in a header with every request
        raise InvalidRequest(
            f"a provider key has at most {MAX_PROVIDER_KEY_CHARS:,} characters; this one has "
            f"{len(key):,} (a file pasted instead of the key?)"
        )
    return ProviderKey.create(
        provider=provider_id,
        key_encrypted=encrypt_secret(secret_key, key),
        key_hint=mask_secret(key),
    )


def get_provider(name: str) -> Provider:
    """A provider by name; NotFound if there is none."""
    provider = Provider.get_or_none(Provider.name == name)
    if provider is None:
        raise NotFound(f"no provider named {name}", code="provider_not_found")
    return provider


def add_provider_key(name: str, secret_key: str, key: str) -> ProviderKey:
    """Add another key to a provider's rotation."""
    provider = get_provider(name)
    with write_transaction():
        _refuse_twice(provider, secret_key, key.strip())
        return _store_key(provider.id, secret_key, key)


def _refuse_twice(provider: Provider, secret_key: str, key: str) -> None:
    """Refuse a key the provider holds already: two rows of one key show the same hint, and
    rotating or removing one (a leaked key) left the other in rotation. Another provider may
    hold the same key (one account behind two base URLs); a stored key this secret cannot
    decrypt is not compared."""
    for stored in provider_keys(provider.id):
        try:
            same = decrypt_secret(secret_key, stored.key_encrypted) == key
        except ConfigError:
            continue
        if same:
            state = "" if stored.enabled else " (off: key-enable, x in the dashboard, puts it back)"
            raise Conflict(
                f"this key is already key {stored.id} ({stored.key_hint}) of {provider.name}"
                f"{state}: nothing was added",
                code="provider_key_exists",
            )


def set_provider_enabled(name: str, enabled: bool) -> Provider:
    """Enable or disable a provider (its models answer 503 while disabled)."""
    provider = get_provider(name)
    with write_transaction():
        Provider.update(enabled=enabled).where(Provider.id == provider.id).execute()
    provider.enabled = enabled
    return provider


def set_key_enabled(key_id: int, enabled: bool) -> ProviderKey:
    """Take a provider key out of rotation, or put it back (clearing its failing flag)."""
    key = ProviderKey.get_or_none(ProviderKey.id == key_id)
    if key is None:
        raise NotFound(f"no provider key with id {key_id}", code="provider_key_not_found")
    with write_transaction():
        update = {"enabled": enabled} | (
            {"failing": False, "parked": False, "failure_reason": ""} if enabled else {}
        )
        ProviderKey.update(**update).where(ProviderKey.id == key_id).execute()
    return ProviderKey.get_by_id(key_id)


def provider_key(name: str, key_id: int) -> ProviderKey:
    """A key of the named provider; NotFound if the provider has no key with that id."""
    provider = get_provider(name)
    key = ProviderKey.get_or_none(ProviderKey.id == key_id, ProviderKey.provider == provider.id)
    if key is None:
        raise NotFound(f"{name} has no key with id {key_id}", code="provider_key_not_found")
    return key


def remove_provider_key(name: str, key_id: int) -> ProviderKey:
    """Delete a key of a provider (gone from the rotation and from the database)."""
    key = provider_key(name, key_id)
    with write_transaction():
        ProviderKey.delete().where(ProviderKey.id == key.id).execute()
    return key


def remove_provider(name: str) -> Provider:
    """Delete a provider and its keys; refused (Conflict, naming them) while models use it."""
    provider = get_provider(name)
    with write_transaction():
        used = [
            m.id
            for m in CatalogModel.select(CatalogModel.id)
            .where(CatalogModel.provider == provider.id)
            .order_by(CatalogModel.id)
        ]
        if used:
            raise Conflict(
                f"provider {name} is used by {len(used)} model(s): {', '.join(used)} "
                "(remove them or move them to another provider first)",
                code="provider_in_use",
            )
        ProviderKey.delete().where(ProviderKey.provider == provider.id).execute()
        Provider.delete().where(Provider.id == provider.id).execute()
    return provider


def list_providers() -> list[Provider]:
    """Every provider, by name."""
    return list(Provider.select().order_by(Provider.name))


def provider_keys(provider_id: int) -> list[ProviderKey]:
    """A provider's keys (encrypted; show only `key_hint`)."""
    return list(
        ProviderKey.select().where(ProviderKey.provider == provider_id).order_by(ProviderKey.id)
    )


def has_working_key(keys: Iterable[ProviderKey]) -> bool:
    """Whether any of a provider's keys is in rotation (enabled and not failing): without one,
    its models answer 503."""
    return any(key.enabled and not key.failing for key in keys)


def base_url_warning(provider: Provider) -> str | None:
    """A warning for an anthropic provider's base URL ending in /v1: the box appends
    /v1/messages (as Anthropic's SDK and Claude Code do), so every call would be a 404 at
    /v1/v1/messages. A warning, not a refusal: a proxy may serve Anthropic's API under a /v1."""
    base = provider.base_url.rstrip("/")
    if provider.kind != "anthropic" or not base.endswith("/v1"):
        return None
    return (
        "the box appends /v1/messages to an anthropic provider's base URL, so calls will go "
        f"to {_shown_url(base)}/v1/messages: leave /v1 out ({_shown_url(base[:-3])})"
    )


def default_base_url(kind: str) -> str:
    """The base URL used for a provider kind when none is set."""
    return adapter_for(kind).default_base_url


def server_secret(config: Config) -> str:
    """The server secret that encrypts provider keys (`ensure_secret_key`), never one generated
    over keys stored with another: a database moved without its data folder's `secret_key`
    file would get a secret none of its keys open with (every model a 503), and keys added
    then would need it while the others need the lost one. The database must be open."""
    if existing_secret_key(config) is None and ProviderKey.select().exists():
        raise ConfigError(
            f"the database holds provider keys stored with a server secret that is not here "
            f"(no server.secret_key, {_secret_file_state(config)}): "
            "put the file back or set server.secret_key to its value; if it is lost for "
            "good, set a new server.secret_key and add the provider keys again"
        )
    return ensure_secret_key(config)


def _secret_file_state(config: Config) -> str:
    """What is wrong with the generated secret's file: missing, emptied, or no file."""
    path = secret_key_path(config)
    if path.is_file():
        return f"{path} is empty"
    if path.exists():
        return f"{path} is no regular file"
    return f"no {path}: moved without that file?"
