"""/api/v1/auth: sign-in codes, profile and API keys."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("accounts")
