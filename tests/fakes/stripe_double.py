"""A Stripe double: a real HTTP server on 127.0.0.1 speaking the parts of Stripe's API the box
calls, to the real `stripe` library, plus the test's hands on the other side of Stripe.

Wire format as Stripe's: form-encoded request bodies with nested keys
(`line_items[0][price_data][currency]=usd`, `expand[0]=...` or `expand[]=...`), Bearer secret
key auth, JSON objects shaped like Stripe's (`checkout.session`, `setup_intent`,
`payment_method`), and Stripe's error envelope
`{"error": {"type": "invalid_request_error", "message": ..., "param": ..., "code": ...}}`
with Stripe's statuses (400 bad params, 401 bad key, 404 unknown object or URL). The wire
details (form decoding, signing, Stripe's checks on a new session) live in stripe_wire.py.

Routes: POST /v1/checkout/sessions, GET /v1/checkout/sessions/{id},
POST /v1/checkout/sessions/{id}/expire, GET /v1/setup_intents/{id} (expand payment_method),
GET /v1/payment_methods/{id}, GET /v1/refunds, GET /v1/charges/{id} and
GET /v1/checkout/sessions?payment_intent= (stripe_charges.py: charges, refunds, disputes).

The test drives what a customer and Stripe would do: `complete()`, `succeed_async()`,
`fail_async()`, `expire()` (stripe_moves.py) change a session and return the event Stripe
would send;
`outage` (an error every call answers), `stall` (calls wait until it is set) and `go_down()` /
`come_back()` (the port refusing connections) are a Stripe having a bad day. `webhook()`
renders an event as Stripe delivers it (pretty-printed JSON, and
`Stripe-Signature: t=<ts>,v1=<HMAC-SHA256 of "<ts>.<body>" with the whsec secret>,v0=...`).
"""

from __future__ import annotations

import copy
import hmac
import json
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.stripe_charges import ChargesMixin
from tests.fakes.stripe_moves import CustomerMovesMixin
from tests.fakes.stripe_wire import (
    API_VERSION,
    StripeApiError,
    check_common,
    decode_form,
    new_id,
    payment_total,
    session_expiry,
    setup_currency,
    sign_payload,
)

CHECKOUT_HOST = "https://checkout.stripe.com/c/pay/"


