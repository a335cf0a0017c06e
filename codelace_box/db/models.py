"""The whole schema as peewee models. Money is integer nano-USD (1 USD = 1_000_000_000).

Users, API keys and payments keep integer primary keys inside (foreign keys, the request path)
and show a UUID4 (`uuid`, see db/ids.py) outside.

Migrations (db/migrations/) create these tables with frozen SQL; a test checks that the
migrated schema and these models agree.
"""

from __future__ import annotations

from peewee import (
    AutoField,
    BigIntegerField,
    BlobField,
    CharField,
    CompositeKey,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)
from playhouse.apsw_ext import BooleanField, DateTimeField
from playhouse.sqlite_ext import AutoIncrementField

from codelace_box.db.core import database, utcnow
from codelace_box.db.ids import new_uuid


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class User(BaseModel):
    id = AutoField()
    uuid = CharField(max_length=36, unique=True, default=new_uuid)  # the id shown outside
    email = CharField(unique=True)
    display_name = TextField(default="")
    status = CharField(default="active")  # active | disabled
    balance_nanos = BigIntegerField(default=0)  # == sum of the user's ledger entries
    held_nanos = BigIntegerField(default=0)  # == sum of the user's open holds
    created_by_admin = BooleanField(default=False)
    stripe_customer_id = CharField(null=True)
    trial_granted_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)
    last_seen_at = DateTimeField(null=True)
    rpm = IntegerField(null=True)  # requests per minute; NULL: [limits] rpm, 0: unlimited
    max_concurrent = IntegerField(null=True)  # open holds; NULL: [limits] default, 0: unlimited


class ApiKey(BaseModel):
    id = AutoField()
    uuid = CharField(max_length=36, unique=True, default=new_uuid)  # the id shown outside
    user = ForeignKeyField(User, backref="api_keys", on_delete="CASCADE")
    name = TextField(default="")
    key_prefix = CharField()
    key_hash = CharField(unique=True)
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)
    limit_nanos = BigIntegerField(null=True)  # spend cap per period; NULL: none
    limit_reset = CharField(null=True)  # daily | weekly | monthly; NULL: the period never ends
    expires_at = DateTimeField(null=True)
    allowed_models = TextField(null=True)  # JSON list of catalog ids; NULL: every model
    period_start = DateTimeField(null=True)  # start of the period spent_nanos counts
    spent_nanos = BigIntegerField(default=0)  # charged in the period (settlement keeps it)
    held_nanos = BigIntegerField(default=0)  # == sum of the key's open holds with key_held
    # A key without budget (no cap, no reset): its requests leave its row alone, and what it
    # spent in its period is key_usage.cost_nanos minus this (accounts/limits.py).
    usage_base_nanos = BigIntegerField(default=0)
    # May create, change and revoke the account's keys (and change /auth/me); False: a key for
    # a tool, which calls models and reads the account but cannot lift its own limits.
    can_manage_keys = BooleanField(default=True)


class OtpCode(BaseModel):
    id = AutoField()
    email = CharField(unique=True)  # one live code per email: a new request replaces it
    code_hash = CharField()
    attempts = IntegerField(default=0)
    expires_at = DateTimeField()
    created_at = DateTimeField(default=utcnow)


class RateEvent(BaseModel):
    """One counted event in a rate-limit bucket (e.g. 'otp:email:a@b.c'), shared by workers."""

    id = AutoField()
    bucket = CharField(index=True)
    created_at = DateTimeField(default=utcnow, index=True)


class LedgerEntry(BaseModel):
    """Append-only: every credit, debit, trial, refund and adjustment of a balance."""

    id = AutoField()
    user = ForeignKeyField(User, backref="ledger", on_delete="RESTRICT")
    amount_nanos = BigIntegerField()  # signed: + credit, - debit
    kind = CharField()  # topup | trial | admin | usage | refund
    reason = TextField()
    idempotency_key = CharField(unique=True)
    created_at = DateTimeField(default=utcnow)


class Hold(BaseModel):
    """Worst-case cost reserved for a request in flight; deleted when settled or released."""

    id = AutoField()
    user = ForeignKeyField(User, backref="holds", on_delete="CASCADE")
    amount_nanos = BigIntegerField()
    request_id = CharField(unique=True)
    created_at = DateTimeField(default=utcnow)
    owner = CharField(default="")  # "<host>:<pid>:<token>" of the process that reserved it
    # Its key; no index (nothing on the request path reads holds by key: migration 12).
    api_key = ForeignKeyField(ApiKey, null=True, on_delete="SET NULL", index=False)
    key_held = BooleanField(default=True)  # counted in its key's held_nanos (a key with budget)


