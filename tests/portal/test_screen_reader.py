"""What a screen reader says on the keys and billing pages: a question's answers are read with
the question, and the status lines are live regions before they speak."""

from __future__ import annotations

from tests.portal.browser import Browser
from tests.portal.conftest import PortalBox, wait_page
from tests.portal.test_user_experience import _on_the_keys_page


def test_the_revoke_question_is_read_with_the_button_the_keyboard_lands_on(
    cdp: Browser, box: PortalBox
) -> None:
    """Revoke puts the keyboard on Keep it; a screen reader read 'Keep it, button' and not the
    question it answers (what is revoked, that programs using it stop at once)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from tests.portal.test_keyboard_and_announcements import focused_ax

    browser = cdp
    _on_the_keys_page(browser, box, "revoke-question@portal.test", "asked")
    browser.css("button[aria-label='Revoke key asked']").send_keys(Keys.ENTER)
    browser.wait_for(lambda: browser.button("Keep it"), "the confirmation")
    keep = focused_ax(browser)
    assert keep["name"] == "Keep it"
    assert "Revoke asked" in keep["description"], keep
    assert "stop working at once" in keep["description"], keep
    ActionChains(browser.driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(
        Keys.SHIFT
    ).perform()
    yes = focused_ax(browser)
    assert yes["name"] == "Yes, revoke it" and "stop working at once" in yes["description"], yes


def ax_ignored(browser: Browser, selector: str) -> list[bool]:
    """Whether each element `selector` finds is left out of Chromium's accessibility tree."""
    driver = browser.driver
    found = driver.execute_cdp_cmd(
        "Runtime.evaluate", {"expression": f"document.querySelectorAll({selector!r})"}
    )
    props = driver.execute_cdp_cmd(
        "Runtime.getProperties", {"objectId": found["result"]["objectId"], "ownProperties": True}
    )
    ignored = []
    for prop in props["result"]:
        if not prop["name"].isdigit():
            continue
        tree = driver.execute_cdp_cmd(
            "Accessibility.getPartialAXTree",
            {"objectId": prop["value"]["objectId"], "fetchRelatives": False},
        )
        ignored.append(bool(tree["nodes"][0].get("ignored")))
    return ignored


def test_the_status_lines_are_live_before_they_speak(cdp: Browser, box: PortalBox) -> None:
    """A polite live region is read when its text changes only if it is in the accessibility
    tree before (an empty one hidden with display: none, then shown with its words, is read by
    no screen reader): 'saved', 'a new code is on its way', 'taking you to Stripe' went unsaid."""
    browser = cdp
    driver = browser.driver
    _on_the_keys_page(browser, box, "live-status@portal.test", "lively")
    statuses = "main [role=status][aria-live=polite]"
    assert browser.all(statuses), "no status line on the keys page"
    assert ax_ignored(browser, statuses) == [False] * len(browser.all(statuses))
    driver.get(box.url + "/billing")
    wait_page(browser, "Billing")
    assert ax_ignored(browser, statuses) == [False] * len(browser.all(statuses)) != []
