"""`stripe.currency` changed after top-ups were paid in another currency: the credit bought is
counted one unit per currency unit, with no exchange rate, so new top-ups in the new currency
would be credited at par with the old ones, every balance silently re-denominated. `serve`
refuses to start and `doctor` fails, naming both currencies, until the currency is set back or
the operator lists the old one in `stripe.par_currencies` (counting it at par deliberately).
"""

from __future__ import annotations

import subprocess

import pytest

from tests.billing.conftest import BillingBox, BoxFactory
from tests.billing.test_refunds_disputes import paid_topup, results
from tests.billing.test_reversal_amounts import in_euros, share
from tests.support import PROGRAM, ServerProcess, cli_env, run_cli

pytestmark = pytest.mark.timeout(120)
IN_EUR = {"CODELACE_STRIPE_CURRENCY": "eur"}
AT_PAR = {"CODELACE_STRIPE_PAR_CURRENCIES": "usd"}
NANOS = 1_000_000_000


def _serve_refused(box: BillingBox, env: dict[str, str]) -> str:
    """Start serve with `env`; it must refuse at once: its one stderr line."""
    try:
        done = subprocess.run(
            [*PROGRAM, "--config", str(box.config), "serve"],
            capture_output=True, text=True, env=cli_env(env), timeout=20, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("serve started with top-ups in another currency than stripe.currency")
    assert done.returncode == 78, done.stderr  # EX_CONFIG: set back in the config, not passing
    [line] = [text for text in done.stderr.splitlines() if text.startswith("error:")]
    return line


def test_a_currency_changed_after_top_ups_is_refused_until_set_back_or_taken_at_par(
    billing_box_factory: BoxFactory,
) -> None:
    box = billing_box_factory()
    buyer = box.customer()
    box.deliver(box.double.complete(box.start_topup(buyer, 20)))
    assert box.payment_status(box.query("SELECT stripe_session_id FROM payment")[0][0]) == (
        "completed"
    )
    assert box.server.stop() == 0

    doctor = run_cli(box.config, "doctor", env=IN_EUR)
    assert doctor.returncode == 1
    assert "stripe.currency is eur" in doctor.stdout and "1 top-up paid in usd" in doctor.stdout
    refused = _serve_refused(box, IN_EUR)
    assert "stripe.currency is eur" in refused and "usd" in refused, refused
    assert "stripe.par_currencies" in refused, refused

    at_par = IN_EUR | AT_PAR
    assert run_cli(box.config, "doctor", env=at_par).returncode == 0
    ServerProcess(box.config, box.server.port, env=at_par).start().stop()

    assert run_cli(box.config, "doctor").returncode == 0  # set back: as it was
    box.server = ServerProcess(box.config, box.server.port).start()


def test_without_stripe_the_currency_of_old_top_ups_is_not_judged(
    billing_box_factory: BoxFactory,
) -> None:
    """Stripe off (no keys): no top-up can be made in any currency, nothing mixes."""
    box = billing_box_factory()
    buyer = box.customer()
    box.deliver(box.double.complete(box.start_topup(buyer, 20)))
    assert box.server.stop() == 0
    off = IN_EUR | {"CODELACE_STRIPE_SECRET_KEY": "", "CODELACE_STRIPE_WEBHOOK_SECRET": ""}
    assert run_cli(box.config, "doctor", env=off).returncode == 0
    box.server = ServerProcess(box.config, box.server.port, env=off).start()


def test_a_box_that_changed_currency_takes_a_share_of_an_old_localized_top_up(
    billing_box_factory: BoxFactory,
) -> None:
    """A top-up bought in usd by a customer paying in euros (Adaptive Pricing), refunded in
    part after the box moved to eur (usd taken at par): the refund, in the customer's euros
    (an endpoint on an API version before 2025-03-31.basil), takes its share of the usd
    top-up, as it did before the change, not the whole top-up."""
    box = billing_box_factory()
    buyer, session_id = paid_topup(box, 20)
    box.double.localize(session_id, "eur", 1843)
    _, created = box.double.refund(session_id, amount=1000)  # the double's usd cents
    assert box.server.stop() == 0
    box.server = ServerProcess(box.config, box.server.port, env=IN_EUR | AT_PAR).start()
    assert results(box, [in_euros(created, 922)]) == ["reversed"]
    assert box.balance_nanos(buyer) == 20 * NANOS - share(20 * NANOS, 922, 1843)
    assert "taking back the whole top-up" not in box.server.log_text()
