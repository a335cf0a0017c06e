"""The ports tests hand their servers: never the OS's ephemeral ones, never one twice, and each
xdist worker's from a range no other worker draws from."""

from __future__ import annotations

import socket

import pytest

from tests.ports import PortPool, ephemeral_start, free_port, worker_slice


def test_ports_are_below_the_ephemeral_range_and_never_repeat() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(port < ephemeral_start() for port in ports)


def test_each_worker_draws_from_its_own_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    slices = []
    for worker in range(4):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{worker}")
        slices.append(set(worker_slice()))
    assert all(len(ports) > 1000 for ports in slices)
    assert sum(len(ports) for ports in slices) == len(set().union(*slices))
    assert max(max(ports) for ports in slices) < ephemeral_start()


def test_a_port_someone_listens_on_is_skipped() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pool = PortPool(range(port, port + 300))
        pool.next = 0
        assert pool.take() != port
