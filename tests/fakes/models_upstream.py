"""A fake upstream model list: GET /v1/models as OpenAI or Anthropic answer it (aiohttp, own
thread, 127.0.0.1), for testing provider keys.

openai kind: `Authorization: Bearer <key>`; 200 `{"object": "list", "data": [model...]}`; a
wrong key gets 401 with OpenAI's envelope (`echo_key=True` makes the message quote the whole
key, as a careless upstream might, to prove the caller masks it); a key of `restricted_keys`
(an OpenAI restricted key without the Models read scope) gets OpenAI's 401 `missing_scope`.
anthropic kind: `x-api-key` plus a required `anthropic-version`; 200 `{"data": [...],
"has_more", "first_id", "last_id"}`; errors as `{"type": "error", "error": {"type",
"message"}}`. Every request's headers are kept.

    fake = FakeModelsUpstream("openai", valid_keys={"sk-good..."}).start()
    fake.base_url   # "http://127.0.0.1:PORT/v1" (openai) or "http://127.0.0.1:PORT" (anthropic)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

OPENAI_MODELS = [
    {"id": "gpt-5.4", "object": "model", "created": 1767225600, "owned_by": "openai"},
    {"id": "gpt-5.4-mini", "object": "model", "created": 1767225600, "owned_by": "openai"},
]
ANTHROPIC_MODELS = [
    {
        "type": "model",
        "id": "claude-opus-4-6",
        "display_name": "Claude Opus 4.6",
        "created_at": "2026-02-04T00:00:00Z",
    }
]

MISSING_SCOPE = {  # OpenAI's answer to a restricted key without the scope of an endpoint
    "message": "You have insufficient permissions for this operation. Missing scopes: "
    "api.model.read. Check that you have the correct role in your organization (Reader, Writer, "
    "Owner) and project (Member, Owner), and if you're using a restricted API key, that it has "
    "the necessary scopes.",
    "type": "invalid_request_error",
    "param": None,
    "code": "missing_scope",
}


class FakeModelsUpstream(LoopbackServer):
    """One upstream of one kind, accepting only `valid_keys`."""

    label = "fake models upstream"

    def __init__(self, kind: str, valid_keys: set[str], *, echo_key: bool = False) -> None:
        super().__init__()
        self.kind = kind
        self.valid_keys = valid_keys
        self.echo_key = echo_key
        self.status_override: int | None = None  # answer this status to everyone (e.g. 500)
        self.restricted_keys: set[str] = set()  # valid keys that may not list models
        self.requests: list[dict[str, str]] = []

    @property
    def base_url(self) -> str:
        root = f"http://127.0.0.1:{self.port}"
        return f"{root}/v1" if self.kind == "openai" else root

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        return app

    async def _models(self, request: web.Request) -> web.Response:
        self.requests.append({k.lower(): v for k, v in request.headers.items()})
        if self.status_override is not None:
            return self._error(
                self.status_override, "api_error", "the upstream is having a bad day"
            )
        if self.kind == "openai":
            return self._openai(request)
        return self._anthropic(request)

    def _openai(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        if key in self.restricted_keys:
            return web.json_response({"error": MISSING_SCOPE}, status=401)
        if key not in self.valid_keys:
            shown = key if self.echo_key else f"{key[:3]}***{key[-4:]}"
            return web.json_response(
                {
                    "error": {
                        "message": f"Incorrect API key provided: {shown}. You can find your "
                        "API key at https://platform.openai.com/account/api-keys.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        return web.json_response({"object": "list", "data": OPENAI_MODELS})

    def _anthropic(self, request: web.Request) -> web.Response:
        if not request.headers.get("anthropic-version"):
            return self._error(
                400, "invalid_request_error", "anthropic-version: header is required"
            )
        if request.headers.get("x-api-key", "") not in self.valid_keys:
            return self._error(401, "authentication_error", "invalid x-api-key")
        body: dict[str, Any] = {
            "data": ANTHROPIC_MODELS,
            "has_more": False,
            "first_id": ANTHROPIC_MODELS[0]["id"],
            "last_id": ANTHROPIC_MODELS[-1]["id"],
        }
        return web.json_response(body)

    def _error(self, status: int, kind: str, message: str) -> web.Response:
        if self.kind == "openai":
            body: dict[str, Any] = {
                "error": {"message": message, "type": kind, "param": None, "code": None}
            }
        else:
            body = {"type": "error", "error": {"type": kind, "message": message}}
        return web.json_response(body, status=status)
