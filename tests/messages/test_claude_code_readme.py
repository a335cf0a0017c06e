"""The README's "Claude Code" section against the real client: each model Claude Code can be
asked for (its default, `/model opus`, `sonnet` and `haiku`), set up with the README's own
`export` lines, reaches the catalog through the aliases the README has the operator make, and
through the `ANTHROPIC_DEFAULT_*_MODEL` variables it has a user set instead. When Claude Code's
own model names (or the variables it reads) move on, this fails naming the choice that failed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_checks import adaptive_thinking_problem
from tests.fakes.anthropic_upstream import Reply
from tests.fakes.openai_upstream import Reply as OpenAIReply
from tests.messages.conftest import MODEL, OPENAI_MODEL, MessagesBox
from tests.messages.test_claude_code import CLAUDE, asked_model, completions, run_claude
from tests.support import REPO_ROOT

pytestmark = pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed")

# The README's catalog ids, as this suite's box names the same models.
CATALOG = {
    "anthropic/claude-sonnet-5": MODEL,
    "anthropic/claude-sonnet-4.5": MODEL,
    "openai/gpt-5.4-mini": OPENAI_MODEL,
}
CHOICES = {"default": (), "opus": ("--model", "opus"), "sonnet": ("--model", "sonnet"),
           "haiku": ("--model", "haiku")}  # fmt: skip


def readme_blocks() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index("\n## Claude Code\n")
    section = text[start : text.index("\n## ", start + 1)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def readme_aliases() -> dict[str, str]:
    """The README's `models alias NAME MODEL_ID` lines: name -> this box's model."""
    aliases = re.findall(r"^codelace-box models alias (\S+) (\S+)", readme_blocks()[1], re.M)
    assert aliases and all(target in CATALOG for _, target in aliases), aliases
    return {name: CATALOG[target] for name, target in aliases}


def readme_upstreams() -> dict[str, str]:
    """The README's Anthropic catalog ids -> the upstream model each names."""
    found = re.findall(r"^codelace-box models set (anthropic/\S+) --upstream-model (\S+)",
                       readme_blocks()[1], re.M)  # fmt: skip
    assert found, "the README sets no anthropic model"
    return dict(found)


def readme_variables() -> dict[str, str]:
    """The README's `export ANTHROPIC_DEFAULT_*_MODEL=ID` lines, as this box's model ids."""
    found = re.findall(r"^export (ANTHROPIC_DEFAULT_\w+_MODEL)=(\S+)", readme_blocks()[2], re.M)
    assert found and all(target in CATALOG for _, target in found), found
    return {name: CATALOG[target] for name, target in found}


@pytest.fixture
def readme_box(fresh: MessagesBox) -> Iterator[MessagesBox]:
    """The box with the README's aliases; afterwards the aliases as they were."""
    listed = json.loads(fresh.cli("models", "list", "--json"))
    before = {alias: model["id"] for model in listed for alias in model["aliases"]}
    for name, model in readme_aliases().items():
        fresh.cli("models", "alias", name, model)
    fresh.until_served(*readme_aliases())
    yield fresh
    for name in readme_aliases():
        if name in before:
            fresh.cli("models", "alias", name, before[name])
        else:
            fresh.cli("models", "unalias", name)


def readme_setup(box: MessagesBox, key: str) -> dict[str, str]:
    """The README's first block, each team member's `export NAME=VALUE` lines, with this box's
    URL for `https://your-box` and the key for `cl_...`."""
    exports = re.findall(r"^export (\w+)=(\S+)", readme_blocks()[0], re.M)
    values = {"https://your-box": box.server.base_url, "cl_...": key}
    assert exports and all(value in values for _, value in exports), exports
    return {name: values[value] for name, value in exports}


def ask(box: MessagesBox, home: Path, key: str, choice: str, env: dict[str, str]) -> Any:
    box.fake.script(*[Reply(text="Hello.")] * 5)
    box.openai_fake.push(*[OpenAIReply(content="Hello.")] * 5)
    setup = readme_setup(box, key)
    answer = run_claude(box, home, {**setup, **env}, "Say hi", *CHOICES[choice])
    assert not answer["is_error"], f"{choice}: {answer['result']}"
    return answer


def test_every_model_claude_code_asks_for_is_aliased(
    readme_box: MessagesBox, tmp_path: Path
) -> None:
    email, key = readme_box.new_key()
    for choice in CHOICES:
        ask(readme_box, tmp_path / "home", key, choice, {})
    reached = {row["model"] for row in readme_box.usage_rows(email)}
    assert reached <= set(CATALOG.values()) and reached, reached


def test_the_readmes_variables_name_catalog_ids(fresh: MessagesBox, tmp_path: Path) -> None:
    variables = readme_variables()
    assert set(variables) == {f"ANTHROPIC_DEFAULT_{n}_MODEL" for n in ("OPUS", "SONNET", "HAIKU")}
    email, key = fresh.new_key()
    for choice, variable in (("opus", "OPUS"), ("sonnet", "SONNET"), ("haiku", "HAIKU")):
        before = len(fresh.usage_rows(email))
        ask(fresh, tmp_path / "home", key, choice, variables)
        models = {row["model"] for row in fresh.usage_rows(email)[before:]}
        assert models == {variables[f"ANTHROPIC_DEFAULT_{variable}_MODEL"]}, (choice, models)


def test_claude_codes_names_go_to_models_that_take_its_thinking(
    readme_box: MessagesBox, tmp_path: Path
) -> None:
    """Claude Code asks its own names (2.1.332: claude-opus-5-5, claude-sonnet-5-5) with
    adaptive thinking; Anthropic's models before 4.6 refuse that with a 400, so every prompt
    failed where the README routed those names to Claude Sonnet 4.5. The fake takes any
    thinking; each request is checked here against the upstream model the README names."""
    _, key = readme_box.new_key()
    aliases = dict(re.findall(r"^codelace-box models alias (\S+) (\S+)", readme_blocks()[1],
                              re.M))  # fmt: skip
    upstreams = readme_upstreams()
    for choice in ("default", "opus", "sonnet"):
        target = aliases[asked_model(*CHOICES[choice])]
        if target not in upstreams:  # an openai model: the thinking is translated
            continue
        before = len(completions(readme_box))
        ask(readme_box, tmp_path / "home", key, choice, {})
        for call in completions(readme_box)[before:]:
            if (call.body.get("thinking") or {}).get("type") == "adaptive":
                problem = adaptive_thinking_problem(upstreams[target])
                assert problem is None, (choice, target, problem)
