"""The fake Anthropic API's thinking signatures: bound to the model that wrote them.

Anthropic signs each thinking block for the model that produced it; handing one to another
model is refused, `messages.N.content.M: Invalid `signature` in `thinking` block` (what clients
switching Claude models mid-thread meet). The fake remembers which models it gave each
signature for, and refuses a block of a signature it gave only for other models (signatures it
never gave, e.g. made up by a test, are taken as they are).
"""

from __future__ import annotations

from typing import Any


class SignatureBook:
    """The models the fake gave each thinking signature for."""

    def __init__(self) -> None:
        self.models: dict[str, set[str]] = {}

    def issue(self, signature: str, model: str) -> None:
        """The fake answered `model` with a thinking block signed `signature`."""
        self.models.setdefault(signature, set()).add(model)

    def clear(self) -> None:
        self.models.clear()

    def problem(self, body: Any) -> str | None:
        """Anthropic's words for a thinking block signed for another model, or None."""
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return None
        model = body.get("model")
        for i, message in enumerate(body["messages"]):
            content = message.get("content") if isinstance(message, dict) else None
            for j, block in enumerate(content if isinstance(content, list) else ()):
                if not isinstance(block, dict) or block.get("type") != "thinking":
                    continue
                issued = self.models.get(str(block.get("signature")))
                if issued is not None and model not in issued:
                    return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
        return None
