"""A model id beyond ASCII (`fake/modèle`) typed in one Unicode form and asked for in the other:
a macOS terminal or a pasted name gives the decomposed form (e + U+0300), a client's JSON the
composed one (è). They look the same everywhere (`models list`, `/v1/models`, the 404's own
words), so they must be the same model."""

from __future__ import annotations

import json
import unicodedata

import pytest

from tests.gateway.conftest import MODEL_PRICES, BoxFactory
from tests.pg_cluster import write_config_db

pytestmark = pytest.mark.timeout(60)
COMPOSED = "fake/mod\u00e8le"
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)


@pytest.mark.parametrize(("typed", "asked"), [(DECOMPOSED, COMPOSED), (COMPOSED, DECOMPOSED)],
                         ids=["typed-decomposed", "typed-composed"])  # fmt: skip
def test_a_model_id_is_one_model_in_either_unicode_form(
    box_factory: BoxFactory, typed: str, asked: str
) -> None:
    """The decomposed id was stored as typed and only that form found it: the client asking
    for the composed one got 404 'the model fake/modèle does not exist'."""
    box = box_factory()
    box.cli("models", "set", typed, *MODEL_PRICES, "--upstream-model", "gpt-test")
    _, key = box.new_user("5")
    box.until_reloaded()
    with box.http(key) as http:
        body = {"model": asked, "messages": [{"role": "user", "content": "hi"}]}
        answer = http.post("/v1/chat/completions", json=body)
        assert answer.status_code == 200, answer.text
        assert http.get(f"/v1/models/{asked}").status_code == 200
    listed = [line.split()[0] for line in box.cli("models", "list").splitlines()[1:]]
    assert COMPOSED in listed and DECOMPOSED not in listed, listed
    assert "disabled" in box.cli("models", "disable", asked)


@pytest.mark.parametrize("typed", [DECOMPOSED, COMPOSED], ids=["typed-as-kept", "typed-composed"])
def test_a_model_kept_decomposed_before_is_changed_not_doubled(
    box_factory: BoxFactory, typed: str
) -> None:
    """An id kept decomposed (as typed, before ids were composed): `models set` composed the id
    it was given and looked only for that form, so changing the model's price said 'fake/modèle
    is not in the catalog yet', and with both prices made a second row of the same look beside
    it (served to one form, while `models disable` of the other left it on)."""
    box = box_factory()
    box.cli("models", "set", COMPOSED, *MODEL_PRICES, "--upstream-model", "gpt-test")
    write_config_db(box.config, "UPDATE catalog_model SET id = ? WHERE id = ?",
                    (DECOMPOSED, COMPOSED))  # fmt: skip
    box.cli("models", "set", typed, "--input-per-1m", "7")
    box.cli("models", "set", typed, "--input-per-1m", "9", "--output-per-1m", "9")
    rows = box.query("SELECT id, input_per_1m_nanos FROM catalog_model WHERE id IN (?, ?)",
                     COMPOSED, DECOMPOSED)  # fmt: skip
    assert rows == [(DECOMPOSED, 9_000_000_000)], rows
    email, _ = box.new_user("5")
    key = box.cli("keys", "create", email, "--models", typed).strip().splitlines()[0]
    assert box.query("SELECT count(*) FROM api_key WHERE allowed_models = ?",
                     json.dumps([DECOMPOSED])) == [(1,)]  # fmt: skip
    box.until_reloaded()
    for status in (200, 404):
        with box.http(key) as http:
            for asked in (COMPOSED, DECOMPOSED):
                body = {"model": asked, "messages": [{"role": "user", "content": "hi"}]}
                answer = http.post("/v1/chat/completions", json=body)
                assert answer.status_code == status, (asked, answer.text)
                assert http.get(f"/v1/models/{asked}").status_code == status
        assert "disabled" in box.cli("models", "disable", COMPOSED)
        box.until_reloaded()


def test_the_audit_log_shows_a_change_typed_in_the_other_form(box_factory: BoxFactory) -> None:
    """The audit entry's states were read by the id as typed: a model kept composed, disabled
    or repriced by its decomposed form (as its operator first typed it), was logged as absent
    before and after, the change itself nowhere."""
    box = box_factory()
    box.cli("models", "set", DECOMPOSED, *MODEL_PRICES, "--upstream-model", "gpt-test")
    box.cli("models", "set", DECOMPOSED, "--input-per-1m", "7")
    box.cli("models", "disable", DECOMPOSED)
    rows = box.query("SELECT command, before_state, after_state FROM audit_log WHERE command IN"
                     " ('models set', 'models disable') ORDER BY id DESC LIMIT 2")  # fmt: skip
    (disable, before_off, after_off), (_, before_price, after_price) = rows
    assert disable == "models disable"
    assert json.loads(before_off)["enabled"] is True
    assert json.loads(after_off)["enabled"] is False
    assert json.loads(before_price)["input_per_1m"] != json.loads(after_price)["input_per_1m"]
