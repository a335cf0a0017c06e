"""crypto.mask_in: the operator's key masked in an upstream's words whatever else is masked
around it (account ids at the provider), and at the end of a cut text."""

from __future__ import annotations

from codelace_box.crypto import mask_in, mask_secret

KEY = "sk-live-org-Q7rT2xW9pL4mZ8vB3nK6"  # a key holding what reads as an organization id


def test_a_key_holding_an_organization_id_is_masked_whole() -> None:
    """Account ids were masked first: the key's `org-...` part became a mask, the key no longer
    matched, and its start ("sk-live-") reached users beside a mask of the rest."""
    masked = mask_in(f"Incorrect API key provided: {KEY}. Find your key at ...", KEY)
    assert KEY not in masked and "sk-live-" not in masked, masked
    assert mask_secret(KEY) in masked, masked


def test_a_key_cut_at_the_end_of_a_text_is_masked() -> None:
    masked = mask_in(f"Incorrect API key provided: {KEY[:20]}", KEY)
    assert KEY[:20] not in masked and masked.endswith(mask_secret(KEY)), masked


def test_organization_and_project_ids_are_masked_the_rest_kept() -> None:
    text = "Rate limit reached in organization org-AbC123xyz (project proj_Xy7Kq2Lm9Np4)."
    masked = mask_in(text, KEY)
    assert "org-AbC123xyz" not in masked and "proj_Xy7Kq2Lm9Np4" not in masked, masked
    assert masked.startswith("Rate limit reached in organization "), masked
