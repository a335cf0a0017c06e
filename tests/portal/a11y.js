// The portal's own accessibility check, run in the page by tests/portal/test_accessibility.py:
// labels on form fields, names on buttons and links (beginning with their visible words),
// contrast of every visible text, no positive tabindex, a language, one h1, headings in order,
// one main landmark, a title naming the page, ids that ARIA points at present. Returns a list of problems (empty: none).
const problems = [];
const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
const text = (el) => (el.textContent || "").trim();
const named = (el) => {
  if ((el.getAttribute("aria-label") || "").trim()) return true;
  const by = el.getAttribute("aria-labelledby");
  if (by && by.split(/\s+/).some((id) => document.getElementById(id) && text(document.getElementById(id)))) return true;
  return false;
};
if (!document.documentElement.lang) problems.push("html has no lang");
if (document.querySelectorAll("h1").length !== 1) problems.push(`${document.querySelectorAll("h1").length} h1 elements`);
let level = 0;
for (const el of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
  const next = Number(el.tagName[1]);
  if (next > level + 1) problems.push(`h${next} after h${level}: "${text(el).slice(0, 40)}"`);
  level = next;
}
if (document.querySelectorAll("main, [role=main]").length !== 1) problems.push("not one main landmark");
for (const nav of document.querySelectorAll("nav")) {
  if (visible(nav) && !named(nav)) problems.push("a nav without a name");
}
const h1 = document.querySelector("h1");
if (h1 && !document.title.startsWith(text(h1))) problems.push(`title "${document.title}" is not the page's`);
for (const el of document.querySelectorAll("[aria-describedby], [aria-labelledby], label[for]")) {
  const ids = [el.getAttribute("aria-describedby"), el.getAttribute("aria-labelledby"), el.getAttribute("for")];
  for (const id of ids.join(" ").split(/\s+/).filter(Boolean)) {
    if (!document.getElementById(id)) problems.push(`${el.tagName} points at a missing id ${id}`);
  }
}
for (const el of document.querySelectorAll("[role=alert][aria-live=polite]")) {
  problems.push(`an alert said politely: "${text(el).slice(0, 40)}"`);
}
for (const el of document.querySelectorAll("input, select, textarea")) {
  if (el.type === "hidden" || !visible(el)) continue;
  const labelled = Array.from(el.labels || []).some((l) => text(l)) || named(el);
  if (!labelled) problems.push(`field without a label: ${el.outerHTML.slice(0, 80)}`);
}
for (const el of document.querySelectorAll("button, a[href]")) {
  if (visible(el) && !text(el) && !named(el)) problems.push(`no accessible name: ${el.outerHTML.slice(0, 80)}`);
}
// WCAG 2.5.3 (label in name): a name of its own begins with the words shown, so that a user of
// speech input who says what they see reaches it ("click Limits").
for (const el of document.querySelectorAll("button[aria-label], a[href][aria-label]")) {
  const shown = text(el).toLowerCase().replace(/\s+/g, " ");
  const name = el.getAttribute("aria-label").trim().toLowerCase().replace(/\s+/g, " ");
  if (visible(el) && shown && !name.startsWith(shown)) problems.push(`name "${name}" does not begin with "${shown}"`);
}
for (const el of document.querySelectorAll("[tabindex]")) {
  if (Number(el.getAttribute("tabindex")) > 0) problems.push(`positive tabindex: ${el.outerHTML.slice(0, 80)}`);
}
for (const el of document.querySelectorAll("svg[role=img]")) {
  if (!named(el)) problems.push("an image without a text alternative");
}
const rgba = (value) => {
  const m = value.match(/rgba?\(([^)]+)\)/);
  if (!m) return [0, 0, 0, 1];
  const parts = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
  return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
};
const channel = (c) => {
  const v = c / 255;
  return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
};
const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
const background = (el) => {
  for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
    const bg = rgba(getComputedStyle(node).backgroundColor);
    if (bg[3] > 0.5) return bg;
  }
  return [255, 255, 255, 1];
};
for (const el of document.body.querySelectorAll("*")) {
  if (el.closest("svg") || el.closest("noscript") || !visible(el) || el.disabled) continue;
  const ownText = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!ownText) continue;
  const style = getComputedStyle(el);
  const fg = rgba(style.color);
  const [l1, l2] = [lum(fg), lum(background(el))].sort((a, b) => b - a);
  const ratio = (l1 + 0.05) / (l2 + 0.05);
  const size = parseFloat(style.fontSize);
  const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
  if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)}: "${text(el).slice(0, 40)}"`);
}
return problems;
