"""Sanic's config object, with the settings Sanic reads on every request found without a miss.

Sanic keeps its settings as the items of a dict and reads them as attributes through
`Config.__getattr__`, which Python calls only after the plain attribute lookup failed and
built its AttributeError: about 2 us each time, and Sanic's HTTP/1.1 protocol reads two of
them on every request (`REQUEST_BUFFER_SIZE` as data arrives, `KEEP_ALIVE` in the request
head). Here those two are properties reading the same items, so a value set later (the box's
settings, `CODELACE_SANIC_*`) is the one read.
"""

from __future__ import annotations

from typing import Any

from sanic.config import Config


class SanicConfig(Config):
    """Sanic's Config; the settings read per request are properties over its items. (Sanic's
    `update` sets a property through its setter, then runs what follows a change, as for any
    setting.)"""

    @property
    def REQUEST_BUFFER_SIZE(self) -> Any:
        return self["REQUEST_BUFFER_SIZE"]

    @REQUEST_BUFFER_SIZE.setter
    def REQUEST_BUFFER_SIZE(self, value: Any) -> None:
        dict.__setitem__(self, "REQUEST_BUFFER_SIZE", value)

    @property
    def KEEP_ALIVE(self) -> Any:
        return self["KEEP_ALIVE"]

    @KEEP_ALIVE.setter
    def KEEP_ALIVE(self, value: Any) -> None:
        dict.__setitem__(self, "KEEP_ALIVE", value)
