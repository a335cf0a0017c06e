"""/api/v1/customer: balance and usage of the signed-in user."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("customer")
