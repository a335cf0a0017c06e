// Small DOM helpers: elements are built with textContent, never from HTML strings.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "text") el.textContent = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, String(value));
  for (const child of children) el.append(child);
  return el;
}

let fieldCount = 0;

// A labelled input; the hint (if any) is tied to it with aria-describedby.
export function field(label, attrs, hint) {
  fieldCount += 1;
  const id = `f${fieldCount}`;
  const hintId = hint ? `${id}-hint` : null;
  const input = h("input", { type: "text", id, "aria-describedby": hintId, ...attrs });
  const wrap = h("div", {}, h("label", { for: id, text: label }), input);
  if (hint) wrap.append(h("p", { class: "hint", id: hintId, text: hint }));
  return { wrap, input };
}

// The place a form says what went wrong (an alert) or what went well (a status).
export function messageArea() {
  const el = h("p", { class: "status", role: "status", "aria-live": "polite" });
  return {
    el,
    error(text) {
      el.className = "error";
      el.setAttribute("role", "alert");
      el.textContent = text;
    },
    ok(text) {
      el.className = "success";
      el.setAttribute("role", "status");
      el.textContent = text;
    },
    clear() {
      el.className = "status";
      el.textContent = "";
    },
  };
}

export async function busy(button, work) {
  button.disabled = true;
  try {
    return await work();
  } finally {
    button.disabled = false;
  }
}

// A button whose work ends by leaving the page (signing in or out, going to Stripe): disabled
// until the page is gone, since a second click while the next page comes would do it twice;
// enabled again only if the work fails (its error is thrown on).
export async function leaving(button, work) {
  button.disabled = true;
  try {
    await work();
  } catch (error) {
    button.disabled = false;
    throw error;
  }
}

export function usd(amount) {
  const value = Number(amount || 0);
  const small = value !== 0 && Math.abs(value) < 0.01;
  return new Intl.NumberFormat("en-US", {
    style: "currency",
    currency: "USD",
    minimumFractionDigits: 2,
    maximumFractionDigits: small ? 6 : 2,
  }).format(value);
}

// A price as it is charged: cents at least, and every digit it has (prices are exact to the
// nano-dollar), so 0.075 USD reads $0.075, not $0.08.
export function price(amount) {
  return new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 9,
  }).format(Number(amount || 0));
}

export function when(iso) {
  if (!iso) return "never";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

export function count(n) {
  return new Intl.NumberFormat("en-US").format(Number(n || 0));
}

// A button that copies a text, with a word on whether it worked.
export function copyButton(label, text) {
  const note = h("span", { class: "success", role: "status", "aria-live": "polite" });
  const button = h("button", {
    type: "button",
    class: "secondary",
    text: label,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(text);
        note.textContent = "Copied";
      } catch (_) {
        note.textContent = "Select the text and copy it by hand";
      }
    },
  });
  return h("span", { class: "row" }, button, note);
}

export function page(main, title, ...children) {
  main.replaceChildren(h("h1", { text: title }), ...children);
  document.title = `${title} · codelace-box`;
}
