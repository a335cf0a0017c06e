"""Fixtures of the observability suite: the gateway suite's fake upstream and real boxes."""

from __future__ import annotations

from tests.gateway.conftest import _fresh_fake, box_factory, fake

__all__ = ["_fresh_fake", "box_factory", "fake"]
