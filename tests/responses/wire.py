"""Wire data and oracles for the Responses tests: recorded chat streams run through the real
provider adapters, and OpenAI's own SDK types and stream accumulator to check what we emit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from codelace_box.providers import adapter_for
from codelace_box.providers.base import StreamTranslator, Usage
from codelace_box.providers.responses_request import ResponsesContext
from codelace_box.providers.responses_stream import ResponsesStreamTranslator, sse_frame
from tests.anthropic.wire import load_sse as load_anthropic_sse
from tests.anthropic.wire import parse_sse

DATA = Path(__file__).parent / "data"
MODEL = "box/test-model"
EVENT = TypeAdapter(ResponseStreamEvent)


def load_json(name: str) -> Any:
    """A recorded JSON body."""
    return json.loads((DATA / name).read_text())


def chat_chunks(kind: str, name: str) -> tuple[list[dict[str, Any]], StreamTranslator]:
    """The chat chunks a provider's real stream translator makes of a recorded stream."""
    translator = adapter_for(kind).stream_translator(MODEL)
    if kind == "anthropic":
        events = load_anthropic_sse(name)
    else:
        events = parse_sse((DATA / name).read_text())
    chunks = [chunk for event in events for chunk in translator.feed(event)]
    chunks += translator.finish()
    return chunks, translator


def synthesize(
    context: ResponsesContext, chunks: list[dict[str, Any]], usage: Usage | None
) -> list[dict[str, Any]]:
    """The whole Responses stream for chat chunks, as the wiring will drive it."""
    stream = ResponsesStreamTranslator(context, model=MODEL)
    events = stream.start()
    for chunk in chunks:
        events += stream.feed(chunk)
    return events + stream.complete(usage, {"cost_usd": "0.000123"})


def replay(events: list[dict[str, Any]]) -> Response:
    """Events through the SDK's own parsing (each one, after an SSE round trip) and stream
    accumulator, which raises on a wrong order; the final response it assembles."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    final = None
    for event in events:
        frame = sse_frame(event).decode()
        name, data = frame.split("\n")[:2]
        assert name == f"event: {event['type']}"
        parsed = EVENT.validate_python(json.loads(data.removeprefix("data: ")))
        for out in state.handle_event(parsed):
            if out.type in ("response.completed", "response.incomplete", "response.failed"):
                final = out.response
    assert final is not None
    return final
