"""A key's limits through a real box: its period rolling over, expiry, model allow-lists with
aliases, the errors on every inference route (Anthropic's shape on /v1/messages), and the
order of the checks, one condition taken away at a time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.clock import clear_of_midnight
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory, cost_nanos
from tests.limits.conftest import FLAT
from tests.pg_cluster import write_config_db
from tests.support import TLS

pytestmark = pytest.mark.timeout(120)
CHEAP = "fake/cheap"
ALIAS = "cheap-latest"
CAP = 100
HELLO = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    started = box_factory()
    for model in (FLAT, CHEAP):
        started.cli("models", "set", model, "--input-per-1m", "0", "--output-per-1m", "10",
                    "--provider", "fake")  # fmt: skip
    started.cli("models", "alias", ALIAS, CHEAP)
    started.until_served(FLAT, CHEAP, ALIAS)
    return started


def each() -> int:
    """The cost (and the hold) of one request of CAP output tokens at $10 per 1M."""
    return cost_nanos(0, CAP, "0", "10")


def new_key(box: Box, email: str, **limits: Any) -> tuple[str, str]:
    """A key with limits made through the HTTP API: (key, key id)."""
    _, login = box.keys[email], box.keys[email]
    made = box.http(login).post("/api/v1/auth/key", json={"name": "limited", **limits})
    assert made.status_code == 200, made.text
    return made.json()["full_key"], made.json()["id"]


def chat(box: Box, key: str, model: str = FLAT) -> httpx.Response:
    body = {"model": model, "messages": HELLO, "max_tokens": CAP}
    return box.http(key).post("/v1/chat/completions", json=body)


def messages(box: Box, key: str, model: str = FLAT) -> httpx.Response:
    body = {"model": model, "messages": HELLO, "max_tokens": CAP}
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return httpx.post(box.url + "/v1/messages", json=body, headers=headers, timeout=30, verify=TLS)


def embeddings(box: Box, key: str, model: str = FLAT) -> httpx.Response:
    return box.http(key).post("/v1/embeddings", json={"model": model, "input": "hi"})


def openai_code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def anthropic_type(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert body["type"] == "error", body
    return response.status_code, body["error"]["type"]


def write_db(box: Box, sql: str, *params: Any) -> None:
    """Change the box's database as time would (a period that began long ago)."""
    write_config_db(box.config, sql, params)


def key_row(box: Box, key_id: str) -> tuple[int, int, str]:
    rows = box.query("SELECT spent_nanos, held_nanos, period_start FROM api_key WHERE uuid = ?",
                     key_id)  # fmt: skip
    return rows[0]


def listed(box: Box, key: str, key_id: str) -> dict[str, Any]:
    keys = box.http(key).get("/api/v1/auth/key").json()
    return next(k for k in keys if k["id"] == key_id)


def test_a_capped_key_stops_at_its_cap_and_starts_again_in_a_new_period(
    box: Box, fake: FakeOpenAI
) -> None:
    clear_of_midnight()  # the scenario's requests are of one day (its "yesterday" is set)
    email, _ = box.new_user("50")
    cap_usd = f"{2 * each() / 1e9:.9f}"
    key, key_id = new_key(box, email, limit_usd=cap_usd, limit_reset="daily")
    fake.default = Reply(completion_tokens_from_cap=True)
    assert [chat(box, key).status_code for _ in range(2)] == [200, 200]
    assert openai_code(chat(box, key)) == (402, "key_limit_reached")
    assert anthropic_type(messages(box, key)) == (402, "billing_error")
    assert openai_code(embeddings(box, key, MODEL)) == (402, "key_limit_reached")  # input priced
    assert key_row(box, key_id)[:2] == (2 * each(), 0)
    assert listed(box, key, key_id)["spent_usd"] == pytest.approx(2 * each() / 1e9)
    # The day is over: the stored period began yesterday.
    yesterday = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
    write_db(box, "UPDATE api_key SET period_start = ? WHERE uuid = ?", str(yesterday), key_id)
    assert listed(box, key, key_id)["spent_usd"] == 0  # shown as the new period's, before use
    assert chat(box, key).status_code == 200
    spent, held, start = key_row(box, key_id)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert (spent, held, str(start)) == (each(), 0, f"{today} 00:00:00")  # PG: a datetime
    assert box.balance(email)[0] == 50 * 10**9 - 3 * each()  # the account paid all three


