"""count_tokens, the model list in Anthropic's shape, aliases, cache prices in the catalog,
public pricing and /customer/usage."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.fakes.anthropic_upstream import Reply, count_tokens_of
from tests.messages.conftest import (
    ALIAS,
    MODEL,
    NEEDS_SDK,
    OPENAI_ALIAS,
    OPENAI_MODEL,
    PROVIDER_KEY,
    UPSTREAM_MODEL,
    MessagesBox,
)
from tests.support import TLS, run_cli, sdk_http

pytestmark = NEEDS_SDK

MESSAGES = [{"role": "user", "content": "How many tokens is this?"}]


def test_count_tokens_is_asked_of_the_anthropic_upstream_and_never_charged(
    fresh: MessagesBox,
) -> None:
    email, key = fresh.new_key()
    before = fresh.balance_nanos(email)
    counted = fresh.client(key).messages.count_tokens(model=ALIAS, messages=MESSAGES)
    assert counted.input_tokens == count_tokens_of({"messages": MESSAGES})
    sent = fresh.fake.requests[-1]
    assert sent.body["model"] == UPSTREAM_MODEL and sent.headers["x-api-key"] == PROVIDER_KEY
    assert fresh.balance_nanos(email) == before
    assert fresh.usage_rows(email) == []


def test_count_tokens_of_an_openai_model_is_estimated(fresh: MessagesBox) -> None:
    email, key = fresh.new_key()
    counted = fresh.client(key).messages.count_tokens(model=OPENAI_ALIAS, messages=MESSAGES)
    assert 0 < counted.input_tokens < 100
    assert fresh.fake.requests == [] and fresh.openai_fake.requests == []
    assert fresh.usage_rows(email) == []


def test_count_tokens_asked_of_the_upstream_counts_in_the_accounts_rpm(fresh: MessagesBox) -> None:
    """Each count an `anthropic` upstream is asked for spends the operator's provider key: the
    account's requests per minute hold for it as for a completion (a 429 in Anthropic's
    shape); counts the box estimates call no one and pass."""
    email, key = fresh.new_key(credit_usd="0")
    fresh.cli("users", "limits", email, "--rpm", "2")
    url = f"{fresh.server.base_url}/v1/messages/count_tokens"
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    asked = [httpx.post(url, json={"model": ALIAS, "messages": MESSAGES}, headers=headers,
                        timeout=10, verify=TLS) for _ in range(3)]  # fmt: skip
    assert [a.status_code for a in asked] == [200, 200, 429]
    assert asked[2].json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(asked[2].headers["retry-after"]) <= 60
    assert len(fresh.fake.requests) == 2
    estimated = httpx.post(url, json={"model": OPENAI_ALIAS, "messages": MESSAGES},
                           headers=headers, timeout=10, verify=TLS)  # fmt: skip
    assert estimated.status_code == 200 and estimated.json()["input_tokens"] > 0
    assert fresh.usage_rows(email) == []


def test_count_tokens_needs_a_key_and_answers_errors_in_anthropics_shape(
    fresh: MessagesBox,
) -> None:
    import anthropic

    url = f"{fresh.server.base_url}/v1/messages/count_tokens"
    answer = httpx.post(url, json={"model": MODEL, "messages": MESSAGES}, timeout=10, verify=TLS)
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "authentication_error"
    _, key = fresh.new_key()
    with pytest.raises(anthropic.NotFoundError):
        fresh.client(key).messages.count_tokens(model="nobody/none", messages=MESSAGES)
    assert fresh.fake.requests == []


def test_count_tokens_keeps_to_the_keys_allowed_models(fresh: MessagesBox) -> None:
    """A key limited to some models gets 403 permission_error for another one on
    count_tokens too (the operator's upstream is not asked), as on /v1/messages."""
    import anthropic

    email, _ = fresh.new_key()
    key = fresh.cli("keys", "create", email, "--models", OPENAI_MODEL).strip().splitlines()[0]
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        fresh.client(key).messages.count_tokens(model=ALIAS, messages=MESSAGES)
    assert refused.value.status_code == 403
    assert refused.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    assert fresh.fake.requests == []
    counted = fresh.client(key).messages.count_tokens(model=OPENAI_ALIAS, messages=MESSAGES)
    assert counted.input_tokens > 0


def test_the_model_list_has_anthropics_shape_with_an_anthropic_version_header(
    box: MessagesBox,
) -> None:
    _, key = box.new_key()
    page = box.client(key).models.list()
    ids = [model.id for model in page.data]
    assert MODEL in ids and ALIAS in ids and OPENAI_ALIAS in ids
    raw = httpx.get(
        f"{box.server.base_url}/v1/models", headers={"anthropic-version": "2023-06-01"}, verify=TLS
    )
    body = raw.json()
    assert body["has_more"] is False and body["first_id"] == body["data"][0]["id"]
    assert body["last_id"] == body["data"][-1]["id"]
    assert {"type", "id", "display_name", "created_at"} <= set(body["data"][0])
    plain = httpx.get(f"{box.server.base_url}/v1/models", verify=TLS).json()
    assert plain["object"] == "list" and plain["data"][0]["object"] == "model"


def test_models_list_shows_cache_prices_and_aliases(box: MessagesBox) -> None:
    rows = {row["id"]: row for row in json.loads(box.cli("models", "list", "--json"))}
    assert rows[MODEL]["cache_read_per_1m"] == 0.3
    assert rows[MODEL]["cache_write_per_1m"] == 3.75
    assert rows[MODEL]["cache_write_1h_per_1m"] == 6
    assert ALIAS in rows[MODEL]["aliases"] and OPENAI_ALIAS in rows[OPENAI_MODEL]["aliases"]
    assert rows[OPENAI_MODEL]["cache_write_per_1m"] == 0.25  # unset: the input price
    text = box.cli("models", "list")
    assert ALIAS in text and "CACHE_READ_PER_1M" in text


def test_public_pricing_has_the_cache_prices(box: MessagesBox) -> None:
    prices = httpx.get(f"{box.server.base_url}/api/v1/public/pricing", verify=TLS).json()
    sonnet = next(p for p in prices if p["model"] == MODEL)
    assert (sonnet["cache_read_per_1m"], sonnet["cache_write_per_1m"]) == (0.3, 3.75)
    # 1-hour cache writes (Claude Code asks for them) are billed at their own price: a user
    # must be able to read it beside the others
    assert sonnet["cache_write_1h_per_1m"] == 6
    gpt = next(p for p in prices if p["model"] == OPENAI_MODEL)  # unset: the write price
    assert (gpt["cache_write_per_1m"], gpt["cache_write_1h_per_1m"]) == (0.25, 0.25)


def test_customer_usage_shows_cache_tokens(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    fresh.fake.script(Reply(cache_read_input_tokens=300, cache_creation_input_tokens=20))
    fresh.client(key).messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    usage = httpx.get(f"{fresh.server.base_url}/api/v1/customer/usage",
                      headers={"authorization": f"Bearer {key}"}, verify=TLS).json()  # fmt: skip
    recent = usage["recent_requests"][0]
    assert (recent["cache_read_tokens"], recent["cache_write_tokens"]) == (300, 20)
    assert recent["input_tokens"] == 345


def test_an_alias_routes_on_chat_completions_too_and_can_be_removed(box: MessagesBox) -> None:
    _, key = box.new_key()
    box.cli("models", "alias", "my-short-name", OPENAI_MODEL)
    time.sleep(1.1)  # the routing snapshot is reloaded within a second
    url = f"{box.server.base_url}/v1/chat/completions"
    body = {"model": "my-short-name", "messages": [{"role": "user", "content": "hi"}]}
    head = {"authorization": f"Bearer {key}"}
    answer = httpx.post(url, json=body, headers=head, timeout=30, verify=TLS)
    assert answer.status_code == 200 and answer.json()["model"] == OPENAI_MODEL
    box.cli("models", "disable", OPENAI_MODEL)
    time.sleep(1.1)  # the routing snapshot is reloaded within a second
    answer = httpx.post(url, json=body, headers=head, timeout=30, verify=TLS)
    assert answer.status_code == 404  # the name the client sent, and what it stands for
    assert f"my-short-name (an alias of {OPENAI_MODEL})" in answer.json()["error"]["message"]
    box.cli("models", "enable", OPENAI_MODEL)
    box.cli("models", "unalias", "my-short-name")
    time.sleep(1.1)  # the routing snapshot is reloaded within a second
    answer = httpx.post(url, json=body, headers=head, timeout=30, verify=TLS)
    assert answer.status_code == 400


def test_an_alias_with_a_slash_or_to_an_unknown_model_is_refused(box: MessagesBox) -> None:
    assert run_cli(box.config, "models", "alias", "a/b", MODEL).returncode != 0
    assert run_cli(box.config, "models", "alias", "fine-name", "none/such").returncode != 0


def test_count_tokens_is_estimated_when_the_upstream_has_no_such_route(
    box: MessagesBox,
) -> None:
    """An Anthropic-compatible server without count_tokens (here: one that 404s every path
    but its own) gets the box's estimate instead of an error."""
    no_count = f"http://127.0.0.1:{box.openai_fake.port}"
    box.cli("providers", "add", "anth-compat", "--kind", "anthropic", "--base-url", no_count,
            "--key", "sk-ant-compat-0009")  # fmt: skip
    box.cli("models", "set", "anth-compat/claude", "--input-per-1m", "1", "--output-per-1m", "2")
    time.sleep(1.1)  # the routing snapshot is reloaded within a second
    _, key = box.new_key()
    counted = box.client(key).messages.count_tokens(model="anth-compat/claude", messages=MESSAGES)
    assert 0 < counted.input_tokens < 100


def test_the_anthropic_model_list_pages_and_retrieves_aliases(box: MessagesBox) -> None:
    """Anthropic's `limit`, `after_id` and `before_id`, and GET /v1/models/{id} in its shape
    (the SDK's models.retrieve), aliases included."""
    _, key = box.new_key()
    head = {"anthropic-version": "2023-06-01"}
    url = f"{box.server.base_url}/v1/models"
    every = [m["id"] for m in httpx.get(url, headers=head, verify=TLS).json()["data"]]
    first = httpx.get(url, params={"limit": 1}, headers=head, verify=TLS).json()
    assert [m["id"] for m in first["data"]] == every[:1] and first["has_more"] is True
    rest = httpx.get(url, params={"after_id": first["last_id"]}, headers=head, verify=TLS).json()
    assert [m["id"] for m in rest["data"]] == every[1:] and rest["has_more"] is False
    back = httpx.get(
        url, params={"before_id": every[-1], "limit": 2}, headers=head, verify=TLS
    ).json()
    assert [m["id"] for m in back["data"]] == every[-3:-1] and back["has_more"] is True
    paged = [m.id for m in box.client(key).models.list(limit=1)]  # the SDK follows after_id
    assert paged == every
    model = box.client(key).models.retrieve(ALIAS)
    assert (model.id, model.type) == (ALIAS, "model")
    # "²" passes str.isdigit and fails int(); "٣" is 3; int() refuses over 4300 digits
    for limit in ("0", "\u00b2", "\u0663", "1" * 4301):
        bad = httpx.get(url, params={"limit": limit}, headers=head, verify=TLS)
        assert bad.status_code == 400, limit
        assert bad.json()["error"]["code"] == "invalid_limit"


def test_the_anthropic_model_list_holds_to_the_sdks_own_types(box: MessagesBox) -> None:
    """Every field the anthropic SDK's `ModelInfo` requires is there, so its typed fields give
    values: `lifecycle` (a required Literal) came back None from models.list and retrieve."""
    from anthropic.types import ModelInfo

    _, key = box.new_key()
    head = {"anthropic-version": "2023-06-01"}
    listed = httpx.get(f"{box.server.base_url}/v1/models", headers=head, verify=TLS).json()["data"]
    one = httpx.get(f"{box.server.base_url}/v1/models/{MODEL}", headers=head, verify=TLS).json()
    for raw in [*listed, one]:
        assert ModelInfo.model_validate(raw).lifecycle == "active"
    assert {m.lifecycle for m in box.client(key).models.list()} == {"active"}
    assert box.client(key).models.retrieve(ALIAS).lifecycle == "active"


def test_an_alias_is_retrieved_in_openais_shape_and_not_listed(box: MessagesBox) -> None:
    """GET /v1/models/{alias} without `anthropic-version` (the openai SDK's models.retrieve) was a
    404 for a name that a chat completion takes: it answers the model the alias routes to under
    the name asked for (as OpenRouter and LiteLLM answer an alias). The OpenAI list stays the
    catalog: an SDK user lists ids to pick one, and an alias would show one model twice."""
    import openai

    _, key = box.new_key()
    client = openai.OpenAI(
        api_key=key, base_url=f"{box.server.base_url}/v1", http_client=sdk_http(openai)
    )
    model = client.models.retrieve(OPENAI_ALIAS)
    assert (model.id, model.object, model.owned_by) == (OPENAI_ALIAS, "model", "oai")
    raw = httpx.get(f"{box.server.base_url}/v1/models/{ALIAS}", verify=TLS).json()
    catalog = httpx.get(f"{box.server.base_url}/v1/models/{MODEL}", verify=TLS).json()
    assert raw == {**catalog, "id": ALIAS}
    listed = [m.id for m in client.models.list()]
    assert MODEL in listed and ALIAS not in listed and OPENAI_ALIAS not in listed
    missing = httpx.get(f"{box.server.base_url}/v1/models/no-such-alias", verify=TLS)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_count_tokens_passes_a_billed_field_the_operator_allowed(fresh: MessagesBox) -> None:
    """count_tokens refuses the billed fields /v1/messages refuses (test_passthrough.py), and
    passes one the operator allowed for the provider to its upstream as sent."""
    _, key = fresh.new_key()
    server = {"type": "url", "url": "https://mcp.example/sse", "name": "docs"}
    body = {"model": ALIAS, "messages": MESSAGES, "mcp_servers": [server]}
    url = f"{fresh.server.base_url}/v1/messages/count_tokens"
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01",
               "anthropic-beta": "mcp-client-2025-04-04"}  # fmt: skip
    refused = httpx.post(url, json=body, headers=headers, timeout=10, verify=TLS)
    assert refused.status_code == 400, refused.text
    assert refused.json()["type"] == "error"
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert "mcp_servers" in refused.json()["error"]["message"] and fresh.fake.requests == []
    fresh.cli("providers", "update", "anth", "--allow-field", "mcp_servers")
    fresh.until_reloaded()
    try:
        counted = httpx.post(url, json=body, headers=headers, timeout=10, verify=TLS)
    finally:
        fresh.cli("providers", "update", "anth", "--no-allow-field", "mcp_servers")
        fresh.until_reloaded()
    assert counted.status_code == 200, counted.text
    assert fresh.fake.requests[-1].body["mcp_servers"] == body["mcp_servers"]
