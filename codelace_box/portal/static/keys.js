// Keys: the list (prefix, name, last use, limits), create (the full key shown once, limits
// optional), rename, change limits, revoke with a confirmation.

import { api, ApiError } from "./api.js";
import { limitFields, RESETS } from "./limits.js";
import { busy, copyButton, field, h, messageArea, page, price, spentAgainst, usd, when } from "./ui.js";

// A limit reads as it was set, every digit (it is exact to the nano-dollar, as a price is), and
// its reset in the words the form offers.
const RESET_WORDS = Object.fromEntries(RESETS);
const LIMITS = [
  ["limit_usd", "Spending limit", (v) => price(v)],
  ["spent_usd", "Spent against the limit", (v) => usd(v)],
  ["limit_reset", "Limit resets", (v) => RESET_WORDS[v] || String(v)],
  ["expires_at", "Expires", (v) => when(v)],
  ["allowed_models", "Allowed models", (v) => (Array.isArray(v) ? v.join(", ") : String(v))],
  ["can_manage_keys", "Can manage keys", (v) => (v ? "Yes" : "No: calls models and reads the account only")],
];

// A key whose spend has reached its limit is refused (402) until its reset or a higher limit:
// the list says so, not only the two figures. Compared in nano-dollars, as the box counts.
function nanos(usd) {
  return Math.round(Number(usd || 0) * 1e9);
}

function reached(key) {
  return nanos(key.spent_usd) >= nanos(key.limit_usd);
}

// A $0 limit is reached again right after its reset: only a higher limit lets calls through.
function reachedWords(key) {
  const resets = key.limit_reset && nanos(key.limit_usd) > 0;
  const until = resets ? `the ${key.limit_reset} reset` : "the limit is raised";
  return `the limit is reached: calls are refused until ${until}`;
}

function facts(key) {
  const rows = [
    ["Key", `${key.key_prefix}…`],
    ["Created", when(key.created_at)],
    ["Last used", when(key.last_used_at)],
  ];
  for (const [name, label, show] of LIMITS) {
    if (key[name] === undefined || key[name] === null) continue;
    // With no limit the figure is what the key has spent (since its last reset, when it has
    // one: the box counts a reset key's spend per period); there is no limit to spend against.
    const capped = name === "spent_usd" && key.limit_usd != null;
    const term = name !== "spent_usd" || capped ? label
      : key.limit_reset ? "Spent since the last reset" : "Spent with this key";
    const value = capped ? spentAgainst(key.spent_usd, key.limit_usd) : show(key[name]);
    // A key past its expiry is refused: the list says so, not only the date, by the box's word
    // (its clock refuses the key; the computer's may be off by days).
    if (name === "expires_at" && key.expired === true) rows.push(["Expired", `${value}: it no longer works`]);
    else rows.push([term, capped && reached(key) ? `${value} (${reachedWords(key)})` : value]);
  }
  return h("dl", { class: "facts" }, rows.map(([dt, dd]) => [h("dt", { text: dt }), h("dd", { text: dd })]));
}

function keyTitle(key) {
  return key.name || "(no name)";
}

function keyItem(key, refresh, parts) {
  const item = h("article", { class: "key", "aria-label": `Key ${keyTitle(key)}`, "data-key": key.id });
  const actions = h("div", { class: "row" },
    h("button", { type: "button", class: "secondary", text: "Rename",
      "aria-label": `Rename key ${keyTitle(key)}`, "data-action": "rename",
      onclick: () => renameForm(item, key, refresh, parts) }),
    h("button", { type: "button", class: "secondary", text: "Limits",
      "aria-label": `Limits of key ${keyTitle(key)}`, "data-action": "limits",
      onclick: () => limitsForm(item, key, refresh, parts) }),
    h("button", { type: "button", class: "danger", text: "Revoke",
      "aria-label": `Revoke key ${keyTitle(key)}`, "data-action": "revoke",
      onclick: () => confirmRevoke(item, key, refresh, parts) }));
  item.append(h("h3", { text: keyTitle(key) }), facts(key), actions);
  return item;
}

