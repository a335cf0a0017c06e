"""One TLS context for the box's own httpx clients (the alert webhook, the key probe), made at
first use and reused: httpx makes one per client it builds (loading the CA bundle: 20-270 ms of
the event loop's CPU), and these clients are built per try (every 30 s while a webhook is down,
on every probe)."""

from __future__ import annotations

import functools
import ssl


@functools.cache
def client_tls() -> ssl.SSLContext:
    """The process's context to verify servers with, made as httpx makes its default one
    (certifi's CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR when set)."""
    import httpx  # only here: serve starts without it

    return httpx.create_ssl_context()
