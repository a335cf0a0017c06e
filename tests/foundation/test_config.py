"""config/: defaults, file values, environment overrides, and one-line errors for bad input."""

from __future__ import annotations

import os
import re
import stat
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from codelace_box.accounts.ratelimit import MAX_WINDOW_SEC
from codelace_box.config import (
    AuthConfig,
    Config,
    DatabaseConfig,
    EmailConfig,
    GatewayConfig,
    ServerConfig,
    StripeConfig,
    ensure_secret_key,
    existing_secret_key,
    load_config,
)
from codelace_box.config.schema import MAX_RATE_WINDOW_SEC
from codelace_box.config.secret import secret_key_path
from codelace_box.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "codelace.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_no_file_and_no_env_gives_the_built_in_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no codelace.toml here
    config = load_config(None, {})
    assert config.source == "built-in defaults"
    assert config.server == ServerConfig()
    assert (config.server.host, config.server.port, config.server.workers) == ("127.0.0.1", 8080, 1)
    assert config.server.max_body_bytes == 10485760
    assert config.server.base_url == "http://127.0.0.1:8080"
    assert config.database.path == "data/codelace.db"
    assert config.data_dir == tmp_path / "data"
    assert (config.auth.otp_ttl_sec, config.auth.signup) == (600, "open")
    assert config.auth.allowed_email_domains == []
    assert config.email.backend == "console"
    assert config.stripe.secret_key == "" and config.stripe.currency == "usd"
    assert (config.stripe.min_topup_usd, config.stripe.trial_credit_usd) == (Decimal(10), 1)
    assert (config.gateway.connect_timeout_sec, config.gateway.read_timeout_sec) == (10, 600)
    assert config.gateway.max_retries == 2


def test_dot_codelace_toml_in_the_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "[server]\nport = 9100\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(None, {})
    assert config.server.port == 9100
    assert config.source == "codelace.toml"


