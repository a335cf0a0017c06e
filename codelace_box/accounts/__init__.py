"""Accounts: users, sign-in codes, API keys and the mail that carries the codes."""
