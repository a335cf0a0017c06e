"""Read-only reports over history: traffic figures, a user's usage totals, payments and revenue."""
