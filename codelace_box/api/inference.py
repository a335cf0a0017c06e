"""/v1: OpenAI-compatible chat completions."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("inference")
