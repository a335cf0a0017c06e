"""The dashboard's door into the catalog: models and providers with their keys, read as view
objects and changed only through the catalog's feature functions (mixed into AdminServices)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from admin_tui.service_audit import audited, provider_key_change, states
from admin_tui.service_checks import parse_token_cap, unchanged
from admin_tui.views import ModelForm, ModelRow, ProviderKeyRow, ProviderRow
from codelace_box.catalog import aliases, models
from codelace_box.catalog import providers as catalog
from codelace_box.config import Config
from codelace_box.crypto import decrypt_secret, mask_in
from codelace_box.db.models import CatalogModel, ProviderKey
from codelace_box.errors import CodelaceError, Conflict, NotFound
from codelace_box.providers.billed_fields import field_named


@dataclass(frozen=True)
class ProviderExtras:
    """What a provider form says beyond kind and base URL, as typed: the billed fields it
    allows (comma-separated; blank or `none`: none) and `yes`/`no` to the Responses API."""

    allowed_fields: str = ""
    responses_api: str = "no"

    def fields(self) -> list[str]:
        text = self.allowed_fields.strip()
        if text.lower() == "none":
            return []
        # as a request names it (web_search_20250305 is web_search): compared with what is stored
        return [field_named(name.strip()) for name in text.split(",") if name.strip()]

    def responses(self) -> bool:
        return self.responses_api.strip().lower() == "yes"


@dataclass(frozen=True)
class KeyTarget:
    kind: str
    base_url: str
    api_key: str = field(repr=False)


class CatalogServices:
    """The catalog's queries and actions; call the sync methods through `run`."""

    config: Config

    # -- models ---------------------------------------------------------------------------

    def models(self) -> list[ModelRow]:
        routed: dict[str, list[str]] = {}
        for name, target in aliases.list_aliases().items():
            routed.setdefault(target, []).append(name)
        return [_model_row(m, tuple(routed.get(m.id, ()))) for m in models.list_models()]

    def save_model(self, form: ModelForm, *, new: bool, shown: ModelRow | None = None) -> str:
        """Add a model (refusing an id already in the catalog) or change one; its id.
        `shown`: the model as the edit form was filled; refused if it changed since."""
        model_id = form.model_id.strip()
        with audited("models set", model_id, lambda: states.model(model_id)):
            current = models.find_model(model_id)
            if shown is not None and current is not None:
                now = replace(
                    _model_row(current, shown.aliases),
                    enabled=shown.enabled,  # not what the form shows (nor is the provider's)
                    provider_enabled=shown.provider_enabled,
                )
                unchanged(shown, now, f"model {model_id}")
            self._set_model(model_id, form, new=new)
        return model_id

    def _set_model(self, model_id: str, form: ModelForm, *, new: bool) -> None:
        current = models.find_model(model_id)  # what the form does not show stays as it is
        if new and current is not None:
            raise Conflict(
                f"model {model_id} is already in the catalog: edit it instead",
                code="model_exists",
            )
        if not new and current is None:  # an edit must not bring back what was removed
            raise NotFound(
                f"model {model_id} is no longer in the catalog (removed meanwhile?): nothing "
                "was saved; add it again with n if it is wanted",
                code="model_not_found",
            )
        models.set_model(
            model_id,
            form.input_per_1m.strip(),
            form.output_per_1m.strip(),
            provider=form.provider.strip() or None,
            upstream_model=form.upstream_model.strip() or None,
            max_output_tokens=parse_token_cap(form.max_output_tokens, "max output tokens"),
            context_tokens=parse_token_cap(form.context_tokens, "context tokens"),
            cache_prices=models.CachePrices(
                form.cache_read_per_1m.strip() or None,
                form.cache_write_per_1m.strip() or None,
                form.cache_write_1h_per_1m.strip() or None,
            ),
        )

    def set_model_enabled(self, model_id: str, enabled: bool) -> None:
        command = "models enable" if enabled else "models disable"
        with audited(command, model_id, lambda: states.model(model_id)):
            models.set_model_enabled(model_id, enabled)

    def remove_model(self, model_id: str) -> list[str]:
        """Delete a model id (and its aliases, returned); its usage history stays."""
        with audited("models remove", model_id, lambda: states.model(model_id)):
            return models.remove_model(model_id)

    def set_alias(self, name: str, model_id: str) -> str:
        """Route the bare name `name` to a model (moving it if it routed elsewhere); the name."""
        name = name.strip()
        with audited("models alias", name, lambda: states.alias(name)):
            return str(aliases.set_alias(name, model_id).name)

    def remove_alias(self, name: str, model_id: str | None = None) -> None:
        """Forget an alias; with `model_id` (the model whose aliases the form listed), refused
        when it routes elsewhere now (moved meanwhile: it is that model's alias)."""
        with audited("models unalias", name, lambda: states.alias(name)):
            routed = aliases.list_aliases().get(name)
            if model_id is not None and routed is not None and routed != model_id:
                raise Conflict(
                    f"alias {name} routes to {routed} now (moved meanwhile?), not to "
                    f"{model_id}: nothing was removed; check the aliases shown now",
                    code="changed_meanwhile",
                )
            aliases.remove_alias(name)

    # -- providers ------------------------------------------------------------------------

    def providers(self) -> list[ProviderRow]:
        return [
            ProviderRow(
                p.id,
                p.name,
                p.kind,
                p.base_url,
                bool(p.enabled),
                [_key_row(k, self._shown_reason(k)) for k in catalog.provider_keys(p.id)],
                tuple(catalog.allowed_fields(p)),
                bool(p.responses_api),
            )
            for p in catalog.list_providers()
        ]

    def _shown_reason(self, key: ProviderKey) -> str:
        """Why a key failed, the key itself masked out (an upstream may echo it in a 401)."""
        if not key.failure_reason:
            return ""
        try:
            plain = decrypt_secret(self._secret(), key.key_encrypted)
        except CodelaceError:  # stored under another server secret: it cannot be masked
            return "(not shown: the key cannot be decrypted to mask it in the reason)"
        return mask_in(str(key.failure_reason), plain)  # cut starts of it too

    def add_provider(
        self, name: str, kind: str, base_url: str, key: str, extras: ProviderExtras | None = None
    ) -> None:
        """Register a provider with its first key (`extras`: what it allows, as typed)."""
        name, secret = name.strip(), self._secret()
        extras = extras or ProviderExtras()
        with audited("providers add", name, lambda: states.provider(name)):
            catalog.add_provider(name, kind, secret, key, base_url.strip(), extras.fields(),
                                 extras.responses())  # fmt: skip

    def add_provider_key(self, provider: str, key: str) -> str:
        """Add a key to a provider's rotation; its masked hint."""
        secret = self._secret()
        with audited("providers key-add", provider, lambda: states.provider(provider)):
            return str(catalog.add_provider_key(provider, secret, key).key_hint)

    def rotate_key(self, provider: str, old: ProviderKeyRow, key: str) -> str:
        """Replace a key: the new one joins the rotation and the old one leaves, atomically."""
        secret = self._secret()
        with audited("providers key-rotate", provider, lambda: states.provider(provider)):
            shown_key(provider, old)
            added = catalog.add_provider_key(provider, secret, key)
            catalog.set_key_enabled(old.id, False)
        return str(added.key_hint)

    def set_key_enabled(self, provider: str, key: ProviderKeyRow, enabled: bool) -> None:
        with provider_key_change("enable" if enabled else "disable", key.id):
            shown_key(provider, key)
            catalog.set_key_enabled(key.id, enabled)

    def update_provider(
        self,
        name: str,
        kind: str,
        base_url: str,
        shown: ProviderRow | None = None,
        extras: ProviderExtras | None = None,
    ) -> None:
        """Change a provider's kind and base URL ('' for the kind's own) and, with `extras`,
        the billed fields it allows (the whole list) and whether it serves the Responses API.
        `shown`: the provider as the form was filled; refused if any of these changed since."""
        with audited("providers update", name, lambda: states.provider(name)):
            now = catalog.get_provider(name)
            stored = set(catalog.allowed_fields(now))
            if shown is not None:
                was = (shown.kind, shown.base_url, set(shown.allowed_fields), shown.responses_api)
                is_now = (now.kind, now.base_url, stored, bool(now.responses_api))
                unchanged(was, is_now, f"provider {name}")
            wanted = set(extras.fields()) if extras else stored
            catalog.update_provider(
                name, kind=kind, base_url=base_url.strip(), allow=sorted(wanted - stored),
                disallow=sorted(stored - wanted),
                responses_api=extras.responses() if extras else None,
            )  # fmt: skip

    def remove_provider(self, name: str) -> None:
        """Delete a provider and its keys (refused while models use it)."""
        with audited("providers remove", name, lambda: states.provider(name)):
            catalog.remove_provider(name)

    def remove_provider_key(self, provider: str, key: ProviderKeyRow) -> None:
        with audited("providers key-remove", provider, lambda: states.provider(provider)):
            shown_key(provider, key)
            catalog.remove_provider_key(provider, key.id)

    def set_provider_enabled(self, name: str, enabled: bool) -> None:
        command = "providers enable" if enabled else "providers disable"
        with audited(command, name, lambda: states.provider(name)):
            catalog.set_provider_enabled(name, enabled)

    def _key_target(self, key_id: int) -> KeyTarget:
        for provider in catalog.list_providers():
            for key in catalog.provider_keys(provider.id):
                if key.id == key_id:
                    base = provider.base_url or catalog.default_base_url(provider.kind)
                    plain = decrypt_secret(self._secret(), key.key_encrypted)
                    return KeyTarget(provider.kind, base, plain)
        raise NotFound(f"no provider key with id {key_id}", code="provider_key_not_found")

    def _secret(self) -> str:
        return catalog.server_secret(self.config)


