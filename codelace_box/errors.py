"""The one exception tree of codelace-box; every error a user can see is one of these.

Each class carries the HTTP status, the OpenAI envelope `type` and a default `code`, so the
API renders any of them the same way and the CLI prints its message on one line::

    CodelaceError (500 server_error)
    ├── InvalidRequest (400 invalid_request_error)
    ├── AuthenticationFailed (401 authentication_error)
    ├── InsufficientCredits (402 invalid_request_error / insufficient_credits)
    ├── PermissionDenied (403 permission_error)
    ├── NotFound (404 not_found_error)
    ├── Conflict (409 invalid_request_error)
    ├── PayloadTooLarge (413 invalid_request_error)
    ├── UnsupportedEncoding (415 invalid_request_error: a Content-Encoding other than identity)
    ├── RateLimited (429 rate_limit_error, carries retry_after_sec)
    ├── UpstreamError (502 api_error)
    │   ├── UpstreamOverloaded (503 api_error / upstream_overloaded)
    │   └── UpstreamBusy (503 api_error, carries retry_after_sec: a service's rate limit)
    ├── ServiceUnavailable (503 api_error)
    │   └── OutOfResources (503 api_error / out_of_resources: the box's own, not a provider's)
    ├── UpstreamTimeout (504 api_error)
    └── ConfigError (500 server_error: bad configuration, stops the start; `serve` exit 78)
        └── NotReady (what may pass by itself: the port in use, the database not reachable)

No web framework is imported here.
"""

from __future__ import annotations

from typing import Any


class CodelaceError(Exception):
    """Base of every error codelace-box raises on purpose."""

    status: int = 500
    error_type: str = "server_error"
    default_code: str = "internal_error"
    from_upstream: bool = False  # an upstream's own refusal relayed (not the box's)
    cost_nanos: int | None = None  # what a failed call was charged (an answer too large to relay)
    passing: bool = False  # may be gone at a retry shortly, whatever its code (never said final)
    counted: bool = False  # in the upstream errors metric already (a retry hid it at first)
    exit_status: int = 1  # a command's on it (serve's on a ConfigError: EX_CONFIG)

    def __init__(self, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param

    def envelope(self) -> dict[str, Any]:
        """The OpenAI-style error body for this error."""
        body: dict[str, Any] = {"message": self.message, "type": self.error_type, "code": self.code}
        if self.param is not None:
            body["param"] = self.param
        return {"error": body}


class InvalidRequest(CodelaceError):
    status = 400
    error_type = "invalid_request_error"
    default_code = "invalid_request"


class AuthenticationFailed(CodelaceError):
    status = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class InsufficientCredits(CodelaceError):
    status = 402
    error_type = "invalid_request_error"
    default_code = "insufficient_credits"
    left_nanos: int | None = None  # what was left (of the credit or the key's cap) when refused
    reset: str | None = None  # a refused key cap's reset period (None: it has none)


class PermissionDenied(CodelaceError):
    status = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class NotFound(CodelaceError):
    status = 404
    error_type = "not_found_error"
    default_code = "not_found"


class Conflict(CodelaceError):
    status = 409
    error_type = "invalid_request_error"
    default_code = "conflict"


class PayloadTooLarge(CodelaceError):
    status = 413
    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class UnsupportedEncoding(CodelaceError):
    """A request body in a content coding (gzip, ...) the box does not decode (RFC 9110 15.5.16:
    the answer carries `Accept-Encoding: identity`)."""

    status = 415
    error_type = "invalid_request_error"
    default_code = "unsupported_content_encoding"


class RateLimited(CodelaceError):
    status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limited"

    def __init__(self, message: str, retry_after_sec: int, code: str | None = None) -> None:
        super().__init__(message, code)
        self.retry_after_sec = max(1, int(retry_after_sec))


class UpstreamError(CodelaceError):
    status = 502
    error_type = "api_error"
    default_code = "upstream_error"


class UpstreamOverloaded(UpstreamError):
    """The provider said it is overloaded (Anthropic's 529, OpenAI's 503 that says so) on every
    key tried: 503, as OpenAI's own API answers when it is overloaded (still an upstream
    failure: retried, never billed), with the upstream's Retry-After when it gave one."""

    status = 503
    default_code = "upstream_overloaded"
    retry_after_sec: int | None = None  # seconds, when the upstream said (gateway/server_failure)


class UpstreamBusy(UpstreamError):
    """A service the box calls for the user (not a metered provider: Stripe) refused for its
    own rate limit: 503 with Retry-After (its own wait, else a small default), a refusal
    that passes shortly, as the SPEC's 503 "unavailable" with the wait the 429 carries."""

    status = 503

    def __init__(self, message: str, retry_after_sec: int, code: str | None = None) -> None:
        super().__init__(message, code)
        self.retry_after_sec = max(1, int(retry_after_sec))


class ServiceUnavailable(CodelaceError):
    status = 503
    error_type = "api_error"
    default_code = "service_unavailable"


class OutOfResources(ServiceUnavailable):
    """The box itself ran out of something it needs for the call (file descriptors: EMFILE,
    ENFILE) before the provider was reached: not the provider's failure, so no key is
    blamed and no provider error counted."""

    default_code = "out_of_resources"


class UpstreamTimeout(CodelaceError):
    status = 504
    error_type = "api_error"
    default_code = "upstream_timeout"


class ConfigError(CodelaceError):
    """The configuration is wrong; the message names the file, the key and what was expected.
    `serve` exits EX_CONFIG on one (a supervisor told not to start it again until it is fixed)."""

    default_code = "config_error"


EX_CONFIG = 78  # sysexits.h: `serve`'s exit status on a ConfigError (not a NotReady)


class NotReady(ConfigError):
    """A start refused for what may pass by itself, the configuration perhaps right: the
    listen address in use or not (yet) on this machine, the database not reachable or held by
    another process. `serve` exits 1 on one, so systemd starts it again."""
