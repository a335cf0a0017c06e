"""A stdio MCP server for the real clients' tests: newline-delimited JSON-RPC on stdin/stdout.

It lists a tool whose name, with Claude Code's `mcp__<server>__` before it, is longer than
OpenAI's 64 characters (Anthropic takes 128), one with a schema of unusual shape (`$defs`,
`$ref`, a type list, `$schema`) and one with no properties at all; a call answers
"called <tool> <arguments as JSON>". Run as `python tests/fakes/mcp_stdio.py`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

LONG_TOOL = "search_all_repository_pull_request_review_comment_threads_by_author"
ODD_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
    "properties": {"n": {"type": ["integer", "null"]}, "d": {"$ref": "#/$defs/D"}},
    "$defs": {"D": {"type": "object", "properties": {"x": {"type": "number"}}}},
    "required": ["n"], "additionalProperties": False,
}  # fmt: skip
TOOLS = [
    {"name": LONG_TOOL, "description": "Review comment threads by author",
     "inputSchema": {"type": "object", "properties": {"author": {"type": "string"}}}},
    {"name": "odd", "description": "A schema of unusual shape", "inputSchema": ODD_SCHEMA},
    {"name": "bare", "description": "No properties", "inputSchema": {"type": "object"}},
]  # fmt: skip


def result(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The answer to one request."""
    if method == "initialize":
        version = params.get("protocolVersion", "2025-06-18")
        return {"protocolVersion": version, "capabilities": {"tools": {}},
                "serverInfo": {"name": "fake", "version": "1"}}  # fmt: skip
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "tools/call":
        text = f"called {params.get('name')} {json.dumps(params.get('arguments'))}"
        return {"content": [{"type": "text", "text": text}]}
    return {}


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("id") is None:  # a notification
            continue
        answer = result(str(message.get("method")), message.get("params") or {})
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": answer}))
        sys.stdout.write("\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