def _model_row(m: CatalogModel, routed: tuple[str, ...]) -> ModelRow:
    return ModelRow(
        m.id, m.provider.name, m.upstream_model, m.input_per_1m_nanos, m.output_per_1m_nanos,
        m.max_output_tokens, bool(m.enabled), m.cache_read_per_1m_nanos,
        m.cache_write_per_1m_nanos, m.cache_write_1h_per_1m_nanos, routed, m.context_tokens,
        bool(m.provider.enabled),
    )  # fmt: skip


def shown_key(provider: str, shown: ProviderKeyRow) -> None:
    """Refuse when the key the operator picked is no longer the one under its id: it was
    removed meanwhile, and SQLite gives the next key added (to any provider) the same id."""
    try:
        hint = catalog.provider_key(provider, shown.id).key_hint
    except NotFound:
        hint = None
    if hint != shown.hint:
        raise NotFound(
            f"key {shown.hint} of {provider} is no longer there (removed meanwhile?): nothing "
            "was done; check the keys shown now",
            code="provider_key_not_found",
        )


def _key_row(key: ProviderKey, reason: str) -> ProviderKeyRow:
    return ProviderKeyRow(
        key.id,
        key.key_hint,
        bool(key.enabled),
        bool(key.failing),
        reason,
        key.created_at,
        key.last_failed_at,
        bool(key.failing) and bool(key.parked),
    )
