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
  const sessionCall = path.startsWith("/portal/api/") && !path.startsWith("/portal/api/signin/");
  if (response.status === 401 && sessionCall) {
    // The session ended (signed out in another tab, expired): the sign-in page, not an error
    // under a form that cannot work any more. The call never settles: the page is leaving.
    window.location.replace(signInUrl());
    return new Promise(() => {});
  }
  if (!response.ok) {
    const error = data && data.error;
    const text = error && error.message ? error.message : `The box answered ${response.status}.`;
    throw new ApiError(response.status, text, error && error.code);
  }
  return data;
}
