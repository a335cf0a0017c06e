"""The README's list of chat fields an Anthropic provider ignores is the code's own list."""

from __future__ import annotations

import re

from codelace_box.providers.anthropic_fields import IGNORED
from tests.support import REPO_ROOT


def test_the_readme_lists_the_ignored_fields_as_the_code_does() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(
        r"<!-- anthropic-ignored-fields:[^>]*-->\n(.*?)<!-- /anthropic-ignored-fields -->",
        readme,
        re.S,
    )
    assert block is not None, "README.md lost its anthropic-ignored-fields block"
    expected = "".join(f"  - `{name}`: {why}\n" for name, why in IGNORED.items())
    assert block.group(1) == expected, "regenerate the list from IGNORED"
