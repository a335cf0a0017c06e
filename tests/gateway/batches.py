"""What the tests of the group commit's batches of steps share (test_batch_*.py): a funded
account, a priced settlement, a batch's outcomes."""

from __future__ import annotations

import asyncio
from typing import Any

from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import post_entry
from codelace_box.gateway.metering import Settlement


def priced_settlement(
    request_id: str, user_id: int, output_tokens: int, key_id: int | None = None
) -> Settlement:
    """A call priced at 1 nano-USD per output token; 0 tokens: abandoned, costs nothing."""
    return Settlement(
        request_id=request_id, user_id=user_id, key_id=key_id, model="acme/m1", provider="acme",
        upstream_model="m1", input_per_1m_nanos=0, output_per_1m_nanos=1_000_000,
        input_tokens=0, output_tokens=output_tokens, status="ok" if output_tokens else "abandoned",
        stream=False, charge=output_tokens > 0,
    )  # fmt: skip


def funded_user(email: str, nanos: int) -> int:
    """A new account credited `nanos`; its id."""
    user = create_user(email)
    post_entry(user.id, nanos, "admin", "seed", f"seed-{email}")
    return int(user.id)


async def outcomes(futures: list[asyncio.Future[Any]]) -> list[Any]:
    """Each write's value, or its error."""
    return list(await asyncio.gather(*futures, return_exceptions=True))
