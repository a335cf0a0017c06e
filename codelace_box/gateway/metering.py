"""Metering: reserve a request's worst case before the upstream call, settle its cost after.

Admission is one guarded UPDATE inside a BEGIN IMMEDIATE transaction (so it holds across worker
processes): `held_nanos` grows by the worst case only if `balance_nanos - held_nanos` covers
it, and a Hold row records it (with its key). Before it, in the same transaction, the account
limits and the key's spend cap (gateway/admission.py). For a key with a budget (a cap or a
reset) the hold is also counted on the key's row (`key_held`), and its settlement lowers the
key's held_nanos and adds the charge to its period's spend. Settlement is one IMMEDIATE
transaction with no await inside: the usage ledger entry (idempotency key `usage:<request
id>`), the hold deleted and `held_nanos` lowered, the usage row with the prices applied. The
hold row gates it, so a request is settled exactly once. The charge never exceeds the hold,
which the balance covered besides every other hold when it was taken, so concurrent requests
can never spend more than the balance. A refund or dispute that takes credit back while calls
run may leave the balance below their holds: each is still charged its cost (the balance then
ends below zero, as had the reversal come after the calls). The usage debit is a ledger entry
written by `billing.ledger.append_entry_in`; the statements are db/hotpath.py's. Under load,
db/batch.py lets the admissions and settlements of one event-loop turn share one transaction
(their steps in turns; each in its own savepoint once one failed): `admit_steps` and
`settle_steps` are the units it runs; `admit` and `settle` run one alone.

Estimates, documented for the operator:
- input bound for admission: one token per request-body byte (no tokenizer emits fewer than
  one byte per token), plus 1,000 tokens for what the provider adds itself (message
  formatting, Anthropic's tool-use system prompt; 1,500 more per Anthropic-defined tool, such as
  computer use, on /v1/messages and on chat, where LiteLLM takes them), plus, when a message
  carries media (any non-text part, inline or not: a provider counts an image by its pixels,
  a PDF by its pages, audio by its seconds, never by their bytes), the model's context window
  once (the whole prompt must fit in it): its `--context-tokens`, else
  `gateway.default_context_tokens`; so too when the provider adds input to the prompt
  (`plugins`, `web_search_options`, an OpenRouter `:online` upstream model); with an
  Anthropic server tool (or MCP server), whose loop calls the model up to SERVER_LOOP_TURNS
  times, each call reading the conversation and the tool results so far (at most the window)
  and the usage summing them: the window once more for each turn after the first
  (loop_input_bound);
- output cap: the request's max_completion_tokens / max_tokens (or llama.cpp's n_predict,
  which its server reads over them: the largest), else the model's
  max_output_tokens, else 4,096 tokens; times `n`; the upstream is sent the cap reserved for,
  and the relay stops a stream that reaches it; plus, with OpenAI's predicted outputs, the
  prediction a token per byte (its tokens the answer does not use are billed as output); with
  an Anthropic server tool (or MCP server) the provider loops, each call to the model up to
  the cap: SERVER_LOOP_TURNS caps, within the context window (output_token_bound);
- Anthropic's extra samplings on /v1/messages (server-side compaction's pass, advisor calls),
  reported in `usage.iterations`: gateway/extra_samplings.py;
- when an upstream never reports usage (a server that ignores include_usage, a stream cut at
  the cap or abandoned and never finished): see providers/tally.py, and the usage row is marked
  `estimated`.

The hold is an upper bound: a charge never exceeds it. A provider reporting more than was
reserved is charged the hold, and the difference is logged as the operator's loss.
"""

from __future__ import annotations

import logging
from typing import Any

from codelace_box import metrics
from codelace_box.billing.ledger import append_entry_in
from codelace_box.db import hotpath, totals
from codelace_box.db.containers import record_container_in
from codelace_box.db.core import (
    Tx,
    day_of,
    db_time,
    minute_of,
    utcnow,
    write_transaction,
)
from codelace_box.db.observability import set_upstream_error
from codelace_box.db.turns import ALONE, Steps, run_steps
from codelace_box.db.usage_rows import insert_usage
from codelace_box.gateway.admission import (
    NO_LIMITS,
    Admission,
    balance_refusal,
    check_account_limits,
    reserve_on_key,
    settle_on_key,
)
from codelace_box.gateway.charges import Settlement, usage_values
from codelace_box.gateway.holds import hold_owner
from codelace_box.money import NANOS_PER_USD
from codelace_box.providers.billed_fields import adds_to_the_prompt, runs_server_tools
from codelace_box.providers.tally import inline_media_chars, unsized_parts

log = logging.getLogger("codelace_box.gateway")

