"""The pure parts of accounts/ in-process, on a real SQLite file: code hashing and parsing,
the sliding-window limiter's arithmetic, the mail's shape and the signup rules."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email.utils import getaddresses
from pathlib import Path

import pytest

from codelace_box.accounts import otp
from codelace_box.accounts.mailer import compose_code_mail, describe_ttl
from codelace_box.accounts.ratelimit import Limit, give_back, hit
from codelace_box.accounts.signin import check_signup_allowed, mailbox, request_limits
from codelace_box.accounts.users import normalize_email, shown_email
from codelace_box.config import AuthConfig
from codelace_box.config.loading import config_from_data
from codelace_box.db.core import close_database, open_database, utcnow
from codelace_box.db.migrate import migrate
from codelace_box.db.models import OtpCode, RateEvent
from codelace_box.errors import ConfigError, InvalidRequest, PermissionDenied, RateLimited


@pytest.fixture
def db(tmp_path: Path) -> Iterator[None]:
    migrate(open_database(tmp_path / "unit.db"))
    yield
    close_database()


def test_codes_are_six_random_digits():
    codes = {otp.generate_code() for _ in range(2000)}
    assert all(re.fullmatch(r"\d{6}", c) for c in codes)
    assert len(codes) > 1990  # 2000 draws from a million rarely collide
    assert any(c.startswith("0") for c in codes)  # leading zeros are kept


def test_code_hash_is_keyed_and_bound_to_the_email():
    base = otp.hash_code("secret-1", "a@example.com", "123456")
    assert base == otp.hash_code("secret-1", "a@example.com", "123456")
    assert "123456" not in base and len(base) == 64
    assert base != otp.hash_code("secret-2", "a@example.com", "123456")
    assert base != otp.hash_code("secret-1", "b@example.com", "123456")
    assert base != otp.hash_code("secret-1", "a@example.com", "123457")


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("123456", "123456"),
        (" 123 456\n", "123456"),
        ("\uff11\uff12\uff13 \uff14\uff15\uff16", "123456"),  # full-width, as an IME types them
        ("\u0661\u0662\u0663\u0664\u0665\u0666", "123456"),  # Arabic-Indic
    ],
)
def test_parse_code_accepts_typed_codes(raw: str, parsed: str):
    assert otp.parse_code(raw) == parsed


@pytest.mark.parametrize(
    "raw",
    ["12345", "1234567", "12345a", "\uff11\uff12\uff13\uff14\uff15", "\u00b2" * 6, 123456, None],
)
def test_parse_code_refuses_anything_else(raw: object):
    with pytest.raises(InvalidRequest) as caught:
        otp.parse_code(raw)
    assert caught.value.code == "invalid_code"


def test_stored_code_row_holds_only_the_hash(db: None):
    otp.store_code("k", "a@example.com", "654321", ttl_sec=600)
    row = OtpCode.get(OtpCode.email == "a@example.com")
    assert row.code_hash == otp.hash_code("k", "a@example.com", "654321")
    assert "654321" not in repr(row.__data__)
    lifetime = row.expires_at - row.created_at
    assert lifetime == timedelta(seconds=600)


def test_discard_leaves_a_newer_code_alone(db: None):
    old = otp.store_code("k", "a@example.com", "111111", ttl_sec=600)
    otp.store_code("k", "a@example.com", "222222", ttl_sec=600)
    otp.discard_code(old)
    otp.consume_code("k", "a@example.com", "222222")  # still there, and it works


def _wrong_tries(email: str, code: str, count: int) -> None:
    for _ in range(count):
        with pytest.raises(InvalidRequest):
            otp.consume_code("k", email, code)


def test_a_discarded_code_does_not_bring_back_one_out_of_tries(db: None):
    # Three wrong tries at the first code, two at the second (whose mail then failed): five
    # in all, so the first code must stay dead, whatever code the person holds.
    email = "a@example.com"
    otp.store_code("k", email, "111111", ttl_sec=600)
    _wrong_tries(email, "999999", 3)
    second = otp.store_code("k", email, "222222", ttl_sec=600)
    _wrong_tries(email, "999999", 2)
    otp.discard_code(second)
    with pytest.raises(InvalidRequest) as caught:
        otp.consume_code("k", email, "111111")
    assert caught.value.code == "invalid_code"


def test_a_code_is_dead_at_the_end_of_its_lifetime(db: None):
    # A lifetime of 0 s ends as it starts: no grace period past expires_at.
    otp.store_code("k", "a@example.com", "333333", ttl_sec=0)
    with pytest.raises(InvalidRequest) as caught:
        otp.consume_code("k", "a@example.com", "333333")
    assert caught.value.code == "code_expired"


def test_limiter_counts_a_sliding_window(db: None):
    limit = Limit("test:bucket", max_events=3, window_sec=100, what="test events")
    for _ in range(3):
        hit([limit])
    with pytest.raises(RateLimited) as caught:
        hit([limit])
    assert 99 <= caught.value.retry_after_sec <= 100
    assert "test events" in caught.value.message
    assert RateEvent.select().count() == 3  # refused events are not counted
    # age the oldest event out of the window: one slot frees, and only one
    oldest = RateEvent.select().order_by(RateEvent.id).first()
    oldest.created_at = utcnow() - timedelta(seconds=101)
    oldest.save()
    hit([limit])
    with pytest.raises(RateLimited):
        hit([limit])


def test_a_bucket_named_after_the_longest_address_fits_its_column(db: None):
    """rate_event.bucket holds 255 characters (PostgreSQL refuses more): the counters of an
    address of 254 characters are stored within that, apart from each other, and still count
    (the HTTP test on PostgreSQL: test_signin's longest address)."""
    email = "m" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
    limits = request_limits(email, "127.0.0.1", AuthConfig(otp_requests_per_email=1))
    assert max(len(limit.bucket) for limit in limits) > 255
    hit(limits)
    stored = [row.bucket for row in RateEvent.select()]
    assert len(stored) == len(set(stored)) == len(limits)
    assert max(len(bucket) for bucket in stored) <= 255
    with pytest.raises(RateLimited):
        hit(limits)


def test_a_lowered_limit_waits_until_enough_events_left(db: None):
    """More events in the window than a limit now allows (the operator lowered it): the wait
    is until enough of them left for one more, not until the oldest did."""
    for ago in (90, 50, 10):
        RateEvent.create(bucket="test:lowered", created_at=utcnow() - timedelta(seconds=ago))
    with pytest.raises(RateLimited) as caught:
        hit([Limit("test:lowered", 1, 100, "lowered events")])
    assert 89 <= caught.value.retry_after_sec <= 90  # the newest leaves in 90 s


def test_limiter_records_nothing_when_any_limit_is_full(db: None):
    full = Limit("test:full", 1, 60, "full")
    free = Limit("test:free", 10, 60, "free")
    hit([full])
    with pytest.raises(RateLimited) as caught:
        hit([free, full])
    assert "full" in caught.value.message
    assert RateEvent.select().where(RateEvent.bucket == "test:free").count() == 0


def test_a_given_back_event_frees_its_slot_and_only_its_own(db: None):
    """An action counted and then not done (a Stripe call that failed) is uncounted."""
    limit = Limit("test:back", 2, 60, "back events")
    other = Limit("test:other", 5, 60, "other events")
    hit([limit, other])
    counted = hit([limit])
    with pytest.raises(RateLimited):
        hit([limit])
    give_back(counted)
    give_back([])
    assert RateEvent.select().where(RateEvent.bucket == "test:back").count() == 1
    assert RateEvent.select().where(RateEvent.bucket == "test:other").count() == 1
    hit([limit])
    with pytest.raises(RateLimited):
        hit([limit])


@pytest.mark.parametrize(
    ("seconds", "words"), [(600, "10 minutes"), (60, "1 minute"), (45, "45 seconds")]
)
def test_ttl_in_words(seconds: int, words: str):
    assert describe_ttl(seconds) == words


def test_code_mail_headers_and_body():
    mail = compose_code_mail("Box <box@team.test>", "a@example.com", "042042", 600)
    assert mail["From"] == "Box <box@team.test>" and mail["To"] == "a@example.com"
    assert mail["Subject"] and mail["Date"] and mail["Message-ID"].endswith("@team.test>")
    body = mail.get_content()
    assert "042042" in body and "10 minutes" in body
    assert "042042" not in mail["Subject"]
    # plain 7-bit lines as written: no quoted-printable soft breaks cutting a sentence
    assert mail["Content-Transfer-Encoding"] == "7bit" and mail["MIME-Version"] == "1.0"
    assert mail.get_content_type() == "text/plain" and mail.get_content_charset() == "utf-8"
    assert "nobody can sign in without the code" in bytes(mail).decode("ascii")


def test_the_code_mail_says_it_is_automatic():
    """RFC 3834: out-of-office and other autoresponders answer no mail marked auto-generated
    (else each sign-in can bounce a vacation reply to the From address)."""
    mail = compose_code_mail("box@team.test", "a@example.com", "042042", 600)
    assert mail["Auto-Submitted"] == "auto-generated"


@pytest.mark.parametrize(
    ("from_address", "header", "envelope"),
    [
        ("box@team.test", "box@team.test", "box@team.test"),
        ("Box <box@team.test>", "Box <box@team.test>", "box@team.test"),
        ('"Box, Inc." <box@team.test>', '"Box, Inc." <box@team.test>', "box@team.test"),
        ("Box, Inc. <box@team.test>", '"Box, Inc." <box@team.test>', "box@team.test"),
        ("Bücher <box@bücher.de>", "Bücher <box@xn--bcher-kva.de>", "box@xn--bcher-kva.de"),
        ('Acme "Support" <box@team.test>', 'Acme "Support"', "box@team.test"),
        ('"Acme" Support <box@team.test>', '"Acme" Support', "box@team.test"),
        (r'"The \"Box\"" <box@team.test>', 'The "Box"', "box@team.test"),
    ],
)
def test_the_sender_is_one_ascii_address_whatever_the_name(
    from_address: str, header: str, envelope: str
):
    """An unquoted comma in the name made the From header two addresses ('Box' and 'Inc.'),
    and smtplib took 'Box' as the envelope sender; an IDN domain needed SMTPUTF8. Quotes that
    are not around the whole name are part of it: the last one was cut (`Acme "Support`), and
    a wholly quoted name kept its escapes' backslashes."""
    mail = compose_code_mail(from_address, "a@example.com", "042042", 600)
    if "@" in header:
        assert mail["From"] == header
    else:  # the display name, as a mail client shows it
        assert [name for name, _ in getaddresses([mail["From"]])] == [header]
    assert [address for _, address in getaddresses([mail["From"]])] == [envelope]
    assert bytes(mail).isascii()


def test_an_international_domain_may_be_listed_as_it_is_written():
    """`allowed_email_domains = ["bücher.de"]` stopped the start with 'must be domain names
    like example.com' (it is one): listed in Unicode, it is taken in the ASCII form the
    addresses are compared in."""
    data = {"auth": {"signup": "domains", "allowed_email_domains": ["Bücher.de", "team.com"]}}
    auth = config_from_data(data, None, {}).auth
    assert auth.allowed_email_domains == ["xn--bcher-kva.de", "team.com"]
    check_signup_allowed(normalize_email("leser@BÜCHER.de"), auth)


@pytest.mark.parametrize(
    "sender", ["Box\rBcc: victim@x.io <box@team.test>", "Box\r <box@team.test>", "b\x00x@team.test"]
)
def test_a_from_address_with_control_characters_stops_the_start(sender: str):
    """A carriage return in the display name passed the config's check, then every sign-in
    was a 500 (the mail library refuses CR or LF in an address): refused at start instead."""
    with pytest.raises(ConfigError) as caught:
        config_from_data({"email": {"from_address": sender}}, None, {})
    assert "email.from_address" in str(caught.value)


@pytest.mark.parametrize("sender", ["café@team.test", "Café <café@team.test>", "josé@bücher.de"])
def test_a_from_address_not_ascii_before_the_at_stops_the_start(sender: str):
    """A mailbox name beyond ASCII needs SMTPUTF8 of every server on the way: smtplib refuses
    to send from it to a server without (and the From header carried an encoded word where
    the mailbox name goes), so every sign-in mail failed on a box that had started without a
    word. Refused at start, as a user's such address is refused."""
    with pytest.raises(ConfigError) as caught:
        config_from_data({"email": {"from_address": sender}}, None, {})
    said = str(caught.value)
    assert "email.from_address" in said and "the part before the @ must be ASCII" in said


@pytest.mark.parametrize("sender", ["box@bücher.de", "Bücher <box@BÜCHER.de>"])
def test_a_from_address_at_an_international_domain_is_sent_in_ascii(sender: str):
    """The domain may be written in Unicode: it goes in its ASCII form (header and envelope)."""
    email = config_from_data({"email": {"from_address": sender}}, None, {}).email
    mail = compose_code_mail(email.from_address, "a@example.com", "042042", 600)
    assert [address for _, address in getaddresses([mail["From"]])] == ["box@xn--bcher-kva.de"]
    assert bytes(mail).isascii()


def test_signup_rules():
    open_policy = AuthConfig(signup="open")
    check_signup_allowed("x@anything.io", open_policy)
    domains = AuthConfig(signup="domains", allowed_email_domains=["Example.COM"])
    check_signup_allowed("x@example.com", domains)
    for email in ("x@sub.example.com", "x@example.co"):
        with pytest.raises(PermissionDenied):
            check_signup_allowed(email, domains)
    with pytest.raises(PermissionDenied) as caught:
        check_signup_allowed("x@example.com", AuthConfig(signup="invite"))
    assert caught.value.code == "signup_not_allowed"


FULLWIDTH_JOE = "".join(chr(ord(c) + 0xFEE0) for c in "joe@example.com")  # U+FF4A ...


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (" A.B@Example.COM \n", "a.b@example.com"),
        ("a+tag@example.com", "a+tag@example.com"),  # plus-addressing is kept: another address
        (FULLWIDTH_JOE, "joe@example.com"),  # fullwidth, as a Japanese IME types it
        ("joe@Bücher.DE", "joe@xn--bcher-kva.de"),  # an IDN domain, mailed in its ASCII form
        ("joe@xn--bcher-kva.de", "joe@xn--bcher-kva.de"),
        # IDNA 2008: ß and the final sigma are letters of their own, not "ss" and the plain
        # sigma (IDNA 2003, Python's codec, sent straße.de's code to strasse.de: another domain)
        ("joe@Straße.de", "joe@xn--strae-oqa.de"),
        ("joe@ΣΟΦΟΣς.gr", "joe@xn--0xaajbcq.gr"),
        ("joe@exam\u00adple.com", "joe@example.com"),  # a soft hyphen is no character of a name
        ("x" * 64 + "@example.com", "x" * 64 + "@example.com"),
    ],
)
def test_emails_are_normalised(raw: str, stored: str):
    assert normalize_email(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "x" * 65 + "@example.com",  # RFC 5321: a local part has at most 64 octets
        "josé@example.com",  # a non-ASCII local part needs SMTPUTF8: not taken
        '"a b"@example.com',
        "a@example.com\r\nBcc: x@example.org",
        "a@bü" + "x" * 70 + ".de",
        "a@xn--.de",
        "a@a\u200db.com",  # a joiner between Latin letters: IDNA 2003 dropped it (ab.com)
    ],
)
def test_emails_that_are_not_addresses_are_refused(raw: str):
    with pytest.raises(InvalidRequest):
        normalize_email(raw)


