// The portal's entry: find out who is signed in, then draw the page the path names.

import { api, ApiError, setCsrf } from "./api.js";
import { billingPage } from "./billing.js";
import { connectPage } from "./connect.js";
import { homePage } from "./home.js";
import { keysPage } from "./keys.js";
import { signinPage } from "./signin.js";
import { h } from "./ui.js";
import { usagePage } from "./usage.js";

const PAGES = {
  "/": homePage,
  "/keys": keysPage,
  "/usage": usagePage,
  "/billing": billingPage,
  "/connect": connectPage,
};

function showNav(path) {
  const nav = document.getElementById("nav");
  nav.hidden = false;
  for (const link of nav.querySelectorAll("a")) {
    if (link.getAttribute("href") === path) link.setAttribute("aria-current", "page");
  }
  document.getElementById("signout").addEventListener("click", async () => {
    try {
      await api("POST", "/portal/api/signout");
    } finally {
      window.location.assign("/signin");
    }
  });
}

async function start() {
  const main = document.getElementById("main");
  const path = window.location.pathname;
  let session;
  try {
    session = await api("GET", "/portal/api/session");
  } catch (error) {
    main.replaceChildren(h("p", { class: "error", role: "alert", text: error.message }));
    return;
  }
  if (!session.signed_in) {
    if (path !== "/signin") {
      window.location.replace("/signin");
      return;
    }
    signinPage(main);
    return;
  }
  if (path === "/signin" || !(path in PAGES)) {
    window.location.replace("/");
    return;
  }
  setCsrf(session.csrf_token);
  showNav(path);
  try {
    await PAGES[path](main, session);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      window.location.replace("/signin");
      return;
    }
    main.append(h("p", { class: "error", role: "alert", text: error.message }));
  }
}

// A page the browser brings back from its back/forward cache (one that ignored no-store) is
// loaded anew, so it asks the server again who is signed in: nobody, after a sign-out.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) window.location.reload();
});

start();
