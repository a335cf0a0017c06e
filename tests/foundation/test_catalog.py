"""catalog/models.py prices: every client (CLI, admin UI) gets the same refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from codelace_box.catalog.aliases import set_alias
from codelace_box.catalog.models import find_model, set_model
from codelace_box.catalog.providers import add_provider
from codelace_box.db.models import CatalogModel, Provider
from codelace_box.errors import InvalidRequest


@pytest.fixture
def catalog_db(migrated_db: Path) -> None:
    add_provider("openai", "openai", "secret", "sk-catalog-test-0000000001")


@pytest.mark.parametrize(
    ("price", "expected"),
    [("1" + "0" * 400, "at most 1,000,000"), ("1000000.000000001", "at most"), ("-1", "negative")],
)
def test_an_absurd_price_is_refused_before_it_reaches_the_database(
    catalog_db: None, price: str, expected: str
) -> None:
    with pytest.raises(InvalidRequest, match=expected):
        set_model("openai/x", price, "1")
    assert CatalogModel.get_or_none(CatalogModel.id == "openai/x") is None


def test_the_highest_price_is_accepted_exactly(catalog_db: None) -> None:
    model = set_model("openai/x", "1000000", "0.000000001")
    assert model.input_per_1m_nanos == 10**15
    assert model.output_per_1m_nanos == 1


@pytest.mark.parametrize(
    ("model_id", "upstream"),
    [
        ("openai/x\u200by", None),  # looks like openai/xy, a zero-width space inside
        ("openai/xy\n", None),  # `$` let a trailing line break through
        ("openai/xy", "gpt-4o\n"),
        ("openai/xy", "gpt\u202e-4o"),  # a right-to-left override
    ],
)
def test_a_model_id_or_upstream_name_with_invisible_characters_is_refused(
    catalog_db: None, model_id: str, upstream: str | None
) -> None:
    """An id that looks like another one in every list (or an upstream name that is not what
    it shows) is refused: clients would type the visible id and get a 404."""
    with pytest.raises(InvalidRequest):
        set_model(model_id, "1", "1", upstream_model=upstream)
    assert CatalogModel.select().count() == 0


@pytest.mark.parametrize("name", ["fast\n", "fa\u200bst"])
def test_an_alias_or_provider_name_with_invisible_characters_is_refused(
    catalog_db: None, name: str
) -> None:
    set_model("openai/xy", "1", "1")
    with pytest.raises(InvalidRequest):
        set_alias(name, "openai/xy")
    with pytest.raises(InvalidRequest):
        add_provider(name, "openai", "secret", "sk-catalog-test-0000000002")


def test_a_provider_key_of_absurd_length_is_refused(catalog_db: None) -> None:
    """100,000 characters (a file pasted instead of the key) went into every request's
    header, where upstreams refuse it: refused when added, naming the limit."""
    with pytest.raises(InvalidRequest, match="at most 4,096 characters"):
        add_provider("other", "openai", "secret", "sk-" + "a" * 100_000)
    assert Provider.get_or_none(Provider.name == "other") is None
    add_provider("longest", "openai", "secret", "sk-" + "a" * 4093)


def test_a_model_kept_decomposed_is_found_and_changed_in_either_form(catalog_db: None) -> None:
    """(Both engines: the look-up by the id's provider prefix.) An id stored decomposed before
    ids were composed is found composed, and `set_model` changes it instead of adding a row
    that looks the same."""
    composed_id, decomposed_id = "openai/mod\u00e8le", "openai/mode\u0300le"
    set_model(composed_id, "1", "1")
    CatalogModel.update(id=decomposed_id).where(CatalogModel.id == composed_id).execute()
    for typed in (composed_id, decomposed_id):
        found = find_model(typed)
        assert found is not None and found.id == decomposed_id, typed
        set_model(typed, "2", "2")
    assert [m.id for m in CatalogModel.select()] == [decomposed_id]
    assert find_model("openai/mod\u00e9le") is None
