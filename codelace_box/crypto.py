"""Encryption at rest of provider keys with the server secret (Fernet: AES-128-CBC + HMAC)."""

from __future__ import annotations

import base64
import hashlib
import re

from cryptography.fernet import Fernet, InvalidToken

from codelace_box.errors import ConfigError
from codelace_box.logformat import escaped

_CONTEXT = b"codelace-box provider keys v1:"
# What upstream words may not carry raw (mask_in): ESC and the other C0 controls but tab and
# newline, DEL and the C1 controls (CSI), the bidirectional embeddings, overrides and isolates
_TERMINAL_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(_CONTEXT + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(secret_key: str, plaintext: str) -> bytes:
    """Encrypt a provider key for storage."""
    return _fernet(secret_key).encrypt(plaintext.encode())


def decrypt_secret(secret_key: str, token: bytes) -> str:
    """Decrypt a stored provider key; a wrong server secret is a configuration error."""
    try:
        return _fernet(secret_key).decrypt(bytes(token)).decode()
    except InvalidToken:
        raise ConfigError(
            "cannot decrypt provider keys: server.secret_key differs from the one they were "
            "stored with"
        ) from None


HINT_WHOLE = 16  # characters of a key from which its hint shows its first 3 and last 4
HINT_SHORT = 8  # from which (to HINT_WHOLE) its last 2; a shorter key's hint shows nothing


def mask_secret(plaintext: str) -> str:
    """A hint that identifies a key without revealing it, e.g. 'sk-…a1b2': its first 3 and
    last 4 characters from 16 on (real provider keys have 32 or more: a fifth of them at most),
    its last 2 from 8 to 15 (a quarter at most), nothing under 8."""
    if len(plaintext) >= HINT_WHOLE:
        return f"{plaintext[:3]}…{plaintext[-4:]}"
    return "…" + (plaintext[-2:] if len(plaintext) >= HINT_SHORT else "")


MIN_CUT_SECRET = 4  # characters of a secret's start, left at the end of a cut text, masked


# The operator's account at the provider, as OpenAI's errors name it ("Rate limit reached for
# gpt-4o in organization org-uOtiSEwvUnroadaOnJJquBEC on tokens per min"; a project's proj_...):
# `org-` or `proj_` and 24 base62 characters, a whole word (not `org-Llama-3B`, `proj_main`). At
# the very end of a text, which may have been cut inside one, the start of one: at least
# MIN_CUT_SECRET of its characters with a capital or a digit among them (not `proj_main`).
_ACCOUNT_ID_RE = re.compile(
    r"\b(?:org-|proj_)[A-Za-z0-9]{24}(?![A-Za-z0-9])"
    rf"|\b(?:org-|proj_)(?=[a-z]*[A-Z0-9])[A-Za-z0-9]{{{MIN_CUT_SECRET},23}}\Z"
)


def mask_in(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` replaced by its mask, and the start of it left
    at the end where the text was cut (an upstream's error message is cut before it is
    masked: 300 characters of a page, 500 of Anthropic's message, 500 of a failure reason);
    the operator's account ids at the provider masked too (its error words reach users), after
    the key (a key holding what reads as one is masked whole), its body without its prefix,
    its end and its body's runs too (`_body_masked_in`), and then anything else key-like
    (another key an upstream echoes: `mask_tokens`'s rule, the text not cut)."""
    masked = _ACCOUNT_ID_RE.sub(lambda m: mask_secret(m.group(0)), _key_masked_in(text, secret))
    return visible_controls(mask_keys(masked))


def visible_controls(text: str) -> str:
    """`text` with the characters that drive a terminal written as escapes (`\\x1b`), as the
    text log writes them: upstream words (perhaps echoing a client's) reach a client that may
    print them, and an ESC there repaints or erases its screen, a U+202E reverses the line."""
    if _TERMINAL_CONTROL_RE.search(text) is None:
        return text
    return _TERMINAL_CONTROL_RE.sub(lambda found: escaped(found.group()), text)


def _key_masked_in(text: str, secret: str) -> str:
    """`text` with `secret` masked, at the end of a cut text too (see `mask_in`)."""
    secret = secret.strip()
    if not secret:
        return text
    text = text.replace(secret, mask_secret(secret))
    for length in range(min(len(secret) - 1, len(text)), MIN_CUT_SECRET - 1, -1):
        if text.endswith(secret[:length]):
            return _body_masked_in(text[:-length], secret) + mask_secret(secret)
    return _body_masked_in(text, secret)


MIN_KEY_TAIL = 8  # characters of a key's end shown ("****Zq9XabcD"), masked
MIN_KEY_RUN = 12  # characters of a key's body in a row, masked: no word shares a random run
# Keys' prefixes, the longest a key starts with taken off to find its body: OpenAI's project,
# service-account and admin keys, Anthropic's, OpenRouter's, and the prefixes of _KEY
_BODY_PREFIXES = sorted(
    (
        *("sk-proj-", "sk-svcacct-", "sk-admin-", "sk-ant-api03-", "sk-ant-admin01-", "sk-or-v1-"),
        *(
            f"{stem}{sign}"
            for stem in ("sk", "pk", "rk", "cl", "gsk", "xai", "pplx", "fw", "ghp")
            for sign in "-_"
        ),
        *("rk_live_", "rk_test_", "whsec_"),
    ),
    key=len,
    reverse=True,
)


def _body_masked_in(text: str, secret: str) -> str:
    """`text` with the key's body (after its prefix, as some upstreams echo it), its end from
    MIN_KEY_TAIL characters and any MIN_KEY_RUN of its body in a row masked (on errors only)."""
    body = secret.removeprefix(next((p for p in _BODY_PREFIXES if secret.startswith(p)), ""))
    spans = _runs_in(text, body)
    if len(body) >= MIN_KEY_TAIL:
        spans += [(m.start(), m.end()) for m in re.finditer(re.escape(body), text)]
    masked: list[str] = []
    end = 0
    for start, stop in sorted(spans + _tails_in(text, secret)):
        if start > end or not masked:  # a new span (an overlapping or touching one grows it)
            masked += [text[end:start], mask_secret(secret)]
        end = max(end, stop)
    return "".join(masked) + text[end:]


def _tails_in(text: str, secret: str) -> list[tuple[int, int]]:
    """Where the key's end stands in `text` (MIN_KEY_TAIL characters or more, ending a token)."""
    if len(secret) <= MIN_KEY_TAIL:
        return []
    spans = []
    for m in re.finditer(re.escape(secret[-MIN_KEY_TAIL:]) + r"(?![A-Za-z0-9_\-])", text):
        start, left = m.start(), len(secret) - MIN_KEY_TAIL  # the tail grown back while it agrees
        while start and left and text[start - 1] == secret[left - 1]:
            start, left = start - 1, left - 1
        spans.append((start, m.end()))
    return spans


def _runs_in(text: str, body: str) -> list[tuple[int, int]]:
    """Where MIN_KEY_RUN characters of `body` in a row stand in `text` (overlapping)."""
    grams = {body[i : i + MIN_KEY_RUN] for i in range(len(body) - MIN_KEY_RUN + 1)}
    found = range(len(text) - MIN_KEY_RUN + 1)
    return [(i, i + MIN_KEY_RUN) for i in found if text[i : i + MIN_KEY_RUN] in grams]


# What looks like a credential in free text: the token after `Bearer`, any case (of 8 or more
# with a digit or a sign, or 20 or more: not the word in "Bearer authentication"); a known key
# prefix; a key of a known shape whatever its characters (AWS access key ids, `AKIA`/`ASIA` and
# 16 capitals or digits; Google's, `AIza` and 35; Hugging Face tokens, `hf_` and letters); or a
# long run of key characters (base62/base64url, as most providers' keys are), masked when it
# mixes letters with digits or both cases and does not read as a name (_reads_as_name).
_KEY = (
    r"(?:\b(?i:bearer)\s+(?P<bearer>(?=[A-Za-z]*[0-9_~+/\-]|[A-Za-z0-9._~+/\-]{20})"
    r"[A-Za-z0-9._~+/\-]{8,}=*))"
    r"|(?P<prefixed>\b(?:sk|pk|rk|cl|sess|key|api|ghp|gsk|xai|pplx|fw|AIza)[-_][A-Za-z0-9_\-]{6,})"
    r"|(?P<shaped>\b(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])|\bhf_[A-Za-z0-9]{20,}\b"
    r"|\bAIza[A-Za-z0-9_\-]{35}(?![A-Za-z0-9_\-]))"
    r"|(?:[A-Za-z0-9_\-]{24,})"
)
_KEY_RE = re.compile(_KEY)
# Standard base64 with `+` or `/` in it (AWS secret keys, `openssl rand -base64`), which the
# runs above cut into pieces too short to be seen: a whole run of its characters, 16 or more
# but its `+`/`/`, not touching a key character after it. A path or a URL's path is such a
# run too: it is a secret only where its pieces are as short as random text's (_random_run).
_TOKEN_RE = re.compile(
    r"(?P<b64>(?<![A-Za-z0-9+/])(?=[A-Za-z0-9+/]*[+/])(?=(?:[+/]*[A-Za-z0-9]){16})"
    r"[A-Za-z0-9+/]+={0,2}(?![A-Za-z0-9+/=_\-]))|" + _KEY
)
# a word with a vowel and no 5 consonants in a row (`instruct`; not `jogbvidz`, `mxdt`)
_VOWELS_RE = re.compile(r"(?=.*[aeiouy])(?!.*[b-df-hj-np-tv-xz]{5})[A-Z]?[a-z]+")
_INNER_NUMBER_RE = re.compile(r"[A-Za-z]\d+[A-Za-z]")  # `A22B`, `gpt4o`: one part in a name
_HEX_RE = re.compile(r"[0-9a-fA-F_\-]+")  # hex (and UUIDs): no name is made of a-f alone
_PIECE_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+|\d+")  # a word, a capitals' run, a number
# Fireworks' versions: `qwen2p5`, `glm4p5` (a word, then a version)
_VERSIONED_RE = re.compile(r"([a-z]{2,})\d+p\d+")


# Providers' ids: requests, messages, answers, calls; OpenAI's objects as its errors name them
# ("No such File object: file-...", fine-tuning jobs, threads, runs, batches, vector stores),
# the Responses API's items ("Item with id 'rs_...' not found"), Anthropic's server tool calls
_ID_PREFIXES = (
    *("req_", "req-", "msg_", "chatcmpl", "resp_", "call_", "toolu_", "gen-", "cmpl-"),
    *("file-", "ft-", "ftjob-", "thread_", "run_", "step_", "asst_", "batch_", "vs_"),
    *("rs_", "fc_", "srvtoolu_"),
)
# What names the token after it as a request's or trace's id ("request ID", "request_id:")
_NAMED_ID_RE = re.compile(r"(?i:\b(?:request|trace)[ _-]?id)[\s:=]{1,3}\Z")
# Keys whatever follows: OpenAI's, Anthropic's, OpenRouter's, DeepSeek's (`sk-`), Stripe's
# secret, restricted and webhook keys, this box's own
_KEY_PREFIXES = ("sk-", "sk_", "rk_live_", "rk_test_", "whsec_", "cl_")


# A part (between '-' and '_') of a name people write: a number (`20250929`), a short mix of 5
# characters at most (`4o`, `70B`, `8x22B`, `Qwen3`, `v0`), or words with at most two numbers
# among them (`sonnet`, `GGUF`, `DeepSeek`, `llama3`, `eastus2`, `gpt4oProd`): 3 letters a word
# or more, one word of 1 or 2 letters at most, each word of 4 letters or more pronounceable
# (a vowel, no 5 consonants in a row), a capitals' run of 4 at most beside small letters, and in
# a part of small letters no number between letters. A random token's parts are runs whose
# pieces (words, capitals' runs, numbers) are about 2 characters: seldom all read as words.
SHORT_MIX = 5
MAX_WORD = 12  # letters: a longer run is a random lowercase one (`pejpbdtajknhgofh`),
MAX_TITLE_WORD = 20  # but a capitalized word may be longer (`Authentication`)


def _reads_as_name(token: str) -> bool:
    """Whether a long token without a key's prefix is a name (a model id such as
    `claude-sonnet-4-5-20250929`, `Qwen3-235B-A22B-Thinking-2507`, `AcmeSupportAssistantV2`),
    not a secret: every part of it a name's part (above), one of them longer than a short mix,
    and at most one with a number between letters (`A22B`; not `s8id-t62n-o5fi`); a token of
    one part only when it is CamelCase (3 capitalized words or more). Groups of four
    (`RIXI-6J0H-25C6-...`), hex and random lowercase runs stay masked."""
    parts = [part for part in re.split(r"[-_]", token) if part]
    if not parts or not all(_name_part(part) for part in parts):
        return False
    words = [piece for part in parts for piece in _PIECE_RE.findall(part) if piece.isalpha()]
    if len(parts) == 1 and sum(1 for word in words if word.istitle() and len(word) > 2) < 3:
        return False
    if sum(1 for part in parts if _INNER_NUMBER_RE.search(part)) > 1:  # `s8id-t62n-o5fi`
        return False
    return any(len(part) > SHORT_MIX and not part.isdigit() for part in parts)


def _name_part(part: str) -> bool:
    """Whether a part (between '-' and '_') of a token reads as a name's (see above)."""
    pieces = _PIECE_RE.findall(part)
    words = [piece for piece in pieces if piece.isalpha()]
    if part.isdigit() or len(part) <= SHORT_MIX:
        return part.isupper() or all(map(_word_like, words))
    if versioned := _VERSIONED_RE.fullmatch(part):  # `qwen2p5`: a word, a version
        return _word_like(versioned.group(1))
    sizes = [len(word) for word in words]
    longest = max((len(word) for word in words if not word.istitle()), default=0)
    too_long = max(sizes, default=0) > MAX_TITLE_WORD or longest > MAX_WORD
    if not words or too_long or len(pieces) - len(words) > 2:
        return False
    if not part.isupper() and not all(map(_word_like, words)):
        return False
    if part.islower() and _INNER_NUMBER_RE.search(part):  # `llama3`, not `a72jrpys`
        return False
    short = sum(1 for size in sizes if size <= 2)
    return short <= 1 and sum(sizes) >= 3 * len(sizes)


def _word_like(piece: str) -> bool:
    """A piece of a part as words are: a capitals' run of 4 at most (`GGUF`, `SFT`) in a part
    not all capitals, a word of 4 letters or more pronounceable (_VOWELS_RE)."""
    if piece.isupper():
        return len(piece) <= 4
    return len(piece) < 4 or _VOWELS_RE.fullmatch(piece) is not None


def _random_run(run: str) -> bool:
    """Whether a run of base64 characters reads as random (a secret), not as a path such as
    `/api/v1/Models/GPT4o/Completions`: capitals and small letters both, and a part of it
    (between `+` and `/`) of 8 characters or more in 4 pieces or more (words, capitals' runs,
    numbers: `wJalrXUtnFEMI` is w-Jalr-XU-tn-FEMI) of 3 characters or less on average; or, in
    a run of at most 3 parts (random base64 has about one `+` or `/` in 32), all its pieces
    2.5 characters or less on average (random base64's are about 2, a path's words longer).
    In a path (4 parts or more, two of them lower-case words, no `+` or padding:
    `/openai/deployments/gpt4oProd/chat/completions`) only a part of 12 characters or more
    counts (a secret's pieces in it are still seen; a name's, gpt-4-o-Prod, are not).
    Random base64 of 16 bytes is missed about once in 100, of 32 about once in 3,000."""
    if not (any(c.isupper() for c in run) and any(c.islower() for c in run)):
        return False
    texts = [part for part in re.split(r"[+/=]+", run) if part]
    shortest = 12 if _reads_as_path(run, texts) else 8
    parts = [_PIECE_RE.findall(part) for part in texts]
    long_parts = [pieces for pieces in parts if _letters(pieces) >= shortest]
    if any(len(pieces) >= 4 and _letters(pieces) <= 3 * len(pieces) for pieces in long_parts):
        return True
    pieces = [piece for part in parts for piece in part]
    marked = "+" in run or run.endswith("=") or len(parts) <= 3  # base64's marks, not a path's
    return marked and _letters(pieces) <= 2.5 * len(pieces)


def _reads_as_path(run: str, parts: list[str]) -> bool:
    """A run of 4 parts or more, two of them lower-case words (`openai`, `models`), without
    base64's marks (`+`, `=` padding): a path (random base64 is almost never so)."""
    if len(parts) < 4 or "+" in run or run.endswith("="):
        return False
    return sum(1 for part in parts if len(part) >= 3 and part.isalpha() and part.islower()) >= 2


def _letters(pieces: list[str]) -> int:
    return sum(map(len, pieces))


def _mask_any(match: re.Match[str]) -> str:
    """A key-like token masked (_mask_token); a base64 run masked whole when it reads as random,
    else the key-like tokens in it masked (a path holding a key)."""
    if match.group("b64") is None:
        return _mask_token(match)
    run = match.group(0)
    return mask_secret(run) if _random_run(run) else _KEY_RE.sub(_mask_token, run)


def _mask_token(match: re.Match[str]) -> str:
    token = match.group(0)
    if match.group("bearer"):  # whatever follows `Bearer` is a credential
        return token[: match.start("bearer") - match.start()] + mask_secret(match["bearer"])
    return mask_secret(token) if _is_secret(match, token) else token


def _is_secret(match: re.Match[str], token: str) -> bool:
    """Whether a key-like token is a secret: AWS's, Google's and Hugging Face's by their shape,
    one of a key's prefix (`sk-`, `whsec_`, `cl_`, ...) whatever follows; not a provider's ids
    (`req_`, `chatcmpl-`, ...) nor a token of letters of one case (`context_length_exceeded`);
    else one mixing letters with digits or both cases, but for a name (_reads_as_name)."""
    if match.group("shaped"):
        return True
    if token.startswith(_ID_PREFIXES):
        return False
    if token.startswith(_KEY_PREFIXES):
        return True
    if _HEX_RE.fullmatch(token) and _NAMED_ID_RE.search(
        match.string, max(0, match.start() - 16), match.start()
    ):
        return False  # the id (hex, a UUID) a provider asks to quote ("the request ID ...")
    mixed = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
    cases = any(c.isupper() for c in token) and any(c.islower() for c in token)
    if not (mixed or cases):
        return False
    return (
        bool(match.group("prefixed")) or bool(_HEX_RE.fullmatch(token)) or not _reads_as_name(token)
    )


def mask_tokens(text: str, limit: int = 500) -> str:
    """Free text (an upstream's error message) with anything key-like masked, cut to `limit`
    characters."""
    masked = mask_keys(text)
    return masked if len(masked) <= limit else masked[: limit - 1] + "…"


def mask_keys(text: str) -> str:
    """Free text with anything key-like masked by where it stands (_PLACED_RE) and by its shape
    (the one rule: `mask_tokens`, `mask_in` and the openai adapter's `redact` use it), not cut."""
    return _TOKEN_RE.sub(_mask_any, _PLACED_RE.sub(_mask_placed, text))


# A secret by where it stands, whatever its shape, as upstreams and proxies echo URLs and
# headers in errors: a URL's password (`https://user:pass@host`), HTTP Basic credentials, and
# the value after `key=`, `token=`, `api_key=`, `x-api-key:`, `"password": "..."` (a value as
# Bearer's: 8 or more with a digit or a sign, or 20 or more: not `key=messages`; a quoted one
# whole). Passwords (and Basic's, whose last characters are the password's) get no hint.
_VALUE = r"(?=[A-Za-z]*[0-9._~+/%\-]|[A-Za-z0-9._~+/%\-]{20})[A-Za-z0-9._~+/%\-]{8,}=*"
# Basic credentials: standard base64 (of `user:password`), a whole run, not a model's name
_BASIC = r"(?=[A-Za-z]*[0-9+/=]|[A-Za-z0-9+/]{20})[A-Za-z0-9+/]{8,}={0,2}"
_PLACED_RE = re.compile(
    r"(?<=://)[^\s/?#@:]+:(?P<password>[^\s/?#@]+)@"
    rf"|(?<![\w-])(?i:basic)\s+(?P<basic>{_BASIC})(?![\w=-])"
    r"|(?<![A-Za-z0-9_\-])(?:(?i:(?:x-)?(?:goog-)?api[-_]?key)|(?P<hidden>(?i:(?:client[-_])?secret"
    rf"|passw(?:or)?d)))\"?\s*[=:]\s*(?:\"(?P<quoted>[^\"\\]+)\"|(?P<named>{_VALUE}))"
    rf"|(?<![A-Za-z0-9_\-])(?i:(?:access[-_])?token|key)=(?P<param>{_VALUE})"
)
_PLACES = ("password", "basic", "quoted", "named", "param")


def _mask_placed(match: re.Match[str]) -> str:
    name = next(group for group in _PLACES if match.group(group))
    start, end = match.start(name) - match.start(), match.end(name) - match.start()
    token, secret = match.group(0), match.group(name)
    hidden = name in ("password", "basic") or match.group("hidden")
    return token[:start] + ("…" if hidden else mask_secret(secret)) + token[end:]
