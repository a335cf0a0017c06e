"""Loopback ports for servers a test starts, safe when pytest-xdist runs tests in parallel.

A port the OS hands out for `bind(0)` comes from its ephemeral range, the same range every
outgoing connection and every fake upstream (which binds port 0 itself) draws from; and a
server started with it binds it only a second later, in a child process. Under xdist several
workers do that at once, so two of them could be given one port in that gap. Ports here come
from below the ephemeral range instead, each xdist worker from a slice of its own, never the same
one twice in a process, and only after a bind shows the port is free right now.
"""

from __future__ import annotations

import os
import random
import socket
import sys
import time
from pathlib import Path

POOL_START = 20_000  # above the well-known and registered ports test machines commonly run
DEFAULT_EPHEMERAL_START = 32_768 if sys.platform.startswith("linux") else 49_152
MIN_SLICE = 200  # fewer ports per worker than this: use the OS's choice instead


def ephemeral_start() -> int:
    """The first port of the OS's ephemeral range (Linux tells; elsewhere its usual default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_START


def worker_slice() -> range:
    """The ports of this process: its xdist worker's share of the pool (all of it alone)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    count = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), 1)
    index = int(worker) if worker.isdigit() else 0
    size = (ephemeral_start() - POOL_START) // count
    return range(POOL_START + index * size, POOL_START + (index + 1) * size)


class PortPool:
    """Hands out the ports of one slice in turn, from a random start (so that two test runs
    on one machine, e.g. two checkouts, seldom walk the same ports at the same time)."""

    def __init__(self, ports: range) -> None:
        self.ports = ports
        self.next = random.randrange(len(ports)) if len(ports) >= MIN_SLICE else 0

    def take(self) -> int:
        if len(self.ports) < MIN_SLICE:
            return os_port()
        for _ in range(len(self.ports)):
            port = self.ports[self.next]
            self.next = (self.next + 1) % len(self.ports)
            if bindable(port):
                return port
        raise RuntimeError(f"no free loopback port in {self.ports}")


def bindable(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port right now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def os_port() -> int:
    """A port the OS picks (from its ephemeral range)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_pool: PortPool | None = None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, handed out to no other test of this run."""
    global _pool  # noqa: PLW0603 - one pool per process, made on first use (after xdist set env)
    if _pool is None:
        _pool = PortPool(worker_slice())
    return _pool.take()


def unread_bytes(port: int) -> int | None:
    """What the kernel holds for the server on 127.0.0.1:port that it has not taken yet: the
    connections waiting to be accepted, plus the bytes of its connections it has not read
    (/proc/net/tcp; None where there is none). 0: the server has what the clients sent."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    waiting = 0
    for line in lines:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            waiting += int(fields[4].split(":")[1], 16)  # a listener's: its accept queue
    return waiting


def until_read(port: int, wait: float = 30) -> None:
    """Wait until the server on 127.0.0.1:port has accepted every connection made to it and
    read what they sent (a fixed pause let a loaded machine's server have none of it yet)."""
    deadline = time.monotonic() + wait
    while unread_bytes(port):
        assert time.monotonic() < deadline, f"the server on {port} has not read its connections"
        time.sleep(0.01)
