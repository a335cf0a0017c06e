"""One TLS context for the box's own HTTPS requests beside the calls (the alert webhook, a
provider key's check), made at first use and reused. It trusts the calls' CAs (aiohttp's
default, OpenSSL's: the system's store and SSL_CERT_FILE/SSL_CERT_DIR), not httpx's (certifi's
bundle only), so a host behind a private CA that the calls reach is reached by these too; and
one a process, as httpx made one per client it built (loading the CA store: 20-270 ms of the
event loop's CPU), and these clients are built per try (every 30 s while a webhook is down, on
every probe)."""

from __future__ import annotations

import functools
import ssl


@functools.cache
def client_tls() -> ssl.SSLContext:
    """The process's client context, verifying against the CAs the calls trust."""
    return ssl.create_default_context()
