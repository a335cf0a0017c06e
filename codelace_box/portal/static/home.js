// Home: the balance, this month's spend, and where to go next.

import { api, at } from "./api.js";
import { belowZero, h, page, usd } from "./ui.js";

function card(label, value, link, linkText) {
  return h("div", { class: "card" },
    h("p", { class: "muted", text: label }),
    h("p", { class: "figure", text: value }),
    link ? h("a", { href: at(link), text: linkText }) : null);
}

export async function homePage(main) {
  const data = await api("GET", "/portal/api/overview");
  page(main, "Your account",
    h("p", {}, "Signed in as ", h("strong", { text: data.display_email }), "."),
    belowZero(data.credit_balance_usd),
    h("div", { class: "cards" },
      card("Balance", usd(data.credit_balance_usd), "/billing",
        data.stripe_enabled ? "Add credit" : "Payment history"),
      card("Spent this month (UTC)", usd(data.month_spend_usd), "/usage", "See usage"),
      card("API keys", "Create and revoke", "/keys", "Manage keys")),
    h("h2", { text: "Connect a tool" }),
    // The OpenAI SDK and Codex call <base>/v1/...: the address alone is a 404 for them.
    h("p", {}, "Point the OpenAI SDK or Codex at ", h("code", { text: `${data.base_url}/v1` }),
      ", Claude Code at ", h("code", { text: data.base_url }), ". ",
      h("a", { href: at("/connect"), text: "How to connect" })));
}
