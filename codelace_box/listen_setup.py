"""What the serving process asks of its machine before it serves: the listen address free and
ours to bind (one clear line otherwise), and file descriptors for every connection."""

from __future__ import annotations

import contextlib
import errno
import socket

from codelace_box.errors import ConfigError, NotReady


def listen_host(host: str) -> str:
    """The address to bind for server.host: an IPv6 address in brackets (`[::1]`, as a URL
    writes it, which base_url also takes) without them."""
    bracketed = host.startswith("[") and host.endswith("]") and ":" in host
    return host[1:-1] if bracketed else host


def check_address(host: str, port: int) -> None:
    """Fail with one clear line when the listen address is taken or not ours to bind."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = _what_to_do(exc.errno, port)
        refused = ConfigError if exc.errno == errno.EACCES else NotReady  # taken, not yet up
        raise refused(f"cannot listen on {host}:{port}: {reason}{hint}") from None


def _what_to_do(number: int | None, port: int) -> str:
    """What the operator can do about a bind refused with this errno ('' when nothing sure)."""
    if number == errno.EADDRINUSE:
        return (
            " (another program listens there, another codelace-box serve?: stop it, or listen "
            "on another port with --port or server.port)"
        )
    if number == errno.EADDRNOTAVAIL:
        return (
            " (no network interface of this machine has that address: set server.host or "
            "--host to one it has, such as 127.0.0.1)"
        )
    if number == errno.EACCES and port < 1024:
        return (
            " (a port below 1024 needs root: serve on a higher one, such as the default 8080, "
            "behind the reverse proxy)"
        )
    return ""


MOST_OPEN_FILES = 1 << 20  # the soft limit asked for when the hard one is unlimited


def raise_open_files_limit() -> None:
    """Every client connection is a file descriptor: at the usual soft limit of 1024 (systemd's
    default) a few hundred idle connections left the box unable to accept one more or to open
    an upstream connection. The soft limit is raised to the hard one, as nginx's
    worker_rlimit_nofile and Go's runtime do; the workers inherit it."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MOST_OPEN_FILES if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
