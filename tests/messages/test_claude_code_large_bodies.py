"""The real Claude Code client (`claude -p`) with a context past the box's large-body threshold
(gateway/body_work.py OFF_LOOP_BODY_BYTES: parsed, checked, routed, priced and written for the
upstream on a body thread): a 300 KB `--append-system-prompt-file` in a tool loop with signed
thinking. The upstream gets what the same session below the threshold sends, the appended text
aside (an Anthropic model: passed through, cache marks and signatures as Claude Code sent them;
an openai model: translated, streamed), and the usage rows are the same apart from the hold
(the bigger body's). Skipped, as test_claude_code.py is, without `claude`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from codelace_box.gateway.body_work import OFF_LOOP_BODY_BYTES
from tests.fakes.anthropic_upstream import Reply, ToolUse
from tests.fakes.openai_upstream import Reply as OpenAIReply
from tests.messages.conftest import OPENAI_ALIAS, MessagesBox
from tests.messages.test_claude_code import (  # noqa: F401
    completions,
    default_alias,
    notes_home,
    pytestmark,
    run_claude,
)

RULES = {
    "small": "Rule 0: keep the code tidy.",
    "large": "".join(f'Rule {n}: keep the code tidy, é ✓ "quoted" \\ back.\n' for n in range(6000)),
}
# What differs between two sessions anyway: Claude Code's session and device ids, its home's path
SESSION = re.compile(r'"(user_id|user)": "(?:[^"\\]|\\.)*"')


def _session(box: MessagesBox, tmp: Path, key: str, size: str, model: tuple[str, ...]) -> Any:
    """One Claude Code session that reads notes.txt with `RULES[size]` appended to its system
    prompt; the bodies its upstream received, as text with the session's own words made alike."""
    box.fake.requests.clear()
    box.openai_fake.requests.clear()
    (tmp / size).mkdir()
    home, notes = notes_home(tmp / size)
    read = ToolUse("toolu_01", "Read", {"file_path": str(notes)})
    box.fake.script(Reply(text="", thinking="Read it.", tool_uses=[read], input_tokens=900,
                          cache_read_input_tokens=500, cache_creation_input_tokens=300),
                    Reply(text="The word is pelican.", input_tokens=950))  # fmt: skip
    call = {"name": "Read", "arguments": json.dumps({"file_path": str(notes)})}
    box.openai_fake.push(OpenAIReply(content="", tool_calls=[call]),
                         OpenAIReply(content="The word is pelican."))  # fmt: skip
    rules = tmp / size / "rules.md"
    rules.write_text(RULES[size])
    answer = run_claude(box, home, {"ANTHROPIC_AUTH_TOKEN": key}, "Read notes.txt",
                        "--allowedTools", "Read", "--append-system-prompt-file", str(rules),
                        *model)  # fmt: skip
    assert answer["result"] == "The word is pelican.", answer
    bodies = [c.body for c in completions(box)] or [r.body for r in box.openai_fake.requests]
    assert len(bodies) == 2
    sent = json.dumps(bodies, ensure_ascii=False, indent=1)
    assert (len(sent.encode()) > OFF_LOOP_BODY_BYTES) == (size == "large")
    sent = sent.replace(json.dumps(RULES[size], ensure_ascii=False)[1:-1], "RULES")
    sent = sent.replace(str(tmp / size), "TMP").replace(f"-{size}-home", "-home")
    return SESSION.sub(r'"\1": "-"', sent)


@pytest.mark.parametrize("model", [(), ("--model", OPENAI_ALIAS)], ids=["anthropic", "openai"])
def test_a_large_context_reaches_the_upstream_as_a_small_one(
    fresh: MessagesBox, tmp_path: Path, model: tuple[str, ...]
) -> None:
    email, key = fresh.new_key()
    small = _session(fresh, tmp_path, key, "small", model)
    large = _session(fresh, tmp_path, key, "large", model)
    assert large == small
    if not model:  # its thinking handed back signed, the cache marks kept
        assert '"signature": "' in large and '"cache_control": {' in large
    rows = [{k: v for k, v in r.items() if k not in ("id", "request_id", "created_at",
             "hold_nanos", "latency_ms", "upstream_ms", "duration_ms")}
            for r in fresh.usage_rows(email)]  # fmt: skip
    assert len(rows) == 4 and rows[:2] == rows[2:]
    assert all(r["status"] == "ok" and r["cost_nanos"] > 0 for r in rows)
    assert fresh.balance_nanos(email)[1] == 0  # nothing stays held
