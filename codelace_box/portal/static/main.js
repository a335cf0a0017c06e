// The portal's entry: find out who is signed in, then draw the page the path names.

import { afterSignIn, api, ApiError, setCsrf, signInUrl } from "./api.js";
import { billingPage } from "./billing.js";
import { connectPage } from "./connect.js";
import { homePage } from "./home.js";
import { keysPage } from "./keys.js";
import { signinPage } from "./signin.js";
import { h, page } from "./ui.js";
import { usagePage } from "./usage.js";

// Each page's heading, for the page whose data could not be loaded.
const TITLES = {
  "/": "Your account",
  "/keys": "API keys",
  "/usage": "Usage",
  "/billing": "Billing",
  "/connect": "How to connect",
};

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

// A heading and what went wrong, with a way to try again: not "Loading…" left above an error.
function failed(main, title, path, error) {
  page(main, title, h("p", { class: "error", role: "alert", text: error.message }),
    h("p", {}, h("a", { href: path + window.location.search, text: "Try again" })));
}

async function start() {
  const main = document.getElementById("main");
  const path = window.location.pathname;
  let session;
  try {
    session = await api("GET", "/portal/api/session");
  } catch (error) {
    failed(main, "The portal could not load", path, error);
    return;
  }
  if (!session.signed_in) {
    if (path !== "/signin") {
      window.location.replace(signInUrl());
      return;
    }
    signinPage(main);
    return;
  }
  if (path === "/signin" || !(path in PAGES)) {
    window.location.replace(path === "/signin" ? afterSignIn() : "/");
    return;
  }
  setCsrf(session.csrf_token);
  showNav(path);
  try {
    await PAGES[path](main, session);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      window.location.replace(signInUrl());
      return;
    }
    failed(main, TITLES[path], path, error);
  }
}

// A page the browser brings back from its back/forward cache (one that ignored no-store) is
// loaded anew, so it asks the server again who is signed in: nobody, after a sign-out.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) window.location.reload();
});

start();
