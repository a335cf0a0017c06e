"""The real Claude Code client (`claude -p`) through turns the other suites drive with the SDK
only: an upstream failing in the middle of a stream (Anthropic's overloaded_error event, or an
OpenAI-compatible server's error event), its `--fallback-model` after overloads, an image its
Read tool returns and a Read that fails on an `openai` model, cache reads of an `openai` model,
signed thinking handed back by a later `--continue`, and a catalog id as `--model`. After each,
every answered call is charged once at the exact price and nothing is left held. Skipped, as
test_claude_code.py is, when no `claude` executable is installed.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

from tests.fakes.anthropic_upstream import Reply, ToolUse
from tests.fakes.openai_upstream import Reply as OpenAIReply
from tests.messages.conftest import (
    MODEL,
    OPENAI_ALIAS,
    OPENAI_MODEL,
    OPENAI_PRICES,
    PRICES,
    MessagesBox,
    usd_nanos,
)
from tests.messages.test_claude_code import (  # noqa: F401
    CLAUDE,
    claude_env,
    completions,
    default_alias,
    notes_home,
    pytestmark,
    run_claude,
)

CREDIT = 20_000_000_000  # new_key()'s $20 in nanos
ONE_ANSWER = usd_nanos((25, PRICES["in"]), (15, PRICES["out"]))  # the fake's default usage


def red_png() -> bytes:
    """A valid 8x8 red PNG."""
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))  # fmt: skip


def read_call(path: Path) -> OpenAIReply:
    """An OpenAI-compatible answer that is one call of Claude Code's Read tool."""
    arguments = json.dumps({"file_path": str(path)})
    return OpenAIReply(content="", tool_calls=[{"name": "Read", "arguments": arguments}])


def chat_turns(box: MessagesBox) -> list[list[dict[str, Any]]]:
    """The messages of each chat request the OpenAI fake received."""
    return [r.body["messages"] for r in box.openai_fake.requests]


def test_an_overload_in_the_middle_of_a_stream_is_retried_and_charged_once(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """Anthropic's overloaded_error event after the answer began: the box ends the stream with
    that event, Claude Code asks again and shows the second answer; the cut call costs nothing."""
    email, key = fresh.new_key()
    cut = Reply(text="An answer that an overload cuts short.", error_type="overloaded_error",
                error_message="Overloaded", error_after_deltas=3)  # fmt: skip
    fresh.fake.script(cut, Reply(text="After the overload."))
    answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "Say hello")
    assert answer["result"] == "After the overload."
    assert len(completions(fresh)) == 2
    rows = fresh.usage_rows(email)
    assert [(r["status"], r["cost_nanos"]) for r in rows] == [("error", 0), ("ok", ONE_ANSWER)]
    assert fresh.balance_nanos(email) == (CREDIT - ONE_ANSWER, 0)


def test_the_fallback_model_answers_after_overloads(fresh: MessagesBox, tmp_path: Path) -> None:
    """An Anthropic model overloaded on every try: the box's overloaded_error is what Claude
    Code's `--fallback-model` acts on, so the fallback (an OpenAI model) answers; only it is
    charged."""
    email, key = fresh.new_key()
    fresh.fake.script(*[Reply.error(529, "overloaded_error", "Overloaded")] * 30)
    fresh.openai_fake.push(OpenAIReply(content="From the fallback.", prompt_tokens=40,
                                       completion_tokens=4))  # fmt: skip
    answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "Say hello",
                        "--fallback-model", OPENAI_ALIAS)  # fmt: skip
    assert answer["result"] == "From the fallback."
    rows = fresh.usage_rows(email)
    fallback = usd_nanos((40, OPENAI_PRICES["in"]), (4, OPENAI_PRICES["out"]))
    assert [(r["model"], r["cost_nanos"]) for r in rows if r["status"] == "ok"] == [
        (OPENAI_MODEL, fallback)
    ]
    assert {r["cost_nanos"] for r in rows if r["status"] != "ok"} <= {0}
    assert fresh.balance_nanos(email) == (CREDIT - fallback, 0)


