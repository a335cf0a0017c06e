"""Money under stress on every inference route at once: chat completions, Messages,
count_tokens, Responses and embeddings, streamed and not, to native and translated providers
(an `openai` one, one added with `--responses-api`, an `anthropic` one), with upstreams that
misbehave at random (tests/fakes/random_replies.py) and clients that leave midway; meanwhile
the operator and the users change what the calls run under: credit taken back and added, caps
lowered (CLI and PATCH), resets changed, models narrowed, keys expired and revoked, accounts
disabled, prices changed, providers switched off and on, Stripe top-ups paid (their webhooks
delivered twice), `doctor` run. On one worker, two
workers, and two boxes on one PostgreSQL database. Afterwards: no account spent more than it
was credited, no key more than the largest cap it had in a day, nothing held, every usage row
equals its ledger debit and its charge is within its hold, /metrics' cost is the ledger's, and
`doctor` passes (during the load too)."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.random_replies import RandomOpenAI, random_anthropic
from tests.fakes.stripe_double import StripeDouble
from tests.pg_cluster import SHARED_SECRET, query_config_db
from tests.support import TLS, ServerProcess, base_sections, free_port, run_cli, write_config

pytestmark = pytest.mark.timeout(240)
LOAD_SEC = 5.0
MOST_LOAD_SEC, MIN_ADMITTED = 30.0, 20  # the load goes on past LOAD_SEC until more are admitted
THREADS = 8
ANTHROPIC_KEY, OPENAI_KEY = "sk-ant-stress-0001", "sk-oai-stress-0001"
MODELS = ("oai/m", "oair/m", "anth/m", "claude-stress")
COUNT_ROUTE = "/v1/messages/count_tokens"  # answered, never billed
ROUTES = ("/v1/chat/completions", "/v1/messages", COUNT_ROUTE, "/v1/responses", "/v1/embeddings")
STREAMED = ("/v1/chat/completions", "/v1/messages", "/v1/responses")
START_USD, CAP_USD, STABLE_CAP_USD = "0.05", "0.01", "0.008"
NANOS = 1_000_000_000
TOPUP_USD = 1
SPENT_AND_CREDITED = (
    "SELECT u.email, COALESCE(SUM(CASE WHEN e.kind = 'usage' THEN -e.amount_nanos END), 0), "
    "COALESCE(SUM(CASE WHEN e.kind != 'usage' THEN e.amount_nanos END), 0) "
    'FROM "user" u JOIN ledger_entry e ON e.user_id = u.id GROUP BY u.email'
)


@dataclass
class Account:
    email: str
    manager: str  # a key that may manage the account's keys (and calls models too)
    stable: str  # a key capped at STABLE_CAP_USD that nothing changes
    capped: list[dict[str, Any]] = field(default_factory=list)  # key, uuid, caps it had

    def keys(self) -> list[str]:
        return [self.manager, self.stable, *(c["key"] for c in self.capped)]


Upstreams = tuple[RandomOpenAI, FakeAnthropic, StripeDouble]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    """The random upstreams, and the Stripe double top-ups are paid at."""
    openai_fake = RandomOpenAI(seed=11).start()
    anthropic_fake = random_anthropic(12, ANTHROPIC_KEY)
    stripe = StripeDouble("sk_test_51CodelaceStress000000000000000000", "whsec_stress0000").start()
    yield openai_fake, anthropic_fake, stripe
    stripe.stop()
    anthropic_fake.stop()
    openai_fake.stop()


def cli(config: Path, *args: str) -> str:
    result = run_cli(config, *args)
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return result.stdout


def set_up_catalog(config: Path, openai_url: str, anthropic_url: str) -> None:
    oai = ("--kind", "openai", "--base-url", openai_url, "--key", OPENAI_KEY)
    cli(config, "providers", "add", "oai", *oai)
    cli(config, "providers", "add", "oair", *oai, "--responses-api")
    cli(config, "providers", "add", "anth", "--kind", "anthropic", "--base-url", anthropic_url,
        "--key", ANTHROPIC_KEY)  # fmt: skip
    prices = ("--input-per-1m", "3", "--output-per-1m", "15")
    cli(config, "models", "set", "oai/m", *prices, "--max-output-tokens", "400")
    cli(config, "models", "set", "oair/m", *prices)
    cli(config, "models", "set", "anth/m", *prices, "--cache-read-per-1m", "0.3",
        "--cache-write-per-1m", "3.75", "--cache-write-1h-per-1m", "6")  # fmt: skip
    cli(config, "models", "alias", "claude-stress", "anth/m")


def new_account(config: Path, number: int) -> Account:
    email = f"stress{number}@money.test"
    cli(config, "users", "create", email)
    cli(config, "credit", email, START_USD, "--reason", "start")
    first = cli(config, "keys", "create", email).split()[0]
    stable = cli(config, "keys", "create", email, "--limit-usd", STABLE_CAP_USD).split()[0]
    account = Account(email, first, stable)
    capped = ("--limit-usd", CAP_USD, "--limit-reset", "daily")
    for _ in range(2):
        key = cli(config, "keys", "create", email, *capped).split()[0]
        account.capped.append({"key": key, "caps": [int(float(CAP_USD) * NANOS)]})
    listed = json.loads(cli(config, "keys", "list", email, "--json"))
    for entry in account.capped:
        entry["uuid"] = next(k["id"] for k in listed if entry["key"].startswith(k["key_prefix"])
                             and k.get("limit_reset") == "daily")  # fmt: skip
    return account


def request_body(pick: random.Random, route: str, model: str, stream: bool) -> dict[str, Any]:
    words = "hello " * pick.randint(1, 30)
    cap = pick.choice([1, 5, 50, 200, 800])
    messages = [{"role": "user", "content": words}]
    if route == "/v1/chat/completions":
        options = {"stream_options": {"include_usage": True}} if pick.random() < 0.5 else {}
        return {"model": model, "messages": messages, "max_tokens": cap, "stream": stream,
                **(options if stream else {})}  # fmt: skip
    if route == "/v1/messages":
        return {"model": model, "messages": messages, "max_tokens": cap, "stream": stream}
    if route == "/v1/messages/count_tokens":
        return {"model": model, "messages": messages}
    if route == "/v1/responses":
        return {"model": model, "input": words, "max_output_tokens": cap, "stream": stream}
    return {"model": model, "input": [words]}


def one_call(pick: random.Random, url: str, key: str) -> bool:
    """One request; a third of them left by the client after a few bytes (or none). Whether
    it was admitted: answered 200 on a route that bills (settled, a usage row)."""
    route, model = pick.choice(ROUTES), pick.choice(MODELS)
    stream = pick.random() < 0.6 and route in STREAMED
    body = request_body(pick, route, model, stream)
    leave_after = pick.randint(0, 300) if pick.random() < 0.3 else None
    headers = {"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
    try:
        with (
            httpx.Client(timeout=20, verify=TLS) as client,
            client.stream("POST", url + route, json=body, headers=headers) as answer,
        ):
            seen = 0
            for chunk in answer.iter_bytes():
                seen += len(chunk)
                if leave_after is not None and seen >= leave_after:
                    break
            return answer.status_code == 200 and route != COUNT_ROUTE
    except httpx.HTTPError:
        return False  # a connection the box or the client cut: the invariants still hold


def patch_key(url: str, account: Account, entry: dict[str, Any], change: dict[str, Any]) -> int:
    answer = httpx.patch(
        f"{url}/api/v1/auth/key/{entry['uuid']}",
        json=change,
        timeout=20,
        headers={"authorization": f"Bearer {account.manager}"},
        verify=TLS,
    )
    return answer.status_code


def top_up(url: str, stripe: StripeDouble, _: random.Random, account: Account, *__: Any) -> None:
    """A Stripe top-up paid and its webhook delivered (twice, as Stripe may)."""
    asked = httpx.post(f"{url}/api/v1/stripe/checkout", json={"amount_usd": TOPUP_USD},
                       headers={"authorization": f"Bearer {account.manager}"}, timeout=20,
                       verify=TLS)  # fmt: skip
    if asked.status_code != 200:  # e.g. the account is disabled at the moment
        return
    session = stripe.session_by_url(asked.json()["checkout_url"])["id"]
    body, headers = stripe.webhook(stripe.complete(session))
    for _delivery in range(2):
        delivered = httpx.post(f"{url}/api/v1/stripe/webhook", content=body, headers=headers,
                               timeout=20, verify=TLS)  # fmt: skip
        assert delivered.status_code == 200, delivered.text


def chaos_actions(
    config: Path, url: str, stripe: StripeDouble, doctor_failures: list[str]
) -> list[Callable[..., None]]:
    """What the operator and the users do while the load runs: (pick, account, capped key)."""

    def take_credit(pick: random.Random, account: Account, _: dict[str, Any]) -> None:
        amount = pick.choice(["-0.001", "-0.01", "-0.05", "0.02"])
        run_cli(config, "credit", account.email, amount, "--reason", "stress")  # may be refused

    def lower_cap_cli(pick: random.Random, _: Account, entry: dict[str, Any]) -> None:
        cap = pick.choice(["0.002", "0.005", "0.02"])
        if run_cli(config, "keys", "update", entry["uuid"], "--limit-usd", cap).returncode == 0:
            entry["caps"].append(int(float(cap) * NANOS))

    def patch_cap(pick: random.Random, account: Account, entry: dict[str, Any]) -> None:
        cap = pick.choice([0.001, 0.004, 0.01])
        if patch_key(url, account, entry, {"limit_usd": cap}) == 200:
            entry["caps"].append(int(cap * NANOS))

    def patch_other(pick: random.Random, account: Account, entry: dict[str, Any]) -> None:
        change = pick.choice([
            {"limit_reset": pick.choice(["daily", None, "monthly"])},
            {"allowed_models": pick.choice([["oai/m"], ["anth/m", "oair/m"], None])},
            {"expires_at": "2020-01-01T00:00:00Z"} if pick.random() < 0.2 else {},
        ])  # fmt: skip
        patch_key(url, account, entry, change)

    def off_and_on(pick: random.Random, account: Account, entry: dict[str, Any]) -> None:
        what = pick.choice([("users", account.email), ("providers", pick.choice(["oai", "anth"]))])
        run_cli(config, what[0], "disable", what[1])
        time.sleep(0.2)
        run_cli(config, what[0], "enable", what[1])
        if pick.random() < 0.15:
            run_cli(config, "keys", "revoke", entry["uuid"])

    def reprice(pick: random.Random, *_: Any) -> None:
        price = pick.choice(["1", "3", "30"])
        run_cli(config, "models", "set", pick.choice(["oai/m", "anth/m", "oair/m"]),
                "--input-per-1m", price, "--output-per-1m", str(int(price) * 5))  # fmt: skip

    def doctor(*_: Any) -> None:
        result = run_cli(config, "doctor")
        if result.returncode != 0:
            doctor_failures.append(result.stdout + result.stderr)

    paid = partial(top_up, url, stripe)
    return [take_credit, lower_cap_cli, patch_cap, patch_cap, patch_other, patch_other,
            off_and_on, reprice, doctor, paid, paid]  # fmt: skip


def run_stress(
    configs: list[Path], urls: list[str], accounts: list[Account], stripe: StripeDouble, seed: int
) -> None:
    """The load on every box and the chaos through the first, for LOAD_SEC (longer, up to
    MOST_LOAD_SEC, until more than MIN_ADMITTED calls were admitted: a loaded machine makes
    fewer calls in a time); then every call settled, and the invariants."""
    began = time.monotonic()
    admitted: list[int] = []  # one for each call admitted
    doctor_failures: list[str] = []
    actions = chaos_actions(configs[0], urls[0], stripe, doctor_failures)

    def going() -> bool:
        now = time.monotonic() - began
        return now < LOAD_SEC or (len(admitted) <= MIN_ADMITTED and now < MOST_LOAD_SEC)

    def load(number: int) -> None:
        pick = random.Random(seed * 100 + number)
        while going():
            account = pick.choice(accounts)
            if one_call(pick, pick.choice(urls), pick.choice(account.keys())):
                admitted.append(1)

    def chaos() -> None:
        pick = random.Random(seed)
        while going():
            account = pick.choice(accounts)
            pick.choice(actions)(pick, account, pick.choice(account.capped))

    with ThreadPoolExecutor(THREADS + 1) as pool:  # a thread's failure fails the test
        running = [pool.submit(load, n) for n in range(THREADS)] + [pool.submit(chaos)]
        for each in running:
            each.result()
    assert not doctor_failures, doctor_failures
    assert_money_holds(configs[0], urls, accounts)


def until_settled(config: Path, wait: float = 20) -> None:
    """Calls whose clients left are read on (within gateway.read_timeout_sec) and settled."""
    deadline = time.monotonic() + wait
    while query_config_db(config, "SELECT COUNT(*) FROM hold")[0][0]:
        assert time.monotonic() < deadline, query_config_db(config, "SELECT * FROM hold")
        time.sleep(0.1)


def assert_money_holds(config: Path, urls: list[str], accounts: list[Account]) -> None:
    until_settled(config)

    def rows(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return query_config_db(config, sql, params)

    assert rows('SELECT COUNT(*) FROM "user" WHERE held_nanos != 0 OR balance_nanos < 0') == [(0,)]
    assert rows("SELECT COUNT(*) FROM api_key WHERE held_nanos != 0") == [(0,)]
    usage = rows("SELECT request_id, cost_nanos, hold_nanos FROM usage_record")
    debits = dict(rows("SELECT idempotency_key, -amount_nanos FROM ledger_entry "
                       "WHERE kind = 'usage'"))  # fmt: skip
    assert len(usage) > MIN_ADMITTED, "hardly any call was admitted"
    for request_id, cost, hold in usage:
        assert 0 <= cost <= hold, request_id
        assert debits.pop(f"usage:{request_id}", 0) == cost, request_id
    assert not debits, f"debits without a usage row: {debits}"
    for email, spent, credited in rows(SPENT_AND_CREDITED):
        assert int(spent) <= int(credited), email
    assert_key_caps(rows, accounts)
    paid = rows("SELECT COUNT(*) FROM payment WHERE kind = 'topup' AND status = 'completed'")
    credited = rows("SELECT COUNT(*) FROM ledger_entry WHERE idempotency_key LIKE 'stripe:%'")
    assert paid == credited, "a top-up credited other than exactly once"
    metrics = sum(_metric_cost(url) for url in urls)
    ledger = rows("SELECT COALESCE(SUM(-amount_nanos), 0) FROM ledger_entry WHERE kind = 'usage'")
    assert metrics == pytest.approx(int(ledger[0][0]) / NANOS, rel=1e-9, abs=1e-12)
    doctor = run_cli(config, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def assert_key_caps(rows: Callable[..., list[tuple[Any, ...]]], accounts: list[Account]) -> None:
    """No key spent more in a UTC day (within any period) than the largest cap it had."""
    per_day = "SELECT COALESCE(MAX(spent), 0) FROM (SELECT SUM(r.cost_nanos) AS spent FROM "
    per_day += "usage_record r JOIN api_key k ON k.id = r.api_key_id WHERE k.key_prefix = ? "
    per_day += 'AND k.user_id = (SELECT id FROM "user" WHERE email = ?) '
    per_day += "GROUP BY substr(CAST(r.created_at AS TEXT), 1, 10)) d"
    for account in accounts:
        stable = rows(per_day, account.stable[:7], account.email)[0][0]
        assert int(stable) <= int(float(STABLE_CAP_USD) * NANOS), account.email
        for entry in account.capped:
            spent = rows(per_day, entry["key"][:7], account.email)[0][0]
            assert int(spent) <= max(entry["caps"]), (account.email, entry["caps"])


def _metric_cost(url: str) -> float:
    text = httpx.get(url + "/metrics", verify=TLS, timeout=20).text
    found = re.findall(r"^codelace_cost_usd_total\{[^}]*\} (\S+)$", text, re.MULTILINE)
    return sum(float(value) for value in found)


def _box_config(folder: Path, sections: dict[str, dict[str, Any]], stripe: StripeDouble) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sections.setdefault("gateway", {})["read_timeout_sec"] = 5
    sections["stripe"] = {"secret_key": stripe.secret_key, "webhook_secret": stripe.webhook_secret,
                          "api_base": stripe.url, "min_topup_usd": 1}  # fmt: skip
    return write_config(folder / "codelace.toml", sections)


@pytest.mark.parametrize("workers", [1, 2])
def test_every_route_under_chaos_keeps_the_money_right(
    tmp_path: Path, upstreams: Upstreams, workers: int
) -> None:
    config = _box_config(tmp_path, base_sections(tmp_path, free_port()), upstreams[2])
    set_up_catalog(config, upstreams[0].base_url, upstreams[1].base_url)
    port = int(re.findall(r"port = (\d+)", config.read_text())[0])
    server = ServerProcess(config, port).start(*(("--workers", "2") if workers > 1 else ()))
    try:
        accounts = [new_account(config, n) for n in range(3)]
        run_stress([config], [server.base_url], accounts, upstreams[2], seed=workers)
    finally:
        server.stop()


def test_every_route_under_chaos_on_two_boxes_sharing_postgresql(
    tmp_path: Path, pg_url: str, upstreams: Upstreams
) -> None:
    configs, servers = [], []
    for number in range(2):
        folder = tmp_path / f"box{number}"
        port = free_port()
        configs.append(_box_config(folder, {
            "server": {"host": "127.0.0.1", "port": port, "secret_key": SHARED_SECRET},
            "database": {"path": str(folder / "data" / "codelace.db"), "url": pg_url},
        }, upstreams[2]))  # fmt: skip
        if number == 0:
            set_up_catalog(configs[0], upstreams[0].base_url, upstreams[1].base_url)
        servers.append(ServerProcess(configs[-1], port))
    try:
        for server in servers:
            server.start()
        accounts = [new_account(configs[0], n) for n in range(3)]
        run_stress(configs, [s.base_url for s in servers], accounts, upstreams[2], seed=3)
    finally:
        for server in servers:
            server.stop()
