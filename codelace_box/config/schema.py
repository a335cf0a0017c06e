"""The configuration's shape: every section as a frozen dataclass, each key with its default,
its one-line doc and the rules its value follows (codelace.toml plus CODELACE_<SECTION>_<KEY>).
The sections about running the box (usage, backup, limits, log, metrics, portal, alerts) are
in ops_sections.py; a key's declaration (`opt`) in fields.py.

Every key is optional and has a built-in default. An unknown key, a wrong type or a bad value
raises `ConfigError` with one line naming the source (file or variable), the key and what was
expected. `render_example()` writes the commented file that `init` and `codelace.toml.example`
use, from the same field metadata, so the docs cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit

from codelace_box.config.fields import opt
from codelace_box.config.ops_sections import (
    AlertsConfig,
    BackupConfig,
    LimitsConfig,
    LogConfig,
    MetricsConfig,
    PortalConfig,
    UsageConfig,
)
from codelace_box.config.values import (
    DATABASE_URL,
    DB_FILE,
    DOMAIN,
    ORIGIN,
    PUBLIC_URL,
    URL,
    ascii_host_url,
)

# The longest sign-in rate-limit window; accounts/ratelimit keeps its events this long (a test
# holds the two equal: config sits below the features and imports none of them).
MAX_RATE_WINDOW_SEC = 86400
MAX_OTP_TTL_SEC = 86400  # a sign-in code lives a day at most
# Upper bounds of the gateway's knobs: past them a value is a slip (1e300, an extra zero), not
# a choice (a body is held in memory whole; a retry hits an upstream again; a timeout past an
# hour holds a request and its hold that long).
MAX_BODY_BYTES = 1073741824  # 1 GiB, of a request, an upstream answer or one stream event
MAX_RETRIES = 10
MAX_CONNECT_TIMEOUT_SEC = 300.0
MAX_READ_TIMEOUT_SEC = 3600.0
MAX_KEY_PROBE_SEC = 86400.0
# What a URL path keeps as it is in server.base_path (no quote, `;`, `<`, `>` or blank)
PATH_SAFE = "/%-._~!$&'()*+,=:@"


# No host name or address has whitespace (" 127.0.0.1" from an env file binds nothing).
HOST = (r"(\S+)", "a host name or address without spaces or line breaks")


@dataclass(frozen=True)
class ServerConfig:
    host: str = opt("127.0.0.1", "Address to listen on.", pattern=HOST)
    port: int = opt(8080, "Port to listen on.", minimum=1, maximum=65535)
    public_url: str = opt(
        "",
        "The address people reach the box at: Stripe's return links and the portal's connect "
        "snippets; empty: the address the browser reached (http://<host>:<port> elsewhere).",
        pattern=PUBLIC_URL,
    )
    workers: int = opt(1, "Server processes.", minimum=1, maximum=64)
    max_body_bytes: int = opt(
        10485760,
        "Larger inference request bodies get 413 (1024 to 1 GiB; other routes take 256 KiB).",
        minimum=1024,
        maximum=MAX_BODY_BYTES,
    )
    secret_key: str = opt(
        "", "Encrypts provider keys at rest; empty: generated into the data directory."
    )
    proxies_count: int = opt(
        0,
        "Reverse proxies in front of the box whose X-Forwarded-For is trusted for the client "
        "address (sign-in rate limits), and their X-Forwarded-Proto/-Host/-Port for the "
        "address the browser reached; 0 trusts none.",
        minimum=0,
        maximum=16,
    )
    cors_allow_origins: list[str] = opt(
        ["*"],
        "Web pages (origins) whose scripts may call the API with a key (/v1/*, the Bearer-key "
        'routes under /api/v1/): e.g. ["https://chat.example.com"]; ["*"] any; [] none (CORS off).',
        pattern=ORIGIN,
    )

    @property
    def listen_url(self) -> str:
        """The address the box listens on, `http://host:port` (an IPv6 address bracketed)."""
        ipv6 = ":" in self.host and not self.host.startswith("[")
        host = f"[{self.host}]" if ipv6 else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The public URL (an international host in its ASCII form: `ascii_host_url`), or the
        listen address when none is set."""
        return (ascii_host_url(self.public_url) or self.listen_url).rstrip("/")

    @property
    def serving_on(self) -> str:
        """serve's start line's address: the base URL, and the listen address beside it when
        the public URL is another (the address a reverse proxy passes requests to)."""
        base, listen = self.base_url, self.listen_url
        return base if base == listen else f"{base}, listening on {listen}"

    @property
    def base_path(self) -> str:
        """The path public_url serves the box under (`/gateway` behind a proxy that strips
        it), "" at the root or without public_url: the portal's links, calls and cookie go
        under it. What an HTML attribute or a cookie's Path cannot carry is percent-encoded."""
        path = urlsplit(self.base_url).path.rstrip("/") if self.public_url else ""
        return quote(path, safe=PATH_SAFE)