def test_an_error_event_mid_stream_on_an_openai_model_is_retried_and_charged_once(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(
        OpenAIReply(content="A long answer an error event cuts in the middle.", error_after=3),
        OpenAIReply(content="Second try.", prompt_tokens=30, completion_tokens=2),
    )
    answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "Say hello",
                        "--model", OPENAI_ALIAS)  # fmt: skip
    assert answer["result"] == "Second try."
    one = usd_nanos((30, OPENAI_PRICES["in"]), (2, OPENAI_PRICES["out"]))
    rows = fresh.usage_rows(email)
    assert [(r["status"], r["cost_nanos"]) for r in rows] == [("error", 0), ("ok", one)]
    assert fresh.balance_nanos(email) == (CREDIT - one, 0)


def test_an_image_read_on_an_openai_model_follows_its_tool_result(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """Read on a PNG answers with an image block in the tool_result; a chat `tool` message
    takes text only, so the image goes in the user message right after the tool messages."""
    _, key = fresh.new_key()
    home = tmp_path / "home"
    home.mkdir()
    image = home / "red.png"
    image.write_bytes(red_png())
    fresh.openai_fake.push(read_call(image), OpenAIReply(content="It is red."))
    answer = run_claude(fresh, home, {"ANTHROPIC_AUTH_TOKEN": key}, "What colour is red.png?",
                        "--model", OPENAI_ALIAS, "--allowedTools", "Read")  # fmt: skip
    assert answer["result"] == "It is red."
    *_, call, result, after = chat_turns(fresh)[-1]
    assert call["tool_calls"][0]["function"]["name"] == "Read"
    assert (result["role"], result["tool_call_id"]) == ("tool", call["tool_calls"][0]["id"])
    (part,) = [p for p in after["content"] if p["type"] == "image_url"]
    assert after["role"] == "user" and part["image_url"]["url"].startswith("data:image/png;base64,")


def test_a_failed_read_on_an_openai_model_says_it_failed(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """A Read of a missing file is a tool_result with is_error: the model reads it as an
    error (chat has no such flag), not as the file's content."""
    _, key = fresh.new_key()
    home = tmp_path / "home"
    home.mkdir()
    fresh.openai_fake.push(read_call(home / "missing.txt"), OpenAIReply(content="No such file."))
    answer = run_claude(fresh, home, {"ANTHROPIC_AUTH_TOKEN": key}, "Read missing.txt",
                        "--model", OPENAI_ALIAS, "--allowedTools", "Read")  # fmt: skip
    assert answer["result"] == "No such file."
    (result,) = [m for m in chat_turns(fresh)[-1] if m["role"] == "tool"]
    assert result["content"].startswith("Error: ") and "does not exist" in result["content"]


def test_cache_reads_of_an_openai_model_are_billed_at_the_read_price(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """OpenAI's cached_tokens (part of prompt_tokens) reach Claude Code as Anthropic's
    cache_read_input_tokens (apart from input_tokens), and are billed at the read price."""
    email, key = fresh.new_key()
    fresh.openai_fake.default = OpenAIReply(content="Cached hello.", prompt_tokens=5000,
                                            cached_tokens=4000, completion_tokens=7)  # fmt: skip
    answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "Say hello",
                        "--model", OPENAI_ALIAS)  # fmt: skip
    assert answer["result"] == "Cached hello."
    calls = len(fresh.openai_fake.requests)
    usage = answer["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"]) == (1000, 4000)
    one = usd_nanos((1000, OPENAI_PRICES["in"]), (4000, OPENAI_PRICES["read"]),
                    (7, OPENAI_PRICES["out"]))  # fmt: skip
    rows = fresh.usage_rows(email)
    assert [(r["input_tokens"], r["cache_read_tokens"], r["cost_nanos"]) for r in rows] == [
        (5000, 4000, one)
    ] * calls
    assert fresh.balance_nanos(email) == (CREDIT - one * calls, 0)


def test_two_sessions_on_an_openai_model_share_one_system_prompt(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """Claude Code's system prompt is the same for every session of a version, but it opens
    with an attribution line hashed from the session's first prompt: sent on, the prefix an
    OpenAI-compatible server caches (across the box's users too) differed from the first
    token. The model's system message is the same for two sessions, without that line."""
    _, key = fresh.new_key()
    fresh.openai_fake.default = OpenAIReply(content="Hello.")
    for prompt in ("Say hello", "Greet me in French"):
        run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, prompt,
                   "--model", OPENAI_ALIAS)  # fmt: skip
    firsts = [r.body["messages"][0] for r in fresh.openai_fake.requests]
    assert len(firsts) >= 2 and all(m["role"] == "system" for m in firsts)
    assert all(m == firsts[0] for m in firsts), [m["content"][:120] for m in firsts]
    assert "x-anthropic-billing-header" not in json.dumps(firsts)


def test_signed_thinking_goes_back_in_a_later_continue(fresh: MessagesBox, tmp_path: Path) -> None:
    """Thinking signed in a tool loop is sent back, signature as signed, by the next `claude -p
    --continue` (a new process reading the session from disk)."""
    email, key = fresh.new_key()
    home, notes = notes_home(tmp_path)
    read = ToolUse("toolu_r1", "Read", {"file_path": str(notes)})
    fresh.fake.script(
        Reply(text="", thinking="Read it first.", signature="sig-first", tool_uses=[read]),
        Reply(text="pelican", thinking="It says pelican.", signature="sig-second"),
        Reply(text="Still pelican."),
    )
    auth = {"ANTHROPIC_AUTH_TOKEN": key}
    run_claude(fresh, home, auth, "What is the secret word in notes.txt?", "--allowedTools", "Read")
    answer = run_claude(fresh, home, auth, "Say it again", "--continue")
    assert answer["result"] == "Still pelican."
    turns = [m for m in completions(fresh)[-1].body["messages"] if m["role"] == "assistant"]
    sent = [(b["signature"], b["thinking"]) for m in turns for b in m["content"]
            if b["type"] == "thinking"]  # fmt: skip
    assert sent == [("sig-first", "Read it first."), ("sig-second", "It says pelican.")]
    assert fresh.balance_nanos(email) == (CREDIT - 3 * ONE_ANSWER, 0)


def test_a_catalog_id_as_the_model(fresh: MessagesBox, tmp_path: Path) -> None:
    """`--model anthropic/claude-sonnet-4.5` (a catalog id, not a Claude name): Claude Code
    sends it as it is, the box routes it and the answer names it."""
    email, key = fresh.new_key()
    fresh.fake.script(Reply(text="By its catalog id."))
    home = tmp_path / "home"
    home.mkdir()
    env = {**claude_env(fresh, home), "ANTHROPIC_AUTH_TOKEN": key}
    assert CLAUDE is not None
    done = subprocess.run([CLAUDE, "-p", "Say hello", "--model", MODEL, "--output-format",
                           "stream-json", "--verbose"], env=env, cwd=home, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    (said,) = [e["message"] for e in events if e["type"] == "assistant"]
    assert said["model"] == MODEL and said["content"][-1]["text"] == "By its catalog id."
    assert events[-1]["result"] == "By its catalog id."
    assert [r.body["model"] for r in completions(fresh)] == ["claude-sonnet-4-5"]
    assert [(r["model"], r["cost_nanos"]) for r in fresh.usage_rows(email)] == [(MODEL, ONE_ANSWER)]


def test_a_balance_short_of_the_hold_is_told_what_the_request_holds(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """$0.50 left and "Say hi": Claude Code's 402 read "insufficient credit for this request:
    add credit or lower max_tokens", a user with half a dollar for a one-line answer was not
    told why, and Claude Code has no max_tokens option. It now names the hold (the input and
    Claude Code's 128,000 output tokens at $15/1M: more than $1.92) and Claude Code's setting."""
    email, key = fresh.new_key(credit_usd="0.5")
    home = tmp_path / "home"
    home.mkdir()
    env = {**claude_env(fresh, home), "ANTHROPIC_AUTH_TOKEN": key}
    assert CLAUDE is not None
    done = subprocess.run([CLAUDE, "-p", "Say hi"], env=env, cwd=home, capture_output=True,
                          text=True, timeout=30, check=False)  # fmt: skip
    assert done.returncode == 1
    shown = done.stdout + done.stderr
    assert "402" in shown and "add credit" in shown, shown
    (held,) = re.findall(r"holds \$(\d+\.\d+) for its input and up to 128000 output tokens", shown)
    assert float(held) > 1.92, shown
    assert "CLAUDE_CODE_MAX_OUTPUT_TOKENS" in shown, shown
    assert completions(fresh) == [] and fresh.balance_nanos(email) == (500_000_000, 0)


def test_a_disabled_provider_is_said_at_once(fresh: MessagesBox, tmp_path: Path) -> None:
    """The model's provider disabled by the operator: the box's 503 was an overloaded_error
    ("the provider of ... is disabled"), which Claude Code retried silently for minutes (over
    120 s), as an overload that passes. Nothing a retry can change: as an api_error with
    `x-should-retry: false` Claude Code says it at once; nothing is called or charged."""
    email, key = fresh.new_key()
    fresh.cli("providers", "disable", "oai")
    fresh.until_reloaded()
    try:
        home = tmp_path / "home"
        home.mkdir()
        env = {**claude_env(fresh, home), "ANTHROPIC_AUTH_TOKEN": key}
        assert CLAUDE is not None
        done = subprocess.run([CLAUDE, "-p", "Say hi", "--model", OPENAI_ALIAS, "--output-format",
                               "json"], env=env, cwd=home, capture_output=True, text=True,
                              timeout=40, check=False)  # fmt: skip
    finally:
        fresh.cli("providers", "enable", "oai")
        fresh.until_reloaded()
    assert done.returncode == 1, done.stdout[-2000:]
    answer = json.loads(done.stdout)
    assert answer["api_error_status"] == 503
    assert f"the provider of {OPENAI_MODEL} is disabled" in answer["result"]
    assert fresh.openai_fake.requests == [] and fresh.usage_rows(email) == []


def test_the_operators_exhausted_quota_is_said_at_once(fresh: MessagesBox, tmp_path: Path) -> None:
    """OpenAI's 429 insufficient_quota (the operator's account there out of money) is the box's
    503 provider_out_of_credit; said as overloaded_error, Claude Code retried it for minutes."""
    from tests.messages.test_provider_quota import QUOTA

    email, key = fresh.new_key()
    fresh.openai_fake.push(*[OpenAIReply(status=429, error=QUOTA)] * 40)
    home = tmp_path / "home"
    home.mkdir()
    env = {**claude_env(fresh, home), "ANTHROPIC_AUTH_TOKEN": key}
    assert CLAUDE is not None
    done = subprocess.run([CLAUDE, "-p", "Say hi", "--model", OPENAI_ALIAS, "--output-format",
                           "json"], env=env, cwd=home, capture_output=True, text=True,
                          timeout=40, check=False)  # fmt: skip
    assert done.returncode == 1, done.stdout[-2000:]
    answer = json.loads(done.stdout)
    assert answer["api_error_status"] == 503 and "out of credit" in answer["result"]
    assert {(r["status"], r["cost_nanos"]) for r in fresh.usage_rows(email)} == {("error", 0)}
    assert fresh.balance_nanos(email) == (CREDIT, 0)


def test_a_disabled_provider_hands_over_to_the_fallback_model(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """The declined 503 of a disabled provider still has `--fallback-model` answer."""
    email, key = fresh.new_key()
    fresh.openai_fake.push(OpenAIReply(content="From the fallback.", prompt_tokens=40,
                                       completion_tokens=4))  # fmt: skip
    fresh.cli("providers", "disable", "anth")
    fresh.until_reloaded()
    try:
        answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "Say hi",
                            "--fallback-model", OPENAI_ALIAS)  # fmt: skip
    finally:
        fresh.cli("providers", "enable", "anth")
        fresh.until_reloaded()
    assert answer["result"] == "From the fallback."
    fallback = usd_nanos((40, OPENAI_PRICES["in"]), (4, OPENAI_PRICES["out"]))
    assert [r["model"] for r in fresh.usage_rows(email)] == [OPENAI_MODEL]
    assert fresh.balance_nanos(email) == (CREDIT - fallback, 0)


def test_context_on_an_openai_model_is_estimated_and_free(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """`/context` on an openai model: count_tokens is estimated by the box (no upstream has
    it), no one is called, nothing is charged."""
    email, key = fresh.new_key()
    counted = fresh.server.log_text().count("/v1/messages/count_tokens 200")
    answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "/context",
                        "--model", OPENAI_ALIAS)  # fmt: skip
    assert "Context Usage" in answer["result"]
    assert fresh.server.log_text().count("/v1/messages/count_tokens 200") > counted
    assert fresh.openai_fake.requests == [] and fresh.fake.requests == []
    assert fresh.usage_rows(email) == [] and fresh.balance_nanos(email) == (CREDIT, 0)
