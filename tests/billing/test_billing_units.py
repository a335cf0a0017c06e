"""Unit tests of the pure billing parts (amounts, session parameters, signatures, error
translation) and of `StripeApi` with the real `stripe` library against the double."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import stripe

from codelace_box.billing.checkout import (
    minor_unit_exponent,
    parse_topup_amount,
    setup_session_params,
    setup_tag,
    smallest_topup,
    topup_session_params,
    topup_tag,
)
from codelace_box.billing.claims import TopupClaim, topup_claim
from codelace_box.billing.setup_report import stripe_report
from codelace_box.billing.stripe import StripeApi, redact, require_configured, verify_event
from codelace_box.billing.webhooks import other_mode
from codelace_box.config import Config, ServerConfig, StripeConfig
from codelace_box.errors import (
    InvalidRequest,
    ServiceUnavailable,
    UpstreamError,
)
from tests.fakes.stripe_double import StripeDouble
from tests.fakes.stripe_wire import decode_form, sign_payload
from tests.support import free_port

# stripe's HTTPXClient posts its form body as `data=str`, which httpx 0.28 deprecates (a
# warning Python hides outside tests); the request on the wire is the same.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
KEY = "sk_test_unit0000000000000000000000"
WHSEC = "whsec_unit000000000000000000000"
STRIPE = StripeConfig(secret_key=KEY, webhook_secret=WHSEC, min_topup_usd=Decimal(10))


@pytest.mark.parametrize(
    ("raw", "usd", "cents"),
    [
        (10, "10", 1000),
        (10.5, "10.5", 1050),
        (99.99, "99.99", 9999),
        (Decimal("12.30"), "12.3", 1230),
        (1e3, "1000", 100000),
    ],
)
def test_valid_amounts(raw: object, usd: str, cents: int) -> None:
    amount = parse_topup_amount(raw, STRIPE)
    assert amount.usd == Decimal(usd)
    assert amount.minor_units == cents
    assert amount.nanos == int(Decimal(usd) * 1_000_000_000)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (9.99, "amount_too_small"),
        (float("nan"), "invalid_amount"),
        (float("inf"), "invalid_amount"),
        (10.005, "invalid_amount"),
        (10_000.01, "amount_too_large"),
        ("10", "invalid_amount"),
        (False, "invalid_amount"),
        (None, "invalid_amount"),
        (-5, "amount_too_small"),
        (10**400, "amount_too_large"),
    ],
)
def test_invalid_amounts(raw: object, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_topup_amount(raw, STRIPE)
    assert caught.value.code == code
    assert caught.value.param == "amount_usd"


def test_a_zero_minimum_still_refuses_zero() -> None:
    with pytest.raises(InvalidRequest):
        parse_topup_amount(0, StripeConfig(min_topup_usd=Decimal(0)))


def test_a_minimum_of_half_a_dollar_is_honoured_to_the_cent() -> None:
    half = StripeConfig(min_topup_usd=Decimal("0.5"))
    assert parse_topup_amount(0.5, half).minor_units == 50
    with pytest.raises(InvalidRequest) as caught:
        parse_topup_amount(0.49, half)
    assert caught.value.code == "amount_too_small"
    assert "0.5 USD" in caught.value.message


def test_zero_decimal_currencies_take_whole_units() -> None:
    yen = StripeConfig(currency="jpy", min_topup_usd=Decimal(10))
    assert parse_topup_amount(1500, yen).minor_units == 1500
    with pytest.raises(InvalidRequest):
        parse_topup_amount(1500.5, yen)
    assert [minor_unit_exponent(c) for c in ("usd", "JPY", "kwd")] == [2, 0, 3]


@pytest.mark.parametrize(("currency", "smallest"), [("krw", 11), ("isk", 11), ("jpy", 51)])
def test_a_minimum_in_cents_for_a_whole_unit_currency_is_one_that_can_be_paid(
    currency: str, smallest: int
) -> None:
    """min_topup_usd takes cents; in a currency charged in whole units the smallest top-up is
    the next whole unit: "the smallest top-up is 10.5" then "whole units" for 10.5 left the
    user (and the portal's hint, which shows smallest_topup) no amount between them."""
    config = StripeConfig(currency=currency, min_topup_usd=Decimal(smallest) - Decimal("0.5"))
    assert smallest_topup(config) == smallest
    assert parse_topup_amount(smallest, config).usd == smallest
    with pytest.raises(InvalidRequest) as caught:
        parse_topup_amount(smallest - 1, config)
    assert f"the smallest top-up is {smallest} USD" in caught.value.message


@pytest.mark.parametrize(("raw", "shown"), [(1e3, "1000"), (25.5, "25.5"), (10, "10")])
def test_the_product_name_shows_the_amount_plainly(raw: object, shown: str) -> None:
    amount = parse_topup_amount(raw, STRIPE)
    params = topup_session_params(7, "a@b.test", amount, Config(stripe=STRIPE))
    product = params["line_items"][0]["price_data"]["product_data"]  # type: ignore[index]
    assert product["name"] == f"codelace-box credit ({shown} USD)"


def test_the_return_urls_name_an_international_host_in_its_ascii_form() -> None:
    """Stripe refuses a URL with characters beyond ASCII ("Non-ASCII characters in URLs must
    be percent-encoded"): a public_url written `https://Bücher.example:8443/` gives its links
    with the host as a browser's address bar sends it, port and path kept."""
    config = Config(server=ServerConfig(public_url="https://Bücher.example:8443/box/"))
    params = topup_session_params(7, "a@b.test", parse_topup_amount(20, STRIPE), config)
    base = "https://xn--bcher-kva.example:8443/box"
    assert params["success_url"] == f"{base}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
    assert params["cancel_url"] == f"{base}/billing/cancel"
    assert config.server.base_url == base


def test_doctor_names_the_return_page_under_a_public_url_set() -> None:
    """Only a public_url fixes where customers come back to (else the address their browser
    reached, tests/billing/test_stripe_off.py)."""
    stripe_on = StripeConfig(secret_key="sk_test_1", webhook_secret="whsec_1")
    config = Config(server=ServerConfig(public_url="https://box.example.com/"), stripe=stripe_on)
    report = "\n".join(stripe_report(config))
    assert "customers come back to https://box.example.com/billing/success" in report
    assert "public_url is not set" not in report


def test_session_params_carry_the_user_and_the_box_urls() -> None:
    config = Config(
        server=ServerConfig(public_url="https://box.example.com/"),
        stripe=StripeConfig(currency="eur"),
    )
    amount = parse_topup_amount(20, config.stripe)
    params = topup_session_params(7, "a@b.test", amount, config, "box-secret")
    assert params["client_reference_id"] == "7"
    assert params["metadata"] == {
        "codelace_user_id": "7",
        "codelace_kind": "topup",
        "codelace_amount": "2000",
        "codelace_currency": "eur",
        "codelace_box": topup_tag("box-secret", 7, 2000, "eur"),
    }
    assert params["success_url"] == (
        "https://box.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}"
    )
    assert params["cancel_url"] == "https://box.example.com/billing/cancel"
    assert params["line_items"][0]["price_data"]["currency"] == "eur"  # type: ignore[index]
    setup = setup_session_params(7, "a@b.test", config, "box-secret")
    assert (setup["mode"], setup["currency"]) == ("setup", "eur")
    assert setup["metadata"] == {
        "codelace_user_id": "7",
        "codelace_kind": "setup",
        "codelace_box": setup_tag("box-secret", 7),
    }


def test_setup_tags_belong_to_one_box_and_one_account() -> None:
    tag = setup_tag("box-secret", 7)
    assert len(tag) == 32 and tag == setup_tag("box-secret", 7)
    assert tag not in {setup_tag("other-box", 7), setup_tag("box-secret", 8)}
    assert "box-secret" not in tag


def test_require_configured_names_only_what_is_missing() -> None:
    require_configured(STRIPE)
    with pytest.raises(ServiceUnavailable) as caught:
        require_configured(StripeConfig(secret_key=KEY))
    assert "stripe.webhook_secret" in caught.value.message
    assert "CODELACE_STRIPE_WEBHOOK_SECRET" in caught.value.message
    assert "stripe.secret_key" not in caught.value.message


def test_redact_masks_keys_and_signing_secrets() -> None:
    text = f"bad key {KEY} and {WHSEC} and rk_live_abc123 and sk_test_****1234"
    assert redact(text) == "bad key [redacted] and [redacted] and [redacted] and [redacted]"


def _event_body() -> bytes:
    return json.dumps({"id": "evt_1", "object": "event", "type": "x", "data": {}}).encode()


def test_verify_event_accepts_stripe_signed_bodies() -> None:
    body = _event_body()
    header = sign_payload(body, WHSEC, int(time.time()))
    assert verify_event(body, header, WHSEC)["id"] == "evt_1"
    # the double signs exactly as the library computes it
    library = stripe.WebhookSignature.generate_signature_header(body.decode(), WHSEC, 1700000000)
    assert sign_payload(body, WHSEC, 1700000000).startswith(library + ",v0=")


@pytest.mark.parametrize(
    "header",
    [None, "", "t=1,v1=00", "v1=abc", "garbage", "t=abc,v1=abc"],
)
def test_verify_event_refuses_bad_headers(header: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        verify_event(_event_body(), header, WHSEC)
    assert caught.value.code == "invalid_signature"
    assert WHSEC not in caught.value.message


def test_verify_event_refuses_stale_timestamps() -> None:
    body = _event_body()
    with pytest.raises(InvalidRequest):
        verify_event(body, sign_payload(body, WHSEC, int(time.time()) - 301), WHSEC)
    assert verify_event(body, sign_payload(body, WHSEC, int(time.time()) - 200), WHSEC)


def test_verify_event_refuses_timestamps_from_the_future() -> None:
    body = _event_body()
    for ahead in (301, 3600, 10**9):
        with pytest.raises(InvalidRequest) as caught:
            verify_event(body, sign_payload(body, WHSEC, int(time.time()) + ahead), WHSEC)
        assert caught.value.code == "invalid_signature"
    assert verify_event(body, sign_payload(body, WHSEC, int(time.time()) + 200), WHSEC)


def test_decode_form_rebuilds_nested_params() -> None:
    form = (
        "mode=payment&line_items[0][price_data][currency]=usd"
        "&line_items[0][quantity]=1&line_items[1][quantity]=2"
        "&metadata[a]=x&expand[]=one&expand[]=two&empty="
    )
    assert decode_form(form) == {
        "mode": "payment",
        "line_items": [{"price_data": {"currency": "usd"}, "quantity": "1"}, {"quantity": "2"}],
        "metadata": {"a": "x"},
        "expand": ["one", "two"],
        "empty": "",
    }


@pytest.fixture
def double() -> Iterator[StripeDouble]:
    fake = StripeDouble(KEY, WHSEC).start()
    yield fake
    fake.stop()


def _api(double: StripeDouble, key: str = KEY) -> StripeApi:
    return StripeApi(StripeConfig(secret_key=key, webhook_secret=WHSEC, api_base=double.url))


async def test_stripe_api_creates_sessions_and_reads_cards(double: StripeDouble) -> None:
    api = _api(double)
    config = Config(stripe=api.config)
    link = await api.create_checkout_session(
        setup_session_params(3, "c@d.test", config, "box-secret")
    )
    assert link.url.endswith(link.session_id)
    double.complete(link.session_id, card_fingerprint="fp_unit")
    intent = double.session(link.session_id)["setup_intent"]
    assert await api.card_fingerprint(intent) == "fp_unit"
    double.honour_expand = False  # an id instead of the object: the box fetches the method
    assert await api.card_fingerprint(intent) == "fp_unit"
    assert double.calls("GET", "/v1/payment_methods/")
    await api.close()


async def test_stripe_api_errors_become_ours(double: StripeDouble) -> None:
    api = _api(double, key="sk_test_wrong000000000000000000")
    with pytest.raises(ServiceUnavailable) as refused:
        await api.card_fingerprint("seti_test_x")
    assert "sk_test_wrong" not in refused.value.message
    await api.close()
    api = _api(double)
    with pytest.raises(UpstreamError) as missing:
        await api.card_fingerprint("seti_test_missing")
    assert "No such setup_intent" in missing.value.message
    await api.close()


async def test_stripe_api_unreachable_is_a_502() -> None:
    api = StripeApi(StripeConfig(secret_key=KEY, api_base=f"http://127.0.0.1:{free_port()}"))
    started = time.monotonic()
    with pytest.raises(UpstreamError) as caught:
        await api.card_fingerprint("seti_test_x")
    assert caught.value.code == "stripe_unreachable"
    assert time.monotonic() - started < 15
    await api.close()


@pytest.mark.parametrize(
    ("livemode", "key", "other"),
    [
        (True, "sk_test_abc", "live"),
        (False, "sk_live_abc", "test"),
        (False, "rk_live_abc", "test"),
        (True, "sk_live_abc", None),
        (False, "sk_test_abc", None),
        (None, "sk_live_abc", None),
        (True, "a_key_of_no_known_mode", None),
    ],
)
def test_other_mode_compares_the_event_with_the_key(
    livemode: bool | None, key: str, other: str | None
) -> None:
    assert other_mode({"id": "evt_1", "livemode": livemode}, key) == other


def claimed(metadata: dict[str, str], secret: str = "box-secret", ref: str = "7") -> object:
    session = {"id": "cs_1", "mode": "payment", "client_reference_id": ref, "metadata": metadata}
    return topup_claim(session | {"customer_email": "a@b.test"}, secret)


def test_a_top_up_claim_holds_only_with_this_boxs_tag_over_its_account_and_amount() -> None:
    config = Config(stripe=StripeConfig(currency="usd"))
    amount = parse_topup_amount(Decimal("25.50"), config.stripe)
    metadata = topup_session_params(7, "a@b.test", amount, config, "box-secret")["metadata"]
    assert isinstance(metadata, dict)
    assert claimed(metadata) == TopupClaim(7, 25_500_000_000, "usd", "a@b.test")
    assert claimed(metadata, secret="another-box") is None  # another box on the account
    assert claimed(metadata, ref="8") is None  # the session is another account's
    assert claimed(metadata | {"codelace_amount": "255000"}) is None  # the amount edited
    assert claimed(metadata | {"codelace_user_id": "8"}, ref="8") is None  # the account edited
    assert claimed(metadata | {"codelace_currency": "eur"}) is None
    assert claimed({k: v for k, v in metadata.items() if k != "codelace_box"}) is None
    assert claimed(metadata, secret="") is None  # no secret, no proof
