"""The box-wide cap on sign-in code mails (`auth.otp_codes_per_hour`, 0: none).

The per-mailbox and per-address limits do not bound the mail someone holding many client
addresses (an IPv6 /48 is 65,536 /64s) can make the box send to many mailboxes: each code is
a mail on the operator's SMTP quota and sender reputation. This cap counts the codes mailed in
any hour in the database the other sign-in limits use, so all workers and every box on one
PostgreSQL database share it. Only code requests count it (never a /v1 call, nor a verify).
Past it the operator's log says so, once an hour for all of them, naming no address.
"""

from __future__ import annotations

import logging

from codelace_box.accounts.ratelimit import Limit, LimitsReached, hit
from codelace_box.config import AuthConfig
from codelace_box.errors import RateLimited

log = logging.getLogger("codelace_box.accounts")

BOX_BUCKET = "otp-request:box"
WARNED_BUCKET = "otp-request:box-warned"
HOUR_SEC = 3600


def box_limits(auth: AuthConfig) -> list[Limit]:
    """The cap as a limit of a code request (none when it is 0)."""
    if not auth.otp_codes_per_hour:
        return []
    return [
        Limit(
            BOX_BUCKET,
            auth.otp_codes_per_hour,
            HOUR_SEC,
            "sign-in codes mailed by this box",
            says="this box is sending too many sign-in codes just now",
        )
    ]


def note_refusal(refused: LimitsReached, auth: AuthConfig) -> None:
    """A code request refused: if the box's cap was full, warn the operator, at most once an
    hour across workers and boxes (counted in the database as the cap is)."""
    if BOX_BUCKET not in refused.full:
        return
    try:
        hit([Limit(WARNED_BUCKET, 1, HOUR_SEC, "warnings of the sign-in code cap")])
    except RateLimited:
        return  # another process (or this one) said it within the hour
    log.warning(
        "sign-in codes: the box mailed %d sign-in codes in the last hour, its "
        "auth.otp_codes_per_hour (all its workers and every box on its database together): "
        "code requests get 429 until fewer were; raise auth.otp_codes_per_hour if so many "
        "sign-ins are expected, else someone may be making the box mail codes to many "
        "addresses (said at most once an hour)",
        auth.otp_codes_per_hour,
    )
