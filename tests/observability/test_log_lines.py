"""serve's log lines as a log shipper reads them: with `log.format = "json"`, every line logged
while a request is served carries that request's id as a field, not only the access line."""

from __future__ import annotations

import json
import re
import socket
import time

import openai
import pytest

from tests.fakes.openai_upstream import Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory

HELLO = [{"role": "user", "content": "Hello"}]
PROVIDER_KEY = "sk-fake-key-0001"


def test_every_json_line_of_a_failed_request_carries_its_request_id(
    box_factory: BoxFactory,
) -> None:
    """An upstream failure writes a warning besides the access line: a shipper that finds a
    request's lines by `request_id` must find both (the id in the message text is not a
    field it can filter on)."""
    box = box_factory(log={"format": "json"}, gateway={"max_retries": 0})
    _, key = box.new_user("10")
    box.fake.push(Reply(status=500, error={"message": f"backend down (key {PROVIDER_KEY})"}))
    with pytest.raises(openai.InternalServerError) as failed:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    request_id = str(failed.value.response.headers["x-request-id"])
    box.server.wait_for_log(rf'.*"request_id":"{request_id}"')
    box.server.stop()
    lines = [json.loads(line) for line in box.server.log_text().splitlines() if line.strip()]
    about = [line for line in lines if request_id in json.dumps(line)]
    assert {line["logger"] for line in about} >= {"codelace_box.access", "codelace_box.gateway"}
    assert all(line.get("request_id") == request_id for line in about), about
    assert PROVIDER_KEY not in box.server.log_text()


@pytest.mark.parametrize("stream", [False, True])
def test_a_settlement_warning_carries_its_request_id(box_factory: BoxFactory, stream: bool) -> None:
    """A settlement runs in a batch of every request's writes (no request's context): its
    warning that the provider reported more than was reserved (the operator's loss) named the
    request in its text only, not as the field a shipper filters on."""
    box = box_factory(log={"format": "json"})
    _, key = box.new_user("1")
    box.fake.push(Reply(prompt_tokens=10**20))
    body: dict[str, object] = {
        "model": MODEL,
        "messages": HELLO,
        "max_tokens": 10,
        "stream": stream,
    }
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    request_id = answer.headers["x-request-id"]
    (raw,) = box.server.wait_for_log(rf'.*"message":"request {request_id}: the provider reported.*')
    line = json.loads(raw)
    assert (line["level"], line.get("request_id")) == ("warning", request_id), line


def test_an_upstreams_message_cannot_forge_a_text_log_line(box_factory: BoxFactory) -> None:
    """The upstream's error text is logged (and an upstream may echo what a client sent): with
    `log.format = "text"` a line break in it must not start a line of its own that reads as
    the box's, such as an access line for a request that never was."""
    box = box_factory(gateway={"max_retries": 0})
    forged = (
        "bad value 'x'\n2026-01-01 00:00:00,000 INFO codelace_box.access: POST "
        "/v1/chat/completions 200 1.0ms model=- user=- key=cl_FAKE request=req_forged\r\nmore"
    )
    request_id = _refused_with(box, forged)
    box.server.wait_for_log(rf".*upstream error: request {request_id}")
    box.server.stop()
    lines = box.server.log_text().splitlines()
    told = [line for line in lines if "req_forged" in line]
    assert len(told) == 1 and f"upstream error: request {request_id}" in told[0], told
    assert not [line for line in lines if line.startswith(("2026-01-01", "more"))]


def test_an_upstreams_message_cannot_drive_the_operators_terminal(
    box_factory: BoxFactory,
) -> None:
    """OpenAI's 400 echoes a bad value a client sent ("Invalid value: '...'. Supported values
    are ..."): an ESC in it reached the text log raw, and `tail -f` in a terminal ran the
    escape sequence (here: erase the screen, move the cursor home, print in red)."""
    box = box_factory(gateway={"max_retries": 0})
    echoed = "Invalid value: '\x1b[2J\x1b[H\x1b[31mhigh'. Supported values are: 'low', 'high'."
    request_id = _refused_with(box, echoed, param="reasoning_effort")
    (line,) = box.server.wait_for_log(rf".*upstream error: request {request_id}.*")
    assert "Invalid value: '\\x1b[2J\\x1b[H\\x1b[31mhigh'" in line, line
    assert "\x1b" not in box.server.log_text()


