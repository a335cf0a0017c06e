"""Fixtures of the CORS suite: the gateway suite's fake OpenAI upstream and real boxes."""

from __future__ import annotations

from tests.gateway.conftest import _fresh_fake, box_factory, fake  # noqa: F401 - fixtures