def test_file_values_of_every_type(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[server]
host = "0.0.0.0"
port = 9000
public_url = "https://llm.example.com/"
max_body_bytes = 2048
[auth]
signup = "domains"
allowed_email_domains = ["Example.com", "@corp.example.org"]
[email]
backend = "smtp"
smtp_host = "mail.example.com"
smtp_starttls = false
[stripe]
min_topup_usd = 12.5
trial_credit_usd = 0
[gateway]
read_timeout_sec = 30
max_retries = 0
""",
    )
    config = load_config(str(path), {})
    assert config.source == str(path)
    assert (config.server.host, config.server.port, config.server.max_body_bytes) == (
        "0.0.0.0",
        9000,
        2048,
    )
    assert config.server.base_url == "https://llm.example.com"
    assert config.auth.allowed_email_domains == ["example.com", "corp.example.org"]
    assert config.email.smtp_starttls is False
    assert config.stripe.min_topup_usd == Decimal("12.5")
    assert isinstance(config.stripe.min_topup_usd, Decimal)
    assert config.gateway.read_timeout_sec == 30.0
    assert isinstance(config.gateway.read_timeout_sec, float)
    assert config.gateway.max_retries == 0


@pytest.mark.parametrize(
    ("variable", "value", "section", "key", "expected"),
    [
        ("CODELACE_SERVER_PORT", "9001", "server", "port", 9001),
        ("CODELACE_SERVER_HOST", "0.0.0.0", "server", "host", "0.0.0.0"),
        ("CODELACE_SERVER_WORKERS", " 3 ", "server", "workers", 3),
        ("CODELACE_EMAIL_SMTP_STARTTLS", "off", "email", "smtp_starttls", False),
        ("CODELACE_EMAIL_SMTP_STARTTLS", "FALSE", "email", "smtp_starttls", False),
        ("CODELACE_EMAIL_SMTP_STARTTLS", "yes", "email", "smtp_starttls", True),
        ("CODELACE_EMAIL_SMTP_STARTTLS", "1", "email", "smtp_starttls", True),
        ("CODELACE_EMAIL_SMTP_SSL", "on", "email", "smtp_ssl", True),
        ("CODELACE_EMAIL_SMTP_SSL", "False", "email", "smtp_ssl", False),
        ("CODELACE_AUTH_OTP_REQUESTS_PER_EMAIL", "2", "auth", "otp_requests_per_email", 2),
        ("CODELACE_AUTH_OTP_VERIFIES_PER_ADDRESS", "7", "auth", "otp_verifies_per_address", 7),
        ("CODELACE_AUTH_RATE_LIMIT_WINDOW_SEC", "60", "auth", "rate_limit_window_sec", 60),
        ("CODELACE_AUTH_ALLOWED_EMAIL_DOMAINS", "a.com, B.org,", "auth", "allowed_email_domains",
         ["a.com", "b.org"]),
        ("CODELACE_AUTH_ALLOWED_EMAIL_DOMAINS", '["x.io", "y.io"]', "auth",
         "allowed_email_domains", ["x.io", "y.io"]),
        ("CODELACE_AUTH_ALLOWED_EMAIL_DOMAINS", "", "auth", "allowed_email_domains", []),
        ("CODELACE_STRIPE_MIN_TOPUP_USD", "7.25", "stripe", "min_topup_usd", Decimal("7.25")),
        ("CODELACE_STRIPE_SECRET_KEY", "sk_test_abc", "stripe", "secret_key", "sk_test_abc"),
        ("CODELACE_GATEWAY_READ_TIMEOUT_SEC", "1.5", "gateway", "read_timeout_sec", 1.5),
        ("CODELACE_GATEWAY_CONNECT_TIMEOUT_SEC", "3", "gateway", "connect_timeout_sec", 3.0),
        ("CODELACE_DATABASE_PATH", "/srv/box.db", "database", "path", "/srv/box.db"),
    ],
)  # fmt: skip
def test_environment_overrides(
    tmp_path: Path, variable: str, value: str, section: str, key: str, expected: Any
) -> None:
    path = write(tmp_path, "[server]\nport = 1234\n")
    config = load_config(str(path), {variable: value})
    got = getattr(getattr(config, section), key)
    assert got == expected
    assert type(got) is type(expected)


def test_a_number_with_underscores_reads_from_a_variable_as_from_the_file(tmp_path: Path) -> None:
    """TOML takes max_body_bytes = 10_485_760 (an underscore between digits); the same value
    copied into CODELACE_SERVER_MAX_BODY_BYTES was refused as no integer."""
    path = write(tmp_path, "[server]\nmax_body_bytes = 10_485_760\n")
    assert load_config(str(path), {}).server.max_body_bytes == 10485760
    env = {"CODELACE_SERVER_MAX_BODY_BYTES": "20_971_520", "CODELACE_SERVER_PORT": "8_080"}
    env |= {
        "CODELACE_STRIPE_MIN_TOPUP_USD": "1_000.50",
        "CODELACE_GATEWAY_READ_TIMEOUT_SEC": "1_200",
    }
    config = load_config(str(path), env)
    assert (config.server.max_body_bytes, config.server.port) == (20971520, 8080)
    assert config.stripe.min_topup_usd == Decimal("1000.50")
    assert config.gateway.read_timeout_sec == 1200.0


def test_smtp_ssl_moves_the_port_and_starttls_defaults_only_when_they_are_unset(
    tmp_path: Path,
) -> None:
    plain = load_config(str(write(tmp_path, "[email]\n")), {}).email
    assert (plain.smtp_ssl, plain.smtp_starttls, plain.smtp_port) == (False, True, 587)
    smtps = load_config(str(write(tmp_path, "[email]\nsmtp_ssl = true\n")), {}).email
    assert (smtps.smtp_ssl, smtps.smtp_starttls, smtps.smtp_port) == (True, False, 465)
    explicit = "[email]\nsmtp_ssl = true\nsmtp_port = 2465\nsmtp_starttls = false\n"
    chosen = load_config(str(write(tmp_path, explicit)), {}).email
    assert (chosen.smtp_ssl, chosen.smtp_starttls, chosen.smtp_port) == (True, False, 2465)
    from_env = load_config(str(write(tmp_path, "")), {"CODELACE_EMAIL_SMTP_SSL": "true"}).email
    assert (from_env.smtp_starttls, from_env.smtp_port) == (False, 465)


def test_smtp_ssl_and_starttls_both_set_is_one_line_naming_both_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "[email]\nsmtp_starttls = true\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {"CODELACE_EMAIL_SMTP_SSL": "1"})
    message = str(caught.value)
    assert message.startswith("env CODELACE_EMAIL_SMTP_SSL: ") and "\n" not in message
    assert "email.smtp_ssl and email.smtp_starttls cannot both be true" in message


def test_environment_beats_the_file_and_leaves_other_keys(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 1234\nhost = "10.0.0.1"\n')
    config = load_config(str(path), {"CODELACE_SERVER_PORT": "4321"})
    assert (config.server.port, config.server.host) == (4321, "10.0.0.1")


def test_a_wrong_type_in_the_file_is_refused_even_when_a_variable_overrides_it(
    tmp_path: Path,
) -> None:
    """port = "x" in the file with CODELACE_SERVER_PORT=9000 started: the file's mistake went
    unsaid until the day the variable was dropped, and the box would not start. A wrong type
    or value in the file is refused whatever overrides it (the SPEC's "refused at start with
    the file, the key and what was expected"); keys that need another one still count the
    variables (an SMTP host from the environment)."""
    path = write(tmp_path, '[server]\nport = "x"\n[stripe]\nsecret_key = ["TOPSECRET"]\n')
    env = {"CODELACE_SERVER_PORT": "9000", "CODELACE_STRIPE_SECRET_KEY": "sk_test_1"}
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env)
    message = str(caught.value)
    assert message.startswith(f"{path}: server.port must be an integer, got 'x'"), message
    path = write(tmp_path, '[stripe]\nsecret_key = ["TOPSECRET"]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env)
    assert str(caught.value) == f"{path}: stripe.secret_key must be a string, got <hidden>"
    path = write(tmp_path, '[email]\nbackend = "smtp"\n')
    env = {"CODELACE_EMAIL_SMTP_HOST": "mail.example.com"}
    assert load_config(str(path), env).email.smtp_host == "mail.example.com"


@pytest.mark.parametrize(
    ("text", "variable"),
    [
        ('[auth]\nsignup = "domains"\nallowed_email_domains = ["example.com"]\n',
         "CODELACE_AUTH_ALLOWED_EMAIL_DOMAINS"),
        ('[email]\nbackend = "smtp"\nsmtp_host = "mail.example.com"\n',
         "CODELACE_EMAIL_SMTP_HOST"),
    ],
)  # fmt: skip
def test_a_variable_that_empties_a_needed_key_is_the_one_named(
    tmp_path: Path, text: str, variable: str
) -> None:
    """docker compose's `${DOMAINS}` unset is an empty CODELACE_AUTH_ALLOWED_EMAIL_DOMAINS: the
    error named the file, whose [auth] lists the domains, and not the variable that emptied
    them. The key's own source is named when it was set (the other key's otherwise)."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {variable: ""})
    assert str(caught.value).startswith(f"env {variable}: "), str(caught.value)


@pytest.mark.parametrize(
    ("text", "variable", "key"),
    [
        ('[server]\nsecret_key = "TOPSECRET-in-use"\n', "CODELACE_SERVER_SECRET_KEY",
         "server.secret_key"),
        ('[database]\nurl = "postgresql://box:TOPSECRET@db.example/box"\n'
         '[server]\nsecret_key = "s"\n', "CODELACE_DATABASE_URL", "database.url"),
    ],
)  # fmt: skip
def test_an_empty_variable_does_not_silently_clear_a_value(
    tmp_path: Path, text: str, variable: str, key: str
) -> None:
    """docker compose passes an unset `${SECRET}` on as an empty variable. An empty
    CODELACE_SERVER_SECRET_KEY cleared the file's secret: the box generated another one and
    could read none of the stored provider keys; an empty CODELACE_DATABASE_URL swapped the
    PostgreSQL database for a new, empty SQLite file. Those two are refused at start, naming
    the variable; elsewhere empty is a value (an empty Stripe key turns Stripe off)."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {variable: ""})
    message = str(caught.value)
    assert message.startswith(f"env {variable}: empty, which would clear {key}"), message
    assert "TOPSECRET" not in message
    assert load_config(str(path), {"CODELACE_STRIPE_API_BASE": ""}).stripe.api_base == ""
    stripe = write(tmp_path, '[stripe]\nsecret_key = "sk_live_1"\n')
    assert load_config(str(stripe), {"CODELACE_STRIPE_SECRET_KEY": ""}).stripe.secret_key == ""


def test_config_file_from_the_environment_and_the_flag_wins(tmp_path: Path) -> None:
    from_env = write(tmp_path, "[server]\nport = 1111\n", "env.toml")
    from_flag = write(tmp_path, "[server]\nport = 2222\n", "flag.toml")
    assert load_config(None, {"CODELACE_CONFIG": str(from_env)}).server.port == 1111
    assert load_config(str(from_flag), {"CODELACE_CONFIG": str(from_env)}).server.port == 2222


def test_unrelated_codelace_variables_are_not_config_keys(tmp_path: Path) -> None:
    env = {"CODELACE_DEBUG": "1", "CODELACE_LOG_LEVEL": "DEBUG", "CODELACE_SANIC_X": "1"}
    config = load_config(None, env | {"CODELACE_CONFIG": str(write(tmp_path, ""))})
    assert (config.server, config.email, config.gateway) == (
        ServerConfig(),
        EmailConfig(),
        GatewayConfig(),
    )


@pytest.mark.parametrize(
    ("variable", "meant"),
    [
        ("CODELACE_SERVR_PORT", "CODELACE_SERVER_PORT"),
        ("CODELACE_ALERT_WEBHOOK_URL", "CODELACE_ALERTS_WEBHOOK_URL"),
        ("CODELACE_LIMIT_RPM", "CODELACE_LIMITS_RPM"),
        ("CODELACE_BACKUPS_DIR", "CODELACE_BACKUP_DIR"),
        ("CODELACE_SERVERPORT", "CODELACE_SERVER_PORT"),
    ],
)
def test_a_misspelt_section_in_a_variable_is_refused_naming_the_right_one(
    tmp_path: Path, variable: str, meant: str
) -> None:
    """CODELACE_SERVR_PORT=9000 was silently ignored: the box listened on 8080 and nothing
    said why. A variable whose section is a near miss of a real one is an unknown key the
    operator meant to set: refused at start, naming the variable it should have been (and
    never the value, which may be a secret)."""
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {variable: "TOPSECRET"})
    message = str(caught.value)
    assert message.startswith(f"env {variable}: ") and "\n" not in message
    assert f"did you mean {meant}?" in message and "TOPSECRET" not in message


FILE_ERRORS = [
    ("[server]\nport = \"x\"\n", "server.port must be an integer, got 'x'"),
    ("[server]\nport = 70000\n", "server.port must be an integer from 1 to 65535, got 70000"),
    ("[server]\nport = 80.5\n", "server.port must be an integer"),
    ("[server]\nworkers = 0\n", "server.workers must be an integer from 1 to 64"),
    ('[auth]\nsignup = "nope"\n',
     "auth.signup must be one of 'open', 'domains', 'invite', got 'nope'"),
    ("[auth]\nallowed_email_domains = \"a.com\"\n",
     "auth.allowed_email_domains must be a list of strings"),
    ('[auth]\nallowed_email_domains = ["not a domain"]\n',
     "auth.allowed_email_domains must be domain names"),
    ('[auth]\nsignup = "domains"\n', "auth.allowed_email_domains must list domains"),
    ('[email]\nsmtp_starttls = "yes"\n', "email.smtp_starttls must be true or false"),
    ('[email]\nbackend = "smtp"\n', 'email.smtp_host must be set when email.backend = "smtp"'),
    ('[email]\nsmtp_ssl = "yes"\n', "email.smtp_ssl must be true or false"),
    ("[email]\nsmtp_ssl = true\nsmtp_starttls = true\n",
     "email.smtp_ssl and email.smtp_starttls cannot both be true"),
    ("[auth]\notp_requests_per_email = 0\n",
     "auth.otp_requests_per_email must be an integer of at least 1, got 0"),
    ("[auth]\notp_verifies_per_address = 2.5\n",
     "auth.otp_verifies_per_address must be an integer"),
    ("[auth]\nrate_limit_window_sec = 86401\n",
     "auth.rate_limit_window_sec must be an integer from 1 to 86400, got 86401"),
    ('[server]\npublic_url = "example.com"\n',
     "server.public_url must be empty or an http:// or https:// URL, the box's own address "
     "without the /v1 its clients add (https://llm.example.com, not "
     "https://llm.example.com/v1), got 'example.com'"),
    ('[stripe]\ncurrency = "EUR"\n', "stripe.currency must be a three-letter currency code"),
    ("[stripe]\nmin_topup_usd = -1\n", "stripe.min_topup_usd must be a number of at least 0"),
    ("[stripe]\ntrial_credit_usd = 0.0000000001\n",
     "stripe.trial_credit_usd must be a USD amount in whole cents (e.g. 1 or 0.50), "
     "not 0.0000000001"),
    ("[stripe]\nmin_topup_usd = 10.005\n", "stripe.min_topup_usd must be a USD amount in whole"),
    ("[gateway]\nread_timeout_sec = nan\n", "gateway.read_timeout_sec must be a number"),
    ('[database]\npath = ""\n', "database.path must be a non-empty string"),
    ("[server]\nprot = 1\n", "unknown key server.prot (known: host, port,"),
    ("[servr]\nport = 1\n", "unknown section [servr] (known: server, database,"),
    ("server = 1\n", "[server] must be a table"),
    ("[server\n", "not valid TOML"),
    # a NUL (TOML's \u0000) no path, header or secret can hold: it was "unexpected ValueError:
    # embedded null byte" (database.path), or taken and failing at the first mail or payment
    ('[database]\npath = "data/x\\u0000.db"\n', "database.path must be a string without a NUL"),
    ('[database]\nurl = "sqlite:///x\\u0000.db"\n', "database.url must be a string without a"),
    ('[stripe]\nsecret_key = "sk_test_\\u0000x"\n', "stripe.secret_key must be a string without"),
    ('[email]\nsmtp_ca_file = "ca\\u0000.pem"\n', "email.smtp_ca_file must be a string without"),
    # a folder's name: a database file named `data` was made in place of the data folder
    ('[database]\npath = "data/"\n',
     "database.path must be a non-empty string naming a database file, not a folder (no / "
     "at the end), got 'data/'"),
    ('[database]\nurl = "sqlite:///data/"\n', "database.url must be empty, sqlite:///PATH or"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), FILE_ERRORS)
def test_a_bad_file_value_is_one_line_naming_file_key_and_expectation(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {})
    text_of_error = str(caught.value)
    assert "\n" not in text_of_error
    assert text_of_error.startswith(f"{path}: ")
    assert message in text_of_error


ENV_ERRORS = [
    ("CODELACE_SERVER_PORT", "x", "server.port must be an integer, got 'x'"),
    ("CODELACE_SERVER_PORT", "", "server.port must be an integer"),
    ("CODELACE_EMAIL_SMTP_STARTTLS", "maybe", "email.smtp_starttls must be true or false"),
    ("CODELACE_EMAIL_SMTP_SSL", "maybe", "email.smtp_ssl must be true or false"),
    ("CODELACE_AUTH_OTP_REQUESTS_PER_ADDRESS", "-3",
     "auth.otp_requests_per_address must be an integer of at least 1"),
    ("CODELACE_AUTH_RATE_LIMIT_WINDOW_SEC", "10m", "auth.rate_limit_window_sec must be an integer"),
    ("CODELACE_AUTH_SIGNUP", "closed", "auth.signup must be one of 'open', 'domains', 'invite'"),
    ("CODELACE_STRIPE_MIN_TOPUP_USD", "ten", "stripe.min_topup_usd must be a number"),
    ("CODELACE_GATEWAY_MAX_RETRIES", "-1", "gateway.max_retries must be an integer from 0 to 10"),
    ("CODELACE_AUTH_ALLOWED_EMAIL_DOMAINS", "[1, 2]", "must be a list of strings"),
    ("CODELACE_SERVER_PROT", "1", "unknown key server.prot"),
    # what Python's int() and Decimal() also take, and a TOML file does not
    ("CODELACE_SERVER_PORT", "8__080", "server.port must be an integer, got '8__080'"),
    ("CODELACE_SERVER_PORT", "_8080", "server.port must be an integer, got '_8080'"),
    ("CODELACE_SERVER_PORT", "\u0668\u0660\u0668\u0660", "server.port must be an integer"),
    ("CODELACE_STRIPE_MIN_TOPUP_USD", "1__0", "stripe.min_topup_usd must be a number"),
    ("CODELACE_STRIPE_MIN_TOPUP_USD", "NaN", "stripe.min_topup_usd must be a number"),
    ("CODELACE_STRIPE_MIN_TOPUP_USD", "Infinity", "stripe.min_topup_usd must be a number"),
    # written out in full this was a line of 100 million zeros
    ("CODELACE_STRIPE_TRIAL_CREDIT_USD", "1e-99999999",
     "stripe.trial_credit_usd must be a USD amount in whole cents (e.g. 1 or 0.50), "
     "not 1E-99999999"),
]  # fmt: skip


@pytest.mark.parametrize(("variable", "value", "message"), ENV_ERRORS)
def test_a_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(None, {variable: value})
    assert str(caught.value).startswith(f"env {variable}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "variable",
    ["CODELACE_SERVER_SECRET_KEY", "CODELACE_STRIPE_SECRET_KEY", "CODELACE_DATABASE_PATH"],
)
def test_a_variable_that_is_not_utf8_names_it_without_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """A byte that is not UTF-8 (os.environ holds 0xff as the surrogate U+DCFF): refused at
    start naming the variable; it was taken, and failed later (init left a temporary file and
    quoted the whole config, a new database file was made before the command failed)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(None, {variable: "abc\udcff"})
    key = variable.removeprefix("CODELACE_").lower().replace("_", ".", 1)
    assert str(caught.value) == f"env {variable}: {key} must be UTF-8 text, and it is not"


@pytest.mark.parametrize(
    "text",
    [
        '[stripe]\nsecret_key = ["sk_live_TOPSECRET"]\n',
        "[stripe]\nwebhook_secret = 123456789\n",
        '[server]\nsecret_key = ["TOPSECRET"]\n',
        "[email]\nsmtp_password = 987654321\n",
        # a URL's user:password is a credential whatever the key's name
        '[stripe]\napi_base = "https://box:TOPSECRET@stripe-proxy.example/ "\n',
    ],
)
def test_secrets_are_never_echoed_in_errors(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {})
    message = str(caught.value)
    assert "<hidden>" in message
    for secret in ("TOPSECRET", "123456789", "987654321"):
        assert secret not in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CODELACE_STRIPE_WEBHOOK_SECRET", "whsec_TOPSECRET\n"),
        ("CODELACE_STRIPE_SECRET_KEY", "sk_live_TOPSECRET\r\n"),
        ("CODELACE_STRIPE_SECRET_KEY", " sk_live_TOPSECRET"),
        # a quote inside: a key no call authenticates with (the quotes around a whole value
        # are test_a_variable_still_in_its_env_file_quotes_is_refused's)
        ("CODELACE_STRIPE_SECRET_KEY", 'sk_live_TOPSECRET"'),
        ("CODELACE_STRIPE_WEBHOOK_SECRET", "'whsec_TOPSECRET"),
    ],
)
def test_a_stripe_secret_with_whitespace_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A key copied with its line break (a secret store's file, `echo` into an env file)
    signs nothing Stripe sends (every paid top-up's webhook a 400) and authenticates no call:
    refused at start, naming the variable, never echoing the value."""
    with pytest.raises(ConfigError) as caught:
        monkeypatch.chdir(tmp_path)
        load_config(None, {variable: value})
    message = str(caught.value)
    assert message.startswith(f"env {variable}: ") and "\n" not in message
    assert "spaces, quotes or line breaks" in message and "TOPSECRET" not in message


@pytest.mark.parametrize(
    "value", ["TOPSECRET-token\n", " TOPSECRET-token", "TOPSECRET-token\r\n", "TOPSECRET\t"]
)
def test_a_metrics_token_with_surrounding_whitespace_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A header value cannot carry a line break and HTTP strips the spaces around it: a token
    copied with its newline would make /metrics answer 401 to every scraper, forever. Refused
    at start, naming the variable, never echoing the token."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"CODELACE_METRICS_TOKEN": value})
    message = str(caught.value)
    assert message.startswith("env CODELACE_METRICS_TOKEN: metrics.token must be ")
    assert "line breaks" in message and "\n" not in message and "TOPSECRET" not in message
    inner = load_config(None, {"CODELACE_METRICS_TOKEN": "two words"}).metrics.token
    assert inner == "two words"  # "Bearer two words" still reaches it


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("CODELACE_SERVER_HOST", " 127.0.0.1", "server.host"),
        ("CODELACE_SERVER_HOST", "0.0.0.0\n", "server.host"),
        ("CODELACE_EMAIL_SMTP_HOST", "mail.example.com\n", "email.smtp_host"),
    ],
)
def test_a_host_with_spaces_or_a_line_break_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str
) -> None:
    """No host name or address has whitespace: " 127.0.0.1" made serve fail with "cannot
    listen on  127.0.0.1:8080: Name or service not known", and an SMTP host with its newline
    failed every sign-in mail long after the start. Both are one line at start."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(None, {variable: value})
    message = str(caught.value)
    assert message.startswith(f"env {variable}: {key} must be a host name or address without ")
    assert "\n" not in message


def test_a_dangling_codelace_toml_link_is_an_error_not_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """./codelace.toml as a link to a file that is not there (a volume not mounted, a moved
    /etc file) was taken for no file: the box ran on the built-in defaults, a new empty
    database in ./data. It is the operator's config file, and missing: one line naming it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "codelace.toml").symlink_to(tmp_path / "etc" / "codelace.toml")
    with pytest.raises(ConfigError, match=r"^codelace\.toml: config file not found"):
        load_config(None, {})


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("CODELACE_DATABASE_PATH", '"/srv/codelace/codelace.db"', "database.path"),
        ("CODELACE_SERVER_PUBLIC_URL", "'https://llm.example.com'", "server.public_url"),
        ("CODELACE_EMAIL_SMTP_PASSWORD", '"TOPSECRET"', "email.smtp_password"),
        ("CODELACE_STRIPE_SECRET_KEY", '"sk_live_TOPSECRET"', "stripe.secret_key"),
        ("CODELACE_AUTH_ALLOWED_EMAIL_DOMAINS", '"example.com"', "auth.allowed_email_domains"),
    ],
)
def test_a_variable_still_in_its_env_file_quotes_is_refused(
    tmp_path: Path, variable: str, value: str, key: str
) -> None:
    """docker's --env-file keeps the quotes of KEY="value": CODELACE_DATABASE_PATH=
    "/srv/codelace/codelace.db" was a relative path starting with a quote, so the box made a
    folder named '"' beside the config file and ran on a new empty database. A value wrapped
    in quotes is refused at start, naming the variable (secrets not echoed)."""
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {variable: value})
    message = str(caught.value)
    assert message.startswith(f"env {variable}: {key} must be given without the quotes"), message
    assert "TOPSECRET" not in message
    kept = load_config(str(path), {"CODELACE_SERVER_SECRET_KEY": '"in-use-secret"'})
    assert kept.server.secret_key == '"in-use-secret"'  # provider keys were stored with it


def test_a_missing_config_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found$"):
        load_config(str(tmp_path / "nope.toml"), {})


def test_a_missing_config_file_named_by_the_environment_says_so(tmp_path: Path) -> None:
    """A CODELACE_CONFIG left in a shell profile or unit file: the error names the variable, or
    an operator who ran `serve` with no --config looks for the path in vain."""
    missing = tmp_path / "old" / "codelace.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"CODELACE_CONFIG": str(missing)})
    assert str(caught.value) == f"{missing}: config file not found (named by $CODELACE_CONFIG)"


def test_the_default_public_url_brackets_an_ipv6_listen_address() -> None:
    assert ServerConfig(host="::1", port=9000).base_url == "http://[::1]:9000"
    assert ServerConfig(host="::", port=80).base_url == "http://[::]:80"
    assert ServerConfig(host="0.0.0.0", port=80).base_url == "http://0.0.0.0:80"
    assert ServerConfig(host="box.example", port=80).base_url == "http://box.example:80"


@pytest.mark.parametrize(
    ("public_url", "path"),
    [
        ("", ""),  # the listen address: the root
        ("https://llm.example.com", ""),
        ("https://llm.example.com/", ""),
        ("https://llm.example.com/gateway", "/gateway"),
        ("https://llm.example.com/team/gateway/", "/team/gateway"),
        (
            'https://x.example/a b"<>;c',
            "/a%20b%22%3C%3E%3Bc",
        ),  # nothing an attribute or Path ends at
    ],
)
def test_the_base_path_is_public_urls_path(public_url: str, path: str) -> None:
    """The path the portal's links, calls and cookie go under (a proxy strips it)."""
    assert ServerConfig(public_url=public_url).base_path == path


def test_a_public_urls_path_beyond_ascii_is_percent_encoded() -> None:
    """Stripe refuses a return URL with characters beyond ASCII (its host and its path): the
    box's address has both in the form a browser asks for, whatever else is as written."""
    config = ServerConfig(public_url="https://Bücher.example/crédit/a%20b?")
    assert config.base_url == "https://xn--bcher-kva.example/cr%C3%A9dit/a%20b?"
    assert ServerConfig(public_url="https://llm.example/网关/").base_path == "/%E7%BD%91%E5%85%B3"


def test_an_integer_too_long_for_python_is_one_line_naming_the_file(tmp_path: Path) -> None:
    """Python's int() refuses more than 4300 digits, and tomllib passes that ValueError on
    (not a TOMLDecodeError): it was an "unexpected ValueError" naming no file."""
    path = write(tmp_path, "[server]\nport = " + "1" * 4301 + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {})
    assert str(caught.value) == f"{path}: not valid TOML: an integer of more than 4300 digits"


def test_a_file_that_is_not_utf8_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[email]\nfrom_address = "caf\xe9@example.com"\n')
    with pytest.raises(ConfigError, match=r"latin1\.toml: not valid TOML: not UTF-8 text"):
        load_config(str(path), {})


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "notepad.toml"  # editors on Windows start UTF-8 files with a BOM
    path.write_bytes(b"\xef\xbb\xbf[server]\r\nport = 9123\r\n")
    assert load_config(str(path), {}).server.port == 9123


def test_configs_are_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.server.port = 1  # type: ignore[misc]
    for section in (
        ServerConfig,
        DatabaseConfig,
        AuthConfig,
        EmailConfig,
        StripeConfig,
        GatewayConfig,
    ):
        assert section.__dataclass_params__.frozen  # type: ignore[attr-defined]


def data_config(tmp_path: Path, **server: Any) -> Config:
    return Config(
        server=ServerConfig(**server), database=DatabaseConfig(path=str(tmp_path / "d" / "x.db"))
    )


def test_the_server_secret_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    config = data_config(tmp_path)
    first = ensure_secret_key(config)
    path = secret_key_path(config)
    assert path == tmp_path / "d" / "secret_key"
    assert len(first) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_secret_key(config) == first
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no staging leftovers


def test_a_configured_secret_wins_and_nothing_is_written(tmp_path: Path) -> None:
    config = data_config(tmp_path, secret_key="configured-secret")
    assert ensure_secret_key(config) == "configured-secret"
    assert not secret_key_path(config).exists()


def test_concurrent_first_starts_agree_on_one_secret(tmp_path: Path) -> None:
    config = data_config(tmp_path)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        results.append(ensure_secret_key(config))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert secret_key_path(config).read_text().strip() == results[0]


def test_an_empty_secret_file_stops_the_start(tmp_path: Path) -> None:
    config = data_config(tmp_path)
    secret_key_path(config).parent.mkdir(parents=True)
    secret_key_path(config).write_text("\n")
    with pytest.raises(ConfigError, match="secret file is empty"):
        ensure_secret_key(config)


def test_an_unreadable_secret_file_is_one_line_naming_it(tmp_path: Path) -> None:
    config = data_config(tmp_path)
    path = secret_key_path(config)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xff\xfe garbled\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: cannot read the server se"):
        ensure_secret_key(config)
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        existing_secret_key(config)
    path.unlink()
    path.mkdir()  # a folder where the file should be
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: cannot read the server se"):
        ensure_secret_key(config)


def test_env_with_the_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CODELACE_SERVER_PORT", "7777")
    assert load_config().server.port == 7777
    assert os.environ["CODELACE_SERVER_PORT"] == "7777"


def test_a_relative_database_path_is_relative_to_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--config /etc/x/codelace.toml` from any folder opens the same database."""
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "codelace.toml").write_text('[database]\npath = "state/box.db"\n')
    (folder / "defaults.toml").write_text("[server]\nport = 9001\n")
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    configured = load_config(str(folder / "codelace.toml"), env={})
    assert configured.database.path == str(folder / "state" / "box.db")
    defaulted = load_config(str(folder / "defaults.toml"), env={})
    assert defaulted.database.path == str(folder / "data" / "codelace.db")
    absolute = tmp_path / "abs.db"
    overridden = load_config(
        str(folder / "codelace.toml"), env={"CODELACE_DATABASE_PATH": str(absolute)}
    )
    assert overridden.database.path == str(absolute)
    assert load_config(None, env={}).database.path == "data/codelace.db"


def test_a_config_that_is_no_file_anchors_no_path_at_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--config /dev/null` (a common way to say "no config file") and a shell's `<(...)` name
    no file: relative paths stay relative to the working folder, as with no config at all.
    They were anchored at the device's folder: `--config /dev/null users list` made
    /dev/data/codelace.db. A named pipe stands in for the device (no root needed)."""
    folder, work = tmp_path / "dev", tmp_path / "work"
    folder.mkdir()
    work.mkdir()
    monkeypatch.chdir(work)
    pipe = folder / "null"
    os.mkfifo(pipe)
    writer = threading.Thread(target=lambda: pipe.write_text("[server]\nport = 9002\n"))
    writer.start()
    try:
        config = load_config(str(pipe), env={})
    finally:
        writer.join(timeout=10)
    assert config.server.port == 9002
    assert config.database.path == "data/codelace.db"
    assert config.backup.dir == load_config(None, env={}).backup.dir


@pytest.mark.parametrize(
    "text",
    [
        '[database]\npath = "~/box/codelace.db"\n[backup]\ndir = "~/box/backups"\n',
        '[database]\nurl = "sqlite:///~/box/codelace.db"\n[backup]\ndir = "~/box/backups"\n',
    ],
)
def test_a_path_starting_with_a_tilde_is_in_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """database.path = "~/box/codelace.db" made a folder named "~" beside the config file (a
    new empty database there, and a folder a later `rm -rf ~` would take for the home): a
    leading ~ is the home folder, as in a shell."""
    home, folder = tmp_path / "home", tmp_path / "etc"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(home))
    config = load_config(str(write(folder, text)), {})
    assert config.database.path == str(home / "box" / "codelace.db")
    assert config.backup.dir == str(home / "box" / "backups")
    assert config.data_dir == home / "box"


def test_the_longest_rate_limit_window_config_allows_is_the_one_rate_limits_keep() -> None:
    """config sits below the features, so it states the bound itself; the two must agree or
    a window config accepts would outlive the events accounts/ratelimit keeps."""
    assert MAX_RATE_WINDOW_SEC == MAX_WINDOW_SEC
    longest = AuthConfig(rate_limit_window_sec=MAX_RATE_WINDOW_SEC)
    assert longest.rate_limit_window_sec == MAX_WINDOW_SEC
    with pytest.raises(ConfigError, match="rate_limit_window_sec"):
        load_config(None, {"CODELACE_AUTH_RATE_LIMIT_WINDOW_SEC": str(MAX_WINDOW_SEC + 1)})


@pytest.mark.parametrize(
    ("text", "section", "key", "expected"),
    [
        ('[server]\npublic_url = "HTTPS://LLM.Example.com/Box"\n', "server", "public_url",
         "https://llm.example.com/Box"),
        ('[stripe]\napi_base = "HTTP://127.0.0.1:12111"\n', "stripe", "api_base",
         "http://127.0.0.1:12111"),
        ('[alerts]\nwebhook_url = "Https://Hooks.Example.com/T0/B1/XyZ"\n', "alerts",
         "webhook_url", "https://hooks.example.com/T0/B1/XyZ"),
    ],
)  # fmt: skip
def test_a_url_with_its_scheme_or_host_in_capitals_is_taken_in_lower_case(
    tmp_path: Path, text: str, section: str, key: str, expected: str
) -> None:
    """Schemes and hosts are case-insensitive (RFC 3986, 3.1 and 3.2.2); a path is not."""
    config = load_config(str(write(tmp_path, text)), {})
    assert getattr(getattr(config, section), key) == expected


@pytest.mark.parametrize(
    "public_url",
    [
        "https://llm.example.com/v1",
        "https://llm.example.com/v1/",
        "http://h:8080/gw/v1",
        "https://llm.example.com/V1",
        "https://llm.example.com/v1//",
    ],
)
def test_a_public_url_ending_in_v1_is_refused_saying_to_leave_it_off(
    tmp_path: Path, public_url: str
) -> None:
    """The clients' base URL (`.../v1`) given as the box's address put the portal under /v1
    (its scripts asked for at /v1/portal/assets/..., a 404: the page stayed on "Loading...")
    and Stripe's return links at /v1/billing/...: refused at start, saying what to write."""
    path = write(tmp_path, f'[server]\npublic_url = "{public_url}"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {})
    said = str(caught.value)
    assert "server.public_url" in said and public_url in said
    assert "without the /v1" in said
    assert load_config(str(write(tmp_path, '[server]\npublic_url = "https://h/v1beta"\n')), {})