// Draw the list anew (the key `closing` its form drawn closed); if it cannot be loaded,
// `message` says so (after `done`, what did happen: "Saved"), and false.
async function reloadList(refresh, message, done, closing = null) {
  try {
    await refresh(closing);
    return true;
  } catch (error) {
    const what = done ? `${done}, but the list of keys could not be loaded again`
      : "The list of keys could not be loaded again";
    message.error(`${what}: ${error.message}`);
    return false;
  }
}

// A key revoked since the list was drawn (in another tab, by the CLI): the box's 404 names no
// key the person can see, so the page says in words that the key is gone (`what`: what that
// means for what was asked) and draws the list anew without it.
function isGone(error) {
  return error instanceof ApiError && error.status === 404 && error.code === "key_not_found";
}

async function goneFromList(key, refresh, message, { notice, shown }, what) {
  shown.forget(key.id);
  notice.error(`Key ${keyTitle(key)} no longer exists: ${what}`);
  if (await reloadList(refresh, message, "")) notice.el.focus();
}

// The list is drawn anew after a form is saved or cancelled: the keyboard's place goes back to
// the button that opened the form, not to the top of the page.
function backTo(key, action, refresh, message) {
  return async (done = "") => {
    if (!(await reloadList(refresh, message, done, key.id))) return;
    const item = document.querySelector(`article[data-key="${CSS.escape(key.id)}"]`);
    item?.querySelector(`button[data-action="${action}"]`)?.focus();
  };
}

// Escape in a key's form or confirmation does what its Cancel / Keep it button does.
function escapeCloses(el, close) {
  el.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    event.preventDefault();
    close();
  });
  return el;
}

function renameForm(item, key, refresh, parts) {
  const name = field(`New name for ${keyTitle(key)}`, { value: key.name, name: "name" });
  editForm(item, key, refresh, { action: "rename", saveText: "Save name", wrap: name.wrap,
    first: name.input, changes: () => ({ name: name.input.value }), parts,
    saved: () => `Key ${keyTitle(key)} is now named ${keyTitle({ name: name.input.value })}.` });
}

function limitsForm(item, key, refresh, parts) {
  const limits = limitFields(key, keyTitle(key));
  editForm(item, key, refresh, { action: "limits", saveText: "Save limits", wrap: limits.wrap,
    first: limits.first, changes: () => limits.values(), parts,
    saved: () => `The limits of key ${keyTitle(key)} are saved.` });
}

// A key's form in its place in the list: on save, PATCH what `changes()` gives (nothing: no
// call), then the list again with the keyboard back on the `action` button that opened it and
// the page's notice (of `parts`) saying what was `saved()` (the keyboard's place alone says
// nothing).
function editForm(item, key, refresh, { action, saveText, wrap, first, changes, parts, saved }) {
  const message = messageArea();
  const done = backTo(key, action, refresh, message);
  const save = h("button", { type: "submit", text: saveText });
  const cancel = h("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => done() });
  const form = h("form", { novalidate: true }, wrap, message.el, h("div", { class: "row" }, save, cancel));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.clear();
    await busy(save, async () => {
      try {
        const body = changes();
        if (Object.keys(body).length) {
          await api("PATCH", `/portal/api/keys/${encodeURIComponent(key.id)}`, body);
          parts.notice.ok(saved());
        }
        await done(Object.keys(body).length ? "Saved" : "");
      } catch (error) {
        if (isGone(error)) {
          await goneFromList(key, refresh, message, parts, "it was revoked, perhaps in another tab; nothing was saved.");
          return;
        }
        message.fieldError(error, form, first);
      }
    });
  });
  item.setAttribute("data-open", action); // the list drawn anew keeps it, and what is typed
  item.replaceChildren(h("h3", { text: keyTitle(key) }), escapeCloses(form, () => done()));
  first.focus();
}

// `parts` holds the keys page's notice (where the revoke is said) and its once-shown key (which
// goes when the key it shows is revoked: a key that no longer works is nothing to copy).
// The question is the description of both its answers: the keyboard lands on Keep it, and a
// screen reader reads the focused button, not the text beside it.
let questionCount = 0;

