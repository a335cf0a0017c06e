"""The real Claude Code client (`claude -p`) through whole sessions a team member meets: a tool
loop on an OpenAI-compatible model (calls one after another and side by side, some servers giving
no call ids), the balance running out half-way, an overloaded upstream, a model the key may not
call, and `/context` (count_tokens). Afterwards each answered call is charged once and nothing is
left held. Skipped, as test_claude_code.py is, when no `claude` executable is installed.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.fakes.anthropic_upstream import Reply, ToolUse
from tests.fakes.openai_upstream import Reply as OpenAIReply
from tests.messages.conftest import (
    ALIAS,
    MODEL,
    OPENAI_ALIAS,
    OPENAI_PRICES,
    PRICES,
    MessagesBox,
    openai_chunk,
    usd_nanos,
)
from tests.messages.test_claude_code import (  # noqa: F401
    CLAUDE,
    ROOT,
    claude_env,
    completions,
    default_alias,
    notes_home,
    pytestmark,
    run_claude,
)

USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def claude_failing(box: MessagesBox, home: Path, key: str, *args: str) -> Any:
    """`claude -p` that is expected to stop at once on an API error (within 30 s, where its
    retries of a retried status take minutes): its JSON result (exit status 1)."""
    home.mkdir(exist_ok=True)
    env = {**claude_env(box, home), "ANTHROPIC_AUTH_TOKEN": key}
    assert CLAUDE is not None
    done = subprocess.run([CLAUDE, "-p", *args, "--output-format", "json"], env=env, cwd=home,
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert done.returncode == 1, f"claude: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    return json.loads(done.stdout)


def read_call(path: Path, call_id: str | None, completion_id: str = "c1") -> list[bytes]:
    """An OpenAI-compatible stream whose answer is one Read call (without an id: as some
    compatible servers send it), every chunk carrying `completion_id`."""
    call: dict[str, Any] = {"index": 0, "type": "function",
                            "function": {"name": "Read", "arguments": json.dumps(
                                {"file_path": str(path)})}}  # fmt: skip
    if call_id:
        call["id"] = call_id
    frames = [openai_chunk({"role": "assistant", "content": None}),
              openai_chunk({"tool_calls": [call]}), openai_chunk({}, "tool_calls"),
              openai_chunk({}, usage=USAGE)]  # fmt: skip
    named = [frame.replace(b'"id": "c1"', f'"id": "{completion_id}"'.encode()) for frame in frames]
    return [*named, b"data: [DONE]\n\n"]


def tool_results(body: Any) -> dict[str, str]:
    """The tool results a chat request carries, by call id."""
    return {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}


def two_notes(tmp_path: Path) -> tuple[Path, Path, Path]:
    home, notes = notes_home(tmp_path)
    other = home / "b.txt"
    other.write_text("the other word is heron\n")
    return home, notes, other


def test_tool_calls_without_ids_from_a_compatible_server(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """A server that gives its tool calls no id, two turns in a row: each tool_use gets an id of
    its own. With `toolu_0` for both, Claude Code dropped the second call as one it had already
    run: b.txt was never read and the model was asked again without it."""
    _, key = fresh.new_key()
    home, notes, other = two_notes(tmp_path)
    fresh.openai_fake.push(OpenAIReply(raw=read_call(notes, None, "chatcmpl-1")),
                           OpenAIReply(raw=read_call(other, None, "chatcmpl-2")),
                           OpenAIReply(content="pelican and heron"))  # fmt: skip
    answer = run_claude(fresh, home, {"ANTHROPIC_AUTH_TOKEN": key}, "Read notes.txt, then b.txt",
                        "--model", OPENAI_ALIAS, "--allowedTools", "Read")  # fmt: skip
    assert answer["result"] == "pelican and heron"
    last = tool_results(fresh.openai_fake.requests[-1].body)
    assert len(last) == 2, last
    assert any("pelican" in text for text in last.values())
    assert any("heron" in text for text in last.values())


def test_a_server_that_numbers_its_calls_anew_each_turn(fresh: MessagesBox, tmp_path: Path) -> None:
    """A server that calls its first tool call `call_0` in every answer: the second turn's call
    gets an id of its own (the id Claude Code already ran would have it drop the call, b.txt
    never read), and that id goes back upstream with its result."""
    _, key = fresh.new_key()
    home, notes, other = two_notes(tmp_path)
    fresh.openai_fake.push(OpenAIReply(raw=read_call(notes, "call_0", "chatcmpl-1")),
                           OpenAIReply(raw=read_call(other, "call_0", "chatcmpl-2")),
                           OpenAIReply(content="pelican and heron"))  # fmt: skip
    answer = run_claude(fresh, home, {"ANTHROPIC_AUTH_TOKEN": key}, "Read notes.txt, then b.txt",
                        "--model", OPENAI_ALIAS, "--allowedTools", "Read")  # fmt: skip
    assert answer["result"] == "pelican and heron"
    last = tool_results(fresh.openai_fake.requests[-1].body)
    assert len(last) == 2 and "pelican" in last["call_0"], last
    assert any("heron" in text for text in last.values())


def test_a_server_that_reuses_completion_ids(fresh: MessagesBox, tmp_path: Path) -> None:
    """Two turns whose completions share an id (Ollama numbers its completions chatcmpl-0 to
    chatcmpl-998 at random; some servers send none): each turn is a message of its own. With
    one `msg_` id for both, Claude Code merged the second turn into the first and sent its
    call back with "Tool result missing due to internal error" instead of b.txt's text."""
    _, key = fresh.new_key()
    home, notes, other = two_notes(tmp_path)
    fresh.openai_fake.push(OpenAIReply(raw=read_call(notes, "call_a", "chatcmpl-7")),
                           OpenAIReply(raw=read_call(other, "call_b", "chatcmpl-7")),
                           OpenAIReply(content="pelican and heron"))  # fmt: skip
    answer = run_claude(fresh, home, {"ANTHROPIC_AUTH_TOKEN": key}, "Read notes.txt, then b.txt",
                        "--model", OPENAI_ALIAS, "--allowedTools", "Read")  # fmt: skip
    assert answer["result"] == "pelican and heron"
    last = fresh.openai_fake.requests[-1].body["messages"]
    assert [[c["id"] for c in m["tool_calls"]] for m in last if m.get("tool_calls")] == [
        ["call_a"], ["call_b"]]  # fmt: skip
    assert "heron" in tool_results({"messages": last})["call_b"]