class Provider(BaseModel):
    id = AutoField()
    name = CharField(unique=True)
    kind = CharField()  # openai | anthropic
    base_url = TextField(default="")
    enabled = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    allowed_fields = TextField(default="[]")  # JSON list of billed fields the operator allowed
    responses_api = BooleanField(default=False)  # serves /v1/responses itself: passed natively


class ProviderKey(BaseModel):
    # AUTOINCREMENT on SQLite (migration 21): a removed key's id is never another key's (the
    # audit log and `key-enable NAME ID` name keys by id). PostgreSQL: BIGSERIAL, the same.
    id = AutoIncrementField()
    provider = ForeignKeyField(Provider, backref="keys", on_delete="CASCADE")
    key_encrypted = BlobField()
    key_hint = CharField()  # masked, e.g. 'sk-…a1b2'
    enabled = BooleanField(default=True)
    failing = BooleanField(default=False)  # answered 401/403: out of rotation until re-enabled
    failure_reason = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    last_failed_at = DateTimeField(null=True)
    # refused on calls though its probe works (migration 23): failing, and back only when
    # the operator puts it back, never by a scheduled probe
    parked = BooleanField(default=False)


class CatalogModel(BaseModel):
    """A model id of the catalog, its upstream and its prices (nano-USD per 1M tokens)."""

    id = CharField(primary_key=True)  # e.g. 'openai/gpt-5.4'
    provider = ForeignKeyField(Provider, backref="models", on_delete="RESTRICT")
    upstream_model = CharField()
    input_per_1m_nanos = BigIntegerField()
    output_per_1m_nanos = BigIntegerField()
    max_output_tokens = IntegerField(null=True)
    context_tokens = IntegerField(null=True)  # context window; None: gateway's default
    enabled = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    cache_read_per_1m_nanos = BigIntegerField(null=True)  # NULL: the input price
    cache_write_per_1m_nanos = BigIntegerField(null=True)  # NULL: the input price
    cache_write_1h_per_1m_nanos = BigIntegerField(null=True)  # NULL: the cache write price

    class Meta:
        table_name = "catalog_model"