def test_a_key_without_reset_keeps_its_spend_and_a_raised_cap_lets_it_go_on(
    box: Box, fake: FakeOpenAI
) -> None:
    email, _ = box.new_user("50")
    key, key_id = new_key(box, email, limit_usd=f"{each() / 1e9:.9f}")
    fake.default = Reply(completion_tokens_from_cap=True)
    assert chat(box, key).status_code == 200
    assert openai_code(chat(box, key)) == (402, "key_limit_reached")
    raised = box.http(key).patch(f"/api/v1/auth/key/{key_id}", json={"limit_usd": 1})
    assert raised.status_code == 200 and raised.json()["limit_usd"] == 1
    assert raised.json()["spent_usd"] == pytest.approx(each() / 1e9)
    assert chat(box, key).status_code == 200
    cleared = box.http(key).patch(f"/api/v1/auth/key/{key_id}", json={"limit_usd": None})
    assert cleared.json()["limit_usd"] is None
    assert cleared.json()["spent_usd"] == pytest.approx(2 * each() / 1e9)


def test_an_expired_key_is_a_401_key_expired_on_every_route(box: Box, fake: FakeOpenAI) -> None:
    email, _ = box.new_user("5")
    # it expires 1 to 2 s after it is made (its expiry is in whole seconds): a machine too slow
    # to call with it by then (a loaded CI) makes it again, expiring 20 s ahead
    for ahead in (2, 20):
        soon = (datetime.now(UTC) + timedelta(seconds=ahead)).replace(microsecond=0)
        key, key_id = new_key(box, email, expires_at=soon.isoformat())
        if (answer := chat(box, key)).status_code == 200:
            break
        assert datetime.now(UTC) >= soon, f"refused before its expiry: {answer.text}"
    assert answer.status_code == 200, answer.text
    shown = listed(box, box.keys[email], key_id)["expires_at"]
    assert shown == soon.strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.2)
    assert openai_code(chat(box, key)) == (401, "key_expired")
    assert openai_code(embeddings(box, key)) == (401, "key_expired")
    assert anthropic_type(messages(box, key)) == (401, "authentication_error")
    assert openai_code(box.http(key).get("/api/v1/auth/key")) == (401, "key_expired")
    other = box.keys[email]  # the account's other key still works and may lift the expiry
    lifted = box.http(other).patch(f"/api/v1/auth/key/{key_id}", json={"expires_at": None})
    assert lifted.status_code == 200 and lifted.json()["expires_at"] is None
    assert chat(box, key).status_code == 200


def test_an_expiry_date_with_an_offset_is_that_midnight_there(box: Box) -> None:
    """`"expires_at": "2099-12-31+14:00"`, midnight on New Year's Eve in Kiribati (10:00 UTC the
    day before): Python's fromisoformat read the offset as a time of day, 14:00 UTC, and the key
    lived 28 hours longer than asked; "2099-12-31x05:00" was taken as 05:00 too."""
    email, _ = box.new_user("5")
    login = box.http(box.keys[email])
    for sent, shown in [
        ("2099-12-31+14:00", "2099-12-30T10:00:00Z"),
        ("2099-12-31-10:00", "2099-12-31T10:00:00Z"),
        ("2099-12-31Z", "2099-12-31T00:00:00Z"),
        ("2099-12-31", "2099-12-31T00:00:00Z"),
        ("2099-12-31t23:59:59z", "2099-12-31T23:59:59Z"),
    ]:
        made = login.post("/api/v1/auth/key", json={"name": "x", "expires_at": sent})
        assert made.status_code == 200, (sent, made.text)
        assert made.json()["expires_at"] == shown, sent
    for sent in ("2099-12-31x05:00", "2099-12-31 +05:00"):
        refused = login.post("/api/v1/auth/key", json={"name": "x", "expires_at": sent})
        assert openai_code(refused) == (400, "invalid_limit"), sent


