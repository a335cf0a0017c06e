"""The usage a relayed stream is charged: the provider's count of a stream that ended normally,
otherwise an estimate never below what the provider or the box already counted."""

from __future__ import annotations

from codelace_box.gateway.request import ChatCall
from codelace_box.providers.base import StreamTranslator, Usage
from codelace_box.providers.tally import OutputTally


def produced(call: ChatCall, translator: StreamTranslator, tally: OutputTally,
             complete: bool) -> Usage:  # fmt: skip
    """The provider's usage of a stream that ended normally; otherwise an estimate that
    is never below any count the provider already gave (a partial or running usage,
    reasoning tokens) nor below the output relayed (tally.py)."""
    reported = translator.usage
    if complete and reported is not None:
        return call.with_input(reported)
    seen_in = max(translator.input_tokens_seen, reported.input_tokens if reported else 0)
    output = max(tally.tokens, translator.output_tokens_seen)
    if reported is not None:
        output = max(output, reported.output_tokens)
    details = dict(reported.details) if reported else {}
    estimate = Usage(seen_in or call.input_guess(), output, details, estimated=True)
    counted = reported or translator.usage_seen  # its cache part is billed at cache prices
    if counted is not None and seen_in:
        estimate.cache_read_tokens = counted.cache_read_tokens
        estimate.cache_write_tokens = counted.cache_write_tokens
        estimate.cache_write_1h_tokens = counted.cache_write_1h_tokens
    return estimate