def test_a_text_line_logged_for_a_request_names_it(box_factory: BoxFactory) -> None:
    """With `log.format = "text"` too: a key refused once but accepted by its probe is logged
    (it stays in rotation) for the request that met the refusal, and the line says which."""
    box = box_factory(gateway={"max_retries": 0})
    _, key = box.new_user("10")
    box.fake.push(Reply(status=401, error={"message": "Incorrect API key provided"}))
    with box.http(key) as client:
        answer = client.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    request_id = answer.headers["x-request-id"]
    (line,) = box.server.wait_for_log(r".*it stays in rotation.*")
    assert f"request={request_id}" in line, line


def test_a_json_line_holds_no_character_that_ends_a_line_or_drives_a_terminal(
    box_factory: BoxFactory,
) -> None:
    """JSON escapes only the controls below 0x20: an upstream's message (perhaps echoing a
    client's words) with U+2028/U+2029 or NEL (U+0085) split one JSON line into several for a
    reader that splits lines as Python's `splitlines` does (and JavaScript's JSON), and C1
    controls such as CSI (U+009B, ESC [ in one character) reached the terminal raw."""
    box = box_factory(log={"format": "json"}, gateway={"max_retries": 0})
    echoed = "Invalid value: 'a\u2028b\u2029c\x85d\x9b2Je\x7f'. Supported values are: 'low'."
    request_id = _refused_with(box, echoed)
    box.server.wait_for_log(rf'.*"request_id":"{request_id}"')
    box.server.stop()
    text = box.server.log_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # each one whole
    (told,) = [line for line in lines if "upstream error" in line["message"]]
    # the words, decoded: the C1 controls and DEL already escapes in the upstream's words
    # (crypto.visible_controls, as a client gets them), the line breaks as they came
    assert "a\u2028b\u2029c\\x85d\\x9b2Je\\x7f" in told["message"]
    assert not any(char in text for char in "\u2028\u2029\x85\x9b\x7f")  # escaped on the line


def test_a_json_line_holds_no_direction_override(box_factory: BoxFactory) -> None:
    """A right-to-left override (U+202E) or isolate in an upstream's message (echoing a
    client's words) reached a JSON line raw: a terminal or viewer showing the log reversed the
    rest of the line, so `... request=req_1 ... 'txt.exe'` read as another request's words
    (Trojan Source). The text format writes them as escapes; the JSON one now too."""
    box = box_factory(log={"format": "json"}, gateway={"max_retries": 0})
    arabic = "\u0645\u0631\u062d\u0628\u0627"
    echoed = f"Invalid value: 'a\u202eb\u2066c\u2069d\u200fe\u061cf'. Arabic stays: {arabic}"
    request_id = _refused_with(box, echoed)
    box.server.wait_for_log(rf'.*"request_id":"{request_id}"')
    box.server.stop()
    text = box.server.log_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    (told,) = [line for line in lines if "upstream error" in line["message"]]
    # the words, decoded: the overrides and isolates already escapes in the upstream's words
    # (crypto.visible_controls, as a client gets them), the marks as they came
    assert "a\\u202eb\\u2066c\\u2069d\u200fe\u061cf" in told["message"]
    assert not any(char in text for char in "\u202e\u2066\u2069\u200f\u061c")
    assert arabic in text  # letters are no controls: kept as they are