class ModelAlias(BaseModel):
    """A bare model name a client sends (claude-haiku-4-5) routed to a catalog id."""

    name = CharField(primary_key=True)
    model = ForeignKeyField(CatalogModel, backref="aliases", on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "model_alias"


class UsageRecord(BaseModel):
    id = AutoField()
    request_id = CharField(unique=True)
    user = ForeignKeyField(User, backref="usage", on_delete="CASCADE")
    # Its key; no index (nothing reads usage rows by key: migration 14).
    api_key = ForeignKeyField(ApiKey, null=True, on_delete="SET NULL", index=False)
    model = CharField()
    provider = CharField()
    upstream_model = CharField()
    input_tokens = IntegerField(default=0)
    output_tokens = IntegerField(default=0)
    input_per_1m_nanos = BigIntegerField()  # the prices this row was charged at
    output_per_1m_nanos = BigIntegerField()
    cost_nanos = BigIntegerField(default=0)
    hold_nanos = BigIntegerField(default=0)  # what was reserved: cost_nanos never exceeds it
    status = CharField()  # ok | error | abandoned
    error_code = CharField(null=True)
    stream = BooleanField(default=False)
    estimated = BooleanField(default=False)  # usage counted by us: the upstream never said
    duration_ms = IntegerField(default=0)
    created_at = DateTimeField(default=utcnow, index=True)
    route = CharField(default="/v1/chat/completions")  # the inference route the call came by
    cache_read_tokens = IntegerField(default=0)  # of input_tokens: read from the prompt cache
    cache_write_tokens = IntegerField(default=0)  # of input_tokens: written to it (1h included)
    cache_write_1h_tokens = IntegerField(default=0)  # of cache_write_tokens: 1-hour writes
    cache_read_per_1m_nanos = BigIntegerField(default=0)
    cache_write_per_1m_nanos = BigIntegerField(default=0)
    cache_write_1h_per_1m_nanos = BigIntegerField(default=0)
    upstream_error = TextField(null=True)  # the provider's error message, masked and bounded
    # An Anthropic advisor model's part (gateway/advisor.py; migration 26): its catalog id, its
    # tokens (parts of the counts above) and the prices they were charged at; all None on a
    # row without an advisor (nullable, without defaults, as upstream_error: a row written
    # by a release before it leaves them out)
    advisor_model = CharField(null=True)
    advisor_input_tokens = IntegerField(null=True)  # its cache reads and writes included
    advisor_output_tokens = IntegerField(null=True)
    advisor_cache_read_tokens = IntegerField(null=True)
    advisor_cache_write_tokens = IntegerField(null=True)  # 1-hour writes included
    advisor_cache_write_1h_tokens = IntegerField(null=True)
    advisor_input_per_1m_nanos = BigIntegerField(null=True)
    advisor_output_per_1m_nanos = BigIntegerField(null=True)
    advisor_cache_read_per_1m_nanos = BigIntegerField(null=True)
    advisor_cache_write_per_1m_nanos = BigIntegerField(null=True)
    advisor_cache_write_1h_per_1m_nanos = BigIntegerField(null=True)


class UsageFigures(BaseModel):
    """What every usage total and rollup counts (db/totals.py COLUMNS): the base of those
    tables, with no table of its own."""

    requests = BigIntegerField(default=0)
    errors = BigIntegerField(default=0)
    input_tokens = BigIntegerField(default=0)
    output_tokens = BigIntegerField(default=0)
    cache_read_tokens = BigIntegerField(default=0)
    cache_write_tokens = BigIntegerField(default=0)
    cost_nanos = BigIntegerField(default=0)


class AccountUsage(UsageFigures):
    """Running usage totals of an account, kept in the settlement transaction (never summed
    from usage rows, which retention may delete)."""

    user = ForeignKeyField(User, primary_key=True, on_delete="CASCADE")
    last_request_at = DateTimeField(null=True)  # the newest request's moment: active users

    class Meta:
        table_name = "account_usage"


class KeyDayUsage(UsageFigures):
    """Usage of an API key per day ('YYYY-MM-DD', UTC), kept like AccountUsage. An account's
    days are the sums of its keys' (the portal's daily spend, `usage report --by user`), and
    `usage report --by key` reads its whole days from these. `api_key_id` is 0 for requests
    with no key (the portal's) and -1 for what migrations 19 and 22 found in an account's days
    but not in its usage rows (retention deleted them: their key is not known). No foreign key
    on the key: a request's key may be gone (its usage rows then have none either)."""

    user = ForeignKeyField(User, on_delete="CASCADE", index=False)  # first in the primary key
    day = CharField()
    api_key_id = BigIntegerField()

    class Meta:
        table_name = "key_day_usage"
        primary_key = CompositeKey("user", "day", "api_key_id")  # one account's days: a range
        without_rowid = True  # SQLite: the primary key is the table (one page a write)


class KeyUsage(UsageFigures):
    """Running usage totals of an API key, kept like AccountUsage."""

    api_key = ForeignKeyField(ApiKey, primary_key=True, on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE")
    last_request_at = DateTimeField(null=True)

    class Meta:
        table_name = "key_usage"


class UsageRollup(UsageFigures):
    """Usage per model per minute ('YYYY-MM-DD HH:MM') and per day ('YYYY-MM-DD'), kept in
    the settlement transaction: the dashboard's figures read these, not the usage rows."""

    id = AutoField()
    period = CharField()  # minute | day
    bucket = CharField()  # the minute's or the day's text, as stored timestamps begin
    model = CharField()

    class Meta:
        table_name = "usage_rollup"
        indexes = ((("period", "bucket", "model"), True),)


class Payment(BaseModel):
    id = AutoField()
    uuid = CharField(max_length=36, unique=True, default=new_uuid)  # the id shown outside
    # Indexed with created_at and id (Meta): an account's newest payments, read in order.
    user = ForeignKeyField(User, backref="payments", on_delete="CASCADE", index=False)
    amount_nanos = BigIntegerField()
    kind = CharField()  # topup | trial | admin
    status = CharField()  # pending | completed | failed | expired
    stripe_session_id = CharField(unique=True, null=True)
    currency = CharField(default="usd")
    created_at = DateTimeField(default=utcnow)
    completed_at = DateTimeField(null=True)
    payment_intent = CharField(unique=True, null=True)  # a top-up's PaymentIntent, once paid
    refunded_nanos = BigIntegerField(default=0)  # taken back by refunds and open/lost disputes

    class Meta:
        # Newest first, read along an index (migration 20): an account's (the customer API,
        # the portal, the dashboard's account page) and everyone's (the dashboard's list).
        indexes = ((("user", "created_at", "id"), False), (("created_at", "id"), False))


class StripeEvent(BaseModel):
    """Every Stripe event id handled, so a redelivery changes nothing."""

    id = CharField(primary_key=True)
    type = CharField()
    received_at = DateTimeField(default=utcnow)


class StripeReversal(BaseModel):
    """A Stripe refund or dispute of a top-up, as last heard of (billing/reversals.py)."""

    id = CharField(primary_key=True)  # re_... or du_...
    payment = ForeignKeyField(Payment, on_delete="CASCADE")
    kind = CharField()  # refund | dispute
    amount_nanos = BigIntegerField()
    status = CharField()  # Stripe's status of the refund or dispute
    updated_at = DateTimeField(default=utcnow)


class TrialCard(BaseModel):
    """Card fingerprints that already earned a trial: one trial per card, ever."""

    fingerprint = CharField(primary_key=True)
    user = ForeignKeyField(User, on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow)


class AuditEntry(BaseModel):
    """Append-only: one admin change (CLI or dashboard), chained to the entry before by hash."""

    id = AutoField()
    created_at = CharField(max_length=40, index=True)  # ISO text, exactly as hashed
    os_user = CharField()
    client = CharField(max_length=32)  # cli | admin
    command = CharField()  # e.g. 'users disable'
    target = TextField()
    before_state = TextField(null=True)  # canonical JSON, secrets masked; NULL: nothing before
    after_state = TextField(null=True)  # canonical JSON, secrets masked; NULL: nothing after
    prev_hash = CharField(max_length=64)  # '' for the first entry
    hash = CharField(max_length=64)  # sha256(prev_hash + canonical JSON of the entry)

    class Meta:
        table_name = "audit_log"


class AuditHead(BaseModel):
    """One row: how many audit entries were written and the newest one's hash (doctor sees
    the newest entries removed, which the chain alone does not show)."""

    id = IntegerField(primary_key=True)  # always 1
    entries = IntegerField()
    hash = CharField(max_length=64)

    class Meta:
        table_name = "audit_head"


class RefusalCount(BaseModel):
    """How many requests were refused (402, 404, 429) per UTC hour, status and code."""

    hour = CharField(max_length=13)  # 'YYYY-MM-DD HH'
    status = IntegerField()
    code = CharField(max_length=64)
    count = IntegerField()

    class Meta:
        table_name = "refusal_count"
        primary_key = CompositeKey("hour", "status", "code")


class OpenAlert(BaseModel):
    """An alert sent whose end is told (upkeep/watch.py): kept beside the upkeep's lead, so the
    process that takes the lead over says it recovered and does not send it again."""

    kind = CharField(max_length=32)
    subject = CharField()
    sent_at = CharField(max_length=40)  # the stored text form of timestamps

    class Meta:
        table_name = "open_alert"
        primary_key = CompositeKey("kind", "subject")


class AnthropicContainer(BaseModel):
    """An Anthropic code execution container and the user it was answered to: only that user's
    requests may name it (gateway/containers.py); the retention pass deletes it once expired."""

    container_id = CharField(primary_key=True)
    user = ForeignKeyField(User, backref="containers", on_delete="CASCADE")
    expires_at = CharField(max_length=40, index=True)  # the stored text form of timestamps

    class Meta:
        table_name = "anthropic_container"


class PortalSession(BaseModel):
    """A signed-in browser of the portal: its cookie is the token, stored here only hashed."""

    id = AutoField()
    user = ForeignKeyField(User, backref="portal_sessions", on_delete="CASCADE")
    token_hash = CharField(unique=True)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField(index=True)


class SchemaMigration(BaseModel):
    version = IntegerField(primary_key=True)
    name = CharField()
    applied_at = DateTimeField(default=utcnow)


ALL_MODELS: list[type[BaseModel]] = [
    User,
    ApiKey,
    OtpCode,
    RateEvent,
    LedgerEntry,
    Hold,
    Provider,
    ProviderKey,
    CatalogModel,
    ModelAlias,
    UsageRecord,
    AccountUsage,
    KeyDayUsage,
    KeyUsage,
    UsageRollup,
    Payment,
    StripeEvent,
    StripeReversal,
    TrialCard,
    AuditEntry,
    AuditHead,
    RefusalCount,
    OpenAlert,
    AnthropicContainer,
    PortalSession,
]
