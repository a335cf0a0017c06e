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

let messageCount = 0;

// A field no longer described by the message `id`, nor marked invalid.
function untie(field, id) {
  const rest = (field.getAttribute("aria-describedby") || "").split(/\s+/).filter((x) => x && x !== id);
  if (rest.length) field.setAttribute("aria-describedby", rest.join(" "));
  else field.removeAttribute("aria-describedby");
  field.removeAttribute("aria-invalid");
}

// The place a form says what went wrong (an alert, said at once) or what went well (a status,
// said when the reader is done). An error about a field (`fieldError`) is also tied to the field
// the keyboard is put on, so a screen reader reads it there: a focus move can cut an alert off.
export function messageArea() {
  messageCount += 1;
  const id = `message${messageCount}`;
  const el = h("p", { id, class: "status", role: "status", "aria-live": "polite" });
  let tied = null;
  const say = (className, role, live, text) => {
    if (tied) untie(tied, id);
    tied = null;
    el.className = className;
    el.setAttribute("role", role);
    el.setAttribute("aria-live", live);
    el.textContent = text;
  };
  return {
    el,
    error(text) {
      say("error", "alert", "assertive", text);
    },
    // The box's error for `form`: the field it names (the error's param is the field's name) is
    // marked invalid; that one, else `fallback`, gets the keyboard and reads the error.
    fieldError(error, form, fallback) {
      say("error", "alert", "assertive", error.message);
      const named = error.param ? form.querySelector(`[name="${CSS.escape(error.param)}"]`) : null;
      tied = named || fallback;
      tied.setAttribute("aria-describedby",
        [tied.getAttribute("aria-describedby"), id].filter(Boolean).join(" "));
      if (named) tied.setAttribute("aria-invalid", "true");
      tied.focus();
    },
    ok(text) {
      say("success", "status", "polite", text);
    },
    clear() {
      say("status", "status", "polite", "");
    },
  };
}

// A disabled button drops the keyboard's focus (the browser moves it to the page's start): when
// the work is over and nothing else took the focus, it goes back to the button.
function focusAgain(button, had) {
  const lost = !document.activeElement || document.activeElement === document.body;
  if (had && lost && button.isConnected) button.focus();
}

export async function busy(button, work) {
  const had = document.activeElement === button;
  button.disabled = true;
  try {
    return await work();
  } finally {
    button.disabled = false;
    focusAgain(button, had);
  }
}

// A button whose work ends by leaving the page (signing in or out, going to Stripe): disabled
// until the page is gone, since a second click while the next page comes would do it twice;
// enabled again only if the work fails (its error is thrown on).
export async function leaving(button, work) {
  const had = document.activeElement === button;
  button.disabled = true;
  try {
    await work();
  } catch (error) {
    button.disabled = false;
    focusAgain(button, had);
    throw error;
  }
}

// An amount spent or held: cents, and under a cent every digit it has down to the nano-dollar
// it is counted in (6 places read $0.0000001 as $0.00 beside a total that was not).
export function usd(amount) {
  const value = Number(amount || 0);
  const small = value !== 0 && Math.abs(value) < 0.01;
  return new Intl.NumberFormat("en-US", {
    style: "currency",
    currency: "USD",
    minimumFractionDigits: 2,
    maximumFractionDigits: small ? 9 : 2,
  }).format(value);
}

// What a key spent against its limit, in as many decimals as the limit reads (price), rounded
// down: it reads the limit or more only once it has reached it ($0.996 of $0.999 read "$1.00",
// as $9.996 of $10 read "$10.00", while the key still worked); less than its last digit reads
// every digit, as usd() does.
export function spentAgainst(spent, limit) {
  const digits = Math.max(2, (price(limit).split(".")[1] || "").length);
  const step = 10 ** (9 - digits); // nano-dollars a last digit is worth
  const nanos = Math.round(Number(spent || 0) * 1e9);
  if (nanos > 0 && nanos < step) return usd(spent); // under the last digit: every digit it has
  return new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", minimumFractionDigits: digits, maximumFractionDigits: digits,
  }).format(Math.floor(nanos / step) * step / 1e9);
}

// What a balance below zero means (a refund or dispute took back credit already spent): every
// call is refused until more than it is added, which the top-up's minimum alone does not say.
// Nothing for a balance of zero or more.
export function belowZero(balance) {
  const value = Number(balance || 0);
  if (!(value < 0)) return null;
  return h("p", { class: "notice" },
    `Your balance is below zero: a payment was refunded or disputed after its credit was spent. ` +
    `Calls with your keys are refused until you add more than ${usd(-value)}.`);
}

// A price as it is charged: cents at least, and every digit it has (prices are exact to the
// nano-dollar), so 0.075 USD reads $0.075, not $0.08.
export function price(amount) {
  return new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 9,
  }).format(Number(amount || 0));
}

// An amount as a form field takes it back: plain decimals, no grouping, no currency sign.
// JavaScript's own spelling is kept (the shortest that reads back as the same number), but not
// its exponent: 0.0000005 is '5e-7', which the box refuses as a typed amount; such an amount
// (under a millionth: caps go no higher than a billion) reads to the nano-dollar it is counted
// in. Empty for none.
export function plainAmount(amount) {
  if (amount === null || amount === undefined || amount === "") return "";
  const text = String(Number(amount));
  return /e/i.test(text) ? Number(amount).toFixed(9).replace(/\.?0+$/, "") : text;
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

// Select `source`'s text: a field's value (the keyboard goes there: a field's selection needs
// it), or the text of a block such as a snippet.
function selectText(source) {
  if (source instanceof HTMLInputElement) {
    source.focus();
    source.select();
    return;
  }
  const range = document.createRange();
  range.selectNodeContents(source);
  window.getSelection().removeAllRanges();
  window.getSelection().addRange(range);
}

// Copy `source`'s text the old way (the selection), for a page that has no clipboard API: one
// served over plain http on a network address is no secure context. Whether it was copied.
function copySelected(source) {
  selectText(source);
  try {
    return document.execCommand("copy");
  } catch (_) {
    return false;
  }
}

// A button that copies `source`'s text (a field or a block), with a word on whether it worked,
// said anew on every copy. Without the clipboard API it copies the selection; failing that the
// text is left selected, for Ctrl+C.
export function copyButton(label, source) {
  const note = h("span", { class: "success", role: "status", "aria-live": "polite" });
  const say = (words) => {
    note.textContent = "";
    window.setTimeout(() => { note.textContent = words; }, 50);
  };
  const button = h("button", { type: "button", class: "secondary", text: label });
  button.addEventListener("click", async () => {
    const text = source instanceof HTMLInputElement ? source.value : source.textContent;
    try {
      await navigator.clipboard.writeText(text);
      say("Copied");
    } catch (_) {
      const copied = copySelected(source);
      if (copied) button.focus();
      say(copied ? "Copied" : "Selected: press Ctrl+C (on a Mac, Cmd+C) to copy it");
    }
  });
  return h("span", { class: "row" }, button, note);
}

// A page: its heading, the parts given (a part left out, null or undefined, is nothing: not the
// word "null" on the page), and the title the browser's tab and a screen reader say. The main
// landmark is busy until the first page is drawn (index.html): a screen reader waits for it,
// rather than reading the "Loading…" status as the page.
export function page(main, title, ...children) {
  main.replaceChildren(h("h1", { text: title }), ...children.filter((c) => c !== null && c !== undefined));
  main.removeAttribute("aria-busy");
  document.title = `${title} · codelace-box`;
}
