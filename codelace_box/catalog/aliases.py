"""Model aliases: a bare name a client sends by default (Claude Code's `claude-haiku-4-5`)
routed to a catalog id, on every inference route."""

from __future__ import annotations

import re

from codelace_box.catalog.models import get_model
from codelace_box.db.core import query_all, write_transaction
from codelace_box.db.models import ModelAlias
from codelace_box.errors import InvalidRequest, NotFound

# No slash: an alias can never shadow a catalog id (which always has one).
_ALIAS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}")  # fullmatch


def set_alias(name: str, model_id: str) -> ModelAlias:
    """Route `name` to the catalog model `model_id` (replacing where it pointed before)."""
    if not _ALIAS_RE.fullmatch(name):
        raise InvalidRequest(
            "an alias is a bare model name (letters, digits, . _ : @ -, no slash; at most 200, "
            f"and start with a letter or digit), got {name!r}"
        )
    model = get_model(model_id)
    with write_transaction():
        ModelAlias.delete().where(ModelAlias.name == name).execute()
        ModelAlias.create(name=name, model=model.id)
    return ModelAlias.get_by_id(name)


def remove_alias(name: str) -> None:
    """Forget an alias; NotFound if there is none."""
    with write_transaction():
        removed = ModelAlias.delete().where(ModelAlias.name == name).execute()
    if not removed:
        raise NotFound(f"no alias {name}", code="alias_not_found")


def list_aliases() -> dict[str, str]:
    """Every alias and the catalog id it routes to, by name."""
    rows = query_all("SELECT name, model_id FROM model_alias ORDER BY name")
    return {str(name): str(model_id) for name, model_id in rows}
