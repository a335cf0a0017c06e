"""Fixtures of the limits suite: the gateway suite's fake OpenAI upstream and real boxes, and
helpers to make keys with limits the way an operator does (the CLI)."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import Box, BoxFactory, _fresh_fake, box_factory, fake  # noqa: F401 - fixtures

FLAT = "fake/flat"  # priced on its output alone: a request's cost is its output cap's


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:  # noqa: F811 - the fixture imported above
    """A box of the module's own with FLAT in its catalog (0 in, 10 USD per 1M tokens out)."""
    started = box_factory()
    started.cli("models", "set", FLAT, "--input-per-1m", "0", "--output-per-1m", "10",
                "--provider", "fake")  # fmt: skip
    started.until_served(FLAT)
    return started
