"""Secrets the operator configured never reach a message: what a failing command prints on
stderr, what `version --verbose` shows, what serve logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from bench.pgcluster import PgCluster
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.anthropic_upstream import Reply as AnthropicReply
from tests.fakes.openai_upstream import Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.support import TLS, ServerProcess, base_sections, free_port, run_cli, write_config

HELLO = [{"role": "user", "content": "Hello"}]
SECRET = "a-shared-secret-for-every-box-000000000000"


def test_a_password_in_the_database_urls_query_is_not_printed(tmp_path: Path) -> None:
    """libpq takes any connection parameter in the URL's query string, the password too
    (`postgresql://box@db/codelace?password=...`): a database that cannot be opened printed the
    whole URL, password and all, in every command's error (and serve's log); and a password
    with a % that is no escape was quoted by libpq's own error about it."""
    for url in (
        "postgresql://box@127.0.0.1:1/codelace?password=hunter2-query",
        "postgresql://box@127.0.0.1:1/codelace?sslmode=disable&sslpassword=hunter2-ssl",
        "postgresql://box@127.0.0.1:1/codelace?PassWord=hunter2-case&application_name=x",
        # a % in a password not written %25: libpq's own error quotes the password
        "postgresql://box:hunter2%-raw@127.0.0.1:1/codelace",
        "postgresql://box@127.0.0.1:1/codelace?password=hunter2%zz",
    ):
        config = write_config(
            tmp_path / "c.toml", {"database": {"url": url}, "server": {"secret_key": SECRET}}
        )
        for args in (("doctor",), ("users", "list"), ("version", "--verbose")):
            done = run_cli(config, *args)
            shown = done.stdout + done.stderr
            assert "cannot open the database" in shown, shown
            assert "hunter2" not in shown, (args, shown)
            assert "127.0.0.1:1/codelace" in shown, shown  # the rest is still shown


def test_a_password_holding_a_hash_or_question_mark_is_not_printed(tmp_path: Path) -> None:
    """libpq takes a password written raw with #, ? or [ in it (its URI reads credentials up
    to the first @), where a URL parser ends the host part at # or ?: such a password was
    printed whole by every command that could not open the database (and by db copy's line
    and its audit entries, backup's)."""
    _not_printed(tmp_path, (
        "postgresql://box:hunter2#x@127.0.0.1:1/codelace",
        "postgresql://box:hunter2?x@127.0.0.1:1/codelace",
        "postgresql://box:hunter2[x@127.0.0.1:1/codelace",
        "postgresql://box@127.0.0.1:1/codelace?password=x#hunter2",
    ))  # fmt: skip


def test_a_password_holding_a_raw_slash_or_at_sign_is_not_printed(tmp_path: Path) -> None:
    """A generated password often holds a / (base64) or an @, and an operator may write it
    raw: libpq then ends the host part at the / (the credentials it reads have no @), or the
    credentials at the first @. The whole password was printed in every command's error
    (database.url postgresql://box:hunter2/hunter3@...), or its part after an @, in the URL
    and in the driver's words about the host it made of it ('hunter3@127.0.0.1')."""
    _not_printed(tmp_path, (
        "postgresql://box:hunter2/hunter3@127.0.0.1:1/codelace",
        "postgresql://box:hunter2@hunter3@127.0.0.1:1/codelace",
        "postgresql://box:hunter2/hunter3@hunter4@127.0.0.1:1/codelace",
    ))  # fmt: skip


def _not_printed(tmp_path: Path, urls: tuple[str, ...]) -> None:
    """Each database URL (a password `hunter...` in it) in a config: `doctor` and `users list`
    say they cannot open the database, naming where, and print no part of the password."""
    for url in urls:
        config = write_config(
            tmp_path / "c.toml", {"database": {"url": url}, "server": {"secret_key": SECRET}}
        )
        for args in (("doctor",), ("users", "list")):
            done = run_cli(config, *args)
            shown = done.stdout + done.stderr
            assert "cannot open the database" in shown, shown
            assert "hunter" not in shown, (args, shown)
            assert "127.0.0.1:1/codelace" in shown, shown


def test_a_database_name_libpq_made_of_a_password_is_not_printed(
    tmp_path: Path, pg_cluster: PgCluster
) -> None:
    """The user `127.0.0.1` and a password `<port>/hunter2` written raw: libpq reads a host
    and a port (and the user from PGUSER), and a database named after the rest of the
    password, which the server's refusal quotes."""
    url = f"postgresql://127.0.0.1:{pg_cluster.port}/hunter2@127.0.0.1:1/codelace"
    config = write_config(
        tmp_path / "c.toml", {"database": {"url": url}, "server": {"secret_key": SECRET}}
    )
    done = run_cli(config, "users", "list", env={"PGUSER": "postgres"})
    shown = done.stdout + done.stderr
    assert 'database "***@127.0.0.1:1/codelace" does not exist' in shown, shown
    assert "hunter2" not in shown, shown


PROVIDER_KEY = "vllm-local-secret"  # no key-like shape: only the key itself can mask it
FIRST_CHUNK = {
    "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
    "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
}  # fmt: skip
# an upstream's error event that quotes the operator's key
QUOTA_ERROR = {
    "error": {"message": f"key {PROVIDER_KEY} is over its quota", "type": "server_error"}
}


def _events(*events: dict[str, Any]) -> list[bytes]:
    return [f"data: {json.dumps(event)}\n\n".encode() for event in events]


