"""Migration 18: Stripe refunds and disputes of top-ups.

payment gains `payment_intent` (the PaymentIntent of a paid top-up session, recorded by its
webhook: refunds and disputes name the charge's PaymentIntent, not the session) and
`refunded_nanos` (how much of the credit refunds and open or lost disputes took back, 0 for
every existing payment). stripe_reversal keeps each refund and dispute as last heard of, so
each moves the balance once, whatever order its events come in (billing/reversals.py).
"""

from __future__ import annotations

from typing import Any

NAME = "stripe refunds and disputes"

_STATEMENTS = (
    'ALTER TABLE "payment" ADD COLUMN "payment_intent" VARCHAR(255)',
    'ALTER TABLE "payment" ADD COLUMN "refunded_nanos" INTEGER NOT NULL DEFAULT 0',
    'CREATE UNIQUE INDEX "payment_payment_intent" ON "payment" ("payment_intent")',
    'CREATE TABLE "stripe_reversal" ("id" VARCHAR(255) NOT NULL PRIMARY KEY, '
    '"payment_id" INTEGER NOT NULL, "kind" VARCHAR(255) NOT NULL, '
    '"amount_nanos" INTEGER NOT NULL, "status" VARCHAR(255) NOT NULL, '
    '"updated_at" DATETIME NOT NULL, '
    'FOREIGN KEY ("payment_id") REFERENCES "payment" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "stripe_reversal_payment_id" ON "stripe_reversal" ("payment_id")',
)


def apply(db: Any) -> None:
    """Add the payment's PaymentIntent and refunded amount, and the refunds and disputes."""
    for statement in _STATEMENTS:
        db.execute_sql(statement)
