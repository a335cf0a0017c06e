"""What the docs say of the portal is what it does: its JSON answers carry the fields
docs/http-api.md's route table names for them, and no others; the waits the README quotes are the
page's and the box's."""

from __future__ import annotations

import re

import httpx
import pytest

from codelace_box.config import Config
from tests.portal.conftest import PortalBox
from tests.support import REPO_ROOT, TLS

HTTP_REFERENCE = REPO_ROOT / "docs" / "http-api.md"


def documented_fields(method: str, path: str) -> set[str]:
    """The field names of the first `{...}` of the answer the route table gives the route (after
    its arrow when the row shows a request too)."""
    row = f"| {method} | `{path}` |"
    [line] = [ln for ln in HTTP_REFERENCE.read_text().splitlines() if ln.startswith(row)]
    answer = line.split("|")[4].split("→")[-1]
    shape = re.search(r"`(\{[^`]*\})`", answer)
    assert shape, line
    return set(re.findall(r'"([a-z_]+)"', shape.group(1)))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/portal/api/signin/code"),
        ("POST", "/portal/api/signin/verify"),
        ("GET", "/portal/api/overview"),
        ("POST", "/portal/api/signout"),
    ],
)
def test_each_portal_answer_has_the_fields_the_route_table_names(
    box: PortalBox, method: str, path: str
) -> None:
    email = "documented-fields@portal.test"
    with httpx.Client(base_url=box.url, verify=TLS) as client:
        headers = {"origin": box.url}
        if path == "/portal/api/signin/code":
            answer = client.post(path, json={"email": email}, headers=headers)
        elif path == "/portal/api/signin/verify":
            answer = box.verify_answer(client, email)
        else:
            headers["x-csrf-token"] = box.sign_in_http(client, email)["csrf_token"]
            answer = client.request(method, path, headers=headers, json=None)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == documented_fields(method, path)


PORTAL_WAITS = re.compile(r"given up after (\d+) seconds \([^)]*?: (\d+) and (\d+) by default\)")


def test_the_portal_waits_the_readme_quotes_are_the_pages_and_the_boxs() -> None:
    """The README said the portal gives up on a call waiting on the mail server or Stripe
    after 60 seconds: the page waits what the box's session answer says (`wait_sec`, from
    api/portal.py `page_waits`: the SMTP timeout and the Stripe client's bound, plus 20), 50
    and 75 by default; 60 is only the page's guess before the session answer came."""
    from codelace_box.api.portal import page_waits

    text = " ".join((REPO_ROOT / "README.md").read_text().split())
    script = (REPO_ROOT / "codelace_box" / "portal" / "static" / "api.js").read_text()
    found = PORTAL_WAITS.search(text)
    assert found, "the README's portal paragraph names no waits"
    page_ms = re.search(r"TIMEOUT_MS = (\d+);", script)
    assert page_ms
    waits = page_waits(Config())
    assert [int(number) for number in found.groups()] == [
        int(page_ms.group(1)) // 1000,
        waits["mail"],
        waits["stripe"],
    ]
