"""Anthropic code execution containers stay with the user they were answered to.

Where the operator allowed code execution (or a tool version that runs in a container) for an
`anthropic` provider, Anthropic answers with a `container` (`{"id", "expires_at"}`), and a
later request may name it (`"container": "container_..."` or `{"id": ...}`) to work on in the
files earlier code wrote. Every box user shares the operator's Anthropic account, so a user
who learned another's container id would open that container. The settlement records the
container an answer named under the call's user (db/containers.py); a Messages request (or a
count_tokens one) naming a container any other user was given, or one the box never answered
(a user cannot create one but through the box), is a 400 before it reaches Anthropic. A
request naming no container costs nothing more than a dict lookup.
"""

from __future__ import annotations

from typing import Any

from codelace_box.db.containers import container_owner, storable_id
from codelace_box.db.offload import run_db_work
from codelace_box.errors import InvalidRequest

NOT_GIVEN = (
    "container: names a code execution container the box did not give you (another user's, "
    "expired or unknown); leave out `container` (or send only its skills) to start a new one"
)


def named_container(body: dict[str, Any]) -> str | None:
    """The container id a Messages body names: `container` as a string, or its `id` when an
    object (an object of only `skills` names none, and Anthropic makes a new one)."""
    value = body.get("container")
    if type(value) is dict:
        value = value.get("id")
    if value is None:
        return None
    return value if type(value) is str else repr(value)  # not a string: no container of ours


async def refuse_foreign_container(body: dict[str, Any], user_id: int) -> None:
    """A 400 when the body names a container that was not answered to `user_id`."""
    named = named_container(body)
    if named is None:
        return
    if not storable_id(named) or await run_db_work(container_owner, named) != user_id:
        raise InvalidRequest(NOT_GIVEN, code="invalid_request", param="container")
