"""F3 Models: the catalog with its prices and aliases; add a model, edit prices, provider and
upstream name, enable/disable, remove, add and remove aliases; a price changed more than tenfold
is asked about. Bad input (a price that is not a number, an id already in the catalog, an alias
with a slash) is refused inside the form with the
feature's own message, and nothing is written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from admin_tui.dialogs.form import Abandon, FormDialog, FormField
from admin_tui.screens.base import AdminScreen
from admin_tui.screens.formatting import right, status_cell
from admin_tui.services import ModelForm, ModelRow, price_jumps, usd_text
from admin_tui.widgets.live_table import LiveTable


class ModelsScreen(AdminScreen):
    """The catalog; changes reach the running server within a second."""

    MODE = "models"
    REFRESH_SECONDS = 10.0
    BINDINGS = [
        Binding("n", "add_model", "Add model"),
        Binding("e", "edit_model", "Edit"),
        Binding("t", "toggle_model", "Enable/disable"),
        Binding("a", "add_alias", "Add alias"),
        Binding("u", "remove_alias", "Remove alias"),
        Binding("d", "remove_model", "Remove"),
    ]
    PALETTE = (
        ("Add model", "Add a model id with its prices", "add_model"),
        ("Edit model", "Change prices or upstream", "edit_model"),
        ("Enable/disable model", "Toggle the selected model", "toggle_model"),
        ("Remove model", "Delete the selected model id", "remove_model"),
        ("Add alias", "Route a bare name to the model", "add_alias"),
        ("Remove alias", "Forget an alias of the model", "remove_alias"),
    )

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[str, ModelRow] = {}
        self._described: str | None = None  # the model the line under the table shows (its id)

    def compose_body(self) -> ComposeResult:
        yield LiveTable(
            "Model id",
            "Provider",
            "Upstream",
            "In $/1M",
            "Out $/1M",
            "Max out",
            "On",
            "Aliases",
            flex=("Model id", "Provider", "Upstream", "Aliases"),
            id="models",
        )
        with VerticalScroll(id="model-detail-scroll"):  # many aliases: Tab, then arrows, End
            yield Static("", id="model-detail")

    async def fetch(self) -> list[ModelRow]:
        return await self.services.run(self.services.models)

    def show(self, data: Any) -> None:
        self._rows = {row.id: row for row in data}
        self.query_one("#models", LiveTable).replace_rows(
            [
                (
                    row.id,
                    [
                        row.id,
                        row.provider,
                        row.upstream_model,
                        right(usd_text(row.input_per_1m_nanos)),
                        right(usd_text(row.output_per_1m_nanos)),
                        right(str(row.max_output_tokens or "—")),
                        status_cell(row.on_text),
                        ", ".join(row.aliases),
                    ],
                )
                for row in data
            ]
        )
        self._describe_model()

    @on(DataTable.RowHighlighted, "#models")
    def _describe_model(self) -> None:
        """The line under the table: the highlighted model in full (ids get cut at 80 columns)."""
        model = self.selected_model()
        self.query_one("#model-detail", Static).update(Text(describe_model(model) if model else ""))
        shown = model.id if model else None
        if shown != self._described:  # another model: from its id, not where the last was read
            self._described = shown
            self.query_one("#model-detail-scroll", VerticalScroll).scroll_home(animate=False)

    def selected_model(self) -> ModelRow | None:
        key = self.query_one("#models", LiveTable).selected_key()
        return self._rows.get(key) if key else None

    @on(DataTable.RowSelected, "#models")
    def _row_selected(self) -> None:
        self.action_edit_model()

    def action_add_model(self) -> None:
        self.start(self._edit, None)

    def action_edit_model(self) -> None:
        self._start_on_selected(self._edit)

    def _start_on_selected(self, job: Callable[[ModelRow], Awaitable[None]]) -> None:
        """Run a job on the highlighted model, or say there is none."""
        model = self.selected_model()
        if model is None:
            self.notify("No model selected", severity="warning")
            return
        self.start(job, model)

    async def _edit(self, model: ModelRow | None) -> None:
        new = model is None

        async def submit(values: dict[str, str]) -> str:
            form = ModelForm(**values)
            if model is not None and not await self._confirm_jumps(model, form):
                raise Abandon
            save = self.services.save_model
            return await self.services.run(save, form, new=new, shown=model)

        saved = await self.app.push_screen_wait(
            FormDialog(
                "Add model" if new else f"Edit {model.id}" if model else "",
                model_fields(model),
                submit,
                submit_label="Add" if new else "Save",
                note="Prices in USD per 1M tokens; a blank cache price is the input price (1h: "
                "the write price). Provider and upstream default to the two halves of the id. "
                "Context tokens: what a media part of unknown size reserves (blank: "
                "gateway.default_context_tokens).",
            )
        )
        if saved:
            self.notify(f"{saved} {'added' if new else 'saved'}")
            self.query_one("#models", LiveTable).select_when_shown(saved)
            self.reload()

    async def _confirm_jumps(self, model: ModelRow, form: ModelForm) -> bool:
        """A price changed more than tenfold (a typo's usual size) is asked about first, the
        cache prices too (from what they bill at now; a blank one follows the input price)."""
        read, write, write_1h = billed_cache_prices(model)
        jumps = price_jumps(
            {
                "input price": (model.input_per_1m_nanos, form.input_per_1m),
                "output price": (model.output_per_1m_nanos, form.output_per_1m),
                "cache read price": (read, form.cache_read_per_1m),
                "cache write price": (write, form.cache_write_per_1m),
                "1h cache write price": (write_1h, form.cache_write_1h_per_1m),
            }
        )
        if not jumps:
            return True
        return await self.confirm(
            "Large price change",
            f"{model.id}: more than a tenfold change:\n" + "\n".join(jumps),
            confirm_label="Save",
        )

    def action_remove_model(self) -> None:
        model = self.selected_model()
        if model is None:
            self.notify("No model selected", severity="warning")
            return
        self.start(self._remove, model)

    async def _remove(self, model: ModelRow) -> None:
        if not await self.confirm(
            "Remove model",
            f"Remove {model.id} from the catalog (with its aliases)? Requests for it answer "
            "404; its usage history stays.",
            confirm_label="Remove",
        ):
            return
        await self.act(
            lambda: self.services.run(self.services.remove_model, model.id),
            f"{model.id} removed",
        )

    def action_toggle_model(self) -> None:
        self._start_on_selected(self._toggle)

    async def _toggle(self, model: ModelRow) -> None:
        enable = not model.enabled
        if not enable and not await self.confirm(
            "Disable model",
            f"Disable {model.id}? Requests for it answer 404 until it is enabled again.",
            confirm_label="Disable",
        ):
            return
        await self.act(
            lambda: self.services.run(self.services.set_model_enabled, model.id, enable),
            f"{model.id} {'enabled' if enable else 'disabled'}",
        )

    def action_add_alias(self) -> None:
        self._start_on_selected(self._add_alias)

    async def _add_alias(self, model: ModelRow) -> None:
        async def submit(values: dict[str, str]) -> str:
            return await self.services.run(self.services.set_alias, values["alias"], model.id)

        name = await self.app.push_screen_wait(
            FormDialog(
                f"Add alias to {model.id}",
                [FormField("alias", "Alias", placeholder="claude-sonnet-4-5")],
                submit,
                submit_label="Add",
                note="A bare model name (no slash) that clients may send instead of the id; "
                "an alias already routed elsewhere moves to this model.",
            )
        )
        if name:
            self.notify(f"alias {name} -> {model.id}")
            self.reload()

    def action_remove_alias(self) -> None:
        self._start_on_selected(self._remove_alias)

    async def _remove_alias(self, model: ModelRow) -> None:
        if not model.aliases:
            self.notify(f"{model.id} has no alias", severity="warning")
            return

        async def submit(values: dict[str, str]) -> str:
            await self.services.run(self.services.remove_alias, values["alias"], model.id)
            return values["alias"]

        name = await self.app.push_screen_wait(
            FormDialog(
                f"Remove an alias of {model.id}",
                [FormField("alias", "Alias", choices=model.aliases)],
                submit,
                submit_label="Remove",
                note=(
                    "Requests naming a removed alias are refused "
                    "(404 on /v1/messages, 400 invalid_model elsewhere)."
                ),
            )
        )
        if name:
            self.notify(f"alias {name} removed")
            self.reload()


def model_fields(model: ModelRow | None) -> list[FormField]:
    """The form of a model, filled with its current values when editing."""
    return [
        FormField(
            "model_id",
            "Model id",
            model.id if model else "",
            placeholder="openai/gpt-5.4",
            read_only=model is not None,
        ),
        FormField("input_per_1m", "Input price", _price(model, "input"), placeholder="2.50"),
        FormField("output_per_1m", "Output price", _price(model, "output"), placeholder="10"),
        FormField("provider", "Provider", model.provider if model else "", placeholder="openai"),
        FormField(
            "upstream_model",
            "Upstream model",
            model.upstream_model if model else "",
            placeholder="gpt-5.4",
        ),
        FormField(
            "max_output_tokens",
            "Max output tokens (optional)",
            str(model.max_output_tokens or "") if model else "",
            placeholder="8192",
        ),
        FormField(
            "context_tokens",
            "Context tokens (optional)",
            str(model.context_tokens or "") if model else "",
            placeholder="= default",
        ),
        *cache_fields(model),
    ]


def cache_fields(model: ModelRow | None) -> list[FormField]:
    """The prompt-cache prices, blank when unset (then billed at the input price)."""
    stored = (
        (model.cache_read_per_1m_nanos, model.cache_write_per_1m_nanos,
         model.cache_write_1h_per_1m_nanos) if model else (None, None, None)
    )  # fmt: skip
    labels = (
        ("cache_read_per_1m", "Cache read", "= input"),
        ("cache_write_per_1m", "Cache write", "= input"),
        ("cache_write_1h_per_1m", "1h cache write", "= cache write"),
    )
    return [
        FormField(name, label, "" if nanos is None else usd_text(nanos), placeholder=hint)
        for (name, label, hint), nanos in zip(labels, stored, strict=True)
    ]


def billed_cache_prices(model: ModelRow) -> tuple[int, int, int]:
    """The cache read, write and 1-hour write prices a model bills at (unset: the input price;
    the 1-hour write: the write price)."""
    read = model.cache_read_per_1m_nanos
    write = model.cache_write_per_1m_nanos
    write = model.input_per_1m_nanos if write is None else write
    write_1h = model.cache_write_1h_per_1m_nanos
    return (model.input_per_1m_nanos if read is None else read, write,
            write if write_1h is None else write_1h)  # fmt: skip


def _price(model: ModelRow | None, which: str) -> str:
    if model is None:
        return ""
    nanos = model.input_per_1m_nanos if which == "input" else model.output_per_1m_nanos
    return usd_text(nanos)


def describe_model(model: ModelRow) -> str:
    """One model in full: where it routes, its prices, its output cap and whether it is on."""
    cap = (
        f"max output {model.max_output_tokens:,}"
        if model.max_output_tokens
        else "no max output set"
    )
    if model.context_tokens:
        cap += f" · context {model.context_tokens:,}"
    read, write, write_1h = billed_cache_prices(model)
    cap += (f" · cache read ${usd_text(read)}, write ${usd_text(write)}, "
            f"1h write ${usd_text(write_1h)}")  # fmt: skip
    state = "enabled" if model.enabled else "disabled (answers 404)"
    if model.enabled and not model.provider_enabled:
        state = f"enabled, but provider {model.provider} is off (answers 503)"
    also = f" · aliases {', '.join(model.aliases)}" if model.aliases else ""
    return (
        f"{model.id} → {model.provider} model {model.upstream_model} · "
        f"${usd_text(model.input_per_1m_nanos)} in, ${usd_text(model.output_per_1m_nanos)} "
        f"out per 1M tokens · {cap} · {state}{also}"
    )