function confirmRevoke(item, key, refresh, parts) {
  const { notice, shown } = parts;
  const message = messageArea();
  questionCount += 1;
  const questionId = `revoke-question${questionCount}`;
  const yes = h("button", { type: "button", class: "danger", text: "Yes, revoke it",
    "aria-describedby": questionId });
  const keep = backTo(key, "revoke", refresh, message);
  const no = h("button", { type: "button", class: "secondary", text: "Keep it",
    "aria-describedby": questionId, onclick: () => keep() });
  yes.addEventListener("click", () => busy(yes, async () => {
    try {
      await api("DELETE", `/portal/api/keys/${encodeURIComponent(key.id)}`);
      shown.forget(key.id);
      notice.ok(`Key ${keyTitle(key)} is revoked: it no longer works.`);
      if (await reloadList(refresh, message, "Revoked")) {
        notice.el.focus(); // its buttons are gone: the keyboard goes to the word that it is done
      }
    } catch (error) {
      if (isGone(error)) {
        await goneFromList(key, refresh, message, parts, "it was revoked already, perhaps in another tab.");
        return;
      }
      message.error(error.message);
    }
  }));
  item.setAttribute("data-open", "revoke");
  item.replaceChildren(h("h3", { text: keyTitle(key) }), escapeCloses(h("div", {},
    h("p", { id: questionId,
      text: `Revoke ${keyTitle(key)} (${key.key_prefix}…)? Programs that use it stop working at once.` }),
    message.el, h("div", { class: "row" }, yes, no)), () => keep()));
  no.focus();
}

function createForm(refresh, shown) {
  const name = field("Name of the new key", { name: "name", placeholder: "e.g. laptop" }, "Optional; up to 100 characters.");
  const limits = limitFields(null, "");
  const message = messageArea();
  const submit = h("button", { type: "submit", text: "Create key" });
  const form = h("form", { novalidate: true }, name.wrap, limits.wrap, message.el, h("div", { class: "row" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.clear();
    await busy(submit, async () => {
      try {
        const made = await api("POST", "/portal/api/keys", { name: name.input.value, ...limits.values() });
        form.reset();
        shown.show(made);
        await reloadList(refresh, message, "Created");
      } catch (error) {
        message.fieldError(error, form, name.input);
      }
    });
  });
  return h("section", { "aria-labelledby": "create-title" },
    h("h2", { id: "create-title", text: "Create a key" }), form, shown.el);
}

// The place the new key is shown in full, once: the newest key only, and gone once that key
// is revoked (here, or found gone when the list is drawn anew).
function newKeyBox() {
  const el = h("div");
  let shownId = null;
  return {
    el,
    show(made) {
      const full = field("Your new key", { value: made.full_key, readonly: true, name: "full_key" },
        "Copy it now: it is shown this once and never again.");
      el.replaceChildren(h("div", { class: "newkey", role: "region", "aria-label": "New key" },
        full.wrap, copyButton("Copy key", full.input)));
      shownId = made.id;
      full.input.focus();
      full.input.select();
    },
    forget(keyId) {
      if (keyId !== shownId) return;
      el.replaceChildren();
      shownId = null;
    },
    // The list as drawn now: a shown key not in it was revoked (in another tab, by the CLI).
    listed(keys) {
      if (shownId !== null && !keys.some((k) => k.id === shownId)) this.forget(shownId);
    },
  };
}

export async function keysPage(main) {
  const list = h("div", { id: "key-list" });
  const notice = messageArea();
  notice.el.setAttribute("tabindex", "-1");
  const shown = newKeyBox();
  // A key's open form (or revoke question) is kept as it is, typing and all, when another
  // action draws the list anew; only closing it (`closing`: its key) draws that key anew.
  const refresh = async (closing = null) => {
    const keys = await api("GET", "/portal/api/keys");
    shown.listed(keys);
    const open = new Map([...list.querySelectorAll("article.key[data-open]")]
      .filter((el) => el.dataset.key !== closing).map((el) => [el.dataset.key, el]));
    const focused = document.activeElement;
    list.replaceChildren(...(keys.length
      ? keys.map((k) => open.get(k.id) || keyItem(k, refresh, { notice, shown }))
      : [h("p", { class: "muted", text: "No keys yet: create one below." })]));
    if (focused !== document.activeElement && list.contains(focused)) focused.focus();
  };
  await refresh();
  page(main, "API keys",
    h("p", { text: "Programs use a key to call the box. Each key is shown in full only when it is made." }),
    notice.el, h("h2", { text: "Your keys" }), list, createForm(refresh, shown));
}