def test_allowed_models_match_after_alias_resolution(box: Box, fake: FakeOpenAI) -> None:
    email, _ = box.new_user("5")
    key, key_id = new_key(box, email, allowed_models=[ALIAS])
    assert listed(box, key, key_id)["allowed_models"] == [CHEAP]  # stored as the catalog id
    assert chat(box, key, CHEAP).status_code == 200
    assert chat(box, key, ALIAS).status_code == 200
    assert fake.requests[-1].body["model"] == fake.requests[-2].body["model"]
    assert openai_code(chat(box, key, FLAT)) == (403, "model_not_allowed")
    assert openai_code(embeddings(box, key, MODEL)) == (403, "model_not_allowed")
    assert anthropic_type(messages(box, key, FLAT)) == (403, "permission_error")
    assert messages(box, key, ALIAS).status_code == 200
    answer = box.http(key).post(
        "/v1/responses", json={"model": FLAT, "input": "hi", "max_output_tokens": 16}
    )
    assert openai_code(answer) == (403, "model_not_allowed")
    assert box.query(
        "SELECT COUNT(*) FROM usage_record u JOIN api_key k ON k.id = u.api_key_id "
        "WHERE k.uuid = ? AND u.model = ?", key_id, FLAT
    ) == [(0,)]  # fmt: skip


