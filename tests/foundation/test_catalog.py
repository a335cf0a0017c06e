"""catalog/models.py prices: every client (CLI, admin UI) gets the same refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from codelace_box.catalog.models import set_model
from codelace_box.catalog.providers import add_provider
from codelace_box.db.models import CatalogModel
from codelace_box.errors import InvalidRequest


@pytest.fixture
def catalog_db(migrated_db: Path) -> None:
    add_provider("openai", "openai", "secret", "sk-catalog-test-0000000001")


@pytest.mark.parametrize(
    ("price", "expected"),
    [("1e400", "at most 1,000,000"), ("1000000.000000001", "at most"), ("-1", "negative")],
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
