"""The portal's JSON answers carry the fields docs/http-api.md's route table names for them, and
no others: a page author reads the table, not the server."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.portal.conftest import PortalBox
from tests.support import REPO_ROOT

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
    with httpx.Client(base_url=box.url) as client:
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