def test_the_checks_run_in_the_order_of_the_spec(box: Box, fake: FakeOpenAI) -> None:
    """Every condition at once, then taken away one by one: each time the next check speaks.
    401 expired, 403 disabled, 404 model, 403 model not allowed, 429, 402 key cap, 402 balance.
    """
    email, _ = box.new_user(f"{each() / 1e9:.9f}")
    key, key_id = new_key(
        box, email, limit_usd=f"{each() / 1e9:.9f}", allowed_models=[CHEAP],
        expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds"),
    )  # fmt: skip
    other = box.keys[email]
    fake.default = Reply(completion_tokens_from_cap=True)
    box.cli("users", "limits", email, "--rpm", "1")
    assert chat(box, key, CHEAP).status_code == 200  # the balance, the cap and the rpm used up
    box.cli("users", "disable", email)
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    write_db(box, "UPDATE api_key SET expires_at = ? WHERE uuid = ?", str(past), key_id)
    unknown = "fake/no-such-model"
    assert openai_code(chat(box, key, unknown)) == (401, "key_expired")
    write_db(box, "UPDATE api_key SET expires_at = NULL WHERE uuid = ?", key_id)
    assert openai_code(chat(box, key, unknown)) == (403, "account_disabled")
    box.cli("users", "enable", email)
    assert openai_code(chat(box, key, unknown)) == (404, "model_not_found")
    assert openai_code(chat(box, key, FLAT)) == (403, "model_not_allowed")
    limited = chat(box, key, CHEAP)
    assert openai_code(limited) == (429, "rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    box.cli("users", "limits", email, "--rpm", "0")
    assert openai_code(chat(box, key, CHEAP)) == (402, "key_limit_reached")
    box.http(other).patch(f"/api/v1/auth/key/{key_id}", json={"limit_usd": None})
    assert openai_code(chat(box, key, CHEAP)) == (402, "insufficient_credits")


ROUTES = ["chat", "responses", "compact", "embeddings", "messages"]


def call(box: Box, route: str, key: str, model: str) -> tuple[int, str]:
    """One request on an inference route: its status and its error's code (Anthropic's
    `error.type` on /v1/messages)."""
    if route == "messages":
        return anthropic_type(messages(box, key, model))
    if route == "embeddings":
        return openai_code(embeddings(box, key, model))
    if route in ("responses", "compact"):  # Codex's compaction: a Responses call of its own
        body = {"model": model, "input": "hi", "max_output_tokens": CAP}
        path = "/v1/responses/compact" if route == "compact" else "/v1/responses"
        return openai_code(box.http(key).post(path, json=body))
    return openai_code(chat(box, key, model))


ORDER = {  # the SPEC's order, as each dialect names it
    "openai": [(401, "key_expired"), (403, "account_disabled"), (404, "model_not_found"),
               (403, "model_not_allowed"), (429, "rate_limited"), (402, "key_limit_reached"),
               (402, "insufficient_credits")],
    "anthropic": [(401, "authentication_error"), (403, "permission_error"),
                  (404, "not_found_error"), (403, "permission_error"), (429, "rate_limit_error"),
                  (402, "billing_error"), (402, "billing_error")],
}  # fmt: skip


@pytest.mark.parametrize("route", ROUTES)
def test_the_order_of_the_checks_holds_on_every_inference_route(
    box: Box, fake: FakeOpenAI, route: str
) -> None:
    """Every condition at once on a priced model (so embeddings reserve too), then taken away
    one at a time: a balance of 0, a cap of one nano, the rpm used by the account's other key,
    a model outside the allow-list, an unknown model, a disabled account, an expired key."""
    email, key, steps = every_condition_at_once(box)
    seen = []
    for model, take_away in steps:
        seen.append(call(box, route, key, model))
        take_away()
    dialect = "anthropic" if route == "messages" else "openai"
    assert seen == ORDER[dialect]
    assert box.balance(email) == (0, 0) and len(fake.requests) == 1  # the setup's


def every_condition_at_once(box: Box) -> tuple[str, str, list[tuple[str, Callable[[], object]]]]:
    """An account and key refused for every reason at once (a balance of 0, a cap of one
    nano, the rpm used by the account's other key, a model outside the allow-list, a disabled
    account, an expired key): (email, key, the steps: the model to call, then what to take
    away), each step's call refused for the next reason of the SPEC's order, the last one's
    for the balance."""
    email, other = box.new_user("5")
    key, key_id = new_key(box, email, limit_usd="0.000000001", allowed_models=[MODEL])
    box.cli("users", "limits", email, "--rpm", "1")
    assert chat(box, other, MODEL).status_code == 200  # the minute's one request
    box.cli("credit", email, f"-{box.balance(email)[0] / 1e9:.9f}", "--reason", "drain")
    box.cli("users", "disable", email)
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    write_db(box, "UPDATE api_key SET expires_at = ? WHERE uuid = ?", str(past), key_id)
    unknown = "fake/no-such-model"
    return email, key, [
        (unknown, lambda: write_db(box, "UPDATE api_key SET expires_at = NULL WHERE uuid = ?",
                                   key_id)),
        (unknown, lambda: box.cli("users", "enable", email)),
        (unknown, lambda: None),
        (FLAT, lambda: None),
        (MODEL, lambda: box.cli("users", "limits", email, "--rpm", "0")),
        (MODEL, lambda: box.http(other).patch(f"/api/v1/auth/key/{key_id}",
                                              json={"limit_usd": None})),
        (MODEL, lambda: None),
    ]  # fmt: skip


@pytest.mark.parametrize("reset", ["weekly", "monthly"])
def test_a_weekly_cap_restarts_on_monday_and_a_monthly_one_on_the_first(
    box: Box, fake: FakeOpenAI, reset: str
) -> None:
    """Through the request path and the listing alike: spend stored for the period that began
    this Monday (the 1st) still counts; spend stored for the one before does not."""
    clear_of_midnight()  # a Monday (a 1st) must not begin between the periods set and used
    email, _ = box.new_user("50")
    key, key_id = new_key(box, email, limit_usd=f"{each() / 1e9:.9f}", limit_reset=reset)
    fake.default = Reply(completion_tokens_from_cap=True)
    assert chat(box, key).status_code == 200
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    if reset == "weekly":
        current = today - timedelta(days=today.weekday())
        before = current - timedelta(days=7)
    else:
        current = today.replace(day=1)
        before = (current - timedelta(days=1)).replace(day=1)
    set_start = "UPDATE api_key SET period_start = ? WHERE uuid = ?"
    write_db(box, set_start, str(current), key_id)
    assert openai_code(chat(box, key)) == (402, "key_limit_reached")
    assert listed(box, key, key_id)["spent_usd"] == pytest.approx(each() / 1e9)
    write_db(box, set_start, str(before), key_id)
    assert listed(box, key, key_id)["spent_usd"] == 0
    assert chat(box, key).status_code == 200
    spent, held, start = key_row(box, key_id)
    assert (spent, held, str(start)) == (each(), 0, str(current))


def test_a_model_not_allowed_is_a_403_even_when_its_provider_is_disabled(
    box: Box, fake: FakeOpenAI
) -> None:
    """The allow-list speaks before the provider's state: a key limited to other models gets
    the final 403, not a 503 that SDKs and Claude Code retry (and that tells it the state of a
    provider it may not use). A key that may call the model still gets the 503."""
    box.cli("providers", "add", "spare", "--kind", "openai", "--base-url", fake.base_url,
            "--key", "sk-spare-key-0001")  # fmt: skip
    box.cli("models", "set", "spare/m", "--input-per-1m", "1", "--output-per-1m", "1",
            "--provider", "spare")  # fmt: skip
    box.until_served("spare/m")
    email, _ = box.new_user("5")
    limited, _ = new_key(box, email, allowed_models=[CHEAP])
    allowed, _ = new_key(box, email, allowed_models=["spare/m"])
    box.cli("providers", "disable", "spare")
    box.until_reloaded()
    for route in ROUTES:
        dialect = "anthropic" if route == "messages" else "openai"
        assert call(box, route, limited, "spare/m") == ORDER[dialect][3], route
        assert call(box, route, allowed, "spare/m")[0] == 503, route
    body = {"model": "spare/m", "messages": HELLO}
    headers = {"x-api-key": limited, "anthropic-version": "2023-06-01"}
    counted = httpx.post(
        box.url + "/v1/messages/count_tokens", json=body, headers=headers, verify=TLS
    )
    assert anthropic_type(counted) == (403, "permission_error")
    assert fake.requests == []


def test_a_key_limited_to_some_models_may_not_ask_the_provider_for_fallbacks(
    box: Box, fake: FakeOpenAI
) -> None:
    """OpenRouter's `models` (and `route`, and `preset`: a preset of the operator's account
    picks its own model and fallbacks; and LiteLLM's or Anthropic's `fallbacks`) let the
    provider answer with other models, billed at the catalog model's price. Where the operator
    allowed them for the provider, a key without an allow-list may send them; a key limited to
    some models gets the 403, as for calling another model itself, and nothing reaches the
    provider."""
    box.cli("providers", "add", "router", "--kind", "openai", "--base-url", fake.base_url,
            "--key", "sk-router-key-0001", "--allow-field", "models",
            "--allow-field", "route", "--allow-field", "fallbacks",
            "--allow-field", "context_window_fallbacks",
            "--allow-field", "content_policy_fallbacks",
            "--allow-field", "context_window_fallback_dict", "--allow-field", "preset")  # fmt: skip
    box.cli("models", "set", "router/m", "--input-per-1m", "1", "--output-per-1m", "1",
            "--provider", "router")  # fmt: skip
    box.until_served("router/m")
    email, login = box.new_user("5")
    limited, _ = new_key(box, email, allowed_models=["router/m"])
    body = {"model": "router/m", "messages": HELLO, "max_tokens": 5}
    for extra in ({"models": ["openai/gpt-5.4"]}, {"route": "fallback"},
                  {"fallbacks": ["openai/gpt-5.4"]},
                  {"context_window_fallbacks": [{"m": ["openai/gpt-5.4"]}]},
                  {"content_policy_fallbacks": [{"m": ["openai/gpt-5.4"]}]},
                  {"context_window_fallback_dict": {"m": "openai/gpt-5.4"}},
                  {"preset": "email-copywriter"}):  # fmt: skip
        refused = box.http(limited).post("/v1/chat/completions", json=body | extra)
        assert openai_code(refused) == (403, "model_not_allowed"), extra
        assert next(iter(extra)) in refused.json()["error"]["message"]
    assert fake.requests == []
    assert box.http(limited).post("/v1/chat/completions", json=body | {"models": []}).is_success
    unlimited = box.http(login).post("/v1/chat/completions", json=body | {"models": ["x/y"]})
    assert unlimited.status_code == 200, unlimited.text
    assert fake.requests[-1].body["models"] == ["x/y"]


def test_a_key_limited_to_some_models_may_not_reach_others_through_a_server_tool(
    box: Box, fake: FakeOpenAI
) -> None:
    """OpenRouter's advisor and subagent server tools run any OpenRouter model (the tool's
    `parameters.model`, else one the call names) inside the call. Where the operator allowed
    server tools, a key limited to some models gets the 403 for them, and for any hosted or
    gateway tool naming a model (OpenAI's image_generation); nothing reaches the provider. Its
    other server tools pass, and a key without an allow-list may send them all."""
    box.cli("providers", "add", "tooled", "--kind", "openai", "--base-url", fake.base_url,
            "--key", "sk-tooled-key-0001", "--allow-field", "server_tools")  # fmt: skip
    box.cli("models", "set", "tooled/m", "--input-per-1m", "1", "--output-per-1m", "1",
            "--provider", "tooled")  # fmt: skip
    box.until_served("tooled/m")
    email, login = box.new_user("5")
    limited, _ = new_key(box, email, allowed_models=["tooled/m"])
    body = {"model": "tooled/m", "messages": HELLO, "max_tokens": 5}
    opus = {"model": "~anthropic/claude-opus-latest"}
    for tool in ({"type": "openrouter:advisor"}, {"type": "OpenRouter:Subagent"},
                 {"type": "openrouter:advisor", "parameters": opus},
                 {"type": "other:consult", "parameters": opus},
                 {"type": "image_generation", "model": "gpt-image-1"}):  # fmt: skip
        refused = box.http(limited).post("/v1/chat/completions", json=body | {"tools": [tool]})
        assert openai_code(refused) == (403, "model_not_allowed"), tool
        assert "tools[0]" in refused.json()["error"]["message"]
    assert fake.requests == []
    search = {"tools": [{"type": "openrouter:web_search"}]}
    assert box.http(limited).post("/v1/chat/completions", json=body | search).is_success
    advised = body | {"tools": [{"type": "openrouter:advisor", "parameters": opus}]}
    assert box.http(login).post("/v1/chat/completions", json=advised).status_code == 200
    assert fake.requests[-1].body["tools"] == advised["tools"]


def test_a_key_limited_to_some_models_may_not_reach_a_panel_of_others_through_fusion(
    box: Box, fake: FakeOpenAI
) -> None:
    """OpenRouter's fusion (the `openrouter:fusion` server tool, and the `fusion` plugin that
    injects it) sends the prompt to a panel of models and a judge, by default Opus, GPT and
    Gemini Pro, named by `analysis_models` and `model` or by none: a key limited to a cheap
    model reached them where the operator allowed server tools or plugins. It gets the 403;
    its other plugins and tools, Codex's function tools with a `model` parameter among them,
    pass, and a key without an allow-list may send fusion."""
    box.cli("providers", "add", "fused", "--kind", "openai", "--base-url", fake.base_url,
            "--key", "sk-fused-key-0001", "--allow-field", "server_tools",
            "--allow-field", "plugins")  # fmt: skip
    box.cli("models", "set", "fused/m", "--input-per-1m", "1", "--output-per-1m", "1",
            "--provider", "fused")  # fmt: skip
    box.until_served("fused/m")
    email, login = box.new_user("5")
    limited, _ = new_key(box, email, allowed_models=["fused/m"])
    body = {"model": "fused/m", "messages": HELLO, "max_tokens": 5}
    panel = {"analysis_models": ["~openai/gpt-latest"]}
    for extra, param in (({"tools": [{"type": "openrouter:fusion"}]}, "tools[0]"),
                         ({"tools": [{"type": "openrouter:fusion", "parameters": panel}]},
                          "tools[0]"),
                         ({"plugins": [{"id": "web"}, {"id": "fusion"}]}, "plugins[1]"),
                         ({"plugins": [{"id": "Fusion"} | panel]}, "plugins[0]")):  # fmt: skip
        refused = box.http(limited).post("/v1/chat/completions", json=body | extra)
        assert openai_code(refused) == (403, "model_not_allowed"), extra
        assert param in refused.json()["error"]["message"], extra
    assert fake.requests == []
    schema = {"type": "object", "properties": {"model": {"type": "string"}}}
    own = {"type": "function", "function": {"name": "spawn", "parameters": schema}}
    passing: list[dict[str, Any]] = [
        {"plugins": [{"id": "web"}]},
        {"plugins": [{"id": "fusion", "enabled": False}]},
        {"tools": [own, {"type": "openrouter:web_search"}]},
    ]
    for extra in passing:
        passed = box.http(limited).post("/v1/chat/completions", json=body | extra)
        assert passed.status_code == 200, (extra, passed.text)
    fused = body | {"tools": [{"type": "openrouter:fusion"}], "plugins": [{"id": "fusion"}]}
    assert box.http(login).post("/v1/chat/completions", json=fused).status_code == 200
    assert fake.requests[-1].body["plugins"] == fused["plugins"]