DEFAULT_MAX_OUTPUT_TOKENS = 4096
BYTES_PER_TOKEN_ESTIMATE = 4
PROVIDER_PROMPT_TOKENS = 1000  # what a provider adds to a prompt (formatting, tool-use prompt)
SERVER_LOOP_TURNS = 10  # Anthropic's server tool loop: 10 calls to the model, then pause_turn
# What Anthropic adds for one of its own tools, at most: computer use's definition (735 tokens)
# and system prompt (466-499); the text editor's 700, bash's 245 (its documented figures).
DEFINED_TOOL_TOKENS = 1500
_PLAIN_TOOLS = (None, "function", "custom")  # tools whose definition is all in the body


def loop_input_bound(body: dict[str, Any], context_tokens: int) -> int:
    """The input tokens a server tool's loop (an Anthropic server tool or MCP server) reads past
    its first turn: each further call to the model reads the conversation so far again, its
    tool results included (at most the context window), and the provider's usage sums the
    turns (Anthropic's `usage.input_tokens` is the total of its `usage.iterations`). 0 without
    such a tool."""
    return (SERVER_LOOP_TURNS - 1) * context_tokens if runs_server_tools(body) else 0


def input_token_bound(
    body_len: int, body: dict[str, Any], context_tokens: int, upstream_model: str = ""
) -> int:
    """An upper bound of the request's input tokens, for admission (`context_tokens`: the
    model's context window, reserved once when media of unknown size is attached, and covering
    the media's inline base64 data, which is not counted again a token per character, or when
    the provider adds input of its own to the prompt (adds_to_the_prompt: a gateway's web
    search results, an OpenRouter `:online` `upstream_model`'s); and once for each further
    turn of a server tool's loop, whose results are input of their own: loop_input_bound);
    plus what Anthropic adds for its own tools (defined_tools_bound)."""
    messages = body.get("messages")
    loop = loop_input_bound(body, context_tokens) + defined_tools_bound(body.get("tools"))
    if not unsized_parts(messages) and not adds_to_the_prompt(body, upstream_model):
        return body_len + PROVIDER_PROMPT_TOKENS + loop
    inline = inline_media_chars(messages)
    return body_len - inline + PROVIDER_PROMPT_TOKENS + context_tokens + loop


def defined_tools_bound(tools: Any) -> int:
    """DEFINED_TOOL_TOKENS for each tool of a type other than function or custom: an
    Anthropic-defined one (computer use, text editor, bash, memory) is named in a few bytes,
    but Anthropic adds its definition and system prompt, on /v1/messages and on chat to a
    gateway in front of Claude that takes them there (LiteLLM). A loop over the list: about
    2 us with 20 function tools."""
    if type(tools) is not list:
        return 0
    return DEFINED_TOOL_TOKENS * sum(
        1 for tool in tools if type(tool) is dict and tool.get("type") not in _PLAIN_TOOLS
    )


def output_token_bound(body: dict[str, Any], cap: int, context_tokens: int) -> int:
    """The output tokens a request may be billed, per choice: its cap, or, when an Anthropic
    server tool (or MCP server) runs the provider's loop, each call to the model limited to the
    cap (the anthropic SDK: `usage.output_tokens` can exceed `max_tokens` then), SERVER_LOOP_TURNS
    caps, no more than the context window that every turn's output stays in."""
    if not runs_server_tools(body):
        return cap
    return max(cap, min(cap * SERVER_LOOP_TURNS, context_tokens))


