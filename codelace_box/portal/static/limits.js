// A key's limits as form fields: spending limit, its reset, expiry, allowed models and whether
// the key may manage keys. The page sends what was typed; the server checks it (a bad value is
// its 400, shown by the form).

import { field, h, plainAmount } from "./ui.js";

export const RESETS = [["", "Never"], ["daily", "Daily (00:00 UTC)"], ["weekly", "Weekly (Monday 00:00 UTC)"],
  ["monthly", "Monthly (the 1st, 00:00 UTC)"]];

let selectCount = 0;
let checkCount = 0;

// A labelled checkbox with its hint: ticked, the key may create, change and revoke keys.
function manageField(label, value) {
  checkCount += 1;
  const id = `manage${checkCount}`;
  const input = h("input", { type: "checkbox", id, name: "can_manage_keys",
    "aria-describedby": `${id}-hint`, checked: value !== false });
  const wrap = h("div", {}, h("div", { class: "check" }, input, h("label", { for: id, text: label })),
    h("p", { class: "hint", id: `${id}-hint`, text: "Untick for a key you hand to a tool: it "
      + "still calls models and reads your account, but cannot create, change or revoke keys "
      + "(so it cannot lift its own limits)." }));
  return { wrap, input };
}

function resetField(label, value) {
  selectCount += 1;
  const id = `reset${selectCount}`;
  const select = h("select", { id, name: "limit_reset" },
    RESETS.map(([v, text]) => h("option", { value: v, text, selected: v === (value || "") })));
  return { wrap: h("div", {}, h("label", { for: id, text: label }), select), input: select };
}

// Today plus 365 days (UTC) as the date the expiry field takes: an example never in the past.
function aYearAhead() {
  return new Date(Date.now() + 365 * 86400000).toISOString().slice(0, 10);
}

// The fields, filled with a key's current limits (none for a new key); `values()` is the body
// part to send: the fields that were changed, an emptied one as null ("no limit"). Fields left
// alone are not sent, so a key that has expired can still have its cap changed.
export function limitFields(key, title) {
  const current = key || {};
  const suffix = title ? ` for ${title}` : "";
  const cap = field(`Spending limit in USD${suffix}`, { name: "limit_usd", inputmode: "decimal",
    value: plainAmount(current.limit_usd) }, "Empty: no limit.");
  const reset = resetField(`Limit resets${suffix}`, current.limit_reset);
  const expires = field(`Expires${suffix}`, { name: "expires_at", placeholder: `e.g. ${aYearAhead()}`,
    value: current.expires_at ?? "" }, "A date or time (UTC); empty: never.");
  const models = field(`Allowed models${suffix}`, { name: "allowed_models",
    value: Array.isArray(current.allowed_models) ? current.allowed_models.join(", ") : "" },
  "Model ids, separated by commas; empty: every model.");
  const manage = manageField(`Can manage keys${suffix}`, current.can_manage_keys);
  const typed = () => {
    const names = models.input.value.split(",").map((m) => m.trim()).filter(Boolean);
    return {
      limit_usd: cap.input.value.trim() || null,
      limit_reset: reset.input.value || null,
      expires_at: expires.input.value.trim() || null,
      allowed_models: names.length ? names : null,
      can_manage_keys: manage.input.checked,
    };
  };
  const before = typed();
  const values = () => {
    const now = typed();
    const sent = Object.fromEntries(Object.entries(now)
      .filter(([name, value]) => JSON.stringify(value) !== JSON.stringify(before[name])));
    // A limit emptied takes its reset with it: the key is left with no limit and no reset, and
    // a limit set again without choosing a reset never resets.
    if (now.limit_usd === null && before.limit_usd !== null) sent.limit_reset = null;
    return sent;
  };
  const wrap = h("fieldset", { class: "limits" }, h("legend", { text: "Limits" }),
    cap.wrap, reset.wrap, expires.wrap, models.wrap, manage.wrap);
  return { wrap, first: cap.input, values };
}
