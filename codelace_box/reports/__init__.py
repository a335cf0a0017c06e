"""Reports over history: traffic figures (from the rollups), a user's usage totals, payments and
revenue, and the history's export and retention."""
