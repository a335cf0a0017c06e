"""Key limits through the portal (SPEC "The portal": keys with their limits): a signed-in
browser sets a key's cap, reset, expiry and models when it makes the key and changes them
later, with the rules of POST/PATCH /api/v1/auth/key (bad values a 400 naming the field and
nothing changed, an absent field unchanged, null clearing one), and the box enforces them;
the keys page offers them in a real browser."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openai
import pytest

from tests.portal.browser import Browser
from tests.portal.conftest import MODEL, PortalBox, sign_in
from tests.portal.test_bad_input import alert_after, only_refusals_logged, retype
from tests.support import TLS, sdk_http


def signed_in(box: PortalBox, email: str) -> tuple[httpx.Client, dict[str, str]]:
    """A client with a portal session, and the headers a change must carry."""
    client = box.http()
    body = box.sign_in_http(client, email)
    return client, {"x-csrf-token": str(body["csrf_token"]), "origin": box.url}


LIMITS = {
    "limit_usd": 0,
    "limit_reset": "monthly",
    "expires_at": "2099-01-01T00:00:00Z",
    "allowed_models": [MODEL],
}


def test_a_key_made_in_the_portal_carries_its_limits_and_they_hold(box: PortalBox) -> None:
    email = "limits@portal.test"
    client, change = signed_in(box, email)
    box.cli("credit", email, "5", "--reason", "portal limits")
    made = client.post("/portal/api/keys", json={"name": "ci", **LIMITS}, headers=change)
    assert made.status_code == 200, made.text
    new = made.json()
    assert {field: new[field] for field in LIMITS} == {**LIMITS, "limit_usd": 0.0}
    listed = {k["id"]: k for k in client.get("/portal/api/keys").json()}[new["id"]]
    assert listed["limit_usd"] == 0.0 and listed["spent_usd"] == 0.0
    assert listed["allowed_models"] == [MODEL] and listed["limit_reset"] == "monthly"
    sdk = openai.OpenAI(
        base_url=box.url + "/v1",
        api_key=new["full_key"],
        max_retries=0,
        http_client=sdk_http(openai),
    )
    with pytest.raises(openai.APIStatusError) as refused:
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 402 and refused.value.code == "key_limit_reached"

    raised = client.patch(f"/portal/api/keys/{new['id']}", json={"limit_usd": 2}, headers=change)
    assert raised.status_code == 200, raised.text
    after = raised.json()
    assert after["limit_usd"] == 2.0 and after["name"] == "ci"  # absent fields unchanged
    assert after["limit_reset"] == "monthly" and after["allowed_models"] == [MODEL]
    answer = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content

    cleared = client.patch(
        f"/portal/api/keys/{new['id']}",
        json={"limit_usd": None, "limit_reset": None, "expires_at": None, "allowed_models": None},
        headers=change,
    )
    assert cleared.status_code == 200, cleared.text
    assert {field: cleared.json()[field] for field in LIMITS} == dict.fromkeys(LIMITS)
    client.close()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"limit_usd": -1}, "limit_usd"),
        ({"limit_usd": "1e2"}, "limit_usd"),  # as typed in the page: plain decimals only
        ({"limit_reset": "yearly"}, "limit_reset"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"allowed_models": ["nobody/nothing"]}, "allowed_models"),
        ({"allowed_models": MODEL}, "allowed_models"),
    ],
)
def test_bad_limits_are_a_400_naming_the_field_and_change_nothing(
    box: PortalBox, body: dict[str, Any], param: str
) -> None:
    email = f"bad-{param}-{len(str(body))}@portal.test"
    client, change = signed_in(box, email)
    made = client.post("/portal/api/keys", json={"name": "x", **body}, headers=change)
    assert made.status_code == 400, made.text
    assert made.json()["error"]["param"] == param
    assert client.get("/portal/api/keys").json() == []  # no key was made
    key = client.post("/portal/api/keys", json={"name": "x"}, headers=change).json()
    patched = client.patch(f"/portal/api/keys/{key['id']}", json=body, headers=change)
    assert patched.status_code == 400, patched.text
    assert patched.json()["error"]["param"] == param
    (listed,) = client.get("/portal/api/keys").json()
    assert {field: listed[field] for field in LIMITS} == dict.fromkeys(LIMITS)
    client.close()


def test_a_key_limit_typed_with_thousands_commas_is_read_as_a_top_up_is(box: PortalBox) -> None:
    """The page writes amounts with thousands commas and the top-up reads "1,000" so, but
    the key form refused it ("must be a USD amount"): one rule for both (a decimal comma,
    "10,50", still refused)."""
    client, change = signed_in(box, "grouped-limit@portal.test")
    body = {"name": "x", "limit_usd": "1,000"}
    made = client.post("/portal/api/keys", json=body, headers=change)
    assert made.status_code == 200, made.text
    assert made.json()["limit_usd"] == 1000.0
    path = f"/portal/api/keys/{made.json()['id']}"
    patched = client.patch(path, json={"limit_usd": "$1,250.50"}, headers=change)
    assert patched.status_code == 200, patched.text
    assert patched.json()["limit_usd"] == 1250.5
    refused = client.patch(path, json={"limit_usd": "10,50"}, headers=change)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "limit_usd"
    client.close()


def test_an_unknown_field_of_a_key_is_a_400(box: PortalBox) -> None:
    client, change = signed_in(box, "unknown-field@portal.test")
    key = client.post("/portal/api/keys", json={"name": "x"}, headers=change).json()
    patched = client.patch(f"/portal/api/keys/{key['id']}", json={"limit": 5}, headers=change)
    assert patched.status_code == 400 and patched.json()["error"]["param"] == "limit"
    client.close()


@pytest.mark.parametrize("body", [{"json": {}}, {}], ids=["empty-object", "no-body"])
def test_a_patch_with_every_field_absent_changes_nothing(
    box: PortalBox, body: dict[str, Any]
) -> None:
    """As PATCH /api/v1/auth/key: an absent field is unchanged, so an empty change answers
    the key as it is (not a 400), whether the body is `{}` or missing altogether (the API took
    no body as every field absent; the portal answered 400 'must be a JSON object')."""
    client, change = signed_in(box, f"empty-patch-{len(body)}@portal.test")
    key = client.post("/portal/api/keys", json={"name": "same", **LIMITS}, headers=change).json()
    patched = client.patch(f"/portal/api/keys/{key['id']}", headers=change, **body)
    assert patched.status_code == 200, patched.text
    assert {f: patched.json()[f] for f in ("name", *LIMITS)} == {"name": "same", **LIMITS}
    client.close()


def test_the_keys_page_sets_changes_and_clears_limits(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """A person makes a key with a cap of $0 and one model, sees the key refused, raises the
    cap on the page, sees it work, then clears every limit; a bad value is said in the page."""
    from selenium.webdriver.support.ui import Select

    email = "limitspage@portal.test"
    browser = fresh_browser
    sign_in(browser, box, email)
    box.cli("credit", email, "5", "--reason", "portal limits page")
    browser.driver.get(box.url + "/keys")
    browser.wait_for(lambda: browser.field("Name of the new key"), "the create form")
    browser.field("Name of the new key").send_keys("ci")
    browser.field("Spending limit in USD").send_keys("0")
    Select(browser.field("Limit resets")).select_by_value("weekly")
    browser.field("Expires").send_keys("2099-06-30")
    browser.field("Allowed models").send_keys(MODEL)
    browser.button("Create key").click()
    full_key = browser.wait_for(lambda: browser.field("Your new key"), "the new key").get_attribute(
        "value"
    )
    item = browser.wait_for(lambda: browser.css("article.key"), "the key in the list")
    assert (
        "Spending limit" in item.text
        and "$0.00" in item.text
        and "Weekly (Monday 00:00 UTC)" in item.text
    )
    assert MODEL in item.text and "2099-06-30" in item.text
    sdk = openai.OpenAI(
        base_url=box.url + "/v1", api_key=full_key, max_retries=0, http_client=sdk_http(openai)
    )
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(openai.APIStatusError) as refused:
        sdk.chat.completions.create(**chat)
    assert refused.value.code == "key_limit_reached"

    browser.click(lambda: browser.css("button[aria-label='Limits of key ci']"), "limits")
    cap = browser.field("Spending limit in USD for ci")
    retype(cap, "-3")
    assert "limit_usd" in alert_after(browser, "Save limits")
    retype(cap, "2.5")
    browser.button("Save limits").click()
    browser.wait_for(lambda: "$2.50" in browser.css("article.key").text, "the raised cap")
    assert (
        "Weekly (Monday 00:00 UTC)" in browser.css("article.key").text
    )  # the fields left alone are unchanged
    assert sdk.chat.completions.create(**chat).choices[0].message.content

    browser.click(lambda: browser.css("button[aria-label='Limits of key ci']"), "limits")
    for label in ("Spending limit in USD for ci", "Expires for ci", "Allowed models for ci"):
        retype(browser.field(label), "")
    Select(browser.field("Limit resets for ci")).select_by_value("")
    browser.button("Save limits").click()
    browser.wait_for(lambda: "Spending limit" not in browser.css("article.key").text, "cleared")
    (listed,) = [k for k in box_keys(box, email) if k[0] == full_key[:7]]
    assert listed[1:] == (None, None, None, None)
    only_refusals_logged(browser)


def box_keys(box: PortalBox, email: str) -> list[tuple[Any, ...]]:
    """(prefix, limit, reset, expiry, models) of the user's keys, from the database."""
    return box.query(
        "SELECT k.key_prefix, k.limit_nanos, k.limit_reset, k.expires_at, k.allowed_models "
        'FROM api_key k JOIN "user" u ON u.id = k.user_id WHERE u.email = ?',
        email,
    )


