"""The CAs the box trusts for its own HTTPS requests beside the calls (a provider key's check,
the alert webhook): the calls' own (aiohttp's default, OpenSSL's: the system's store and
SSL_CERT_FILE/SSL_CERT_DIR), not httpx's (certifi's bundle only), so a host behind a private
CA that the calls reach is reached by these too."""

from __future__ import annotations

import ssl


def calls_tls() -> ssl.SSLContext:
    """A client TLS context verifying against the CAs the calls trust."""
    return ssl.create_default_context()
