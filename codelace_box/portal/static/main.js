// The portal's entry: find out who is signed in, then draw the page the path names.

import {
  afterSignIn, api, ApiError, at, pagePath, setCsrf, setWaits, signInUrl, signOut, takeNotice,
} from "./api.js";
import { billingPage } from "./billing.js";
import { connectPage } from "./connect.js";
import { homePage } from "./home.js";
import { keysPage } from "./keys.js";
import { signinPage } from "./signin.js";
import { h, leaving, page } from "./ui.js";
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

// Why this tab was drawn anew, in words (api.js leaves with one of these; an unknown one is
// nothing to say).
const NOTICES = {
  ended: "Your session has ended (signed out, perhaps in another tab, or expired): sign in again to go on.",
  endedUndone: "Your session has ended (signed out, perhaps in another tab, or expired), so what you "
    + "just did was not done: sign in again, then check the page and try again.",
  changed: "This browser signed in again in another tab, so this page was drawn anew for that "
    + "sign-in. What you just did was not done: check the page and try again.",
  elsewhere: "This browser signed in in another tab while this one waited for its code: you are "
    + "signed in.",
};

function noticeLine(notice) {
  return NOTICES[notice] ? h("p", { class: "notice", role: "alert", text: NOTICES[notice] }) : null;
}

// Sign out, whichever session the browser holds now; if the box cannot be reached the page
// stays, saying so (going to the sign-in page would only bring the signed-in page back).
function showNav(path) {
  const nav = document.getElementById("nav");
  nav.hidden = false;
  for (const link of nav.querySelectorAll("a")) {
    if (link.getAttribute("href") === at(path)) link.setAttribute("aria-current", "page");
  }
  const button = document.getElementById("signout");
  const problem = h("p", { class: "error", role: "alert" });
  nav.after(problem);
  button.addEventListener("click", async () => {
    problem.textContent = "";
    try {
      await leaving(button, async () => {
        await signOut();
        window.location.assign(at("/signin"));
      });
    } catch (error) {
      problem.textContent = `Not signed out: ${error.message}`;
    }
  });
}

// Whether this tab was showing a signed-in page just before: this entry was drawn signed in
// (a reload, Back) or a link on one of the signed-in pages led here.
function wasSignedIn() {
  if (window.history.state?.signedIn) return true;
  try {
    const from = new URL(document.referrer);
    return from.origin === window.location.origin && pagePath(from.pathname) in TITLES;
  } catch (_) {
    return false;
  }
}

// Not signed in: the sign-in page, saying the session ended if this tab was just signed in.
function toSignIn(main, path, notice) {
  if (path === "/signin") {
    signinPage(main, noticeLine(notice));
  } else if (wasSignedIn()) {
    window.history.replaceState(null, "", signInUrl());
    signinPage(main, noticeLine("ended"));
  } else {
    window.location.replace(signInUrl());
  }
}

// A heading and what went wrong, with a way to try again: not "Loading…" left above an error.
function failed(main, title, path, error) {
  page(main, title, h("p", { class: "error", role: "alert", text: error.message }),
    h("p", {}, h("a", { href: at(path) + window.location.search, text: "Try again" })));
}

// The page's path as the pages name it: the box serves /keys/ as /keys (a bookmark, a link
// typed with a slash), so the address loses its trailing slashes before the page is chosen
// (else it was drawn as home, and a sign-in from it led home, not back). The path is the box's
// (the base it is served under taken off: api.js pagePath).
function canonicalPath() {
  const { pathname, search, hash } = window.location;
  const path = pagePath(pathname).replace(/\/+$/, "") || "/";
  const shown = at(path);
  if (shown !== pathname) window.history.replaceState(window.history.state, "", shown + search + hash);
  return path;
}

async function start() {
  const main = document.getElementById("main");
  const path = canonicalPath();
  const notice = takeNotice();
  let session;
  try {
    session = await api("GET", "/portal/api/session");
  } catch (error) {
    failed(main, "The portal could not load", path, error);
    return;
  }
  setWaits(session.wait_sec);
  if (!session.signed_in) {
    toSignIn(main, path, notice);
    return;
  }
  if (path === "/signin" || !(path in PAGES)) {
    window.location.replace(path === "/signin" ? afterSignIn() : at("/"));
    return;
  }
  setCsrf(session.csrf_token);
  showNav(path);
  try {
    await PAGES[path](main, session);
    window.history.replaceState({ signedIn: true }, "");
    const line = noticeLine(notice);
    if (line) main.querySelector("h1")?.after(line);
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
