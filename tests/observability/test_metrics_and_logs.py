"""serve's view for its operator: /metrics (scraped with prometheus_client's own parser) agrees
with the usage rows after mixed traffic; access lines (JSON) parse and hold no secret; the
upstream's error text is kept; refusals are counted; the token and loopback rules hold."""

from __future__ import annotations

import json
import socket
import time
from collections import defaultdict

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.openai_upstream import Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.support import TLS, eventually

HELLO = [{"role": "user", "content": "Hello"}]
PROVIDER_KEY = "sk-fake-key-0001"
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]
FAMILIES = {  # what an operator's dashboards and alerts may find in a scrape
    *(f"codelace_{name}" for name in (
        "http_requests", "refusals", "inference_requests", "tokens", "cost_usd",
        "upstream_errors", "upstream_first_byte_seconds", "inference_duration_seconds",
        "overhead_seconds", "active_streams", "database_up", "open_holds", "open_holds_usd",
        "log_lines_dropped", "sign_in_mails",
    )),
}  # fmt: skip


def scrape(box: Box, token: str | None = None, **headers: str) -> Samples:
    """Every sample of /metrics by name and labels, parsed by prometheus_client."""
    if token:
        headers["authorization"] = f"Bearer {token}"
    with httpx.Client(
        base_url=box.url, timeout=10, verify=TLS
    ) as client:  # a new connection each time
        answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    samples: Samples = defaultdict(dict)
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for k, v in samples.get(name, {}).items() if wanted <= set(k))


def wait_for_settled_calls(box: Box, count: int) -> None:
    """Wait until a scrape counts `count` settled calls: a worker hands its counts to the
    shared files at the end of the loop turn that answered, so another worker's scrape, made
    the moment the answer arrived, can come before that turn ends on a busy machine."""
    eventually(
        lambda: total(scrape(box), "codelace_inference_requests_total") == count,
        f"{count} settled calls in the scrape",
    )


def mixed_load(box: Box) -> tuple[str, str]:
    """Plain, streamed, failed and refused requests; (key, request id of the failure)."""
    _, key = box.new_user("10")
    sdk = box.sdk(key)
    for _ in range(2):
        sdk.chat.completions.create(model=MODEL, messages=HELLO)
        stream = sdk.chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    box.fake.push(Reply(status=500, error={"message": f"backend down (key {PROVIDER_KEY})"}))
    with pytest.raises(openai.InternalServerError) as failed:
        sdk.chat.completions.create(model=MODEL, messages=HELLO)
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="fake/no-such-model", messages=HELLO)
    _, poor = box.new_user("0")
    with pytest.raises(openai.APIStatusError) as refused:
        box.sdk(poor).chat.completions.create(model=MODEL, messages=HELLO)
    assert refused.value.status_code == 402
    return key, str(failed.value.response.headers["x-request-id"])