def test_a_long_tool_loop_on_an_openai_model(fresh: MessagesBox, tmp_path: Path) -> None:
    """One call, then two side by side, then one more, then the answer: every result goes back
    with its call's id, and each of the four upstream calls is charged once."""
    email, key = fresh.new_key()
    home, notes, other = two_notes(tmp_path)
    third = home / "c.txt"
    third.write_text("the last word is egret\n")

    def call(path: Path) -> dict[str, str]:
        return {"name": "Read", "arguments": json.dumps({"file_path": str(path)})}

    before, _ = fresh.balance_nanos(email)
    fresh.openai_fake.push(OpenAIReply(raw=read_call(notes, "call_a1", "chatcmpl-1")),
                           OpenAIReply(content="", tool_calls=[call(notes), call(other)],
                                       completion_tokens=9),
                           OpenAIReply(raw=read_call(third, "call_c1", "chatcmpl-3")),
                           OpenAIReply(content="pelican, heron, egret",
                                       completion_tokens=4))  # fmt: skip
    answer = run_claude(fresh, home, {"ANTHROPIC_AUTH_TOKEN": key}, "Read both notes",
                        "--model", OPENAI_ALIAS, "--allowedTools", "Read")  # fmt: skip
    assert answer["result"] == "pelican, heron, egret"
    requests = fresh.openai_fake.requests
    assert len(requests) == 4
    last = tool_results(requests[-1].body)
    assert set(last) == {"call_a1", "call_0", "call_1", "call_c1"}, last
    assert "heron" in last["call_1"] and "egret" in last["call_c1"]
    rows = fresh.usage_rows(email)
    assert [r["status"] for r in rows] == ["ok"] * 4
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (sum(r["cost_nanos"] for r in rows), 0)
    first = usd_nanos((10, OPENAI_PRICES["in"]), (5, OPENAI_PRICES["out"]))
    assert rows[0]["cost_nanos"] == first


