"""What `doctor` says about the Stripe settings once one is set: half set (its endpoints answer
503), or on (test or live mode, the webhook endpoint to add in Stripe, where customers come
back to), and the settings Stripe would refuse: a publishable key or the signing secret in
stripe.secret_key, anything but a signing secret in stripe.webhook_secret (every delivery
refused: no paid top-up credited). Lines only: settings are no money mismatch, and the values
are named, never shown. Nothing here imports the `stripe` library. With Stripe off, as by
default, nothing is said.
"""

from __future__ import annotations

import re

from codelace_box.config import Config, StripeConfig

SECRET_PREFIXES = ("sk_", "rk_")  # a secret or restricted key
SIGNING_PREFIX = "whsec_"


def stripe_report(config: Config) -> list[str]:
    """doctor's lines about Stripe, each starting `stripe: `; none with Stripe off."""
    stripe = config.stripe
    if not stripe.secret_key and not stripe.webhook_secret:
        return []  # off, as by default: a box whose credit comes from its operator
    lines = _key_problems(stripe)
    missing = "webhook_secret" if stripe.secret_key else "secret_key"
    if not (stripe.secret_key and stripe.webhook_secret):
        present = "secret_key" if stripe.secret_key else "webhook_secret"
        env = f"CODELACE_STRIPE_{missing.upper()}"
        return [f"stripe: OFF - stripe.{missing} is empty while stripe.{present} is set: the "
                f"Stripe endpoints answer 503 until both are (set stripe.{missing} or {env})",
                *lines]  # fmt: skip
    return [*_on_lines(config), *lines]


def _on_lines(config: Config) -> list[str]:
    """Stripe on: its mode and currency, the addresses Stripe needs."""
    key = config.stripe.secret_key
    mode = "live mode" if "_live_" in key else "test mode" if "_test_" in key else "mode unknown"
    base = config.server.base_url
    back = f"{base}/billing/success" if config.server.public_url else (
        "/billing/success at the address their browser reached this box at")  # fmt: skip
    lines = [
        f"stripe: on ({mode}), charging {config.stripe.currency}; the webhook endpoint to add "
        f"in Stripe: {base}/api/v1/stripe/webhook; customers come back to {back}"
    ]
    if config.stripe.api_base:
        lines.append(f"stripe: stripe.api_base is set: the box's Stripe calls go to a server "
                     f"that is not Stripe's own: {_origin(config.stripe.api_base)} (a local "
                     "test server? in production, leave it empty)")  # fmt: skip
    if not config.server.public_url:
        lines.append(
            "stripe: server.public_url is not set, so the webhook endpoint is the listen "
            "address (server.host and port): unless Stripe reaches this box at exactly that "
            "address, add the one it does in Stripe, and set server.public_url to it"
        )
    return lines


def _key_problems(stripe: StripeConfig) -> list[str]:
    """The settings Stripe would refuse (the key's only with Stripe's own API: a local test
    server, stripe.api_base, may take any)."""
    lines = []
    key, signing = stripe.secret_key, stripe.webhook_secret
    if key and not stripe.api_base and not key.startswith(SECRET_PREFIXES):
        what = "a publishable key (pk_...)" if key.startswith("pk_") else "no Stripe secret key"
        lines.append(
            f"stripe: stripe.secret_key is {what}: Stripe refuses it for every call (top-ups "
            "and card setups answer 503); it takes the secret key, sk_... or rk_..."
            + (" (swapped with stripe.webhook_secret?)" if key.startswith(SIGNING_PREFIX) else "")
        )
    if signing and not signing.startswith(SIGNING_PREFIX):
        lines.append(
            "stripe: stripe.webhook_secret is no webhook signing secret (whsec_...): no "
            "delivery of Stripe's passes its check, so no paid top-up is credited"
            + (" (swapped with stripe.secret_key?)" if signing.startswith(SECRET_PREFIXES) else "")
        )
    return lines


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL as written, without what could be a password in it: all
    up to the last '@' goes (urlsplit would end the host at a password's unescaped '/' and
    read the password's start as the port: shown, or a ValueError naming it)."""
    scheme, _, rest = url.partition("://")
    authority = rest.rpartition("@")[2]
    return f"{scheme.lower()}://{re.split(r'[/?#]', authority, maxsplit=1)[0]}"
