"""The limits checked inside a request's admission, in the transaction that takes its hold.

`Admission` says what applies to one call: its key (whose cap, if any, is checked) and the
account's requests per minute and concurrent requests (0: unlimited). In order, as the SPEC
wants them: the account limits (429 with Retry-After), then the key cap (402
`key_limit_reached`); the balance (402) is metering's own check after these. Everything runs
in the caller's write transaction, so a refusal rolls back whatever was counted before it.

- Account limits lock the user's row first (`hotpath.lock_user`: on SQLite the IMMEDIATE
  transaction is the lock already, on PostgreSQL `FOR UPDATE`), then count the user's open
  holds (max_concurrent) and its admissions of the last 60 s (rpm: one `rate_event` row per
  admission, bucket `rpm:<user id>`). Accounts without limits skip all of it.
- The key cap is one guarded UPDATE (`hotpath.reserve_key`): the key's held_nanos grows by the
  worst case only if the cap covers what the key spent in its period, what it holds, and this
  request. A period that is over is rolled over by the same statement (and by the
  settlement's, `hotpath.settle_key`).
- Only a key with a budget (a cap or a reset period) has its row written: the common key
  without one costs no statement on its row (metering.admit_in, `hotpath.insert_hold_unbudgeted`).
  Whether a key has one is read in the admission's own transaction; the key lookup's answer
  (`Admission.key_budgeted`, possibly stale: a budget set since by another process) only
  chooses which statement is tried first, and each statement checks the key's row itself.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from codelace_box.accounts.limits import RPM_WINDOW_SEC, period_starts
from codelace_box.db import hotpath
from codelace_box.db.core import Tx, db_time, parse_time, utcnow
from codelace_box.errors import InsufficientCredits, RateLimited
from codelace_box.money import format_usd, token_cost_nanos

CONCURRENCY_RETRY_SEC = 1  # a request in flight usually ends within seconds
_LOWER_MAX_TOKENS = re.compile(r" or lower max_tokens|lower max_tokens, ")  # admission's words


@dataclass  # not frozen: made for every call (providers/base.py UpstreamTarget)
class Admission:
    """The limits of one call: its key (None: none checked) and its account's rpm and
    max_concurrent (0: unlimited)."""

    key_id: int | None = None
    rpm: int = 0
    max_concurrent: int = 0
    key_budgeted: bool = True  # what the key lookup saw (a guess: see the module doc)


NO_LIMITS = Admission()


def rpm_bucket(user_id: int) -> str:
    """The rate_event bucket of an account's inference requests."""
    return f"rpm:{user_id}"


def check_account_limits(tx: Tx, user_id: int, limits: Admission, now: datetime) -> None:
    """Raise 429 when the account has as many requests in flight as it may, or made as many in
    the last minute; otherwise count this one. The Retry-After is the later of the two waits
    that apply: a slot in flight freed in a second admits nothing while the minute is full."""
    if not (limits.rpm or limits.max_concurrent):
        return
    hotpath.lock_user(tx, user_id)
    bucket = rpm_bucket(user_id)
    rpm_wait = _rpm_wait(tx, bucket, limits.rpm, now) if limits.rpm else 0
    if limits.max_concurrent and hotpath.open_holds(tx, user_id) >= limits.max_concurrent:
        raise RateLimited(
            f"too many concurrent requests: this account may have {limits.max_concurrent} in "
            "flight; retry when one finishes",
            max(CONCURRENCY_RETRY_SEC, rpm_wait),
        )
    if rpm_wait:
        raise RateLimited(
            f"too many requests: this account may make {limits.rpm} per minute; "
            f"try again in {max(1, rpm_wait)} s",
            rpm_wait,
        )
    if limits.rpm:
        hotpath.insert_event(tx, bucket, db_time(now))


def _rpm_wait(tx: Tx, bucket: str, rpm: int, now: datetime) -> int:
    """Seconds until the account's requests of the last minute allow one more (0: now).

    An admission stamped ahead of this clock (another box's fast clock, or this one's before
    it was set back) is waited for as made now, as the sign-in limits take it
    (accounts/ratelimit.py): the wait is never longer than the window, and one stamped more
    than a window ahead is no admission of this minute (counted, it refused the account until
    this clock reached it); nothing is written (a refusal's writes are rolled back)."""
    since = now - timedelta(seconds=RPM_WINDOW_SEC)
    window = (db_time(since), db_time(now + timedelta(seconds=RPM_WINDOW_SEC)))
    count = hotpath.events_since(tx, bucket, window)
    if count < rpm:
        return 0
    freeing = hotpath.event_at(tx, bucket, window, count - rpm)
    if freeing is None:
        return RPM_WINDOW_SEC
    return max(1, math.ceil((min(parse_time(freeing), now) - since).total_seconds()))