def test_after_a_keys_form_the_keyboard_is_back_on_the_button_that_opened_it(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """The list is drawn anew when a form of a key is saved or cancelled: focus goes back to
    that key's button, not to the top of the page (a keyboard user kept their place)."""
    from selenium.webdriver.common.keys import Keys

    browser = fresh_browser
    sign_in(browser, box, "keyboard-limits@portal.test")
    browser.driver.get(box.url + "/keys")
    browser.wait_for(lambda: browser.field("Name of the new key"), "the create form")
    for name in ("first", "second"):
        retype(browser.field("Name of the new key"), name)
        browser.button("Create key").click()
        browser.wait_for(lambda n=name: n in browser.css("#key-list").text, f"key {name}")

    def focused_label() -> str:
        return str(browser.driver.switch_to.active_element.get_attribute("aria-label"))

    for opener, finish in (
        ("Limits of key second", "Save limits"),
        ("Limits of key second", "Cancel"),
        ("Rename key second", "Save name"),
        ("Rename key second", "Cancel"),
        ("Revoke key second", "Keep it"),
    ):
        browser.css(f"button[aria-label='{opener}']").send_keys(Keys.ENTER)
        browser.wait_for(lambda f=finish: browser.button(f), finish)
        if finish == "Save limits":
            browser.driver.switch_to.active_element.send_keys("3", Keys.ENTER)  # the cap, typed
        else:
            browser.button(finish).send_keys(Keys.ENTER)
        browser.wait_for(lambda o=opener: focused_label() == o, f"focus back on {opener!r}")
    assert "$3.00" in browser.css("article.key[aria-label='Key second']").text
    only_refusals_logged(browser)


def test_the_keys_page_makes_a_key_that_cannot_manage_keys_and_lets_it_again(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """A person makes a key for a tool with "Can manage keys" unticked: the page sends it, the
    key is listed so and refused when it tries to mint a key; the portal (its own session can
    always manage keys) ticks it again and the key may."""
    email = "managepage@portal.test"
    browser = fresh_browser
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    browser.wait_for(lambda: browser.field("Name of the new key"), "the create form")
    browser.field("Name of the new key").send_keys("tool")
    manage = browser.field("Can manage keys")
    assert manage.is_selected()  # the default: it may
    manage.click()
    browser.button("Create key").click()
    full_key = browser.wait_for(lambda: browser.field("Your new key"), "the new key").get_attribute(
        "value"
    )
    item = browser.wait_for(lambda: browser.css("article.key"), "the key in the list")
    assert "Can manage keys" in item.text and "No: calls models" in item.text
    assert box.query("SELECT can_manage_keys FROM api_key WHERE key_prefix = ?", full_key[:7]) == [
        (0,)
    ]
    api = httpx.Client(
        base_url=box.url, headers={"authorization": f"Bearer {full_key}"}, verify=TLS
    )
    refused = api.post("/api/v1/auth/key", json={"name": "uncapped"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "key_management_not_allowed"

    browser.click(lambda: browser.css("button[aria-label='Limits of key tool']"), "limits")
    flag = browser.field("Can manage keys for tool")
    assert not flag.is_selected()  # the form starts from what is stored
    flag.click()
    browser.button("Save limits").click()
    browser.wait_for(lambda: "Can manage keys\nYes" in browser.css("article.key").text, "ticked")
    assert api.post("/api/v1/auth/key", json={"name": "second"}).status_code == 200
    api.close()
    only_refusals_logged(browser)


def test_the_expiry_example_of_the_keys_form_is_a_year_ahead_not_a_fixed_date(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """A fixed example (2026-12-31) would soon be a date in the past, which is refused; the
    example is in the form the field takes (a date, UTC)."""
    sign_in(fresh_browser, box, "expiryexample@portal.test")
    fresh_browser.driver.get(box.url + "/keys")
    field = fresh_browser.wait_for(lambda: fresh_browser.field("Expires"), "the create form")
    now = datetime.now(UTC)
    days = [(now + timedelta(days=365 + d)).date().isoformat() for d in (-1, 0, 1)]
    assert field.get_attribute("placeholder") in [f"e.g. {day}" for day in days]


def test_clearing_a_keys_limit_on_the_page_clears_its_reset_too(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """Emptying the spending limit clears its reset too: the key shows no limit and no reset
    (not a weekly period of nothing). A limit set again without a reset has none (the SPEC's
    default: the period never ends)."""
    from selenium.webdriver.support.ui import Select

    email = "clearcap@portal.test"
    browser = fresh_browser
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    browser.wait_for(lambda: browser.field("Name of the new key"), "the create form")
    browser.field("Name of the new key").send_keys("budget")
    browser.field("Spending limit in USD").send_keys("5")
    Select(browser.field("Limit resets")).select_by_value("weekly")
    browser.button("Create key").click()
    browser.wait_for(lambda: "Weekly (Monday" in browser.css("article.key").text, "the weekly key")

    browser.click(lambda: browser.css("button[aria-label='Limits of key budget']"), "limits")
    retype(browser.field("Spending limit in USD for budget"), "")
    browser.button("Save limits").click()
    browser.wait_for(lambda: "Spending limit" not in browser.css("article.key").text, "cleared")
    assert "Weekly" not in browser.css("article.key").text
    assert [k[1:3] for k in box_keys(box, email)] == [(None, None)]

    browser.click(lambda: browser.css("button[aria-label='Limits of key budget']"), "limits")
    retype(browser.field("Spending limit in USD for budget"), "3")
    browser.button("Save limits").click()
    browser.wait_for(lambda: "$3.00" in browser.css("article.key").text, "the new limit")
    assert [k[1:3] for k in box_keys(box, email)] == [(3_000_000_000, None)]
    only_refusals_logged(browser)


def test_a_tiny_limit_is_shown_in_its_form_in_plain_decimals_the_form_takes(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """A cap under a millionth of a dollar, set on the page as 0.0000005, is shown in the key's
    Limits form as it was typed, not as JavaScript spells such a number ('5e-7', which the
    form itself refuses): a person who edits the shown figure gets the change, not a 400."""
    email = "tinycap@portal.test"
    browser = fresh_browser
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    browser.wait_for(lambda: browser.field("Name of the new key"), "the create form")
    browser.field("Name of the new key").send_keys("tiny")
    browser.field("Spending limit in USD").send_keys("0.0000005")
    browser.button("Create key").click()
    browser.wait_for(lambda: "$0.0000005" in browser.css("article.key").text, "the tiny cap")

    browser.click(lambda: browser.css("button[aria-label='Limits of key tiny']"), "limits")
    cap = browser.field("Spending limit in USD for tiny")
    assert cap.get_attribute("value") == "0.0000005"
    from selenium.webdriver.common.keys import Keys

    cap.send_keys(Keys.END, "1")  # the figure shown, one digit more
    browser.button("Save limits").click()
    browser.wait_for(lambda: "$0.00000051" in browser.css("article.key").text, "the new cap")
    assert [k[1] for k in box_keys(box, email)] == [510]
    only_refusals_logged(browser)


def test_a_key_with_a_reset_and_no_limit_says_its_spend_is_since_the_reset(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """A key made with a reset and no spending limit counts its spend from the last reset (the
    API's spent_usd is the period's): the page called that figure "Spent with this key", so
    after midnight UTC a key that had spent read $0.00 as all it ever spent."""
    from selenium.webdriver.support.ui import Select

    email = "resetnocap@portal.test"
    browser = fresh_browser
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    browser.wait_for(lambda: browser.field("Name of the new key"), "the create form")
    browser.field("Name of the new key").send_keys("daily")
    Select(browser.field("Limit resets")).select_by_value("daily")
    browser.button("Create key").click()
    browser.wait_for(lambda: "Daily (00:00 UTC)" in browser.css("article.key").text, "the key")
    terms = [t.text for t in browser.all("article.key dt")]
    assert "Spent since the last reset" in terms and "Spent with this key" not in terms, terms
    assert [k[1:3] for k in box_keys(box, email)] == [(None, "daily")]
    only_refusals_logged(browser)


def test_a_key_at_its_cap_says_it_is_refused_until_the_reset_or_a_raise(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """A key whose spend has reached its limit is refused (402 key_limit_reached) until its
    reset or a higher limit, but the page listed it as any other ("Spent against the limit
    $0.00", "Spending limit $0.00"): an expired key says it no longer works, one at its cap
    said nothing of it. A key under its cap says nothing more. A $0 limit is refused after
    its reset as before it (the reset frees nothing): it says "until the limit is raised"."""
    email = "atcap@portal.test"
    client, change = signed_in(box, email)
    keys = (("daily-cap", "daily", 1), ("no-reset", None, 0), ("room", None, 1))
    for name, reset, cap in (*keys, ("zero-daily", "daily", 0)):
        body = {"name": name, "limit_usd": cap, "limit_reset": reset}
        assert client.post("/portal/api/keys", json=body, headers=change).status_code == 200
    with sqlite3.connect(box.db_path, timeout=10) as db:  # daily-cap spent its $1 today
        db.execute(
            "UPDATE api_key SET spent_nanos = 1000000000, period_start = ? WHERE name = ? AND "
            "user_id = (SELECT id FROM user WHERE email = ?)",
            (datetime.now(UTC).replace(tzinfo=None).isoformat(" "), "daily-cap", email),
        )
    browser = fresh_browser
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    browser.wait_for(lambda: len(browser.all("article.key")) == 4, "the four keys")
    said = {
        item.find_element("css selector", "h3").text: item.text
        for item in browser.all("article.key")
    }
    assert "limit is reached: calls are refused until the daily reset" in said["daily-cap"], said
    assert "limit is reached: calls are refused until the limit is raised" in said["no-reset"], said
    assert "reached" not in said["room"], said
    assert "calls are refused until the limit is raised" in said["zero-daily"], said
    only_refusals_logged(browser)


def test_todays_date_as_an_expiry_says_a_date_is_its_first_moment(box: PortalBox) -> None:
    """The form asks for "a date or time (UTC)"; today's date, meaning "until the end of
    today", was refused as "2026-12-08 is in the past", which it reads as not being. The
    refusal now says a date is its 00:00 UTC and gives the time that means the day's end."""
    client, change = signed_in(box, "today@portal.test")
    today = datetime.now(UTC).date().isoformat()
    refused = client.post("/portal/api/keys", json={"expires_at": today}, headers=change)
    assert refused.status_code == 400, refused.text
    said = refused.json()["error"]["message"]
    assert "00:00 UTC" in said and f"{today}T23:59:59Z" in said, said