@pytest.mark.usefixtures("db")
def test_a_missing_account_is_not_named_by_its_internal_integer_id():
    """Only UUIDs leave the box: the 404 of an account that is gone names no database row id."""
    from codelace_box.accounts.users import get_user_by_id
    from codelace_box.billing.ledger import post_entry
    from codelace_box.errors import NotFound

    with pytest.raises(NotFound) as by_id:
        get_user_by_id(987654)
    with pytest.raises(NotFound) as by_entry:
        post_entry(987654, 5, "admin", "a test", "unit:missing-user")
    for raised in (by_id.value, by_entry.value):
        assert "987654" not in str(raised)
        assert raised.code == "user_not_found"


@pytest.mark.parametrize(
    ("email", "inbox"),
    [
        ("v+1@plus.example", "v@plus.example"),
        ("v+a+b@plus.example", "v@plus.example"),
        ("v+@plus.example", "v@plus.example"),
        ("v.i.c.tim@plus.example", "v.i.c.tim@plus.example"),  # dots matter elsewhere
        # Gmail ignores the dots of a local part: each spelling reaches the same inbox
        ("v.i.c.t.i.m@gmail.com", "victim@gmail.com"),
        ("vic.tim+7@googlemail.com", "victim@gmail.com"),
    ],
)
def test_the_mail_budget_keys_on_the_inbox(email: str, inbox: str) -> None:
    assert mailbox(email) == inbox
    assert request_limits(email, "1.2.3.4", AuthConfig())[0].bucket == f"otp-request:email:{inbox}"


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("zoe@xn--bcher-kva.de", "zoe@bücher.de"),
        ("joe@xn--strae-oqa.de", "joe@straße.de"),
        ("joe@mail.xn--0xaajbcq.gr", "joe@mail.σοφοσς.gr"),
        ("ana@example.com", "ana@example.com"),
    ],
)
def test_a_stored_address_is_shown_with_its_domain_in_unicode(stored: str, shown: str):
    assert shown_email(stored) == shown
    assert normalize_email(shown) == stored  # the same account, typed either way


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("ivan@xn--e1afmkfd.xn--p1ai", "ivan@пример.рф"),  # one script: Cyrillic
        ("aki@xn--v8j0cwa6gy22xv2ya.jp", "aki@ひらがな漢字.jp"),  # Japanese: Hiragana with Han
        ("min@xn--ab-ro2i351fslr.kr", "min@한국어ab.kr"),  # Korean with Latin
        (
            "ken@xn--ab-xi4a5a8v.jp",
            "ken@\u30c7\u30fc\u30bfab.jp",
        ),  # Katakana, its length mark, Latin
        ("ai@xn--u6j124guuq.jp", "ai@\u4ee3\u3005\u6728.jp"),  # Han with its iteration mark
        (
            "ivan@xn--e1afmkfd.com",
            "ivan@\u043f\u0440\u0438\u043c\u0435\u0440.com",
        ),  # Cyrillic not all Latin-alike
    ],
)
def test_a_domain_in_one_script_or_a_languages_mix_is_shown_in_unicode(stored: str, shown: str):
    assert shown_email(stored) == shown
    assert normalize_email(shown) == stored