class StripeDouble(CustomerMovesMixin, ChargesMixin):
    """The fake Stripe account: its HTTP API on loopback and the test's controls."""

    def __init__(self, secret_key: str, webhook_secret: str) -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.sessions: dict[str, dict[str, Any]] = {}
        self.setup_intents: dict[str, dict[str, Any]] = {}
        self.payment_methods: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}  # stripe_charges.py: refunds, disputes
        self.refunds: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.injected_errors: list[StripeApiError] = []
        self.honour_expand = True  # False: answer ids where asked to expand (older accounts)
        self.outage: StripeApiError | None = None  # set: every API call answers this error
        self.stall: threading.Event | None = None  # set: calls wait for it before answering
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self.connections: set[socket.socket] = set()  # open keep-alive connections

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> StripeDouble:
        self.come_back()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def go_down(self) -> None:
        """Stripe unreachable: the port refuses connections until `come_back()`."""
        self._port = int(self.url.rsplit(":", 1)[1])
        self.stop()
        self._server = None
        with self.lock:
            for connection in self.connections:
                connection.shutdown(socket.SHUT_RDWR)  # kept-alive ones end as well

    def come_back(self) -> None:
        """Listen again on the port the box was configured with."""
        server = ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        server.daemon_threads = True
        server.double = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- the API ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """Answer one API call (the handler checked the key); raises StripeApiError."""
        stall = self.stall
        if stall is not None:  # a Stripe that does not answer (yet)
            stall.wait(60)
        with self.lock:
            if self.outage is not None:
                raise self.outage
            if self.injected_errors:
                raise self.injected_errors.pop(0)
            parts = path.strip("/").split("/")
            if method == "POST" and parts == ["v1", "checkout", "sessions"]:
                return self._create_session(params)
            if len(parts) == 4 and parts[:3] == ["v1", "checkout", "sessions"] and method == "GET":
                return copy.deepcopy(self._find(self.sessions, parts[3], "checkout.session"))
            if len(parts) == 5 and parts[4] == "expire" and method == "POST":
                return self._expire_via_api(parts[3])
            if len(parts) == 3 and parts[:2] == ["v1", "setup_intents"] and method == "GET":
                return self._setup_intent(parts[2], params.get("expand") or [])
            if method == "GET" and (listed := self.list_objects(parts, params)) is not None:
                return listed
            if len(parts) == 3 and parts[:2] == ["v1", "payment_methods"] and method == "GET":
                return copy.deepcopy(self._find(self.payment_methods, parts[2], "payment_method"))
        raise StripeApiError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
        )

    @staticmethod
    def _find(table: dict[str, dict[str, Any]], object_id: str, kind: str) -> dict[str, Any]:
        if object_id not in table:
            raise StripeApiError(
                404, f"No such {kind}: '{object_id}'", param="id", code="resource_missing"
            )
        return table[object_id]

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        check_common(params)
        mode = params.get("mode")
        if mode not in ("payment", "setup"):
            raise StripeApiError(400, "Missing required param: mode.", param="mode")
        if mode == "payment":
            total, currency = payment_total(params)
        else:
            total, currency = None, setup_currency(params)
        return self._store_session(params, mode, total, currency)

    def _store_session(
        self, params: dict[str, Any], mode: str, total: int | None, currency: str | None
    ) -> dict[str, Any]:
        now = int(time.time())
        expires_at = session_expiry(params, now)
        session_id = new_id("cs")
        intent = self._new_setup_intent(now) if mode == "setup" else None
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": mode,
            "status": "open",
            "payment_status": "unpaid" if mode == "payment" else "no_payment_required",
            "amount_subtotal": total,
            "amount_total": total,
            "currency": currency,
            "client_reference_id": params.get("client_reference_id"),
            "customer": params.get("customer"),
            "customer_email": params.get("customer_email"),
            "metadata": params.get("metadata") or {},
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "url": CHECKOUT_HOST + session_id,
            "payment_intent": None,
            "setup_intent": intent,
            "allowed_payment_method_types": params.get("allowed_payment_method_types"),
            "payment_method_types": ["card"],
            "ui_mode": "hosted_page",
            "created": now,
            "expires_at": expires_at,
            "livemode": False,
        }
        self.sessions[session_id] = session
        return copy.deepcopy(session)

    def _new_setup_intent(self, now: int) -> str:
        intent = new_id("seti")
        self.setup_intents[intent] = {
            "id": intent,
            "object": "setup_intent",
            "status": "requires_payment_method",
            "payment_method": None,
            "usage": "off_session",
            "metadata": {},
            "created": now,
            "livemode": False,
        }
        return intent

    def _expire_via_api(self, session_id: str) -> dict[str, Any]:
        session = self._find(self.sessions, session_id, "checkout.session")
        if session["status"] != "open":
            raise StripeApiError(
                400,
                f'Only Checkout Sessions with a status in ["open"] can be expired. '
                f'This Checkout Session has a status of "{session["status"]}".',
            )
        session.update(status="expired", url=None)
        return copy.deepcopy(session)

    def _setup_intent(self, intent_id: str, expand: list[str] | str) -> dict[str, Any]:
        intent = copy.deepcopy(self._find(self.setup_intents, intent_id, "setup_intent"))
        expand_list = [expand] if isinstance(expand, str) else list(expand)
        wanted = self.honour_expand and "payment_method" in expand_list
        if wanted and intent["payment_method"]:
            intent["payment_method"] = copy.deepcopy(self.payment_methods[intent["payment_method"]])
        return intent

    # -- the test's controls: what the customer and Stripe do --------------------------------

    def last_session(self) -> dict[str, Any]:
        """The newest session created through the API."""
        with self.lock:
            return copy.deepcopy(list(self.sessions.values())[-1])

    def session(self, session_id: str) -> dict[str, Any]:
        """A session as Stripe holds it now."""
        with self.lock:
            return copy.deepcopy(self._find(self.sessions, session_id, "checkout.session"))

    def session_by_url(self, url: str) -> dict[str, Any]:
        """The session a checkout URL the box handed out points at."""
        session_id = url.removeprefix(CHECKOUT_HOST)
        with self.lock:
            return copy.deepcopy(self._find(self.sessions, session_id, "checkout.session"))

    def event(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Any event carrying `obj`, e.g. one the box does not handle."""
        with self.lock:
            return self._event(event_type, obj)

    @staticmethod
    def _event(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }

    def webhook(
        self, event: dict[str, Any], timestamp: int | None = None, secret: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the delivery of `event`, signed as Stripe signs it."""
        body = json.dumps(event, indent=2).encode()
        moment = int(time.time()) if timestamp is None else timestamp
        signature = sign_payload(body, secret or self.webhook_secret, moment)
        headers = {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "stripe-signature": signature,
        }
        return body, headers

    def inject_error(
        self, status: int, message: str, error_type: str = "invalid_request_error"
    ) -> None:
        """The next API call answers this Stripe error."""
        with self.lock:
            self.injected_errors.append(StripeApiError(status, message, error_type=error_type))

    def calls(self, method: str, path_prefix: str) -> list[dict[str, Any]]:
        """The recorded API calls matching a method and path prefix, oldest first."""
        with self.lock:
            return [
                copy.deepcopy(r)
                for r in self.requests
                if r["method"] == method and r["path"].startswith(path_prefix)
            ]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `double.requests` instead."""

    def setup(self) -> None:
        super().setup()
        double: StripeDouble = self.server.double  # type: ignore[attr-defined]
        with double.lock:
            double.connections.add(self.connection)

    def finish(self) -> None:
        double: StripeDouble = self.server.double  # type: ignore[attr-defined]
        with double.lock:
            double.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        double: StripeDouble = self.server.double  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        split = urlsplit(self.path)
        try:
            params = decode_form(body if method == "POST" else split.query)
            self._record(double, method, split.path, params)
            self._check_key(double)
            status, answer, extra = 200, double.handle(method, split.path, params), {}
        except StripeApiError as exc:
            if exc.html is not None:
                self._send_page(exc.status, exc.html)
                return
            status, answer, extra = exc.status, exc.body, exc.headers
        self._send(status, answer, extra)

    def _record(self, double: StripeDouble, method: str, path: str, params: dict[str, Any]) -> None:
        wanted = ("stripe-version", "idempotency-key", "content-type", "user-agent")
        headers = {name: self.headers.get(name) for name in wanted}
        with double.lock:
            double.requests.append(
                {"method": method, "path": path, "params": params, "headers": headers}
            )

    def _check_key(self, double: StripeDouble) -> None:
        scheme, _, key = (self.headers.get("authorization") or "").partition(" ")
        if not key:
            raise StripeApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth "
                "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if scheme.lower() != "bearer" or not hmac.compare_digest(key, double.secret_key):
            masked = key[:8] + "*" * max(0, len(key) - 12) + key[-4:]
            raise StripeApiError(401, f"Invalid API Key provided: {masked}")

    def _send_page(self, status: int, page: str) -> None:
        data = page.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send(
        self, status: int, answer: dict[str, Any], extra: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(answer, indent=2).encode()
        self.send_response(status)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", "req_" + secrets.token_hex(7))
        self.send_header("Stripe-Version", API_VERSION)
        self.end_headers()
        self.wfile.write(data)
