"""Typed config values: coercion of TOML and environment strings, and the rules a value obeys.

`schema.py` declares the fields; this module turns a raw value into the field's type
(`coerce`) and checks it against the field's choices, bounds and pattern (`check_value`),
raising ValueError with what was expected; `build_section` turns that into one ConfigError
line naming the source and the key (never echoing a secret value).
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from decimal import Decimal, InvalidOperation
from typing import Any, get_type_hints
from urllib.parse import quote

import idna

from codelace_box.errors import ConfigError

URL = (r"(https?://\S+)?", "empty or an http:// or https:// URL")
# The box's own address: not the clients' base URL, which ends in /v1 (a portal under /v1 asks
# for its scripts at /v1/portal/assets/..., a 404; Stripe's return links go to /v1/billing/...)
PUBLIC_URL = (
    r"(?!.*/[vV]1/*$)(https?://\S+)?",
    "empty or an http:// or https:// URL, the box's own address without the /v1 its clients "
    "add (https://llm.example.com, not https://llm.example.com/v1)",
)
NOT_BLANK = (r".*\S.*", "a non-empty string")
# A SQLite file, not a folder: "data/" made a database file named `data` in the data folder's place
DB_FILE = (
    r".*\S.*(?<!/)",
    "a non-empty string naming a database file, not a folder (no / at the end)",
)
DATABASE_URL = (
    r"(sqlite:///\S(.*\S)?(?<!/)|postgres(ql)?://\S+)?",  # a SQLite path may have spaces
    "empty, sqlite:///PATH or postgresql://user:password@host:port/db",
)
# A browser's Origin: scheme://host[:port], no path (cors_allow_origins); "*" is every origin
ORIGIN = (
    r"\*|[a-z][a-z0-9+.-]*://(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:[1-9][0-9]{0,4})?",
    'origins like "https://chat.example.com" or "http://localhost:3000" (scheme://host[:port], '
    'no path, not even a trailing "/"), or "*" for every origin',
)
DOMAIN = (
    r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+",
    "domain names like example.com or bücher.de",
)


def expected(kind: Any) -> str:
    """What a value of this field type looks like, for error messages."""
    names = {int: "an integer", float: "a number", Decimal: "a number", bool: "true or false"}
    if kind is str:
        return "a string"
    if kind == list[str]:
        return "a list of strings"
    return names.get(kind, str(kind))


def coerce(kind: Any, value: Any, from_env: bool) -> Any:
    """Convert one raw value to the field's type; raises ValueError when it does not fit."""
    if from_env:
        value = _parse_env_value(kind, value)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind in (float, Decimal):
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            number = Decimal(str(value))
            as_float = float(number)  # 1e400 is a finite Decimal but an infinite float
            if number.is_finite() and math.isfinite(as_float):
                return number if kind is Decimal else as_float
    elif kind is str:
        if isinstance(value, str):
            return value
    elif kind == list[str] and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(expected(kind))


# Numbers as a TOML file writes them (ASCII digits, an underscore only between two digits:
# 10_485_760), not all int() takes (other digits than 0-9).
_DIGITS = r"[0-9]+(_[0-9]+)*"
_ENV_INT = re.compile(rf"[+-]?{_DIGITS}", re.ASCII)
_ENV_NUMBER = re.compile(
    rf"[+-]?({_DIGITS}(\.({_DIGITS})?)?|\.{_DIGITS})([eE][+-]?{_DIGITS})?", re.ASCII
)
_ENV_BOOLS = {"1": True, "true": True, "yes": True, "on": True}
_ENV_BOOLS |= {"0": False, "false": False, "no": False, "off": False}


def _parse_env_value(kind: Any, raw: str) -> Any:
    """An environment string as the field's type: bools, numbers, comma or TOML lists."""
    text = raw.strip()
    try:
        if kind is bool:
            return _ENV_BOOLS[text.lower()]
        if kind is int and _ENV_INT.fullmatch(text):
            return int(text.replace("_", ""))
        if kind in (float, Decimal) and _ENV_NUMBER.fullmatch(text):
            return Decimal(text.replace("_", ""))
        if kind in (int, float, Decimal):  # not "1__000", "NaN" or other digits than 0-9
            raise ValueError
        if kind == list[str] and text.startswith("["):
            return tomllib.loads(f"v = {text}")["v"]
    except (KeyError, ValueError, InvalidOperation, tomllib.TOMLDecodeError):
        raise ValueError(expected(kind)) from None
    if kind == list[str]:
        return [item.strip() for item in text.split(",") if item.strip()]
    return raw


def check_value(kind: Any, meta: Any, value: Any) -> None:
    """Apply a field's choices, bounds and pattern; ValueError says what was expected."""
    choices, pattern = meta.get("choices"), meta.get("pattern")
    low, high = meta.get("minimum"), meta.get("maximum")
    texts = value if isinstance(value, list) else [value]
    if any(isinstance(text, str) and "\x00" in text for text in texts):
        # no path, header, address or secret can hold one (TOML writes it as \u0000)
        raise ValueError(f"{expected(kind)} without a NUL character (\\u0000)")
    if choices and value not in choices:
        raise ValueError("one of " + ", ".join(repr(c) for c in choices))
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"of at least {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"{expected(kind)} {bounds}")
    if pattern is not None:
        items = value if isinstance(value, list) else [value]
        if not all(re.fullmatch(pattern[0], item) for item in items):
            raise ValueError(pattern[1])