def test_metrics_agree_with_the_usage_rows_after_mixed_traffic(box_factory: BoxFactory) -> None:
    box = box_factory(log={"format": "json"}, gateway={"max_retries": 0})
    key, failed_id = mixed_load(box)
    samples = scrape(box)
    rows = box.query(
        "SELECT status, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos) "
        "FROM usage_record GROUP BY status"
    )
    by_status = {r[0]: r[1:] for r in rows}
    assert set(by_status) == {"ok", "error"}
    for status, (count, *_) in by_status.items():
        assert total(samples, "codelace_inference_requests_total", outcome=status) == count
    ok = by_status["ok"]
    assert ok[0] == 4
    assert total(samples, "codelace_tokens_total", kind="input") == ok[1]
    assert total(samples, "codelace_tokens_total", kind="output") == ok[2]
    cost_nanos = int(ok[3])  # SUM() is a Decimal on PostgreSQL
    assert total(samples, "codelace_cost_usd_total") == pytest.approx(cost_nanos / 1e9, rel=1e-9)
    assert total(samples, "codelace_upstream_errors_total", provider="fake") == 1
    assert total(samples, "codelace_refusals_total", status="402") == 1
    assert total(samples, "codelace_refusals_total", status="404") == 1
    assert total(samples, "codelace_upstream_first_byte_seconds_count", provider="fake") == 5
    assert total(samples, "codelace_inference_duration_seconds_count") == 6  # 402: reserved
    assert total(samples, "codelace_overhead_seconds_count") == 5  # every call that reached it
    assert total(samples, "codelace_active_streams") == 0
    assert total(samples, "codelace_open_holds") == 0
    assert total(samples, "codelace_database_up") == 1
    route = "/v1/chat/completions"
    assert total(samples, "codelace_http_requests_total", route=route, status_class="2xx") == 4
    assert total(samples, "codelace_http_requests_total", route=route, status_class="4xx") == 2
    assert total(samples, "codelace_http_requests_total", route=route, status_class="5xx") == 1
    statuses = {"200": 4, "402": 1, "404": 1, "502": 1}  # the SPEC: by route and status
    for status, count in statuses.items():
        assert total(samples, "codelace_http_requests_total", route=route, status=status) == count
    for name, series in samples.items():  # bounded labels: never a user or a key
        for labels in series:
            assert not {"user", "user_id", "key", "email"} & {k for k, _ in labels}, name

    failed = box.usage_row(failed_id)
    assert failed["status"] == "error" and "backend down" in failed["upstream_error"]
    assert PROVIDER_KEY not in failed["upstream_error"]
    box.server.stop()
    refusals = box.query("SELECT status, code, count FROM refusal_count ORDER BY status")
    assert refusals == [(402, "insufficient_credits", 1), (404, "model_not_found", 1)]
    assert box.query("SELECT COUNT(*) FROM usage_record")[0][0] == 5  # refusals wrote no row

    lines = [json.loads(line) for line in box.server.log_text().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "codelace_box.access"]
    chat = [line for line in access if line["route"] == route]
    assert len(chat) == 7
    uuids = {row[0] for row in box.query('SELECT uuid FROM "user"')}
    for line in chat:
        assert {"time", "level", "request_id", "status", "duration_ms", "user_id"} <= set(line)
        assert line["request_id"].startswith("req_")
        assert line["user_id"] in uuids  # the public id the user and operator see, not a number
    assert {line["key_prefix"] for line in chat} >= {key[:7]}
    assert any(line["request_id"] == failed_id and line["status"] == 502 for line in chat)
    upstream = [line for line in lines if "upstream error" in line["message"]]
    assert len(upstream) == 1 and failed_id in upstream[0]["message"]
    text = box.server.log_text()
    assert key not in text and PROVIDER_KEY not in text


def test_text_access_lines_name_the_request_and_never_the_key(box_factory: BoxFactory) -> None:
    box = box_factory()
    _, key = box.new_user("10")
    done = box.http(key).post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    request_id = done.headers["x-request-id"]
    line = box.server.wait_for_log(rf".*POST /v1/chat/completions 200 .*request={request_id}")[0]
    assert f"model={MODEL}" in line and f"key={key[:7]}" in line and key not in line
    assert "codelace_box.access" in line


def test_the_access_line_names_the_box_key_not_another_token_sent_with_it(
    box_factory: BoxFactory,
) -> None:
    """/v1/messages takes the box key from x-api-key when Authorization carries some other
    token (Claude Code with a user's own credential exported too): the access line names the
    box key's prefix, never the first characters of that other secret."""
    box = box_factory()
    _, key = box.new_user("10")
    other = "tok9SECRETother-credential-of-the-user"
    headers = {"x-api-key": key, "authorization": f"Bearer {other}", "anthropic-version": "1"}
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 5}
    done = httpx.post(box.url + "/v1/messages/count_tokens", json=body, headers=headers, verify=TLS)
    assert done.status_code == 200, done.text
    request_id = done.headers["x-request-id"]
    line = box.server.wait_for_log(rf".*/v1/messages/count_tokens 200 .*request={request_id}")[0]
    assert f"key={key[:7]}" in line and other[:4] not in line