def test_the_balance_running_out_half_way_is_a_clear_402(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """The first call of a tool loop leaves too little for the next one's worst case: Claude
    Code stops at once on a 402 billing_error that says what to do (no retry), the first call
    charged once, nothing held."""
    email, key = fresh.new_key(credit_usd="3")
    home, notes = notes_home(tmp_path)
    read = ToolUse("toolu_01", "Read", {"file_path": str(notes)})
    fresh.fake.script(Reply(text="", tool_uses=[read], input_tokens=500_000, output_tokens=15),
                      Reply(text="The word is pelican."))  # fmt: skip
    answer = claude_failing(fresh, home, key, "What is the secret word in notes.txt?",
                            "--allowedTools", "Read")  # fmt: skip
    assert (answer["api_error_status"], answer["api_error_type"]) == (402, "billing_error")
    assert "add credit" in answer["result"]
    assert len(completions(fresh)) == 1
    rows = fresh.usage_rows(email)
    one = usd_nanos((500_000, PRICES["in"]), (15, PRICES["out"]))
    assert [(r["status"], r["cost_nanos"]) for r in rows] == [("ok", one)]
    assert fresh.balance_nanos(email) == (3_000_000_000 - one, 0)


def test_overloaded_then_answered_is_charged_once(fresh: MessagesBox, tmp_path: Path) -> None:
    """A 529 overloaded_error reaches Claude Code, which retries; the answer is charged once and
    the refused call not at all."""
    email, key = fresh.new_key()
    fresh.fake.script(Reply.error(529, "overloaded_error", "Overloaded"),
                      Reply(text="After the overload."))  # fmt: skip
    answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "Say hello")
    assert answer["result"] == "After the overload."
    assert len(completions(fresh)) == 2
    rows = fresh.usage_rows(email)
    one = usd_nanos((25, PRICES["in"]), (15, PRICES["out"]))
    assert sum(r["cost_nanos"] for r in rows) == one
    assert fresh.balance_nanos(email) == (20_000_000_000 - one, 0)


def test_a_model_the_key_may_not_call(fresh: MessagesBox, tmp_path: Path) -> None:
    email, _ = fresh.new_key()
    key = fresh.cli("keys", "create", email, "--models", MODEL).strip().splitlines()[0]
    answer = claude_failing(fresh, tmp_path / "home", key, "Say hello", "--model", OPENAI_ALIAS)
    assert (answer["api_error_status"], answer["api_error_type"]) == (403, "permission_error")
    assert "may not call" in answer["result"]
    assert fresh.openai_fake.requests == [] and fresh.usage_rows(email) == []


def test_context_counts_tokens_upstream_and_charges_nothing(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """`/context` in `claude -p` asks count_tokens (many times): passed to the Anthropic
    upstream, never charged, no completion made."""
    email, key = fresh.new_key()
    logged_before = len(fresh.server.log_text())  # the server is the suite's: its lines since
    answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "/context")
    assert "Context Usage" in answer["result"]
    counted = [r for r in fresh.fake.requests if "max_tokens" not in r.body]
    assert counted and completions(fresh) == []
    logged = fresh.server.log_text()[logged_before:]
    assert "/v1/messages/count_tokens 200" in logged
    assert "/v1/messages/count_tokens 4" not in logged  # no billed-field 400
    assert fresh.usage_rows(email) == [] and fresh.balance_nanos(email) == (20_000_000_000, 0)


