// Calls to the box's portal API: JSON in and out, the session's CSRF token on every change.
// The session itself is an HttpOnly cookie: nothing secret is kept in script-readable storage.

let csrfToken = "";

// The pages a sign-in may lead back to (only these: no address from the URL is followed).
const RETURN_PATHS = ["/keys", "/usage", "/billing", "/connect"];

// The sign-in page, remembering the page the person was on so that signing in leads back.
export function signInUrl() {
  const here = window.location.pathname;
  return RETURN_PATHS.includes(here) ? `/signin?next=${encodeURIComponent(here)}` : "/signin";
}

// Where a sign-in goes: the page it was asked from (one of ours), else home.
export function afterSignIn() {
  const next = new URLSearchParams(window.location.search).get("next");
  return RETURN_PATHS.includes(next) ? next : "/";
}

export function setCsrf(token) {
  csrfToken = token || "";
}

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code || "";
  }
}

// Whether the browser's session is no longer the one this page was drawn for.
async function sessionChanged() {
  try {
    const now = await (await fetch("/portal/api/session", { credentials: "same-origin" })).json();
    return Boolean(now.signed_in && now.csrf_token !== csrfToken);
  } catch (_) {
    return false;
  }
}

// A portal call refused because the session is gone or is another one: the page leaves (true)
// for the sign-in page (signed out in another tab, expired) or is drawn anew for the session
// now signed in (out and in again in another tab), rather than show an error under a form
// that cannot work any more. A 401 from another route (the public ones) is no such thing.
async function pageLeaves(response, data, path) {
  if (!path.startsWith("/portal/api/") || path.startsWith("/portal/api/signin/")) return false;
  if (response.status === 401) {
    window.location.replace(signInUrl());
    return true;
  }
  if (response.status === 403 && data?.error?.code === "csrf_failed" && await sessionChanged()) {
    window.location.reload();
    return true;
  }
  return false;
}

export async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  if (method !== "GET") {
    options.headers["x-csrf-token"] = csrfToken;
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (_) {
    throw new ApiError(0, "The box cannot be reached: check the connection and try again.");
  }
  if (response.status === 204) {
    return null;
  }
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (await pageLeaves(response, data, path)) {
    return new Promise(() => {}); // the call never settles: the page is leaving
  }
  if (!response.ok) {
    const error = data && data.error;
    const text = error && error.message ? error.message : `The box answered ${response.status}.`;
    throw new ApiError(response.status, text, error && error.code);
  }
  return data;
}
