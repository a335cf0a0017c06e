"""The README's list of accepted-and-ignored Responses fields is the code's own list."""

from __future__ import annotations

import re

from codelace_box.providers.responses_request import IGNORED_FIELDS
from tests.support import REPO_ROOT


def test_the_readme_lists_the_ignored_fields_as_the_code_does() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- ignored-fields:[^>]*-->\n(.*?)<!-- /ignored-fields -->", readme, re.S)
    assert block is not None, "README.md lost its ignored-fields block"
    expected = "".join(f"  - `{name}`: {why}\n" for name, why in IGNORED_FIELDS.items())
    assert block.group(1) == expected, "regenerate the list from IGNORED_FIELDS"