def count_in_rpm(tx: Tx, user_id: int, rpm: int) -> None:
    """Count a call that takes no hold (a count_tokens an upstream is asked for) in its
    account's requests per minute; 429 past them."""
    check_account_limits(tx, user_id, Admission(rpm=rpm), utcnow())


def reserve_on_key(tx: Tx, key_id: int, amount_nanos: int, now: datetime) -> bool:
    """Hold `amount_nanos` on the row of a key with a budget, against its cap (if it has one),
    or raise 402; False: the key has no budget now (its row is left alone)."""
    starts = period_starts(now)
    if hotpath.reserve_key(tx, key_id, amount_nanos, starts):
        return True
    budget = hotpath.key_budget(tx, key_id, starts)
    if budget is not None:
        reset, left, cap = budget
        said = key_cap_refusal(reset, left, resets=cap != 0)  # $0 is used up again at once
        refused = InsufficientCredits(said, code="key_limit_reached")
        refused.left_nanos, refused.reset = left, reset
        raise refused
    return False


def key_cap_refusal(
    reset: str | None,
    left_nanos: int | None = None,
    over: tuple[str, str] | None = None,
    *,
    resets: bool = True,
) -> str:
    """What a request past its key's cap is told: the reset only when the key has one (a cap
    without reset never resets: "wait for the reset" sent its user waiting for nothing).
    Nothing left of the cap (`left_nanos` spent, or held by requests in flight): no smaller
    request fits either, so lowering max_tokens is not offered; nor when what the request holds
    before any output is more than is left (`over`: that, and the shorter conversation that
    helps, or "", from `before_output`). Not `resets` (a $0 cap): the reset frees nothing."""
    wait = ""
    if reset is not None and resets:
        wait = f" or wait for the {reset} reset ({_moment(reset)})"
    period = "" if reset is None else " for the period"
    never = "it has no reset period; " if reset is None else ""
    in_flight = f"({never}its requests in flight count at their worst case until they end)"
    if left_nanos is not None and left_nanos <= 0:
        spent = f"nothing is left of this API key's spend limit{period} {in_flight}"
        return f"{spent}: raise limit_usd{wait}"
    if left_nanos is not None and over is not None:
        held, shorter = over
        shorter += f"{',' if wait else ' or'} " if shorter else ""
        return (
            f"{held}, more than the {_usd(left_nanos)} left of this API key's spend limit"
            f"{period} {in_flight}: {shorter}raise limit_usd{wait}"
        )
    if reset is None:
        return (
            "this request's worst case does not fit what is left of this API key's spend "
            "limit (it has no reset period): raise limit_usd or lower max_tokens"
        )
    return (
        "this request's worst case does not fit what is left of this API key's spend limit "
        f"for the period: lower max_tokens, raise limit_usd or wait for the {reset} reset "
        f"({_moment(reset)})"
    )


def _moment(reset: str) -> str:
    """When a period of this reset starts, in words."""
    return {"weekly": "Monday 00:00 UTC", "monthly": "the 1st, 00:00 UTC"}.get(reset, "00:00 UTC")


def _usd(nanos: int) -> str:
    """An amount as the 402s give it ($0.001, $1.282182)."""
    return format_usd(nanos, 6, trim_to=2)


def balance_refusal(tx: Tx, user_id: int) -> InsufficientCredits:
    """The 402 of a request the account's balance does not cover (a refusal's read: nothing on
    the admitted path), in `credit_refusal`'s words."""
    balance, held = hotpath.account(tx, user_id)()
    refused = InsufficientCredits(credit_refusal(balance - held))
    refused.left_nanos = balance - held
    return refused


