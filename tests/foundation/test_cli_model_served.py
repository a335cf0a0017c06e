"""`models list` says which enabled models are not served: their provider is disabled, so
requests for them are refused and /v1/models leaves them out."""

from __future__ import annotations

from tests.foundation.conftest import Workspace

KEY = "sk-proj-FOUNDATIONtestKEY0009"


def test_a_model_of_a_disabled_provider_is_listed_as_not_served(workspace: Workspace) -> None:
    for name in ("on", "off"):
        workspace.run("providers", "add", name, "--kind", "openai", "--key", KEY)
        workspace.run("models", "set", f"{name}/m", "--input-per-1m", "1", "--output-per-1m", "2")
    workspace.run("models", "set", "on/idle", "--input-per-1m", "1", "--output-per-1m", "2")
    workspace.run("models", "disable", "on/idle")
    workspace.run("providers", "disable", "off")
    listed = {m["id"]: m for m in workspace.json("models", "list")}
    assert {i: (m["enabled"], m["served"]) for i, m in listed.items()} == {
        "off/m": (True, False),
        "on/idle": (False, False),
        "on/m": (True, True),
    }
    lines = workspace.run("models", "list").stdout.splitlines()
    text = {line.split()[0]: line for line in lines[1:]}
    assert "True (provider off)" in text["off/m"], text
    assert "provider off" not in text["on/m"] + text["on/idle"], text
    assert "True" in text["on/m"] and "False" in text["on/idle"], text
