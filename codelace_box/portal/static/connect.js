// How to connect: the base URL and copyable snippets for the OpenAI SDK, Claude Code and Codex.

import { api, at } from "./api.js";
import { copyButton, h, page, price } from "./ui.js";

function snippet(title, text) {
  const code = h("code", { text });
  return h("section", { "aria-label": title },
    h("h2", { text: title }), h("pre", { tabindex: "0", role: "region", "aria-label": `${title} snippet` }, code), copyButton(`Copy ${title} snippet`, code));
}

// The models the box serves (GET /v1/models), with their prices (the public pricing).
async function modelsTable() {
  const [served, prices] = await Promise.all([api("GET", "/v1/models"), api("GET", "/api/v1/public/pricing")]);
  const ids = new Set(served.data.map((m) => m.id));
  const rows = prices.filter((p) => ids.has(p.model));
  if (!rows.length) return h("p", { class: "muted", text: "No models are served yet: ask the box's operator." });
  const head = h("tr", {}, ["Model", "Input per 1M tokens", "Output per 1M tokens"].map((t, i) =>
    h("th", { scope: "col", class: i ? "num" : null, text: t })));
  const body = rows.map((p) => h("tr", {}, h("td", {}, h("code", { text: p.model })),
    h("td", { class: "num", text: price(p.input_per_1m) }), h("td", { class: "num", text: price(p.output_per_1m) })));
  return h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Models table" },
    h("table", {}, h("caption", { class: "visually-hidden", text: "Models and prices" }),
      h("thead", {}, head), h("tbody", {}, body)));
}

export async function connectPage(main) {
  const data = await api("GET", "/portal/api/overview");
  const models = await modelsTable();
  const base = data.base_url;
  const openai = [
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url="${base}/v1", api_key="cl_...")  # a key from the Keys page`,
    'reply = client.chat.completions.create(model="MODEL", messages=[{"role": "user", "content": "Hi"}])',
  ].join("\n");
  const claude = [`export ANTHROPIC_BASE_URL=${base}`, "export ANTHROPIC_AUTH_TOKEN=cl_...", "claude"].join("\n");
  const codex = [
    "# ~/.codex/config.toml",
    'model = "MODEL"',
    'model_provider = "codelace"',
    "",
    "[model_providers.codelace]",
    'name = "codelace-box"',
    `base_url = "${base}/v1"`,
    'env_key = "CODELACE_API_KEY"  # export CODELACE_API_KEY=cl_...',
    'wire_api = "responses"',
  ].join("\n");
  page(main, "How to connect",
    h("p", {}, "Base URL: ", h("code", { text: `${base}/v1` }), " (Claude Code takes it without /v1). Use a key from the ",
      h("a", { href: at("/keys"), text: "Keys page" }), "; MODEL is one of the models below."),
    h("h2", { text: "Models" }), models,
    snippet("OpenAI SDK (Python)", openai), snippet("Claude Code", claude), snippet("Codex", codex));
}
