"""The README's "First run" walkthrough, command by command, as the README writes it.

The shell blocks are read from README.md and run in an empty folder: `codelace-box` lines
through the CLI under test (the source install, or the binary with CODELACE_TEST_BINARY),
`printenv X | ...` with X set, the curl calls with httpx, and the Python block with the `openai`
SDK. Two changes only, because a test cannot reach OpenAI or take port 8080: the openai
provider gets `--base-url` of a fake OpenAI upstream, and serve's port comes from
CODELACE_SERVER_PORT. When the README and the product drift apart, this fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.support import PROGRAM, REPO_ROOT, TLS, ServerProcess, cli_env, free_port, is_uuid4

pytestmark = pytest.mark.timeout(120)

PROVIDER_KEYS = {"OPENAI_API_KEY": "sk-readme-openai-0001", "ANTHROPIC_API_KEY": "sk-ant-readme"}


def first_run_section() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index("## First run")
    return text[start : text.index("\n## ", start + 1)]


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", first_run_section(), re.S)


def shell_lines(block: str) -> list[list[str]]:
    """Each command of a shell block as tokens (continuations joined, comments dropped)."""
    joined = block.replace("\\\n", " ")
    return [tokens for line in joined.splitlines() if (tokens := shlex.split(line, comments=True))]


def readme_comments(block: str) -> list[str]:
    return [line[2:] for line in block.splitlines() if line.startswith("# ")]


class Walkthrough:
    """The operator's folder, the fake upstream and (once started) the server."""

    def __init__(self, folder: Path, fake: FakeOpenAI) -> None:
        self.folder = folder
        self.fake = fake
        self.port = free_port()
        self.server: ServerProcess | None = None
        self.seen: dict[str, Any] = {}

    def cli(self, args: list[str], stdin: str | None = None) -> str:
        if args[:2] == ["providers", "add"] and args[2] == "openai":
            args = [*args, "--base-url", self.fake.base_url]
        result = subprocess.run(
            [*PROGRAM, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=cli_env(),
            cwd=self.folder,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout

    def serve(self) -> None:
        server = ServerProcess(self.folder / "codelace.toml", self.port)
        server.env = {"CODELACE_SERVER_PORT": str(self.port)}
        with server.log_path.open("ab") as log:
            server.process = subprocess.Popen(
                [*PROGRAM, "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=cli_env(server.env),
                cwd=self.folder,
            )
        self.server = server
        server.wait_healthy(60)

    def curl(self, tokens: list[str]) -> dict[str, Any]:
        assert self.server is not None
        url = next(t for t in tokens if t.startswith("localhost:8080/"))
        body = json.loads(tokens[tokens.index("-d") + 1])
        if "code" in body:
            body["code"] = self.code(body["email"])
        answer = httpx.post(
            self.server.base_url + url.removeprefix("localhost:8080"), json=body, verify=TLS
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def code(self, email: str) -> str:
        assert self.server is not None
        found = re.findall(
            rf"sign-in code for {re.escape(email)}: (\d{{6}})", self.server.log_text()
        )
        assert found, "the code is not in the serve log as the README shows"
        return str(found[-1])

    def run_shell(self, tokens: list[str]) -> None:
        if tokens[0] == "mkdir":
            assert tokens == ["mkdir", "codelace", "&&", "cd", "codelace"], tokens
            return  # the test's folder is the empty one
        if tokens[0] == "printenv":
            assert tokens[2:4] == ["|", "codelace-box"], tokens
            self.cli(tokens[4:], stdin=PROVIDER_KEYS[tokens[1]] + "\n")
        elif tokens[0] == "curl":
            self.seen[tokens[2].rsplit("/", 1)[1]] = self.curl(tokens)
        elif tokens == ["codelace-box", "serve"]:
            self.serve()
        else:
            assert tokens[0] == "codelace-box", tokens
            self.seen[" ".join(tokens[1:3])] = self.cli(tokens[1:])


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[Walkthrough]:
    fake = FakeOpenAI().start()
    walkthrough = Walkthrough(tmp_path, fake)
    try:
        yield walkthrough
    finally:
        if walkthrough.server is not None:
            assert walkthrough.server.stop() == 0
        fake.stop()


def test_the_first_run_walkthrough_works_as_written(walk: Walkthrough) -> None:
    setup, sign_in = blocks("sh")
    for tokens in shell_lines(setup) + shell_lines(sign_in):
        walk.run_shell(tokens)
    assert (walk.folder / "codelace.toml").stat().st_mode & 0o777 == 0o600
    assert (walk.folder / "data" / "codelace.db").is_file()
    listed = walk.seen["models list"]
    assert "openai/gpt-4o-mini" in listed and "anthropic/claude-sonnet-4-5" in listed
    verified = walk.seen["verify"]
    shown = json.loads(next(c for c in readme_comments(sign_in) if c.startswith("{")))
    assert set(verified) == set(shown) and verified["email"] == shown["email"]
    assert is_uuid4(verified["user_id"]) and is_uuid4(shown["user_id"])  # the README shows ids
    assert verified["api_key"].startswith("cl_")
    assert "20" in walk.seen["credit you@example.com"]

    (python,) = blocks("python")
    assert walk.server is not None
    script = python.replace("http://127.0.0.1:8080/v1", walk.server.base_url + "/v1")
    script = script.replace('"cl_..."', json.dumps(verified["api_key"]))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(script, "README.md", "exec"), {})  # the README's own code
    first_line, streamed = printed.getvalue().split("\n", 1)
    reply, cost = first_line.rsplit(" ", 1)
    assert reply and float(cost) > 0 and streamed.strip()
    headers = {"authorization": f"Bearer {verified['api_key']}"}
    balance = httpx.get(
        walk.server.base_url + "/api/v1/customer/balance", headers=headers, verify=TLS
    )
    assert 0 < balance.json()["credit_balance_usd"] < 20
    assert [r.body.get("model") for r in walk.fake.requests] == ["gpt-4o-mini", "gpt-4o-mini"]
    assert {r.api_key for r in walk.fake.requests} == {PROVIDER_KEYS["OPENAI_API_KEY"]}
