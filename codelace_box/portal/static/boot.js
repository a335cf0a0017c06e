// The page's first script (a classic one, run before the modules): when one of the page's own
// scripts cannot be loaded (the box failing, the connection cut), nothing of main.js ever runs,
// so this says so, with a way to try again, rather than leave "Loading…" on the page for ever.
// A module graph that fails fires "error" at its script element; errors do not bubble, so the
// listener catches them on their way down.

window.addEventListener("error", (event) => {
  if (!(event.target instanceof HTMLScriptElement)) return;
  const main = document.getElementById("main");
  if (!main || !main.hasAttribute("aria-busy")) return; // a page was drawn: it is not stuck
  const heading = document.createElement("h1");
  heading.textContent = "The portal could not load";
  const problem = document.createElement("p");
  problem.className = "error";
  problem.setAttribute("role", "alert");
  problem.textContent = "The page could not be loaded: check the connection and try again.";
  const again = document.createElement("a");
  again.href = window.location.pathname + window.location.search;
  again.textContent = "Try again";
  const line = document.createElement("p");
  line.append(again);
  main.replaceChildren(heading, problem, line);
  document.title = `${heading.textContent} · codelace-box`;
  main.removeAttribute("aria-busy");
}, true);