def _refused_with(box: Box, message: str, **error: str) -> str:
    """A chat completion of a new user that the upstream refuses with a 400 saying `message`
    (and `error`'s other fields); its request id."""
    _, key = box.new_user("10")
    box.fake.push(Reply(status=400, error={"message": message, **error}))
    with box.http(key) as client:
        answer = client.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert answer.status_code == 400
    return str(answer.headers["x-request-id"])


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/api/v1/auth/otp/request"])
def test_a_request_whose_body_never_came_whole_logs_how_long_it_took(
    box_factory: BoxFactory, route: str
) -> None:
    """A client that sends its head and part of its body, then waits a second and leaves: its
    access line said `499 0.0ms` (the duration was counted from the request middleware, which a
    body that never came whole never reaches), hiding the slow clients an operator looks for."""
    box = box_factory(log={"format": "json"})
    _, key = box.new_user("1")
    head = (
        f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    with socket.create_connection(("127.0.0.1", box.server.port)) as client:
        client.sendall(head.encode())
        time.sleep(1.0)
    (raw,) = box.server.wait_for_log(rf'.*"route":"{route}","status":499.*')
    line = json.loads(raw)
    assert line["request_id"].startswith("req_"), line
    assert 900 <= line["duration_ms"] < 30_000, line


def test_a_request_too_slow_to_arrive_logs_how_long_it_took(box_factory: BoxFactory) -> None:
    """A body that stops arriving gets its 408 once the request timeout passed: its access line
    said 0.2ms (the request middleware ran only for the 408, and the duration began there)."""
    box = box_factory(log={"format": "json"}, env={"CODELACE_SANIC_REQUEST_TIMEOUT": "1"})
    _, key = box.new_user("1")
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: 100\r\n\r\n{{"
    )
    with socket.create_connection(("127.0.0.1", box.server.port)) as client:
        client.settimeout(30)
        client.sendall(head.encode())
        assert client.recv(100).startswith(b"HTTP/1.1 408 ")
    (raw,) = box.server.wait_for_log(r'.*"route":"/v1/chat/completions","status":408.*')
    assert 900 <= json.loads(raw)["duration_ms"] < 30_000, raw


def test_a_count_tokens_access_line_names_its_model(box_factory: BoxFactory) -> None:
    """/v1/messages/count_tokens names a model the box resolves (and may ask its provider
    about): its access line names it as a /v1/messages line does, not `model=-`."""
    box = box_factory(log={"format": "json"})
    _, key = box.new_user("1")
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    body = {"model": MODEL, "max_tokens": 10, "messages": HELLO}
    with box.http(None) as http:
        counted = http.post("/v1/messages/count_tokens", json=body, headers=headers)
    assert counted.status_code == 200, counted.text
    request_id = counted.headers["x-request-id"]
    (raw,) = box.server.wait_for_log(rf'.*"logger":"codelace_box.access".*"{request_id}".*')
    line = json.loads(raw)
    assert (line["route"], line["model"]) == ("/v1/messages/count_tokens", MODEL), line


def test_a_refusal_of_a_model_the_key_may_not_call_names_that_model(
    box_factory: BoxFactory,
) -> None:
    """A 403 `model_not_allowed` is a refusal of one named model (resolved from the catalog):
    the access line names it as it names a 402's or a 429's, not `model=-`, so an operator
    reading the log sees which model the key was refused (the SPEC's access line: "route,
    status, duration, model, ...")."""
    box = box_factory(log={"format": "json"})
    other = "fake/other-model"
    prices = ("--input-per-1m", "1", "--output-per-1m", "1")
    box.cli("models", "set", other, "--provider", "fake", *prices)
    box.until_served(other)
    _, key = box.new_user("1")
    with box.http(key) as http:
        limited = http.post("/api/v1/auth/key", json={"name": "only", "allowed_models": [MODEL]})
        assert limited.status_code == 200, limited.text
        headers = {"authorization": f"Bearer {limited.json()['full_key']}"}
        body = {"model": other, "max_tokens": 10, "messages": HELLO}
        refused = http.post("/v1/chat/completions", json=body, headers=headers)
        # count_tokens, which Claude Code calls beside each message, refuses it the same way
        headers["anthropic-version"] = "2023-06-01"
        not_counted = http.post("/v1/messages/count_tokens", json=body, headers=headers)
    assert refused.json()["error"]["code"] == "model_not_allowed", refused.text
    assert not_counted.json()["error"]["type"] == "permission_error", not_counted.text
    for answer in (refused, not_counted):
        assert answer.status_code == 403, answer.text
        request_id = answer.headers["x-request-id"]
        (raw,) = box.server.wait_for_log(rf'.*"logger":"codelace_box.access".*"{request_id}".*')
        line = json.loads(raw)
        assert (line["status"], line["model"]) == (403, other), line


def test_a_refusal_of_a_model_of_a_disabled_provider_names_that_model(
    box_factory: BoxFactory,
) -> None:
    """A key refused a model whose provider is disabled gets the same 403 `model_not_allowed`
    (routing.ProviderUnavailable, checked before the 503): its access line names the model as
    the refusal of a served model's does, and so does the 503 a key allowed it gets."""
    box = box_factory(log={"format": "json"})
    other = "fake/other-model"
    prices = ("--input-per-1m", "1", "--output-per-1m", "1")
    box.cli("models", "set", other, "--provider", "fake", *prices)
    box.until_served(other)
    _, key = box.new_user("1")
    body = {"model": other, "max_tokens": 10, "messages": HELLO}
    with box.http(key) as http:
        limited = http.post("/api/v1/auth/key", json={"name": "only", "allowed_models": [MODEL]})
        assert limited.status_code == 200, limited.text
        box.cli("providers", "disable", "fake")
        for _ in range(100):  # until the workers' route tables have it
            unavailable = http.post("/v1/chat/completions", json=body)
            if unavailable.status_code == 503:
                break
            time.sleep(0.1)
        headers = {"authorization": f"Bearer {limited.json()['full_key']}"}
        refused = http.post("/v1/chat/completions", json=body, headers=headers)
    assert unavailable.json()["error"]["code"] == "provider_unavailable", unavailable.text
    assert refused.json()["error"]["code"] == "model_not_allowed", refused.text
    for answer in (unavailable, refused):
        request_id = answer.headers["x-request-id"]
        (raw,) = box.server.wait_for_log(rf'.*"logger":"codelace_box.access".*"{request_id}".*')
        line = json.loads(raw)
        assert (line["status"], line["model"]) == (answer.status_code, other), line


def _call_with_a_malformed_cookie(box: Box) -> None:
    """A call whose upstream answer sets a malformed cookie: aiohttp warns of it (a library's
    warning; it takes cookies only from a host name, not an IP)."""
    _, key = box.new_user("10")
    by_name = box.fake.base_url.replace("127.0.0.1", "localhost")
    box.cli("providers", "update", "fake", "--base-url", by_name)
    box.until_reloaded()
    box.fake.push(Reply(headers={"set-cookie": "session id=1; Path=/"}))
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("workers", [1, 2])
def test_another_librarys_warning_is_a_json_line_too(box_factory: BoxFactory, workers: int) -> None:
    """Only our loggers and Sanic's wrote JSON: a warning of a library the box uses (here
    aiohttp's, about an upstream's malformed cookie; asyncio's, psycopg's and the like go the
    same way) came out as a bare text line, which a shipper parsing JSON lines breaks on."""
    box = box_factory(log={"format": "json"}, server={"workers": workers})
    _call_with_a_malformed_cookie(box)
    box.server.wait_for_log(r".*Illegal cookie name.*")
    box.server.stop()
    text = box.server.log_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # each one whole
    (told,) = [line for line in lines if "Illegal cookie name" in line["message"]]
    assert (told["level"], told["logger"]) == ("warning", "aiohttp.internal"), told
    assert len([line for line in lines if line["message"].startswith("Starting worker")]) == workers
    assert PROVIDER_KEY not in text


# a text line of the box's: local time to the millisecond, level, logger: message
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")


@pytest.mark.parametrize("workers", [1, 2])
def test_another_librarys_warning_is_a_text_line_of_ours(
    box_factory: BoxFactory, workers: int
) -> None:
    """With `log.format = "text"` a library's warning (aiohttp's, about an upstream's
    malformed cookie) came out bare, without the time, level and logger every line of ours
    has; Sanic's own lines are still written once each."""
    box = box_factory(log={"format": "text"}, server={"workers": workers})
    _call_with_a_malformed_cookie(box)
    box.server.wait_for_log(r".*Illegal cookie name.*")
    box.server.stop()
    text = box.server.log_text()
    (told,) = [line for line in text.splitlines() if "Illegal cookie name" in line]
    assert TEXT_LINE.match(told) and " WARNING aiohttp.internal: " in told, told
    assert len([line for line in text.splitlines() if "Starting worker" in line]) == workers
    assert PROVIDER_KEY not in text


@pytest.mark.parametrize("workers", [1, 2])
def test_sanics_own_lines_are_text_lines_of_ours(box_factory: BoxFactory, workers: int) -> None:
    """`log.format = "text"` is documented as time, level, logger, message on every line;
    Sanic's own lines ("Starting worker", "Worker ready", its stop) kept Sanic's look
    (`Main  2026-12-08 04:57:32 +0000 INFO: Starting worker [26442]`, on stdout), a second
    format among ours for anyone reading or parsing the log."""
    box = box_factory(log={"format": "text"}, server={"workers": workers})
    with box.http(None) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
    box.server.wait_for_log(r".*Worker ready.*", count=workers)  # each worker up, not only one
    assert box.server.stop() == 0
    lines = [line for line in box.server.log_text().splitlines() if line.strip()]
    started = [line for line in lines if "Starting worker" in line]
    assert len(started) == workers, lines
    assert all(" INFO sanic." in line for line in started), started
    assert [line for line in lines if not TEXT_LINE.match(line)] == [], lines


def test_log_level_error_leaves_out_the_libraries_warnings_too(box_factory: BoxFactory) -> None:
    """`log.level = error` is the lowest level written: a library's warning (aiohttp's, about
    an upstream's malformed cookie: written at the default level, the test above) came out
    all the same."""
    box = box_factory(log={"format": "json", "level": "error"})
    _call_with_a_malformed_cookie(box)
    box.server.stop()
    lines = [json.loads(line) for line in box.server.log_text().splitlines() if line.strip()]
    assert not [line for line in lines if "Illegal cookie name" in line["message"]], lines
    assert not [line for line in lines if line["level"] == "warning"], lines


@pytest.mark.parametrize(("log_format", "workers"), [("text", 1), ("json", 2)])
def test_log_level_error_leaves_out_sanics_info_lines(
    box_factory: BoxFactory, log_format: str, workers: int
) -> None:
    """`log.level = error` held for our lines and the libraries', while Sanic's own ("Starting
    worker", "Worker ready", its supervisor's) still came at info. The box starts and answers
    all the same."""
    box = box_factory(log={"format": log_format, "level": "error"}, server={"workers": workers})
    with box.http(None) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
    assert box.server.stop() == 0
    lines = box.server.log_text().splitlines()
    info = [line for line in lines if " INFO" in line or '"level":"info"' in line]
    assert not info, lines
    assert not [line for line in lines if "Starting worker" in line], lines


def test_a_refusal_before_the_model_resolves_names_the_model_asked_for(
    box_factory: BoxFactory,
) -> None:
    """A 404 `model_not_found` (on the call routes and count_tokens) and a 400 on a bad field of
    a body naming a model logged `model=-`: the operator could not tell which model the client
    asked for. The line names it, written as the method is (escapes, anything key-like masked,
    cut), and with no blank in it that would shift the line's fields."""
    box = box_factory()
    _, key = box.new_user("1")
    odd = f"fake/n\x1bpe {key} user=1"
    asked = {
        ("/v1/chat/completions", "fake/nope"): {"messages": HELLO},
        ("/v1/responses", "fake/nope"): {"input": "Hello"},
        ("/v1/messages/count_tokens", "fake/nope"): {"messages": HELLO, "max_tokens": 10},
        ("/v1/chat/completions", MODEL): {"messages": HELLO, "max_tokens": "ten"},
        ("/v1/chat/completions", odd): {"messages": HELLO},
    }
    headers = {"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
    lines = {}
    with box.http(None) as http:
        for (route, model), rest in asked.items():
            answer = http.post(route, json={"model": model, **rest}, headers=headers)
            assert answer.status_code in (400, 404), answer.text
            request_id = answer.headers["x-request-id"]
            (lines[route, model],) = box.server.wait_for_log(rf".*request={request_id}.*")
    for (route, model), line in list(lines.items())[:4]:
        assert f"POST {route} " in line and f" model={model} user=" in line, line
    odd_line = lines["/v1/chat/completions", odd]
    assert " model=fake/n\\x1bpe\\x20" in odd_line and "\\x20user=1 user=" in odd_line, odd_line
    assert key not in box.server.log_text() and "\x1b" not in box.server.log_text()


def test_a_dated_model_id_is_logged_whole_by_count_tokens(box_factory: BoxFactory) -> None:
    """A catalog id such as `fake/claude-sonnet-4-5-20250929` (Anthropic's dated names, which
    Claude Code counts tokens for beside each message) is the operator's own: count_tokens'
    access line names it whole, as the call's line does, not masked as if it were a key."""
    box = box_factory()
    dated = "fake/claude-sonnet-4-5-20250929"
    prices = ("--input-per-1m", "1", "--output-per-1m", "1")
    box.cli("models", "set", dated, "--provider", "fake", *prices)
    box.until_served(dated)
    _, key = box.new_user("1")
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    body = {"model": dated, "max_tokens": 10, "messages": HELLO}
    with box.http(None) as http:
        counted = http.post("/v1/messages/count_tokens", json=body, headers=headers)
    assert counted.status_code == 200, counted.text
    request_id = counted.headers["x-request-id"]
    (line,) = box.server.wait_for_log(rf".*request={request_id}.*")
    assert f" model={dated} user=" in line, line


def test_a_refused_dated_model_name_is_logged_readable_and_a_key_still_masked(
    box_factory: BoxFactory,
) -> None:
    """A client's dated model name in a refused call (`claude-sonnet-4-5-20250929`, no alias
    yet: a 400) was masked as if it were a key (`cla…0929`): the operator could not tell which
    model was asked for. Names of words and numbers stay readable; a key sent as the model
    (known prefix, or a long random token with no prefix) never reaches the log."""
    box = box_factory()
    _, key = box.new_user("1")
    dated, other = "claude-sonnet-4-5-20250929", "Meta-Llama-3.1-70B-Instruct-Turbo"
    provider_key = "sk-ant-api03-" + "Zq8vR2xK" * 5
    random_token = "q7Xv2LpA9mWz4KcR8tYb3NsH6dJf1GeU"
    shaped = ("AKIAIOSFODNN7EXAMPLE", "hf_" + "AbCdEfGhIj" * 3 + "Klmn",
              "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")  # AWS, Hugging Face, base64 # fmt: skip
    headers = {"authorization": f"Bearer {key}"}
    lines = {}
    with box.http(None) as http:
        for model in (dated, other, provider_key, random_token, *shaped):
            answer = http.post("/v1/chat/completions", json={"model": model, "messages": HELLO},
                               headers=headers)  # fmt: skip
            assert answer.status_code in (400, 404), answer.text  # no provider/ in it: 400
            request_id = answer.headers["x-request-id"]
            (lines[model],) = box.server.wait_for_log(rf".*request={request_id}.*")
    for model in (dated, other):
        assert f" model={model} user=" in lines[model], lines[model]
    log = box.server.log_text()
    for secret in (provider_key, random_token, key, *shaped):
        assert secret not in log and secret[4:-4] not in log


def test_the_start_line_names_the_listen_address_beside_the_public_url(
    box_factory: BoxFactory,
) -> None:
    """Behind a reverse proxy (README, "Running under systemd") `public_url` is set: serve's
    start line named only it (`serving on https://llm.example.com`), so nothing in the log
    said the address and port the proxy must pass requests to."""
    box = box_factory(server={"public_url": "https://llm.example.com"})
    (line,) = box.server.wait_for_log(r".*codelace-box serving on .*")
    listen = f"127.0.0.1:{box.server.port}"
    assert f"serving on https://llm.example.com, listening on http://{listen} (1 worker" in line


def test_a_disabled_accounts_refused_request_names_the_account_and_key(
    box_factory: BoxFactory,
) -> None:
    """An operator disables an account (`users disable`) and its clients keep calling: the
    key is a valid one of that account, yet the 403 `account_disabled` access line said
    `user=- key=-`, so the log could not tell whose requests were being refused (the SPEC's
    access line: model, user id, key prefix). A key that is no key stays unnamed."""
    box = box_factory(log={"format": "json"})
    email, key = box.new_user("1")
    user_id = json.loads(box.cli("users", "show", email, "--json"))["id"]
    box.cli("users", "disable", email)
    with box.http(key) as http:
        refused = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
        unknown = http.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": HELLO},
            headers={"authorization": "Bearer " + key[:-4] + "AAAA"},
        )
    assert refused.json()["error"]["code"] == "account_disabled", refused.text
    assert unknown.status_code == 401, unknown.text
    for answer, named in ((refused, (user_id, key[:7])), (unknown, (None, None))):
        request_id = answer.headers["x-request-id"]
        (raw,) = box.server.wait_for_log(rf'.*"logger":"codelace_box.access".*"{request_id}".*')
        line = json.loads(raw)
        assert (line["user_id"], line["key_prefix"]) == named, line
