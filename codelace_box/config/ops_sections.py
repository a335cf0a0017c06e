"""The configuration's sections about running the box rather than serving a call: usage
retention, scheduled backups, account limits, logs, metrics, the portal and alerts."""

from __future__ import annotations

from dataclasses import dataclass

from codelace_box.config.fields import opt
from codelace_box.config.values import NOT_BLANK, URL

# A header value has no line break and HTTP strips the spaces around it: a token copied with
# its newline would never match what a scraper sends (every scrape a 401), so it is refused.
BEARER_TOKEN = (
    r"(\S([^\r\n]*\S)?)?",
    "a token without leading or trailing spaces or line breaks (copied with a trailing newline?)",
)


@dataclass(frozen=True)
class UsageConfig:
    retention_days: int = opt(
        0,
        "Usage rows older than this many days are deleted by serve, in small batches (totals "
        "and ledger stay); 0 keeps them forever.",
        minimum=0,
        maximum=36500,
    )


@dataclass(frozen=True)
class BackupConfig:
    every_hours: int = opt(
        0,
        "Hours between the online backups serve takes; 0: none (must be 0 on PostgreSQL).",
        minimum=0,
        maximum=8760,
    )
    keep: int = opt(7, "Scheduled backups kept; older ones are removed.", minimum=1, maximum=10000)
    dir: str = opt(
        "data/backups",
        "Folder of the scheduled backups; relative: to the config file's folder.",
        pattern=NOT_BLANK,
    )


@dataclass(frozen=True)
class LimitsConfig:
    rpm: int = opt(
        0,
        "Inference requests per minute an account may make unless `users limits` set its own; "
        "0: unlimited.",
        minimum=0,
        maximum=1000000,
    )
    max_concurrent: int = opt(
        0,
        "Inference requests an account may have in flight at once unless `users limits` set "
        "its own; 0: unlimited.",
        minimum=0,
        maximum=100000,
    )


@dataclass(frozen=True)
class LogConfig:
    format: str = opt(
        "text",
        "Log lines of serve: text (time, level, message) or json (one object per line, for a "
        "log shipper).",
        choices=("text", "json"),
    )
    level: str = opt(
        "info",
        "Lowest level written: debug, info, warning or error (any case).",
        pattern=(r"(?i)debug|info|warning|error", "debug, info, warning or error"),
    )


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = opt(True, "Serve Prometheus metrics at GET /metrics.")
    token: str = opt(
        "",
        "Bearer token /metrics requires; empty: /metrics answers only loopback clients (the "
        "address after server.proxies_count).",
        pattern=BEARER_TOKEN,
    )


@dataclass(frozen=True)
class PortalConfig:
    enabled: bool = opt(
        True, "Serve the portal (the web page for users) at /; false: the JSON API only."
    )
    session_hours: int = opt(
        168, "How long a portal sign-in lasts, in hours.", minimum=1, maximum=8760
    )


@dataclass(frozen=True)
class AlertsConfig:
    webhook_url: str = opt(
        "",
        "Slack-compatible incoming webhook (JSON POST) for operator alerts; empty: none.",
        pattern=URL,
    )
    error_rate: float = opt(
        0.2,
        'Share of upstream errors over 5 minutes that raises an alert (then "recovered" below it).',
        minimum=0.01,
        maximum=1,
    )
