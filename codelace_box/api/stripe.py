"""/api/v1/stripe: Checkout top-ups, card setup and Stripe webhooks; payment history."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("stripe")
