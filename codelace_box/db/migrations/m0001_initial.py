# ruff: noqa: E501
"""Migration 1: the whole schema of the first release."""

from __future__ import annotations

from typing import Any

NAME = "initial schema"

STATEMENTS = [
    'CREATE TABLE "user" ("id" INTEGER NOT NULL PRIMARY KEY, "email" VARCHAR(255) NOT NULL, "display_name" TEXT NOT NULL, "status" VARCHAR(255) NOT NULL, "balance_nanos" INTEGER NOT NULL, "held_nanos" INTEGER NOT NULL, "created_by_admin" INTEGER NOT NULL, "stripe_customer_id" VARCHAR(255), "trial_granted_at" DATETIME, "created_at" DATETIME NOT NULL, "last_seen_at" DATETIME)',
    'CREATE UNIQUE INDEX "user_email" ON "user" ("email")',
    'CREATE TABLE "api_key" ("id" INTEGER NOT NULL PRIMARY KEY, "user_id" INTEGER NOT NULL, "name" TEXT NOT NULL, "key_prefix" VARCHAR(255) NOT NULL, "key_hash" VARCHAR(255) NOT NULL, "created_at" DATETIME NOT NULL, "last_used_at" DATETIME, "revoked_at" DATETIME, FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "api_key_user_id" ON "api_key" ("user_id")',
    'CREATE UNIQUE INDEX "api_key_key_hash" ON "api_key" ("key_hash")',
    'CREATE TABLE "otp_code" ("id" INTEGER NOT NULL PRIMARY KEY, "email" VARCHAR(255) NOT NULL, "code_hash" VARCHAR(255) NOT NULL, "attempts" INTEGER NOT NULL, "expires_at" DATETIME NOT NULL, "created_at" DATETIME NOT NULL)',
    'CREATE UNIQUE INDEX "otp_code_email" ON "otp_code" ("email")',
    'CREATE TABLE "rate_event" ("id" INTEGER NOT NULL PRIMARY KEY, "bucket" VARCHAR(255) NOT NULL, "created_at" DATETIME NOT NULL)',
    'CREATE INDEX "rate_event_bucket" ON "rate_event" ("bucket")',
    'CREATE INDEX "rate_event_created_at" ON "rate_event" ("created_at")',
    'CREATE TABLE "ledger_entry" ("id" INTEGER NOT NULL PRIMARY KEY, "user_id" INTEGER NOT NULL, "amount_nanos" INTEGER NOT NULL, "kind" VARCHAR(255) NOT NULL, "reason" TEXT NOT NULL, "idempotency_key" VARCHAR(255) NOT NULL, "created_at" DATETIME NOT NULL, FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE RESTRICT)',
    'CREATE INDEX "ledger_entry_user_id" ON "ledger_entry" ("user_id")',
    'CREATE UNIQUE INDEX "ledger_entry_idempotency_key" ON "ledger_entry" ("idempotency_key")',
    'CREATE TABLE "hold" ("id" INTEGER NOT NULL PRIMARY KEY, "user_id" INTEGER NOT NULL, "amount_nanos" INTEGER NOT NULL, "request_id" VARCHAR(255) NOT NULL, "created_at" DATETIME NOT NULL, FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "hold_user_id" ON "hold" ("user_id")',
    'CREATE UNIQUE INDEX "hold_request_id" ON "hold" ("request_id")',
    'CREATE TABLE "provider" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(255) NOT NULL, "kind" VARCHAR(255) NOT NULL, "base_url" TEXT NOT NULL, "enabled" INTEGER NOT NULL, "created_at" DATETIME NOT NULL)',
    'CREATE UNIQUE INDEX "provider_name" ON "provider" ("name")',
    'CREATE TABLE "provider_key" ("id" INTEGER NOT NULL PRIMARY KEY, "provider_id" INTEGER NOT NULL, "key_encrypted" BLOB NOT NULL, "key_hint" VARCHAR(255) NOT NULL, "enabled" INTEGER NOT NULL, "failing" INTEGER NOT NULL, "failure_reason" TEXT NOT NULL, "created_at" DATETIME NOT NULL, "last_failed_at" DATETIME, FOREIGN KEY ("provider_id") REFERENCES "provider" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "provider_key_provider_id" ON "provider_key" ("provider_id")',
    'CREATE TABLE "catalog_model" ("id" VARCHAR(255) NOT NULL PRIMARY KEY, "provider_id" INTEGER NOT NULL, "upstream_model" VARCHAR(255) NOT NULL, "input_per_1m_nanos" INTEGER NOT NULL, "output_per_1m_nanos" INTEGER NOT NULL, "max_output_tokens" INTEGER, "enabled" INTEGER NOT NULL, "created_at" DATETIME NOT NULL, "updated_at" DATETIME NOT NULL, FOREIGN KEY ("provider_id") REFERENCES "provider" ("id") ON DELETE RESTRICT)',
    'CREATE INDEX "catalog_model_provider_id" ON "catalog_model" ("provider_id")',
    'CREATE TABLE "usage_record" ("id" INTEGER NOT NULL PRIMARY KEY, "request_id" VARCHAR(255) NOT NULL, "user_id" INTEGER NOT NULL, "api_key_id" INTEGER, "model" VARCHAR(255) NOT NULL, "provider" VARCHAR(255) NOT NULL, "upstream_model" VARCHAR(255) NOT NULL, "input_tokens" INTEGER NOT NULL, "output_tokens" INTEGER NOT NULL, "input_per_1m_nanos" INTEGER NOT NULL, "output_per_1m_nanos" INTEGER NOT NULL, "cost_nanos" INTEGER NOT NULL, "status" VARCHAR(255) NOT NULL, "error_code" VARCHAR(255), "stream" INTEGER NOT NULL, "estimated" INTEGER NOT NULL, "duration_ms" INTEGER NOT NULL, "created_at" DATETIME NOT NULL, FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE, FOREIGN KEY ("api_key_id") REFERENCES "api_key" ("id") ON DELETE SET NULL)',
    'CREATE UNIQUE INDEX "usage_record_request_id" ON "usage_record" ("request_id")',
    'CREATE INDEX "usage_record_user_id" ON "usage_record" ("user_id")',
    'CREATE INDEX "usage_record_api_key_id" ON "usage_record" ("api_key_id")',
    'CREATE INDEX "usage_record_created_at" ON "usage_record" ("created_at")',
    'CREATE TABLE "payment" ("id" INTEGER NOT NULL PRIMARY KEY, "user_id" INTEGER NOT NULL, "amount_nanos" INTEGER NOT NULL, "kind" VARCHAR(255) NOT NULL, "status" VARCHAR(255) NOT NULL, "stripe_session_id" VARCHAR(255), "currency" VARCHAR(255) NOT NULL, "created_at" DATETIME NOT NULL, "completed_at" DATETIME, FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "payment_user_id" ON "payment" ("user_id")',
    'CREATE UNIQUE INDEX "payment_stripe_session_id" ON "payment" ("stripe_session_id")',
    'CREATE TABLE "stripe_event" ("id" VARCHAR(255) NOT NULL PRIMARY KEY, "type" VARCHAR(255) NOT NULL, "received_at" DATETIME NOT NULL)',
    'CREATE TABLE "trial_card" ("fingerprint" VARCHAR(255) NOT NULL PRIMARY KEY, "user_id" INTEGER NOT NULL, "created_at" DATETIME NOT NULL, FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "trial_card_user_id" ON "trial_card" ("user_id")',
]


def apply(db: Any) -> None:
    """Create every table and index of the first release."""
    for statement in STATEMENTS:
        db.execute_sql(statement)