def normalize(value: Any, meta: Any) -> Any:
    """Domain lists are compared lower-case, without a leading '@', an international one in
    its ASCII form (as addresses are); origins lower-case, without the scheme's default port
    (a browser's Origin header never names it); URLs with scheme and host in lower case."""
    if meta.get("pattern") is DOMAIN:
        return [_ascii_domain(item.strip().lower().lstrip("@")) for item in value]
    if meta.get("pattern") is ORIGIN:
        return [_origin(item) for item in value]
    if meta.get("pattern") in (URL, PUBLIC_URL) and isinstance(value, str):
        return lower_scheme_and_host(value)
    return value


def lower_scheme_and_host(url: str) -> str:
    """`HTTPS://API.Example.com/V1` as `https://api.example.com/V1`: a URL's scheme and host
    are case-insensitive (RFC 3986, 3.1 and 3.2.2), and the checks that follow expect them in
    lower case; a user, password, path, query and fragment are kept as written."""
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return url
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, hostport = rest[:cut].rpartition("@")
    return f"{scheme.lower()}{sep}{userinfo}{at}{hostport.lower()}{rest[cut:]}"


def ascii_host_url(url: str) -> str:
    """`url` with an international host in its ASCII form (`https://Bücher.example:8443/x` as
    `https://xn--bcher-kva.example:8443/x`), and the characters of its path beyond ASCII
    percent-encoded (`/crédit` as `/cr%C3%A9dit`): as a browser names them (its Origin header,
    the path it asks for) and as Stripe takes a return URL (it refuses one with characters
    beyond ASCII). Port, an ASCII host and the rest of the path as written."""
    scheme, sep, rest = url.partition("://")
    hostport, slash, path = rest.partition("/")
    if not sep:
        return url
    path = path if path.isascii() else quote(path, safe=_ASCII_PRINTABLE)
    if not (hostport.isascii() or hostport.startswith("[") or "@" in hostport):
        host, colon, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
        hostport = f"{_ascii_domain(host.lower())}{colon}{port}"
    return f"{scheme}{sep}{hostport}{slash}{path}"


_ASCII_PRINTABLE = "".join(map(chr, range(0x21, 0x7F)))  # kept as written in a URL's path


def _ascii_domain(domain: str) -> str:
    """`bücher.de` as xn--bcher-kva.de: IDNA 2008 with the UTS #46 mapping, as
    accounts/users.py normalises the domains of addresses; anything IDNA refuses unchanged
    (the pattern then refuses it)."""
    if domain.isascii():
        return domain
    try:
        return str(idna.encode(domain, uts46=True).decode("ascii"))
    except (idna.IDNAError, UnicodeError):
        return domain


def _origin(text: str) -> str:
    """An origin as a browser sends it: lower-case, no ":443" on https, no ":80" on http."""
    origin = text.strip().lower()
    for scheme, port in (("https://", ":443"), ("http://", ":80")):
        if origin.startswith(scheme) and origin.endswith(port):
            return origin[: -len(port)]
    return origin


def _shown(name: str, value: Any) -> str:
    # a database URL carries its password, a Slack webhook URL is its own credential, and
    # metrics.token is the scrapers' password; the box's public address is none of these
    hidden = any(word in name for word in ("secret", "password", "url")) and not name.endswith(
        "public_url"
    )
    hidden = hidden or bool(_USERINFO.search(str(value)))  # a URL's user:password, any key
    return "<hidden>" if hidden or name.endswith("token") else repr(value)


_USERINFO = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s@]*@", re.IGNORECASE)


def build_section(section_name: str, cls: type, raw: dict[str, Any], origin: dict[str, str]) -> Any:
    """One section's dataclass from raw values; `origin` says where each value came from."""
    return cls(
        **{
            name: read_value(section_name, cls, name, value, origin[name])
            for name, value in raw.items()
        }
    )


def read_value(section_name: str, cls: type, name: str, value: Any, where: str) -> Any:
    """One key's value as its field's type, checked; a ConfigError naming `where` otherwise."""
    hints = get_type_hints(cls)
    if name not in hints:
        known = ", ".join(hints)
        raise ConfigError(f"{where}: unknown key {section_name}.{name} (known: {known})")
    meta = next(f.metadata for f in dataclasses.fields(cls) if f.name == name)
    if where.startswith("env ") and not _is_utf8(value):  # never echoed: it may be a secret
        raise ConfigError(f"{where}: {section_name}.{name} must be UTF-8 text, and it is not")
    if where.startswith("env ") and _env_file_quoted(f"{section_name}.{name}", value):
        raise ConfigError(
            f"{where}: {section_name}.{name} must be given without the quotes around it (an "
            f"env file's quotes stay in the value), got {_shown(name, value)}"
        )
    try:
        coerced = normalize(coerce(hints[name], value, where.startswith("env ")), meta)
        check_value(hints[name], meta, coerced)
    except ValueError as exc:
        raise ConfigError(
            f"{where}: {section_name}.{name} must be {exc}, got {_shown(name, value)}"
        ) from None
    return coerced


def _is_utf8(value: str) -> bool:
    """Whether a variable's value was UTF-8: os.environ holds other bytes as lone surrogates
    (0xff as U+DCFF), which no key can use (a secret, a path, a URL, a name)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _env_file_quoted(dotted: str, value: str) -> bool:
    """A variable's whole value in matching quotes: docker's --env-file keeps them. The server
    secret is taken as it is (provider keys may already be stored with it, quotes and all)."""
    text = value.strip()
    quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'"
    return quoted and dotted != "server.secret_key"