def leave_after_the_first_chunk(box: Box, key: str, failure: dict[str, Any]) -> str:
    """A chat stream whose upstream sends FIRST_CHUNK, waits for its client to leave, then
    `failure`; the request id (the box reads on and settles it)."""
    box.fake.push(Reply(raw=_events(FIRST_CHUNK, failure), pause_after=1))
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    headers = {"authorization": f"Bearer {key}"}
    with httpx.stream(
        "POST", f"{box.url}/v1/chat/completions", json=body, headers=headers, timeout=10, verify=TLS
    ) as answer:
        request_id = answer.headers["x-request-id"]
        next(answer.iter_lines())  # the first piece came: the client leaves
    assert box.fake.paused.wait(10)
    box.fake.resume.set()
    return request_id


def test_a_streams_error_event_that_echoes_the_provider_key_is_masked(
    box_factory: BoxFactory,
) -> None:
    """An upstream's error answer that quotes the operator's key was masked (with the key
    itself), but the same words in a stream's error event reached the user (in the 502 or
    the error event), the log and the usage row as they were."""
    box = box_factory(keys=(PROVIDER_KEY,), gateway={"max_retries": 0})
    _, key = box.new_user("10")
    chunk, error = FIRST_CHUNK, QUOTA_ERROR
    box.fake.push(Reply(raw=_events(chunk, error)))  # after the first content: an error event
    box.fake.push(Reply(raw=_events(error)))  # before any: a 502
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    with box.http(key) as client:
        answers = [client.post("/v1/chat/completions", json=body) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 502]
    ids = [a.headers["x-request-id"] for a in answers]
    for answer in answers:
        assert "is over its quota" in answer.text and PROVIDER_KEY not in answer.text
    rows = [box.settled_row(request_id)["upstream_error"] for request_id in ids]
    assert all("is over its quota" in row and PROVIDER_KEY not in row for row in rows), rows
    box.server.stop()
    assert box.server.log_text().count("is over its quota") == 2
    assert PROVIDER_KEY not in box.server.log_text()


def test_an_anthropic_streams_first_error_event_that_echoes_the_key_is_masked(
    tmp_path: Path,
) -> None:
    """An Anthropic stream whose error event comes before any content (read before the relay,
    to try another key) is the client's 502 when no key is left: masked the same way."""
    anthropic_key = "anth-local-secret"
    fake = FakeAnthropic(api_keys=(anthropic_key,)).start()
    sections = base_sections(tmp_path, free_port())
    config = write_config(tmp_path / "codelace.toml", sections | {"gateway": {"max_retries": 0}})
    server = ServerProcess(config, int(sections["server"]["port"]))
    try:
        for args in (
            ("providers", "add", "anth", "--kind", "anthropic", "--base-url", fake.base_url,
             "--key", anthropic_key),
            ("models", "set", "anth/claude", "--input-per-1m", "1", "--output-per-1m", "2"),
            ("users", "create", "a@example.com"),
            ("credit", "a@example.com", "5", "--reason", "test"),
        ):  # fmt: skip
            assert run_cli(config, *args).returncode == 0, args
        key = run_cli(config, "keys", "create", "a@example.com").stdout.split()[0]
        server.start()
        fake.script(
            AnthropicReply(
                error_before_content=True, error_message=f"key {anthropic_key} is over quota"
            )
        )
        answer = httpx.post(
            f"{server.base_url}/v1/chat/completions",
            json={"model": "anth/claude", "messages": HELLO, "stream": True},
            headers={"authorization": f"Bearer {key}"},
            timeout=30,
            verify=TLS,
        )
        assert answer.status_code == 502 and "is over quota" in answer.text, answer.text
        assert anthropic_key not in answer.text
    finally:
        server.stop()
        fake.stop()
    assert "is over quota" in server.log_text() and anthropic_key not in server.log_text()


def test_a_refused_base_url_is_not_echoed_with_its_credentials(tmp_path: Path) -> None:
    """A base URL with a user and password, or a key in its query, is refused without
    echoing it; but one refused for its scheme or its port first was echoed whole, the
    password with it (to the terminal, its scrollback and the dashboard's message)."""
    config = write_config(
        tmp_path / "c.toml",
        {"database": {"path": str(tmp_path / "box.db")}, "server": {"secret_key": SECRET}},
    )
    assert (
        run_cli(config, "providers", "add", "kept", "--kind", "openai", "--key", "k").returncode
        == 0
    )
    for bad in (
        "ftp://box:pw-s3cret@mirror.example.com/v1",
        "http://box:pw-s3cret@127.0.0.1:99999/v1",
        "api.example.com/v1?api_key=s3cret-key",
        "box:pw-s3cret@api.example.com/v1",
        "https://box:pw-s3cret@api.example.com:0/v1#s3cret",
    ):
        for args in (
            ("providers", "add", "bad", "--kind", "openai", "--base-url", bad, "--key", "k"),
            ("providers", "update", "kept", "--base-url", bad),
        ):
            done = run_cli(config, *args)
            assert done.returncode != 0 and "base URL" in done.stderr, done.stderr
            assert "s3cret" not in done.stderr + done.stdout, done.stderr


def test_an_error_event_after_the_client_left_is_logged_without_the_key(
    box_factory: BoxFactory,
) -> None:
    """A stream its client left is read on in the background; an error event that comes then
    was logged (`stream ... ended after its client left: ...`) with the upstream's words as
    they were, the operator's key among them."""
    box = box_factory(keys=(PROVIDER_KEY,), gateway={"max_retries": 0})
    _, key = box.new_user("10")
    request_id = leave_after_the_first_chunk(box, key, QUOTA_ERROR)
    assert box.settled_row(request_id)["status"] in ("abandoned", "error")
    box.server.stop()
    log = box.server.log_text()
    assert "is over its quota" in log and PROVIDER_KEY not in log
