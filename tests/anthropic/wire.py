"""Recorded Anthropic wire data for the tests: JSON bodies and SSE streams under data/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codelace_box.providers.base import SSEEvent

DATA = Path(__file__).parent / "data"


def load_json(name: str) -> Any:
    """A recorded JSON body."""
    return json.loads((DATA / name).read_text())


def parse_sse(text: str) -> list[SSEEvent]:
    """Server-sent events as the SSE spec frames them (event/data lines, blank-line separated)."""
    events: list[SSEEvent] = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        name: str | None = None
        data: list[str] = []
        for line in frame.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append(SSEEvent(data="\n".join(data), event=name))
    return events


def load_sse(name: str) -> list[SSEEvent]:
    """A recorded SSE stream as events."""
    return parse_sse((DATA / name).read_text())
