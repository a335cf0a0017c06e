// Usage: totals, the spend of each of the last 30 days (an SVG drawn here), recent requests.
// The month and the days are UTC ones, as the server counts them: the labels say so.

import { api } from "./api.js";
import { count, h, page, svg, usd, when } from "./ui.js";

const WIDTH = 600;
const HEIGHT = 150;

// The bars are an SVG scaled to the screen; the peak and the first and last day are HTML text
// around it, so they read at the page's own type size at every width (SVG text grew and shrank
// with the chart, and a breakpoint that made up for it made them jump).
function chart(daily) {
  const values = daily.map((d) => Number(d.cost_usd));
  const top = Math.max(...values, 0);
  const total = values.reduce((a, b) => a + b, 0);
  const slot = WIDTH / Math.max(daily.length, 1);
  const label = `Daily spend, last ${daily.length} days (UTC days): ${usd(total)} in all, at most ${usd(top)} a day.`;
  const bars = daily.map((day, i) => {
    const size = top > 0 ? Math.max((Number(day.cost_usd) / top) * (HEIGHT - 1), day.cost_usd > 0 ? 1 : 0) : 0;
    return svg("rect", {
      class: "bar", x: (i * slot + 1).toFixed(1), y: (HEIGHT - 1 - size).toFixed(1),
      width: Math.max(slot - 2, 1).toFixed(1), height: size.toFixed(1),
    }, svg("title", {}, `${day.date}: ${usd(day.cost_usd)}`));
  });
  const axis = svg("line", { class: "axis", x1: 0, y1: HEIGHT - 0.5, x2: WIDTH, y2: HEIGHT - 0.5 });
  const text = (value) => h("span", { class: "chart-label", text: value });
  return h("figure", { class: "chart-figure" },
    h("p", { class: "chart-peak" }, text(`max ${usd(top)}`)),
    svg("svg", { class: "chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none",
      role: "img", "aria-label": label }, ...bars, axis),
    h("p", { class: "chart-dates" }, text(daily.length ? daily[0].date : ""),
      text(daily.length ? daily[daily.length - 1].date : "")));
}

// The chart's figures as a table, behind a disclosure the keyboard opens: a bar's own figure is
// only a mouse's tooltip, and the chart's text alternative gives the total and the peak only.
function dailyTable(daily) {
  const head = h("tr", {}, h("th", { scope: "col", text: "Day (UTC)" }),
    h("th", { scope: "col", class: "num", text: "Spend" }));
  const rows = daily.map((day) => h("tr", {}, h("th", { scope: "row", text: day.date }),
    h("td", { class: "num", text: usd(day.cost_usd) })));
  return h("details", { class: "chart-table" }, h("summary", { text: "Daily spend as a table" }),
    h("table", {}, h("caption", { class: "visually-hidden", text: "Daily spend, last 30 days (UTC days)" }),
      h("thead", {}, head), h("tbody", {}, rows)));
}

function totals(data) {
  const item = (label, value) => h("div", { class: "card" },
    h("p", { class: "muted", text: label }), h("p", { class: "figure", text: value }));
  return h("div", { class: "cards" },
    item("Requests", count(data.request_count)),
    item("Input tokens", count(data.total_input_token)),
    item("Output tokens", count(data.total_output_token)),
    item("Total cost", usd(data.total_cost_usd)),
    item("This month (UTC)", usd(data.month_spend_usd)));
}

// A request's status in words (the database's are ok, error and abandoned); the cost column
// says what it was charged.
const STATUS_WORDS = {
  ok: "Answered",
  error: "Failed",
  abandoned: "Client left before the end",
};

function recent(rows) {
  if (!rows.length) return h("p", { class: "muted", text: "No requests yet." });
  const head = h("tr", {}, ["Time", "Model", "Input", "Output", "Cost", "Status"].map((t, i) =>
    h("th", { scope: "col", class: i >= 2 && i <= 4 ? "num" : null, text: t })));
  const body = rows.map((r) => h("tr", {},
    h("td", { text: when(r.created_at) }), h("td", { text: r.model }),
    h("td", { class: "num", text: count(r.input_tokens) }),
    h("td", { class: "num", text: count(r.output_tokens) }),
    h("td", { class: "num", text: usd(r.cost_usd) }), h("td", { text: STATUS_WORDS[r.status] || r.status })));
  return h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Recent requests table" },
    h("table", {}, h("caption", { class: "visually-hidden", text: "Recent requests" }),
      h("thead", {}, head), h("tbody", {}, body)));
}

export async function usagePage(main) {
  const data = await api("GET", "/portal/api/usage");
  page(main, "Usage", totals(data),
    h("h2", { text: "Daily spend, last 30 days (UTC days)" }), chart(data.daily), dailyTable(data.daily),
    h("h2", { text: "Recent requests" }), recent(data.recent_requests));
}