def credit_refusal(left_nanos: int, over: tuple[str, str] | None = None) -> str:
    """What a request the credit does not cover is told: with no credit left (the balance
    less what its requests in flight hold), add credit, and nothing about max_tokens, which no
    request of any size passes by; nor when what it holds before any output is more than is
    left (`over`: that, and the shorter conversation that helps, or "": `before_output`)."""
    if left_nanos <= 0:
        return (
            f"insufficient credit: this account has no credit left (its balance, less what its "
            f"requests in flight hold, is {_usd(left_nanos)}): add credit"
        )
    if over is not None:
        held, shorter = over
        return (
            f"insufficient credit: {held}, more than the {_usd(left_nanos)} of credit left (its "
            f"balance, less what its requests in flight hold): {shorter}{' or ' if shorter else ''}"
            "add credit"
        )
    return "insufficient credit for this request: add credit or lower max_tokens"


def settle_on_key(
    tx: Tx, key_id: int, released_nanos: int, charged_nanos: int, now: datetime
) -> None:
    """Release the key's hold and count the charge in its current period."""
    hotpath.settle_key(tx, key_id, released_nanos, charged_nanos, period_starts(now))


@dataclass(frozen=True)
class Asked:
    """What a refused call asked for, as its 402 words it (made on the refusal path only)."""

    hold_nanos: int
    output_tokens: int | None  # None: a call that makes none (embeddings)
    output_per_1m_nanos: int = 0
    passes_nanos: int = 0  # its compaction and advisor passes: a window each, any conversation
    client: str = ""  # its route's main client: "Claude Code" (/v1/messages), "Codex"
    sent_cap: bool = True  # the request set its output cap itself (Codex sends none)

    def input_nanos(self) -> int | None:
        """What it holds before any output (its input, and the passes it may run that no
        output cap bounds): no max_tokens makes it hold less."""
        if self.output_tokens is None:
            return None
        return self.hold_nanos - token_cost_nanos(
            0, self.output_tokens, 0, self.output_per_1m_nanos
        )


_NEW_CHAT = {"Claude Code": " (Claude Code: /clear)", "Codex": " (Codex: /new)"}
_CODEX_CAP = (
    "; it sent no max_output_tokens, so the model's cap is held: Codex sends none (no setting "
    "of its config.toml does), a model with a smaller cap or cheaper output holds less (codex -m)"
)


def before_output(asked: Asked, input_nanos: int, left_nanos: int) -> tuple[str, str]:
    """What a request holds before any output, as its 402 words it, and the shorter
    conversation that helps ("" when none does: its compaction or advisor passes hold a context
    window each, whatever the conversation's length, and so the same after a /clear)."""
    new_chat = f"send a shorter conversation{_NEW_CHAT.get(asked.client, '')}"
    passes = asked.passes_nanos
    if not passes:
        return f"this request's input alone holds {_usd(input_nanos)}", new_chat
    held = (
        f"this request holds {_usd(input_nanos)} before any output ({_usd(passes)} of it for "
        "the compaction or advisor passes it may run, a context window each, whatever the "
        "conversation's length)"
    )
    return held, new_chat if passes < left_nanos else ""


def with_the_hold(refused: InsufficientCredits, asked: Asked) -> InsufficientCredits:
    """A 402 of admission that says what the request holds: its worst case, which is what
    did not fit (Claude Code asks for up to 128,000 output tokens, about $1.92 at $15/1M, and a
    user with $0.50 left was refused "Say hi" with no figure); or, when its input alone holds
    more than is left, that (lowering max_tokens cannot help it), in its kind's words."""
    message = refused.message
    if "max_tokens" not in message:  # nothing left: no request of any size would pass
        return refused
    left, input_nanos = refused.left_nanos, asked.input_nanos()
    if left is not None and input_nanos is not None and input_nanos >= left:
        over = before_output(asked, input_nanos, left)
        if refused.code == "key_limit_reached":
            message = key_cap_refusal(refused.reset, left, over)
        else:
            message = credit_refusal(left, over)
        return InsufficientCredits(message, code=refused.code, param=refused.param)
    output_tokens = asked.output_tokens
    told = f"this request holds {_usd(asked.hold_nanos)} for its input"
    if output_tokens is not None:
        told += f" and up to {output_tokens} output token{'' if output_tokens == 1 else 's'}"
    else:  # no max_tokens to lower
        message = _LOWER_MAX_TOKENS.sub("", message)
    if asked.client == "Claude Code":
        told += "; Claude Code asks for fewer with CLAUDE_CODE_MAX_OUTPUT_TOKENS"
    elif asked.client == "Codex" and not asked.sent_cap:
        told += _CODEX_CAP
    message = f"{message} ({told})"
    return InsufficientCredits(message, code=refused.code, param=refused.param)
