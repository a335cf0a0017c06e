"""Fixtures of the billing suite: the Stripe double, a box whose Stripe client points at it,
and a client that acts as the customer (through the box's API) and as Stripe (webhooks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.stripe_double import StripeDouble
from tests.pg_cluster import query_config_db
from tests.support import TLS, ServerProcess, base_sections, free_port, run_cli, write_config

SECRET_KEY = "sk_test_51CodelaceBoxDoubleKey0000000000000000"
WEBHOOK_SECRET = "whsec_codelaceboxdoublesigningsecret000000"


def stripe_section(double: StripeDouble, **overrides: Any) -> dict[str, Any]:
    """The [stripe] section that sends the box's Stripe calls to the double."""
    section = {
        "secret_key": double.secret_key,
        "webhook_secret": double.webhook_secret,
        "api_base": double.url,
        "min_topup_usd": 10,
        "trial_credit_usd": 1,
    }
    section.update(overrides)
    return section


@dataclass(frozen=True)
class Customer:
    email: str
    key: str
    user_id: int  # the integer primary key inside the database (Stripe metadata carries it)
    uuid: str  # the id the CLI and the API show


class BillingBox:
    """One running box, its database file and the double standing in for Stripe."""

    def __init__(self, server: ServerProcess, config: Path, db_path: Path, double: StripeDouble):
        self.server = server
        self.config = config
        self.db_path = db_path
        self.double = double
        self.http = httpx.Client(base_url=server.base_url, timeout=30, verify=TLS)
        self._count = 0

    def customer(self, prefix: str = "buyer") -> Customer:
        """A fresh account with an API key, made with the admin CLI."""
        self._count += 1
        email = f"{prefix}{self._count}-{free_port()}@billing.test"
        created = run_cli(self.config, "users", "create", email)
        assert created.returncode == 0, created.stderr
        made = run_cli(self.config, "keys", "create", email)
        assert made.returncode == 0, made.stderr
        uuid = created.stdout.split()[2]
        (user_id,) = self.query('SELECT id FROM "user" WHERE uuid = ?', uuid)[0]
        return Customer(email, made.stdout.strip().splitlines()[0], int(user_id), uuid)

    def post(self, path: str, customer: Customer | None, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {customer.key}"} if customer else {}
        return self.http.post(path, headers=headers, **kwargs)

    def get(self, path: str, customer: Customer | None, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {customer.key}"} if customer else {}
        return self.http.get(path, headers=headers, **kwargs)

    def start_topup(self, customer: Customer, amount: Any) -> str:
        """Ask the box for a checkout; the id of the session it created at the double."""
        response = self.post("/api/v1/stripe/checkout", customer, json={"amount_usd": amount})
        assert response.status_code == 200, response.text
        return str(self.double.session_by_url(response.json()["checkout_url"])["id"])

    def start_setup(self, customer: Customer) -> str:
        response = self.post("/api/v1/stripe/setup", customer)
        assert response.status_code == 200, response.text
        return str(self.double.session_by_url(response.json()["checkout_url"])["id"])

    def foreign_paid_session(self, metadata: dict[str, str] | None = None) -> str:
        """The id of a session some other integration of the same Stripe account created (25
        USD; `metadata` its own), made at the double: not the box's."""
        line = {"price_data": {"currency": "usd", "unit_amount": "2500",
                               "product_data": {"name": "not ours"}}, "quantity": "1"}  # fmt: skip
        params: dict[str, Any] = {"mode": "payment", "line_items": [line]}
        if metadata is not None:
            params["metadata"] = metadata
        return str(self.double.handle("POST", "/v1/checkout/sessions", params)["id"])

    def deliver(self, event: dict[str, Any], **sign: Any) -> httpx.Response:
        """Deliver an event to the webhook as Stripe does."""
        body, headers = self.double.webhook(event, **sign)
        return self.http.post("/api/v1/stripe/webhook", content=body, headers=headers)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the box's database file directly (a second connection, as an auditor would)."""
        return query_config_db(self.config, sql, args)

    def balance_nanos(self, customer: Customer) -> int:
        return int(
            self.query('SELECT balance_nanos FROM "user" WHERE id = ?', customer.user_id)[0][0]
        )

    def ledger(self, customer: Customer) -> list[tuple[Any, ...]]:
        return self.query(
            "SELECT kind, amount_nanos, idempotency_key FROM ledger_entry WHERE user_id = ? "
            "ORDER BY id",
            customer.user_id,
        )

    def payment_status(self, session_id: str) -> str:
        rows = self.query("SELECT status FROM payment WHERE stripe_session_id = ?", session_id)
        assert len(rows) == 1, rows
        return str(rows[0][0])

    def history(self, customer: Customer) -> list[dict[str, Any]]:
        response = self.get("/api/v1/customer/payment", customer)
        assert response.status_code == 200, response.text
        return list(response.json())

    def doctor(self) -> tuple[int, str]:
        result = run_cli(self.config, "doctor")
        return result.returncode, result.stdout + result.stderr

    def audit(self) -> None:
        """The books add up: balances equal ledgers (doctor), every completed top-up or trial
        is exactly one ledger credit of its amount under its idempotency key, and an account's
        refund and dispute entries take back what its payments say was refunded."""
        unmatched = self.query(
            "SELECT p.id FROM payment p WHERE p.kind IN ('topup', 'trial') "
            "AND p.status = 'completed' AND (SELECT COUNT(*) FROM ledger_entry l "
            "WHERE l.user_id = p.user_id AND l.amount_nanos = p.amount_nanos "
            "AND l.idempotency_key = CASE p.kind WHEN 'trial' THEN 'trial:' || p.user_id "
            "ELSE 'stripe:session:' || p.stripe_session_id END) != 1"
        )
        assert unmatched == [], f"completed payments without exactly one credit: {unmatched}"
        credits = self.query("SELECT COUNT(*) FROM ledger_entry WHERE kind IN ('topup', 'trial')")
        completed = self.query(
            "SELECT COUNT(*) FROM payment WHERE kind IN ('topup', 'trial') AND status = 'completed'"
        )
        assert credits == completed, (credits, completed)
        untied = self.query(
            'SELECT u.id FROM "user" u WHERE (SELECT COALESCE(SUM(l.amount_nanos), 0) '
            "FROM ledger_entry l WHERE l.user_id = u.id AND l.kind = 'refund') != -(SELECT "
            "COALESCE(SUM(p.refunded_nanos), 0) FROM payment p WHERE p.user_id = u.id)"
        )
        assert untied == [], f"refund entries that are not the payments' refunded amounts: {untied}"
        code, output = self.doctor()
        assert code == 0 and "MISMATCH" not in output, output


BoxFactory = Callable[..., BillingBox]


@pytest.fixture(scope="module")
def stripe_double() -> Iterator[StripeDouble]:
    """The Stripe double on loopback, shared by the module."""
    double = StripeDouble(SECRET_KEY, WEBHOOK_SECRET).start()
    yield double
    double.stop()


@pytest.fixture(scope="module")
def billing_box_factory(
    tmp_path_factory: pytest.TempPathFactory, stripe_double: StripeDouble
) -> Iterator[BoxFactory]:
    """Start boxes for this module (each with its own database); all stop at its end."""
    boxes: list[BillingBox] = []

    def factory(
        stripe: dict[str, Any] | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
        **sections: dict[str, Any],
    ) -> BillingBox:
        folder = tmp_path_factory.mktemp("billing")
        merged = base_sections(folder, free_port())
        merged["server"]["workers"] = workers
        merged["stripe"] = stripe_section(stripe_double) if stripe is None else stripe
        for name, keys in sections.items():
            merged.setdefault(name, {}).update(keys)
        config = write_config(folder / "codelace.toml", merged)
        server = ServerProcess(config, int(merged["server"]["port"]), env=env).start()
        box = BillingBox(server, config, Path(merged["database"]["path"]), stripe_double)
        boxes.append(box)
        return box

    yield factory
    for box in boxes:
        box.http.close()
        box.server.stop()
    for box in boxes:
        box.audit()  # whatever a module did, its books must still add up


@pytest.fixture(scope="module")
def box(billing_box_factory: BoxFactory) -> BillingBox:
    """The module's box with Stripe pointing at the double."""
    return billing_box_factory()