def test_a_key_expiring_between_two_prompts_stops_at_once(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """The key expires between a prompt and the next (`--continue`): Claude Code says why at
    once. The 401 without `x-should-retry: false` had it retry for minutes, silent."""
    email, _ = fresh.new_key()
    fresh.fake.script(Reply(text="First answer."))
    key, expires, home = _a_prompt_before_the_key_expires(fresh, email, tmp_path)
    time.sleep(max((expires - datetime.now(UTC)).total_seconds(), 0) + 0.5)
    answer = claude_failing(fresh, home, key, "Say more", "--continue")
    assert (answer["api_error_status"], answer["api_error_type"]) == (401, "authentication_error")
    assert "expired" in answer["result"]
    assert len(completions(fresh)) == 1 and len(fresh.usage_rows(email)) == 1


def _a_prompt_before_the_key_expires(
    box: MessagesBox, email: str, tmp_path: Path
) -> tuple[str, datetime, Path]:
    """A key of `email` that expires soon, and Claude Code's first prompt with it answered:
    the key, its expiry and Claude Code's HOME. It expires in 20 s (Claude Code starts in 2-8
    s); once more in 60 s if a loaded machine started Claude Code past the first one."""
    assert CLAUDE is not None
    for ahead in (20, 60):
        expires = datetime.now(UTC) + timedelta(seconds=ahead)
        made = box.cli("keys", "create", email, "--expires", expires.isoformat())
        key, home = made.strip().splitlines()[0], tmp_path / f"home{ahead}"
        home.mkdir()
        env = {**claude_env(box, home), "ANTHROPIC_AUTH_TOKEN": key}
        command = [CLAUDE, "-p", "Say hi", "--output-format", "json"]
        done = subprocess.run(
            command, env=env, cwd=home, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode == 0 or datetime.now(UTC) < expires:  # else: it came too late
            break
    assert done.returncode == 0, f"claude failed: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    assert json.loads(done.stdout)["result"] == "First answer."
    return key, expires, home


def test_the_readmes_output_cap_for_a_small_balance(fresh: MessagesBox, tmp_path: Path) -> None:
    """$1 left: Claude Code's own max_tokens is refused (402, nothing called); with the README's
    `export CLAUDE_CODE_MAX_OUTPUT_TOKENS=N` the hold is N tokens and the answer comes."""
    section = (ROOT / "README.md").read_text().split("\n## Claude Code\n")[1].split("\n## ")[0]
    (cap,) = re.findall(r"`export CLAUDE_CODE_MAX_OUTPUT_TOKENS=(\d+)`", section)
    email, key = fresh.new_key(credit_usd="1")
    refused = claude_failing(fresh, tmp_path / "home", key, "Say hi")
    assert refused["api_error_status"] == 402 and completions(fresh) == []
    fresh.fake.script(Reply(text="Within the cap."))
    auth = {"ANTHROPIC_AUTH_TOKEN": key, "CLAUDE_CODE_MAX_OUTPUT_TOKENS": cap}
    answer = run_claude(fresh, tmp_path / "home2", auth, "Say hi")
    assert answer["result"] == "Within the cap."
    assert [c.body["max_tokens"] for c in completions(fresh)] == [int(cap)]
    one = usd_nanos((25, PRICES["in"]), (15, PRICES["out"]))
    assert fresh.balance_nanos(email) == (1_000_000_000 - one, 0)


def test_a_long_context_name_where_the_beta_is_not_allowed(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """`--model NAME[1m]` has Claude Code ask with `anthropic-beta: context-1m-2025-08-07`;
    where the operator has not allowed it the box refuses it (400), naming the flag as sent,
    on which Claude Code asks again without it (as it does when Anthropic rejects the beta):
    the session goes on at the model's own window. It stopped at every prompt with the 400, a
    refusal naming only `context-1m-*`. The refused call reaches no one and costs nothing."""
    email, key = fresh.new_key()
    fresh.fake.script(Reply(text="Hello at 200k."))
    fresh.cli("providers", "update", "anth", "--no-allow-field", "context-1m")
    fresh.until_reloaded()
    try:
        answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "Say hello",
                            "--model", f"{ALIAS}[1m]")  # fmt: skip
    finally:
        fresh.cli("providers", "update", "anth", "--allow-field", "context-1m")
        fresh.until_reloaded()
    assert answer["result"] == "Hello at 200k."
    betas = [r.headers.get("anthropic-beta", "") for r in completions(fresh)]
    assert betas and not any("context-1m" in b for b in betas), betas
    one = usd_nanos((25, PRICES["in"]), (15, PRICES["out"]))
    assert fresh.balance_nanos(email) == (20_000_000_000 - one * len(betas), 0)


def test_an_effort_the_routed_model_refuses_is_lowered_by_claude_code(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """Claude Code's default name routed to a model that refuses the effort it asks for
    (Anthropic's 400 "Invalid effort level"): relayed in Anthropic's words, Claude Code asks
    again at a lower effort, as it does with Anthropic itself. With the box's prefix before
    them it asked again at the same effort, refused again in a session on such a model."""
    email, key = fresh.new_key()
    fresh.fake.script(Reply.error(400, "invalid_request_error", "Invalid effort level"),
                      Reply(text="Hello at a lower effort."))  # fmt: skip
    answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "Say hello")
    assert answer["result"] == "Hello at a lower effort."
    efforts = [(c.body.get("output_config") or {}).get("effort") for c in completions(fresh)]
    assert len(efforts) == 2 and efforts[0] and efforts[1] != efforts[0], efforts
    one = usd_nanos((25, PRICES["in"]), (15, PRICES["out"]))
    assert fresh.balance_nanos(email) == (20_000_000_000 - one, 0)