@pytest.mark.parametrize(
    "stored",
    [
        "eve@xn--pple-43d.com",  # apple.com with a Cyrillic "a" (U+0430) among Latin letters
        "eve@xn--paypl-7ve.com",  # paypal.com, the same way
        "eve@mail.xn--pple-43d.com",  # the label that mixes, under another
        "eve@xn--bcher-kva.xn--pple-43d.com",  # one label fine, the other mixed
        "eve@xn--a-ylb.com",  # a Greek alpha with a Latin "a"
        "eve@xn--80ak6aa92e.com",  # apple in Cyrillic letters alone, under an ASCII TLD
        "eve@mail.xn--80ak6aa92e.com",  # the same as a deeper label
        "eve@xn--ggle-vnla.com",  # google with two Oriya zeros
        "eve@xn--13-quf.com",  # 123 with a Devanagari two: two digit systems
        "eve@xn--paypal-r4f.com",  # a Cyrillic combining titlo among Latin letters
        "eve@xn--lnkedin-rfb443b.com",  # a dotless i with a dot above: linkedin
        "eve@xn--ab-zi4ank.jp",  # the kana length mark after a Latin b: a dash
        "eve@xn--9ca7457c.jp",  # a Latin letter beyond ASCII beside Han
    ],
)
def test_a_label_that_mixes_scripts_like_a_lookalike_is_shown_in_ascii(stored: str):
    assert shown_email(stored) == stored


@pytest.mark.parametrize("odd", ["a@xn--.de", "a@xn--a.de", "a@xn--ls8h-.de", "no-at-xn--a"])
def test_what_idna_does_not_decode_is_shown_as_it_is(odd: str):
    assert shown_email(odd) == odd
