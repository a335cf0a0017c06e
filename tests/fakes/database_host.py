"""A database server's host as the box reaches it over the network: a TCP relay on 127.0.0.1 in
front of a real PostgreSQL server, which the test can make stop answering.

`fall_silent()` stands for a host that is gone while the network still takes its packets (a
host or a route lost, a firewall that drops): the sessions through it end (the box's sessions
on it are lost, as after a failover) and every new connection is accepted and then never
answered, neither refused nor closed, so a client without a connect timeout waits for it.
(An open session whose host drops its packets cannot be made on loopback without root: the
kernel acknowledges for the relay; there libpq's tcp_user_timeout and keepalives act.
`fall_silent(open_sessions_end_after=S)` stands for those: the open sessions are no longer
relayed (what the box sends on them is taken, never answered) and end S seconds later, as
those timeouts would end them.) `answer_again()` relays again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Sequence

CHUNK = 65536


class DatabaseHost:
    """The relay: `port` stands for the database host; it forwards to 127.0.0.1:`target`."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._silent = False
        self._relayed: list[socket.socket] = []
        self._unanswered: list[socket.socket] = []
        self._held: set[socket.socket] = set()  # open sessions no longer relayed, ending soon
        self._closed = False

    def start(self) -> DatabaseHost:
        threading.Thread(target=self._accept, name="database-host", daemon=True).start()
        return self

    def fall_silent(self, open_sessions_end_after: float | None = None) -> None:
        """End the sessions through the host (or hold them unanswered, and end them that many
        seconds later); accept new connections and never answer."""
        with self._lock:
            self._silent = True
            relayed, self._relayed = self._relayed, []
            if open_sessions_end_after is not None:
                self._held.update(relayed)
        if open_sessions_end_after is None:
            _close_all(relayed)
            return
        ending = threading.Timer(open_sessions_end_after, self._end_held, args=(relayed,))
        ending.daemon = True
        ending.start()

    def _end_held(self, sockets: Sequence[socket.socket]) -> None:
        with self._lock:
            self._held.difference_update(sockets)
        _close_all(sockets)

    def answer_again(self) -> None:
        """Relay new connections again (those accepted while silent are closed)."""
        with self._lock:
            self._silent = False
            unanswered, self._unanswered = self._unanswered, []
        _close_all(unanswered)

    @property
    def unanswered(self) -> int:
        """How many connections were accepted while silent and are still held unanswered."""
        with self._lock:
            return len(self._unanswered)

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            held = [*self._relayed, *self._unanswered, *self._held]
            self._relayed, self._unanswered, self._held = [], [], set()
        _close_all([self._listener, *held])

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # stopped
                return
            with self._lock:
                if self._closed:
                    client.close()
                    return
                if self._silent:
                    self._unanswered.append(client)
                    continue
            self._relay(client)

    def _relay(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(("127.0.0.1", self.target), timeout=10)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        with self._lock:
            self._relayed += [client, server]
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy bytes one way (none while the session is held) until either side ends; then
        end both."""
        try:
            while data := source.recv(CHUNK):
                if source not in self._held:
                    sink.sendall(data)
        except OSError:
            pass
        _close_all([source, sink])


def _close_all(sockets: Sequence[socket.socket]) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
