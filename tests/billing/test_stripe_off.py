"""Stripe not configured: its endpoints answer 503 saying what to set, the rest of the box
works, and the `stripe` library is not even imported until a Stripe endpoint is used."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.billing.conftest import SECRET_KEY, WEBHOOK_SECRET, BillingBox, BoxFactory
from tests.support import REPO_ROOT, run_cli, write_config

pytestmark = pytest.mark.timeout(120)
STRIPE_PATHS = ["/api/v1/stripe/checkout", "/api/v1/stripe/setup", "/api/v1/stripe/webhook"]


@pytest.fixture(scope="module")
def off_box(billing_box_factory: BoxFactory) -> BillingBox:
    return billing_box_factory(stripe={})


@pytest.mark.parametrize("path", STRIPE_PATHS)
def test_every_stripe_endpoint_is_503_naming_the_keys(off_box: BillingBox, path: str) -> None:
    buyer = off_box.customer()
    response = off_box.post(path, buyer, json={"amount_usd": 20})
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "stripe_not_configured")
    for name in ("stripe.secret_key", "stripe.webhook_secret", "CODELACE_STRIPE_SECRET_KEY"):
        assert name in error["message"]
    assert response.headers["x-request-id"]


def test_the_webhook_is_503_even_unsigned_and_unauthenticated(off_box: BillingBox) -> None:
    response = off_box.http.post("/api/v1/stripe/webhook", content=b"{}")
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "stripe_not_configured"


def test_payment_history_works_without_stripe(off_box: BillingBox) -> None:
    buyer = off_box.customer()
    assert off_box.history(buyer) == []


def test_a_missing_webhook_secret_alone_is_named(billing_box_factory: BoxFactory) -> None:
    half = billing_box_factory(stripe={"secret_key": SECRET_KEY})
    response = half.post("/api/v1/stripe/checkout", half.customer(), json={"amount_usd": 20})
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert "stripe.webhook_secret" in message and "stripe.secret_key" not in message
    assert SECRET_KEY not in response.text


def test_environment_variables_turn_stripe_on(billing_box_factory: BoxFactory) -> None:
    env_box = billing_box_factory(
        stripe={},
        env={
            "CODELACE_STRIPE_SECRET_KEY": SECRET_KEY,
            "CODELACE_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        },
    )
    # No api_base: the box would call the real Stripe, so only the webhook is exercised here.
    response = env_box.deliver(
        env_box.double.event("customer.created", {"id": "cus_test_1", "object": "customer"})
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "ignored"


def test_stripe_is_imported_lazily() -> None:
    code = (
        "import sys\n"
        "import codelace_box.cli, codelace_box.server\n"
        "import codelace_box.billing.checkout, codelace_box.billing.webhooks\n"
        "from codelace_box.config import Config\n"
        "codelace_box.server.create_app(Config())\n"
        "print('stripe' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def _doctor_with(box: BillingBox, folder: Path, stripe: dict[str, str]) -> str:
    """What `doctor` prints about the box's database under a config whose [stripe] is
    `stripe` (the same database and data directory)."""
    sections = tomllib.loads(box.config.read_text())
    sections["stripe"] = stripe
    config = write_config(folder / f"doctor-{len(list(folder.iterdir()))}.toml", sections)
    result = run_cli(config, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr  # settings fail no money check
    assert result.stdout.startswith("ok"), result.stdout
    return result.stdout


def test_doctor_says_how_stripe_is_set_up_and_what_is_wrong(
    off_box: BillingBox, tmp_path: Path
) -> None:
    off = _doctor_with(off_box, tmp_path, {})
    assert "stripe:" not in off  # off, as by default: nothing to say
    half = _doctor_with(off_box, tmp_path, {"secret_key": SECRET_KEY})
    assert "stripe.webhook_secret is empty" in half and "503" in half
    swapped = _doctor_with(
        off_box, tmp_path, {"secret_key": WEBHOOK_SECRET, "webhook_secret": SECRET_KEY}
    )
    assert "stripe.secret_key is no Stripe secret key" in swapped
    assert "stripe.webhook_secret is no webhook signing secret" in swapped
    publishable = _doctor_with(
        off_box, tmp_path, {"secret_key": "pk_test_abc", "webhook_secret": WEBHOOK_SECRET}
    )
    assert "publishable" in publishable
    on = _doctor_with(
        off_box, tmp_path, {"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET}
    )
    base = f"http://127.0.0.1:{tomllib.loads(off_box.config.read_text())['server']['port']}"
    assert "stripe: on (test mode)" in on
    assert f"{base}/api/v1/stripe/webhook" in on
    # without public_url Stripe sends people back to the address their browser reached, not
    # to the listen address (tests/billing/test_checkout.py)
    assert f"{base}/billing/success" not in on
    assert "come back to /billing/success at the address their browser reached" in on
    assert "server.public_url is not set" in on
    local = _doctor_with(
        off_box,
        tmp_path,
        {
            "secret_key": "sk_test_1",
            "webhook_secret": WEBHOOK_SECRET,
            "api_base": "http://u:p@127.0.0.1:12111/x",
        },
    )
    assert "not Stripe's own: http://127.0.0.1:12111" in local and "u:p" not in local
    assert "no Stripe secret key" not in local  # a local test server may take any key
    for output in (off, half, swapped, publishable, on, local):  # a setting is named, never shown
        assert SECRET_KEY not in output and WEBHOOK_SECRET not in output


@pytest.mark.parametrize(
    "api_base",
    [
        "https://u:Zm9v/YmFy@stripe-mock.internal:12111",  # a base64 password, '/' unescaped
        "https://u:1234/pw@stripe-mock.internal:12111",  # its part before the '/' all digits
        "http://u:secretpw@127.0.0.1:99999",  # a port no server can have
    ],
)
def test_doctor_shows_no_part_of_a_password_in_a_strange_api_base(
    off_box: BillingBox, tmp_path: Path, api_base: str
) -> None:
    """stripe.api_base is only checked to be an http(s) URL: doctor's line about it shows its
    host and port, never a piece of the userinfo (urlsplit ends the host at an unescaped '/'
    and reads the password's start as the port), and it exits 0 as for any setting."""
    stripe = {"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET, "api_base": api_base}
    output = _doctor_with(off_box, tmp_path, stripe)
    host = api_base.rpartition("@")[2]
    assert f"not Stripe's own: {api_base.partition(':')[0]}://{host} " in output, output
    for piece in ("zm9v", "Zm9v", "secretpw", "//u"):  # "https://u:1234": the user, a digit
        assert piece not in output, output


def test_doctor_says_how_stripe_is_set_up_when_it_finds_problems_too(tmp_path: Path) -> None:
    """A doctor run that fails (here: the last scheduled backup failed) still prints the Stripe
    lines, the operator's first look at a new box; its exit status is the problem's, and no
    setting's value is shown. (A SQLite database of its own: the marker is SQLite's.)"""
    db = tmp_path / "codelace.db"
    sections = {
        "database": {"path": str(db)},
        "backup": {"every_hours": 1, "dir": str(tmp_path / "backups")},
        "stripe": {"secret_key": SECRET_KEY, "webhook_secret": "sk_test_swapped"},
    }
    config = write_config(tmp_path / "codelace.toml", sections)
    assert run_cli(config, "migrate").returncode == 0
    (tmp_path / "codelace.db.backup-failed").write_text("20260101T000000Z disk full\n")
    result = run_cli(config, "doctor")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "MISMATCH backups: the last scheduled backup failed" in result.stdout
    assert "stripe: on (test mode)" in result.stdout, result.stdout
    assert "stripe.webhook_secret is no webhook signing secret" in result.stdout
    assert SECRET_KEY not in result.stdout + result.stderr
    assert "sk_test_swapped" not in result.stdout + result.stderr


def test_a_top_up_cancel_link_still_answers_with_stripe_off(off_box: BillingBox) -> None:
    """The cancel page expires the top-up its link names through Stripe: with Stripe off (its
    keys taken out after the checkout began) the page still answers, asking nothing."""
    page = off_box.http.get("/billing/cancel?payment=00000000-0000-4000-8000-000000000000")
    assert page.status_code == 200 and "Payment cancelled" in page.text
