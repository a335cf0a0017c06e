// Billing: top up through Stripe Checkout (the minimum comes from the server), the trial's card
// setup while it is unclaimed, and the payment history.

import { api, ApiError, quietly, waitMs } from "./api.js";
import { belowZero, field, h, leaving, messageArea, page, usd, when } from "./ui.js";

const STATUS_WORDS = {
  pending: "pending (waiting for Stripe)",
  completed: "completed",
  failed: "failed",
  expired: "expired (not paid)",
};

// Start a Checkout Session and follow it. The button stays disabled once the browser is on its
// way to Stripe (a second click would open a second session); an error enables it again.
function toStripe(button, message, path, body) {
  return leaving(button, async () => {
    const started = await api("POST", path, body, waitMs("stripe"));
    message.ok("Taking you to Stripe…");
    window.location.assign(started.checkout_url);
  });
}

// A payment's kind in words (the database's are topup, trial and admin).
function kindWords(payment) {
  if (payment.kind === "topup") return "Top-up";
  if (payment.kind === "trial") return "Trial credit";
  if (payment.kind === "admin") {
    return Number(payment.amount_usd) < 0 ? "Taken off by the operator" : "Credit from the operator";
  }
  return payment.kind;
}

function topupForm(data) {
  const hint = `At least ${usd(data.min_topup_usd)}, at most ${usd(data.max_topup_usd)}.`;
  const amount = field("Amount in USD", { inputmode: "decimal", name: "amount_usd", autocomplete: "off" }, hint);
  const message = messageArea();
  const submit = h("button", { type: "submit", text: "Pay with Stripe" });
  const form = h("form", { novalidate: true }, amount.wrap, message.el, h("div", { class: "row" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.clear();
    try {
      await toStripe(submit, message, "/portal/api/topup", { amount_usd: amount.input.value });
    } catch (error) {
      message.fieldError(error, form, amount.input);
    }
  });
  return h("section", { "aria-labelledby": "topup-title" }, h("h2", { id: "topup-title", text: "Add credit" }), form);
}

function trialPanel(data) {
  const message = messageArea();
  const button = h("button", { type: "button", class: "secondary", text: "Save a card" });
  button.addEventListener("click", async () => {
    try {
      await toStripe(button, message, "/portal/api/setup");
    } catch (error) {
      message.error(error.message);
    }
  });
  return h("section", { "aria-labelledby": "trial-title" },
    h("h2", { id: "trial-title", text: "Free trial credit" }),
    h("p", { text: `Save a card with Stripe and get ${usd(data.trial_credit_usd)} of credit, once. Nothing is charged.` }),
    message.el, button);
}

// As many payments as the box sends (api/portal_data.py SHOWN_PAYMENTS): a list that long may
// leave older ones out, and says so (its rows no longer add up to the balance above them).
const SHOWN_PAYMENTS = 50;

// The history's parts: the table, after a line saying older payments are left out (when they
// may be).
function history(payments) {
  if (!payments.length) return [h("p", { class: "muted", text: "No payments yet." })];
  const older = payments.length >= SHOWN_PAYMENTS ? h("p", { class: "muted",
    text: `Only the ${SHOWN_PAYMENTS} newest payments are listed here.` }) : null;
  const head = h("tr", {}, ["Date", "Kind", "Amount", "Status"].map((t) =>
    h("th", { scope: "col", class: t === "Amount" ? "num" : null, text: t })));
  const rows = payments.map((p) => h("tr", {},
    h("td", { text: when(p.created_at) }), h("td", { text: kindWords(p) }),
    h("td", { class: "num", text: usd(p.amount_usd) }),
    h("td", { text: (STATUS_WORDS[p.status] || p.status) +
      (p.refunded_usd ? `, ${usd(p.refunded_usd)} refunded or disputed` : "") })));
  return [older, h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Payments table" },
    h("table", {}, h("caption", { class: "visually-hidden", text: "Payments" }),
      h("thead", {}, head), h("tbody", {}, rows)))];
}

function balanceParts(data) {
  return [h("p", {}, "Balance: ", h("strong", { text: usd(data.credit_balance_usd) })),
    belowZero(data.credit_balance_usd)].filter(Boolean);
}

// A payment still pending (back from Stripe before its word reached the box; the success page
// says the balance is credited "as soon as Stripe confirms") is followed: the balance and the
// history are read again every FOLLOW_MS, at most FOLLOW_TRIES times, until none is pending, so
// the credit shows without a reload. It stops when the page is left or the box refuses.
const FOLLOW_MS = 3000;
const FOLLOW_TRIES = 200;

function follow(balance, list, shown, tries = FOLLOW_TRIES) {
  if (tries <= 0 || !shown.some((p) => p.status === "pending")) return;
  setTimeout(async () => {
    if (!balance.isConnected) return;
    let data;
    let payments;
    try {
      [data, payments] = await Promise.all([
        quietly("/portal/api/overview"), quietly("/portal/api/payments")]);
    } catch (error) {
      if (error instanceof ApiError && error.status === 0) follow(balance, list, shown, tries - 1);
      return;
    }
    if (!balance.isConnected) return;
    balance.replaceChildren(...balanceParts(data));
    // The table is drawn anew only when it changed; the keyboard on it stays on it.
    if (JSON.stringify(payments) !== JSON.stringify(shown)) {
      const reading = list.contains(document.activeElement);
      list.replaceChildren(...history(payments).filter(Boolean));
      if (reading) list.querySelector("[tabindex]")?.focus();
    }
    follow(balance, list, payments, tries - 1);
  }, FOLLOW_MS);
}

export async function billingPage(main) {
  const [data, payments] = await Promise.all([
    api("GET", "/portal/api/overview"),
    api("GET", "/portal/api/payments"),
  ]);
  const balance = h("div", {}, ...balanceParts(data));
  const list = h("div", {}, ...history(payments).filter(Boolean));
  const parts = [balance];
  if (data.stripe_enabled) {
    parts.push(topupForm(data));
    if (data.trial_available) parts.push(trialPanel(data));
  } else {
    parts.push(h("p", { text: "Payments are not set up on this box: ask its operator for credit." }));
  }
  parts.push(h("h2", { text: "Payment history" }), list);
  page(main, "Billing", ...parts);
  follow(balance, list, payments);
}