@dataclass(frozen=True)
class DatabaseConfig:
    path: str = opt(
        "data/codelace.db",
        "SQLite file (WAL); its folder is the data directory. A relative path is relative to "
        "the config file's folder (the working directory when there is no file).",
        pattern=DB_FILE,
    )
    url: str = opt(
        "",
        "sqlite:///PATH or postgresql://user:password@host:port/db (many boxes on one "
        "database; needs server.secret_key); empty: sqlite:/// with database.path. On "
        "PostgreSQL the box adds connect_timeout=5, keepalives=1, keepalives_idle=10, "
        "keepalives_interval=5, keepalives_count=3 and tcp_user_timeout=15000 unless the "
        "URL's query string sets them (e.g. ?connect_timeout=10).",
        pattern=DATABASE_URL,
    )

    @property
    def target(self) -> str:
        """What db.core.open_database opens: the URL, or the SQLite file of database.path."""
        return self.url or f"sqlite:///{self.path}"

    @property
    def is_postgres(self) -> bool:
        """True when the boxes share a PostgreSQL database."""
        return self.url.startswith(("postgresql://", "postgres://"))


@dataclass(frozen=True)
class AuthConfig:
    otp_ttl_sec: int = opt(
        600, "Lifetime of a sign-in code, in seconds.", minimum=1, maximum=MAX_OTP_TTL_SEC
    )
    signup: str = opt(
        "open",
        "Who may create an account: open, domains (allowed_email_domains) or invite.",
        choices=("open", "domains", "invite"),
    )
    allowed_email_domains: list[str] = opt(
        [], 'For signup = "domains", e.g. ["example.com"].', pattern=DOMAIN
    )
    otp_requests_per_email: int = opt(
        5, "Sign-in codes mailed to one address per rate_limit_window_sec; more get 429.", minimum=1
    )
    otp_requests_per_email_per_day: int = opt(
        20,
        "Sign-in codes mailed to one address per 24 hours, whatever the window (bounds the "
        "mail anyone can make the box send into one inbox).",
        minimum=1,
    )
    otp_codes_per_hour: int = opt(
        500,
        "Sign-in codes the box mails in any hour, for everyone (all its workers and every box "
        "on its database); more get 429 (bounds the SMTP quota anyone can spend; 0: no cap).",
        minimum=0,
    )
    otp_requests_per_address: int = opt(
        50, "Sign-in codes asked for from one client address per window.", minimum=1
    )
    otp_verifies_per_email: int = opt(
        10, "Code checks (sign-in attempts) for one address per window.", minimum=1
    )
    otp_verifies_per_address: int = opt(
        100, "Code checks from one client address per window.", minimum=1
    )
    otp_verifies_per_email_per_day: int = opt(
        50,
        "Code checks for one address per 24 hours, whatever the window (bounds the guesses "
        "at a 6-digit code).",
        minimum=1,
    )
    rate_limit_window_sec: int = opt(
        600,
        "Sliding window of the sign-in rate limits, in seconds.",
        minimum=1,
        maximum=MAX_RATE_WINDOW_SEC,
    )


@dataclass(frozen=True)
class EmailConfig:
    backend: str = opt(
        "console", "console prints codes to the server log; smtp sends mail.", ("console", "smtp")
    )
    smtp_host: str = opt("", "SMTP server host.", pattern=(HOST[0] + "?", HOST[1]))
    smtp_port: int = opt(
        587,
        "SMTP server port (465 when smtp_ssl is true and this is not set).",
        minimum=1,
        maximum=65535,
    )
    smtp_username: str = opt("", "SMTP login (empty: no login; trailing CR/LF dropped).")
    smtp_password: str = opt("", "SMTP password (trailing CR/LF dropped).")
    smtp_starttls: bool = opt(
        True,
        "Upgrade the SMTP connection with STARTTLS (off when smtp_ssl is true and this is "
        "not set).",
    )
    smtp_ssl: bool = opt(
        False,
        "Implicit TLS from the first byte (SMTPS, usually port 465); do not combine with "
        "smtp_starttls.",
    )
    smtp_timeout_sec: int = opt(
        30,
        "Longest a sign-in mail may take with the SMTP server, connecting included; past it "
        "the code request gets a 503.",
        minimum=1,
        maximum=300,
    )
    smtp_ca_file: str = opt(
        "",
        "PEM file of the CA (or the self-signed certificate) the SMTP server's certificate "
        "must chain to, instead of the system's CAs (relative: to this file's folder).",
    )
    from_address: str = opt(
        "codelace-box@localhost",
        "From address of sign-in mails.",
        pattern=(  # the mailbox name in ASCII, as a user's (accounts/users.py normalize_email)
            r"[\x21-\x3f\x41-\x7e]+@[^@\s\x00-\x1f\x7f]+"
            r"|[^\x00-\x1f\x7f<>]*<[\x21-\x3b\x3d\x3f\x41-\x7e]+@[^@\s\x00-\x1f\x7f<>]+>",
            "an email address, with a display name or not (no control characters); the part "
            "before the @ must be ASCII (letters such as é there need international mail, "
            "SMTPUTF8, which this box does not send); the domain may be international",
        ),
    )