def test_metrics_token_and_loopback_rules(box_factory: BoxFactory) -> None:
    box = box_factory(metrics={"token": "scrape-token-123"})
    get = httpx.Client(base_url=box.url, timeout=10, verify=TLS).get
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": b"Bearer \xe9\xff"}):
        answer = get("/metrics", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["type"] == "authentication_error"
    assert (
        "codelace_http_requests_total"
        in get("/metrics", headers={"authorization": "Bearer scrape-token-123"}).text
    )
    proxied = box_factory(server={"proxies_count": 1})
    get = httpx.Client(base_url=proxied.url, timeout=10, verify=TLS).get
    outside = get("/metrics", headers={"x-forwarded-for": "203.0.113.7"})
    assert outside.status_code == 403 and outside.json()["error"]["code"]
    assert get("/metrics", headers={"x-forwarded-for": "127.0.0.1"}).status_code == 200
    off = box_factory(metrics={"enabled": False})
    assert httpx.get(off.url + "/metrics", timeout=10, verify=TLS).status_code == 404


def test_metrics_take_the_address_proxies_count_hops_back_not_what_the_client_wrote(
    box_factory: BoxFactory,
) -> None:
    """Behind one proxy the real address is the last X-Forwarded-For entry (the one the proxy
    added): a client that writes 127.0.0.1 first is still outside; with two proxies, the one
    before them. Without proxies_count the header is not taken as the address, but it says a
    proxy forwarded the request: not the loopback's (test_metrics_behind_a_proxy.py)."""
    one = box_factory(server={"proxies_count": 1})
    two = box_factory(server={"proxies_count": 2})
    none = box_factory()

    def status(box: Box, forwarded: str) -> int:
        headers = {"x-forwarded-for": forwarded}
        return httpx.get(box.url + "/metrics", headers=headers, timeout=10, verify=TLS).status_code

    assert status(one, "127.0.0.1, 203.0.113.7") == 403  # forged first entry
    assert status(one, "203.0.113.7, 127.0.0.1") == 200  # the proxy saw a local client
    assert status(two, "127.0.0.1, 10.0.0.2") == 200
    assert status(two, "203.0.113.7, 127.0.0.1") == 403
    assert status(none, "127.0.0.1") == 403  # a request a proxy forwarded: see below
    assert status(none, "203.0.113.7") == 403  # the socket peer is the proxy's loopback


@pytest.mark.parametrize(
    "header",
    [("x-forwarded-for", "203.0.113.7"), ("forwarded", "for=203.0.113.7"),
     ("x-real-ip", "203.0.113.7")],
)  # fmt: skip
def test_a_request_a_local_proxy_forwarded_gets_no_metrics_unless_its_client_is_known(
    box_factory: BoxFactory, header: tuple[str, str]
) -> None:
    """The usual install has nginx or Caddy on the same machine in front of the box: every
    request then comes from the loopback. Without server.proxies_count (forgotten, or not
    known to matter for /metrics) the whole internet got the token-less /metrics (traffic,
    spend, providers, per model) through the proxy. A request that names a client it was
    forwarded for is no local scrape: 403, until proxies_count says how to read it (and the
    proxy sends X-Forwarded-For, which is what proxies_count reads). A local scraper (no such
    header) still gets it."""
    box = box_factory()
    get = httpx.Client(base_url=box.url, timeout=10, verify=TLS).get
    answer = get("/metrics", headers=dict([header]))
    assert answer.status_code == 403
    assert "proxies_count" in answer.json()["error"]["message"]
    assert get("/metrics").status_code == 200
    # behind a proxy that sends only the headers Sanic does not read for proxies_count
    proxied = httpx.Client(
        base_url=box_factory(server={"proxies_count": 1}).url, timeout=10, verify=TLS
    )
    if header[0] != "x-forwarded-for":
        assert proxied.get("/metrics", headers=dict([header])).status_code == 403


def ipv6_available() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::", 0))
    except OSError:
        return False
    return True


def test_an_ipv4_loopback_client_of_a_dual_stack_box_is_loopback(box_factory: BoxFactory) -> None:
    """On `host = "::"` an IPv4 client arrives as ::ffff:127.0.0.1: the local Prometheus
    scraping 127.0.0.1 is on the loopback all the same (so is a proxy's word for it)."""
    proxied = box_factory(server={"proxies_count": 1})
    forwarded = {"x-forwarded-for": "::ffff:127.0.0.1"}
    assert (
        httpx.get(proxied.url + "/metrics", headers=forwarded, timeout=10, verify=TLS).status_code
        == 200
    )
    outside = {"x-forwarded-for": "::ffff:203.0.113.7"}
    assert (
        httpx.get(proxied.url + "/metrics", headers=outside, timeout=10, verify=TLS).status_code
        == 403
    )
    if not ipv6_available():
        pytest.skip("no IPv6 on this machine: a dual-stack listener cannot be tried")
    dual = box_factory(server={"host": "::"})
    answer = httpx.get(
        dual.url + "/metrics", timeout=10, verify=TLS
    )  # dual.url: http://127.0.0.1:PORT
    assert answer.status_code == 200, answer.text
    assert "codelace_http_requests_total" in answer.text


def test_two_workers_show_one_view(box_factory: BoxFactory) -> None:
    box = box_factory("--workers", "2")
    _, key = box.new_user("10")
    for _ in range(6):  # a new connection each: the requests spread over the workers
        with box.http(key) as client:
            done = client.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
            assert done.status_code == 200
    wait_for_settled_calls(box, 6)
    seen = {total(scrape(box), "codelace_inference_requests_total", outcome="ok") for _ in range(6)}
    assert seen == {6.0}
    text = httpx.get(box.url + "/metrics", timeout=10, verify=TLS).text
    families = {f.name for f in text_string_to_metric_families(text)}
    assert families <= FAMILIES, families - FAMILIES  # nothing of the box's own machinery


def test_one_worker_shows_the_families_two_workers_show(box_factory: BoxFactory) -> None:
    """serve's default, one worker, scrapes the families two workers do: no `*_created`
    gauge beside each labelled counter and histogram (a second series of each, doubling what
    a scraper stores per model), no Python or process families that come and go with
    `--workers`."""
    box = box_factory()
    _, key = box.new_user("10")
    with box.http(key) as client:
        done = client.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
        assert done.status_code == 200
    wait_for_settled_calls(box, 1)
    text = httpx.get(box.url + "/metrics", timeout=10, verify=TLS).text
    families = {f.name for f in text_string_to_metric_families(text)}
    assert "codelace_tokens" in families
    assert families <= FAMILIES, sorted(families - FAMILIES)


def test_a_client_that_leaves_is_a_499_not_a_server_error(box_factory: BoxFactory) -> None:
    """A client that closes its connection before the answer: its access line and the request
    metrics say 499 (the client closed the request), no 5xx, while the call is still charged
    for what the upstream did."""
    box = box_factory()
    email, key = box.new_user("5")
    box.fake.push(Reply(delay_before=1.0, prompt_tokens=5, completion_tokens=7))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello"}]}
    headers = {"authorization": f"Bearer {key}"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{box.url}/v1/chat/completions", json=body, headers=headers, timeout=0.3, verify=TLS
        )
    row = box.settled_row(_only_request_id(box, email))
    assert (row["status"], row["output_tokens"]) == ("abandoned", 7)
    lines = [line for line in box.server.log_text().splitlines() if "/v1/chat/completions" in line]
    assert len(lines) == 1 and " 499 " in lines[0], lines
    samples = scrape(box)
    route = "/v1/chat/completions"
    assert total(samples, "codelace_http_requests_total", route=route, status_class="4xx") == 1
    assert total(samples, "codelace_http_requests_total", route=route, status_class="5xx") == 0


def _only_request_id(box: Box, email: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        rows = box.query(
            'SELECT r.request_id FROM usage_record r JOIN "user" u ON u.id = r.user_id '
            "WHERE u.email = ?",
            email,
        )
        if rows or time.monotonic() > deadline:
            assert len(rows) == 1, rows
            return str(rows[0][0])
        time.sleep(0.05)


def test_every_error_code_the_box_names_keeps_its_own_upstream_errors_label() -> None:
    """codelace_upstream_errors_total bounds its `code` label to a list (an upstream's own
    words in a stream error would grow it without end): each code the box itself raises must
    be on it, or a new one would be counted as upstream_error unseen."""
    import re
    from pathlib import Path

    from codelace_box import metrics
    from codelace_box.gateway.outcome import OWN_TROUBLE_CODES

    package = Path(metrics.__file__).parent
    sources = [package / "errors.py", *(package / "gateway").rglob("*.py")]
    sources += (package / "providers").rglob("*.py")
    named = {
        code
        for source in sources
        for code in re.findall(r'(?:code=|code = )"([a-z0-9_]+)"', source.read_text())
    } - OWN_TROUBLE_CODES  # the box's own trouble (database, descriptors): never counted there
    assert named - metrics.UPSTREAM_ERROR_CODES == set()
    assert metrics.upstream_error_code("rate_limited") == "rate_limited"
    assert metrics.upstream_error_code("upstream_429") == "upstream_429"
    assert metrics.upstream_error_code("upstream_4290") == "upstream_error"
    assert metrics.upstream_error_code("proxy says no") == "upstream_error"


def test_metrics_on_the_loopback_answer_only_a_local_host_name(box_factory: BoxFactory) -> None:
    """DNS rebinding: a web page at evil.example, whose name then resolves to 127.0.0.1, has a
    browser on the box's machine fetch http://evil.example:PORT/metrics as its own origin: the
    peer is the loopback, so the token-less /metrics answered, and the page read it. A local
    scraper names a local host (localhost, an address, the box's own host or public_url)."""
    box = box_factory(server={"public_url": "https://box.example.test"})
    port = box.url.rsplit(":", 1)[1]
    get = httpx.Client(base_url=box.url, timeout=10, verify=TLS).get

    def status(host: str) -> int:
        return get("/metrics", headers={"host": host}).status_code

    assert status(f"evil.example:{port}") == 403
    assert status(f"127.0.0.1.evil.example:{port}") == 403
    for local in (f"localhost:{port}", f"127.0.0.1:{port}", "127.0.0.1", f"[::1]:{port}",
                  "box.example.test", f"LOCALHOST:{port}", socket.gethostname()):  # fmt: skip
        assert status(local) == 200, local
