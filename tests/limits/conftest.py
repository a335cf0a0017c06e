"""Fixtures of the limits suite: the gateway suite's fake OpenAI upstream and real boxes, and
helpers to make keys with limits the way an operator does (the CLI)."""

from __future__ import annotations

from tests.gateway.conftest import _fresh_fake, box_factory, fake  # noqa: F401 - fixtures
