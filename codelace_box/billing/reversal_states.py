"""The statuses of Stripe refunds and disputes: which take a top-up's credit back, which are an
inquiry's, which are final, and which heard after another change nothing (billing/reversals.py
has the table of the moves)."""

from __future__ import annotations

from codelace_box.billing.reversal_amounts import PREVENTED_REFUNDED

RELEASED = {
    "refund": frozenset({"failed", "canceled"}),
    "dispute": frozenset({"won", "warning_closed", "prevented"}),
}
FINAL = {
    "refund": RELEASED["refund"],
    "dispute": RELEASED["dispute"] | {"lost", PREVENTED_REFUNDED},
}
INQUIRY = "warning_"  # the prefix of an inquiry's statuses: no funds withdrawn
APPEAL = "appeal_"  # the prefix of a lost dispute's appeal statuses (the funds stay withdrawn)


def takes(kind: str, status: str) -> bool:
    """Whether a refund or dispute in this status takes its amount back (see the docstring)."""
    return status not in RELEASED[kind] and not (kind == "dispute" and is_inquiry(status))


def is_inquiry(status: str) -> bool:
    """Whether a dispute's status is an inquiry's (the issuer asking, no funds withdrawn)."""
    return status.startswith(INQUIRY)


def is_stale(kind: str, now: str, heard: str) -> bool:
    """Whether status `heard` changes nothing after `now`: the same, after a final one, or
    an inquiry's (`warning_*`) after a chargeback's (an inquiry comes first, never after).
    A closed inquiry the issuer escalates to a chargeback is not over: it is left; nor is a
    lost dispute the business appeals (`appeal_*`, then won or lost again): a won never
    comes before a lost, so one after it is the appeal's."""
    inquiry = kind == "dispute" and is_inquiry(heard)
    if heard == now or (inquiry and now and not is_inquiry(now)):
        return True
    escalated = kind == "dispute" and now == "warning_closed" and not inquiry
    appealed = kind == "dispute" and now == "lost" and (heard.startswith(APPEAL) or heard == "won")
    withdrawn = now == "prevented" and heard == PREVENTED_REFUNDED  # its funds_withdrawn after
    return now in FINAL[kind] and not (escalated or appealed or withdrawn)
