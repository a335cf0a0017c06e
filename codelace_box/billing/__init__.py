"""Money: the append-only ledger, prices and costs, Stripe top-ups."""
