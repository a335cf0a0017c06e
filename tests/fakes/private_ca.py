"""A private CA the way the box's calls trust one: in OpenSSL's certificate folder (the system's
store, which an operator adds a private CA to, stood in for by SSL_CERT_DIR), beside an
SSL_CERT_FILE of the public CAs only (certifi's bundle, all httpx trusts by default)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import certifi
import pytest

from codelace_box.tls_client import client_tls
from tests.fakes.smtp_server import make_self_signed_cert


def serve_under_a_private_ca(folder: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """The server side's TLS context for 127.0.0.1, its CA trusted as described above."""
    cert, key = make_self_signed_cert(folder)
    trusted = folder / "certs"
    trusted.mkdir()
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(cert)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (trusted / f"{subject_hash}.0").write_bytes(cert.read_bytes())
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    monkeypatch.setenv("SSL_CERT_DIR", str(trusted))
    client_tls.cache_clear()  # the process's context, made anew from these (as at a start)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return server
