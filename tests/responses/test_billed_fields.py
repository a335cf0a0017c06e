"""Money safety on /v1/responses: the fields that make a provider bill beyond the token prices
are refused with the chat path's 400 `field_not_allowed` naming them, and, as on every route,
pass to the upstream once the operator allowed them for its provider (translated to chat, or
in the body a `--responses-api` provider gets)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes.openai_upstream import Reply
from tests.gateway.test_billed_fields import BILLED as CHAT_BILLED
from tests.responses.conftest import OPENAI_KEY, OPENAI_MODEL, PRICES, ResponsesBox

BODY_FIELDS = ("models", "route", "plugins", "provider", "transforms", "web_search_options")
BILLED: dict[str, Any] = {name: CHAT_BILLED[name] for name in BODY_FIELDS}
ALLOWED = [arg for name in BILLED for arg in ("--allow-field", name)]


@pytest.fixture(scope="module")
def routers(rbox: ResponsesBox) -> tuple[str, str]:
    """A chat provider and a native Responses one that allow every billed body field."""
    base = rbox.openai_fake.base_url
    rbox.cli("providers", "add", "router", "--kind", "openai", "--base-url", base,
             "--key", OPENAI_KEY, *ALLOWED)  # fmt: skip
    rbox.cli("providers", "add", "nrouter", "--kind", "openai", "--base-url", base,
             "--key", OPENAI_KEY, "--responses-api", *ALLOWED)  # fmt: skip
    for model in ("router/m", "nrouter/m"):
        rbox.cli("models", "set", model, "--input-per-1m", PRICES["in"],
                 "--output-per-1m", PRICES["out"])  # fmt: skip
    rbox.until_served("router/m", "nrouter/m")
    return "router/m", "nrouter/m"


@pytest.mark.parametrize("name", list(BILLED))
def test_a_billed_field_is_refused_unless_allowed_and_then_reaches_the_upstream(
    fresh: ResponsesBox, routers: tuple[str, str], name: str
) -> None:
    email, key = fresh.new_key()
    before = fresh.balance_nanos(email)
    client = fresh.openai(key)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=OPENAI_MODEL, input="Hi", extra_body={name: BILLED[name]})
    assert caught.value.code == "field_not_allowed"
    assert caught.value.body["param"] == name  # type: ignore[index]
    assert fresh.openai_fake.requests == [] and fresh.balance_nanos(email) == before
    chat, native = routers
    for model in (chat, native):
        fresh.openai_fake.push(Reply(content="Routed."))
        done = client.responses.create(model=model, input="Hi", extra_body={name: BILLED[name]})
        assert done.output_text == "Routed."
        assert fresh.openai_fake.requests[-1].body[name] == BILLED[name], model


def test_a_key_limited_to_some_models_may_not_ask_for_fallbacks_on_responses_either(
    fresh: ResponsesBox, routers: tuple[str, str]
) -> None:
    """Where `models` is allowed, a key limited to some models still gets the 403 it gets on
    chat: the provider would answer with models outside its allow-list."""
    email, login = fresh.new_key()
    made = fresh.http(login).post(
        "/api/v1/auth/key", json={"name": "limited", "allowed_models": list(routers)}
    )
    key = made.json()["full_key"]
    for model in routers:
        body = {"model": model, "input": "Hi", "models": BILLED["models"]}
        refused = fresh.http(key).post("/v1/responses", json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "model_not_allowed"
    assert fresh.openai_fake.requests == [] and fresh.usage_rows(email) == []