# A Stripe key has no whitespace or quotes: one copied with its line break, or kept in its
# quotes by docker's --env-file, authenticates no call and verifies no webhook (every paid
# top-up unanswered), so it is refused at start.
STRIPE_SECRET = (
    r"[^\s\"']*",
    "a key without spaces, quotes or line breaks (copied with a trailing newline, or with "
    "the quotes of an env file?)",
)


CURRENCY = (r"[a-z]{3}", "a three-letter currency code in lower case, e.g. usd")


@dataclass(frozen=True)
class StripeConfig:
    secret_key: str = opt(
        "",
        "Stripe secret key; empty turns Stripe off (its endpoints answer 503).",
        pattern=STRIPE_SECRET,
    )
    webhook_secret: str = opt(
        "", "Signing secret of the Stripe webhook endpoint (whsec_...).", pattern=STRIPE_SECRET
    )
    api_base: str = opt(
        "", "Where the Stripe client sends API calls; empty: Stripe's own.", pattern=URL
    )
    min_topup_usd: Decimal = opt(Decimal("10"), "Smallest top-up, in USD.", minimum=0)
    trial_credit_usd: Decimal = opt(
        Decimal("1"), "Credit granted by the first card setup.", minimum=0
    )
    currency: str = opt("usd", "Currency of Checkout Sessions.", pattern=CURRENCY)
    par_currencies: list[str] = opt(
        [],
        "Currencies of earlier top-ups counted at par with currency (after changing it).",
        pattern=CURRENCY,
    )


@dataclass(frozen=True)
class GatewayConfig:
    connect_timeout_sec: float = opt(
        10.0,
        "Upstream connect timeout, in seconds (at most 300).",
        minimum=0.001,
        maximum=MAX_CONNECT_TIMEOUT_SEC,
    )
    read_timeout_sec: float = opt(
        600.0,
        "Upstream read timeout, between bytes, in seconds (at most 3600).",
        minimum=0.001,
        maximum=MAX_READ_TIMEOUT_SEC,
    )
    max_retries: int = opt(
        2,
        "Retries on another key before any byte reached the client (0 to 10).",
        minimum=0,
        maximum=MAX_RETRIES,
    )
    key_probe_sec: float = opt(
        300.0,
        "Seconds between probes of the provider keys flagged as failing; one that works returns "
        "(not a parked one: its calls were refused though its probe worked); at most 86400.",
        minimum=0.1,
        maximum=MAX_KEY_PROBE_SEC,
    )
    max_upstream_body_bytes: int = opt(
        67108864,
        "Largest non-streamed upstream answer (at most 1 GiB); past it the call fails (502), "
        "charged the provider's count.",
        minimum=1,
        maximum=MAX_BODY_BYTES,
    )
    max_sse_event_bytes: int = opt(
        4194304,
        "Largest single event of an upstream stream (at most 1 GiB); past it the call fails and "
        "costs nothing.",
        minimum=1,
        maximum=MAX_BODY_BYTES,
    )
    default_context_tokens: int = opt(
        200000,
        "Context window of a model without --context-tokens: what media of unknown size "
        "(an image or document by URL, audio) or a gateway's web search results reserve; a "
        "server tool's loop reserves it once more for each turn after the first.",
        minimum=1,
    )


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    stripe: StripeConfig = field(default_factory=StripeConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    usage: UsageConfig = field(default_factory=UsageConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    portal: PortalConfig = field(default_factory=PortalConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    source: str = "built-in defaults"

    @property
    def data_dir(self) -> Path:
        """The folder holding the database and generated secrets."""
        return Path(self.database.path).resolve().parent


SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "database": DatabaseConfig,
    "auth": AuthConfig,
    "email": EmailConfig,
    "stripe": StripeConfig,
    "gateway": GatewayConfig,
    "usage": UsageConfig,
    "limits": LimitsConfig,
    "log": LogConfig,
    "metrics": MetricsConfig,
    "portal": PortalConfig,
    "backup": BackupConfig,
    "alerts": AlertsConfig,
}
