// How to connect: the base URL and copyable snippets for the OpenAI SDK, Claude Code and Codex.

import { api } from "./api.js";
import { copyButton, h, page } from "./ui.js";

function snippet(title, text) {
  return h("section", { "aria-label": title },
    h("h2", { text: title }), h("pre", { tabindex: "0", role: "region", "aria-label": `${title} snippet` }, h("code", { text })), copyButton(`Copy ${title} snippet`, text));
}

export async function connectPage(main) {
  const data = await api("GET", "/portal/api/overview");
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
      h("a", { href: "/keys", text: "Keys page" }), "; MODEL is a model id of the box."),
    snippet("OpenAI SDK (Python)", openai), snippet("Claude Code", claude), snippet("Codex", codex));
}