def input_token_estimate(body_len: int) -> int:
    """A fair guess of the input tokens, when the upstream never said."""
    return -(-body_len // BYTES_PER_TOKEN_ESTIMATE)


def admit_in(
    tx: Tx, user_id: int, request_id: str, amount_nanos: int, limits: Admission = NO_LIMITS
) -> None:
    """Reserve `amount_nanos` inside an open transaction after the account limits (429) and
    the key cap (402 key_limit_reached), or raise 402 (gateway/admission.py). A refusal leaves
    the transaction's earlier statements to the caller's rollback (a savepoint in a batch)."""
    run_steps(admit_steps(tx, user_id, request_id, amount_nanos, limits))


def admit_steps(
    tx: Tx, user_id: int, request_id: str, amount_nanos: int, limits: Admission = NO_LIMITS
) -> Steps[None]:
    """`admit_in` as the group commit's steps: it yields once its hold and its reservation are
    sent, before it reads their answers (db/batch.py). Only then: the account limits counted
    before it (their reads are waited for at once) see the holds of the writes sent earlier."""
    now = utcnow()
    check_account_limits(tx, user_id, limits, now)
    key_id = limits.key_id
    hold = (user_id, amount_nanos, request_id, db_time(now), hold_owner())
    unbudgeted = (  # the lookup saw no budget on the key: its row is left alone if none now
        hotpath.insert_hold_unbudgeted(tx, *hold, key_id)
        if key_id is not None and not limits.key_budgeted
        else None
    )
    reserved = hotpath.reserve(tx, user_id, amount_nanos)  # sent with the hold: one wait
    turns = unbudgeted is not None and not limits.max_concurrent
    if turns:
        yield None  # (a later write's count of open holds must see this hold: it is sent)
    held = unbudgeted is not None and unbudgeted()
    if turns and not held:  # the key got a budget since: its hold and the key's reservation
        yield ALONE  # are still to write, and a later write's first turn would miss them
    key_held = not held and key_id is not None and reserve_on_key(tx, key_id, amount_nanos, now)
    if not reserved():  # after the key's cap: its refusal is told first
        raise balance_refusal(tx, user_id)
    if not held:
        hotpath.insert_hold(tx, *hold, key_id, key_held)


def admit(user_id: int, request_id: str, amount_nanos: int, limits: Admission = NO_LIMITS) -> None:
    """`admit_in` in its own IMMEDIATE transaction."""
    with write_transaction() as tx:
        hotpath.one_writer_with_requests(tx)
        admit_in(tx, user_id, request_id, amount_nanos, limits)


def settle_in(tx: Tx, item: Settlement) -> int | None:
    """Debit the cost, release the hold, write the usage row, inside an open transaction;
    returns the nano-USD debited, or None when the request was already settled."""
    return run_steps(settle_steps(tx, item))


def settle_steps(tx: Tx, item: Settlement) -> Steps[int | None]:
    """`settle_in` as the group commit's steps: it yields once the hold's deletion and the
    account's locked read are sent (db/batch.py)."""
    hold_taken = hotpath.take_hold(tx, item.request_id, item.user_id)  # the account locked too
    yield None
    taken = hold_taken()
    if taken is None:
        return None
    hold, key_id, key_held = taken
    charged = _charge(item, hold)
    moment = utcnow()
    if key_id is not None and key_held:
        settle_on_key(tx, key_id, hold, charged, moment)
    now = db_time(moment)
    if charged:
        reason = (
            f"{item.model}: {item.input_tokens} input + {item.output_tokens} output tokens"
            f" ({item.request_id})"
        )
        key = f"usage:{item.request_id}"  # the hold row already makes this exactly once
        append_entry_in(
            tx, item.user_id, -charged, "usage", reason, key, now, released=hold, locked=True
        )  # the account was read locked with the hold (take_hold)
    else:
        hotpath.lower_held(tx, item.user_id, hold)
    values = usage_values(item, charged, hold, now)
    insert_usage(tx, values)
    if item.upstream_error:
        set_upstream_error(tx, item.request_id, item.upstream_error)
    if item.container is not None:  # only this user may name it again (gateway/containers.py)
        record_container_in(tx, item.user_id, *item.container)
    usage = (values[6], values[7], values[19], values[20], charged)  # tokens as stored
    count_in_totals(tx, (item.user_id, item.key_id, item.model), item.status, usage, now)
    _count(item, usage)
    return charged


def count_in_totals(
    tx: Tx,
    owner: tuple[int, int | None, str],
    status: str,
    usage: tuple[int, int, int, int, int],
    created_at: str,
) -> None:
    """Count a usage row into the running totals and rollups, in the transaction that writes
    it: `owner` (user id, key id, model), `usage` (input, output, cache-read, cache-write
    tokens, cost nano-USD), `created_at` as stored."""
    figures = (int(status == "error"), *usage)
    buckets = (minute_of(created_at), day_of(created_at))
    totals.add(tx, owner, figures, created_at, buckets)


def _count(item: Settlement, usage: tuple[int, int, int, int, int]) -> None:
    """The settled call in the metrics (after its rows are written, once per request), with
    the tokens as stored (never negative, whatever an upstream reported) and the charge."""
    model, provider = item.model, item.provider
    counting = metrics.counting()  # the thread's state read once, not once an increment
    metrics.inference.add(counting, (model, provider, item.status))
    for kind, tokens in zip(("input", "output", "cache_read", "cache_write"), usage, strict=False):
        if tokens > 0:
            metrics.tokens.add(counting, (model, provider, kind), tokens)
    if usage[4] > 0:
        metrics.cost.add(counting, (model, provider), usage[4] / NANOS_PER_USD)


def settle(item: Settlement) -> int | None:
    """`settle_in` in its own IMMEDIATE transaction (exactly once per request)."""
    with write_transaction() as tx:
        hotpath.one_writer_with_requests(tx)
        return settle_in(tx, item)


def _charge(item: Settlement, hold: int) -> int:
    """The cost, capped at the hold (the most the request could cost: what the provider reports
    above it is the operator's loss). Not at what the account covers now: the hold was covered
    when it was taken, and only a refund or dispute since can have taken the balance below it
    (an operator's debit cannot: billing/credits.py). Capped by that, a call in flight when
    its top-up was refunded or disputed was charged nothing, the balance left where the
    reversal alone put it."""
    cost = item.cost_nanos()
    if cost <= 0:
        return 0
    if cost > hold:
        log.warning(
            "request %s: the provider reported %d nano-USD, more than the %d reserved; charged"
            " the reservation, the operator's loss is %d nano-USD",
            item.request_id,
            cost,
            hold,
            cost - hold,
            extra={"request_id": item.request_id},  # (a batch's: no request's context)
        )
        return hold
    return cost
