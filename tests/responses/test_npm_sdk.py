"""The openai npm SDK's `responses.create` (plain and streamed) against the box, for a model
translated to Chat Completions and one served natively; and its `embeddings.create`.

The SDK comes from the npm registry (`npm install --prefix .ci/node openai`, as .ci/run does);
tests/responses/node/responses_call.cjs makes the call and prints what the SDK parsed. Outside
CI the test is skipped when node or the package is missing; under CI=true it fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_embeddings import as_float32, vector
from tests.fakes.openai_upstream import Recorded, Reply
from tests.messages.conftest import usd_nanos
from tests.responses.conftest import (
    EMBEDDING_MODEL,
    EMBEDDING_PRICE,
    NATIVE_MODEL,
    OPENAI_KEY,
    OPENAI_MODEL,
    PRICES,
    ResponsesBox,
)

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / ".ci" / "node" / "node_modules"
SCRIPT = Path(__file__).with_name("node") / "responses_call.cjs"
EMBEDDINGS_SCRIPT = SCRIPT.with_name("embeddings_call.cjs")
NODE = shutil.which("node")
MISSING = (
    "node is not installed"
    if NODE is None
    else None
    if (MODULES / "openai" / "package.json").is_file()
    else "the openai npm package is not installed (npm install --prefix .ci/node openai)"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(autouse=True)
def _sdk_present() -> None:
    if MISSING is None:
        return
    if IN_CI:
        pytest.fail(f"CI must run the npm SDK test: {MISSING}")
    pytest.skip(MISSING)


def call(
    box: ResponsesBox, key: str, model: str, *, stream: bool, script: Path = SCRIPT
) -> dict[str, Any]:
    """Run the node script; what the SDK parsed."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NODE_PATH": str(MODULES),
        "BOX_BASE_URL": f"{box.server.base_url}/v1",
        "BOX_API_KEY": key,
        "BOX_MODEL": model,
        "BOX_STREAM": "1" if stream else "0",
    }
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"the npm SDK call failed: {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def charged_call(
    box: ResponsesBox, model: str, stream: bool, reply: Reply
) -> tuple[dict[str, Any], Recorded, dict[str, Any]]:
    """One SDK call for a fresh user, checked to debit exactly the reply's tokens: what the SDK
    parsed, what the upstream received, the usage row."""
    email, key = box.new_key()
    box.openai_fake.push(reply)
    before, _ = box.balance_nanos(email)
    got = call(box, key, model, stream=stream)
    assert got["text"] == reply.content
    sent = box.openai_fake.requests[-1]
    assert sent.api_key == OPENAI_KEY
    expected = usd_nanos(
        (reply.prompt_tokens, PRICES["in"]), (reply.completion_tokens or 0, PRICES["out"])
    )
    after, held = box.balance_nanos(email)
    assert (before - after, held) == (expected, 0)
    rows = box.usage_rows(email)
    assert [(r["route"], r["cost_nanos"]) for r in rows] == [("/v1/responses", expected)]
    assert got["usage"]["cost_usd"] == pytest.approx(expected / 1e9)
    return got, sent, rows[0]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_translated_to_chat_completions(fresh: ResponsesBox, stream: bool) -> None:
    reply = Reply(content="Hello from npm.", prompt_tokens=1234, completion_tokens=5)
    got, sent, _ = charged_call(fresh, OPENAI_MODEL, stream, reply)
    assert (got["usage"]["input_tokens"], got["usage"]["output_tokens"]) == (1234, 5)
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "gpt-5.4-mini" and bool(sent.body.get("stream")) is stream
    assert sent.body["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert sent.body["messages"][-1]["role"] == "user"
    assert "Say hello from npm." in json.dumps(sent.body["messages"][-1]["content"])
    if stream:
        events = got["events"]
        assert events[:2] == ["response.created", "response.in_progress"]
        assert "response.output_text.delta" in events and events[-1] == "response.completed"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_native_responses_upstream(fresh: ResponsesBox, stream: bool) -> None:
    reply = Reply(content="Native npm answer.", prompt_tokens=300, completion_tokens=4)
    got, sent, row = charged_call(fresh, NATIVE_MODEL, stream, reply)
    assert (row["input_tokens"], row["output_tokens"]) == (300, 4)
    assert sent.path == "/v1/responses" and bool(sent.body.get("stream")) is stream
    assert sent.body["model"] == "gpt-5.4" and sent.body["input"] == "Say hello from npm."
    assert sent.body["instructions"] == "Answer briefly." and sent.body["store"] is False
    assert got["id"]


def test_embeddings_decoded_by_the_npm_sdk(fresh: ResponsesBox) -> None:
    """The npm SDK asks for base64 by default and decodes the float32 bytes itself: it reads
    the upstream's vectors exactly, and the usage with its cost."""
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(prompt_tokens=2))
    got = call(fresh, key, EMBEDDING_MODEL, stream=False, script=EMBEDDINGS_SCRIPT)
    assert fresh.openai_fake.requests[-1].body["encoding_format"] == "base64"
    assert got["vectors"] == [as_float32(vector(0)), as_float32(vector(1))]
    expected = usd_nanos((2, EMBEDDING_PRICE))
    assert got["model"] == EMBEDDING_MODEL and got["usage"]["prompt_tokens"] == 2
    assert got["usage"]["cost_usd"] == pytest.approx(expected / 1e9)
    assert fresh.balance_nanos(email)[1] == 0
