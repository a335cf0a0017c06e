// Calls to the box's portal API: JSON in and out, the session's CSRF token on every change.
// The session itself is an HttpOnly cookie: nothing secret is kept in script-readable storage.

let csrfToken = "";

// The path the box is served under (server.public_url's, such as /gateway behind a proxy that
// strips it; "" at the root), from the page's meta tag: every call and link carries it.
export const BASE = document.querySelector('meta[name="codelace-base"]')?.content || "";

// A path of the box's (`/keys`, `/portal/api/session`) as the browser reaches it.
export function at(path) {
  return BASE + path;
}

// The page's path as the box names it (`/keys`), the base taken off.
export function pagePath(pathname = window.location.pathname) {
  if (!BASE || !(pathname === BASE || pathname.startsWith(`${BASE}/`))) return pathname;
  return pathname.slice(BASE.length) || "/";
}

// How long a call may go unanswered before the page gives up on it and says so (a box or a
// network that stops answering must not leave a button disabled for ever). Calls that wait on
// an outside service (the mail server, Stripe) get longer: the box bounds those itself, and
// its own answer (sent, or why not) is better than the page's guess. How long, the box says
// (its session answer's wait_sec, from its own bounds: a mail server it was told to wait
// minutes for must not make the page give up first); these until it has.
export const TIMEOUT_MS = 20000;
const waits = { mail: 60000, stripe: 60000 };

export function setWaits(seconds) {
  for (const name of Object.keys(waits)) {
    const given = Number(seconds?.[name]);
    if (Number.isFinite(given) && given > 0) waits[name] = given * 1000;
  }
}

// The wait of a call on `name` (mail, stripe), in milliseconds.
export function waitMs(name) {
  return waits[name];
}

// The pages a sign-in may lead back to (only these: no address from the URL is followed).
const RETURN_PATHS = ["/keys", "/usage", "/billing", "/connect"];

// The sign-in page, remembering the page the person was on so that signing in leads back.
export function signInUrl() {
  const here = pagePath();
  return at(RETURN_PATHS.includes(here) ? `/signin?next=${encodeURIComponent(here)}` : "/signin");
}

// Where a sign-in goes: the page it was asked from (one of ours), else home.
export function afterSignIn() {
  const next = new URLSearchParams(window.location.search).get("next");
  return at(RETURN_PATHS.includes(next) ? next : "/");
}

export function setCsrf(token) {
  csrfToken = token || "";
}

export class ApiError extends Error {
  // `param`: the request field the box refused, when it names one (a form marks that field).
  constructor(status, message, code, param) {
    super(message);
    this.status = status;
    this.code = code || "";
    this.param = param || "";
  }
}

// Why the page was drawn anew (kept in this tab's history entry across the reload, never in
// storage or the URL), read once by the page that is drawn: main.js says it in words.
export function takeNotice() {
  const notice = window.history.state?.notice || "";
  if (notice) window.history.replaceState(null, "");
  return notice;
}

// Go to `url` (this tab's history entry replaced), saying `notice` there.
export function leave(url, notice) {
  window.history.replaceState({ notice }, "", url);
  window.location.reload();
}

// One request with the page's timeout; an unanswered or unreachable box is an ApiError(0).
async function send(method, path, body, timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const options = { method, headers: {}, credentials: "same-origin", signal: controller.signal };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  // Changes need the token; reads send it too, so the box refuses a read for a page drawn
  // for another session (someone signed in since in another tab) rather than answer it with
  // the new session's data.
  if (method !== "GET" || (csrfToken && path.startsWith("/portal/api/"))) {
    options.headers["x-csrf-token"] = csrfToken;
  }
  try {
    const response = await fetch(at(path), options);
    // A body that is no JSON is no data; one cut off by the timeout is the timeout.
    const data = response.status === 204 ? null : await response.json().catch((error) => {
      if (controller.signal.aborted) throw error;
      return null;
    });
    return { response, data };
  } catch (_) {
    const seconds = Math.round(timeoutMs / 1000);
    throw new ApiError(0, controller.signal.aborted
      ? `The box did not answer within ${seconds} seconds: check the connection and try again.`
      : "The box cannot be reached: check the connection and try again.");
  } finally {
    clearTimeout(timer);
  }
}

function refused(response, data) {
  const error = data && data.error;
  const text = error && error.message ? error.message : `The box answered ${response.status}.`;
  return new ApiError(response.status, text, error && error.code, error && error.param);
}

// The browser's session now: {signed_in, email, csrf_token}.
async function sessionNow() {
  const { response, data } = await send("GET", "/portal/api/session", undefined, TIMEOUT_MS);
  if (!response.ok || !data) throw refused(response, data);
  return data;
}

// A portal call refused because the session is gone or is another one: the page leaves (true)
// for the sign-in page, saying the session ended (signed out in another tab, expired), or is
// drawn anew for the session now signed in (out and in again in another tab), saying that what
// was asked was not done, rather than show an error under a form that cannot work any more.
// Nothing is retried with the new session's token: no change lands on an account the page did
// not show. A change refused so says it was not done (a key the person revoked still works).
// A 401 from another route (the public ones) is no such thing.
async function pageLeaves(method, response, data, path) {
  if (!path.startsWith("/portal/api/") || path.startsWith("/portal/api/signin/")) return false;
  if (response.status === 401) {
    leave(signInUrl(), method === "GET" ? "ended" : "endedUndone");
    return true;
  }
  if (response.status === 403 && data?.error?.code === "csrf_failed") {
    const now = await sessionNow().catch(() => ({ signed_in: false }));
    if (now.signed_in && now.csrf_token !== csrfToken) {
      leave(window.location.pathname + window.location.search, "changed");
      return true;
    }
  }
  return false;
}

export async function api(method, path, body, timeoutMs = TIMEOUT_MS) {
  const { response, data } = await send(method, path, body, timeoutMs);
  if (await pageLeaves(method, response, data, path)) {
    return new Promise(() => {}); // the call never settles: the page is leaving
  }
  if (!response.ok) throw refused(response, data);
  // A success that is no JSON is not the box's answer (a proxy's login page the call was sent
  // on to): no data to draw a page from.
  if (data === null && response.status !== 204) {
    throw new ApiError(response.status, "The box's answer could not be read (something between "
      + "the browser and the box answered for it): reload the page and try again.");
  }
  return data;
}

// A read the page makes by itself, no click asking it (billing.js follows a pending top-up):
// a refusal is only an error, never the page drawn anew, whose notices speak of something the
// person did.
export async function quietly(path) {
  const { response, data } = await send("GET", path, undefined, TIMEOUT_MS);
  if (!response.ok || data === null) throw refused(response, data);
  return data;
}

// Sign the browser out, whatever session it holds now: this page's, or one signed in since in
// another tab (whose token is read anew: ending a session is what was asked, so this is no
// change made on an account the page did not show). Already signed out is done too.
export async function signOut() {
  for (let tries = 0; tries < 2; tries += 1) {
    const { response, data } = await send("POST", "/portal/api/signout", undefined, TIMEOUT_MS);
    if (response.ok || response.status === 401) return;
    if (response.status !== 403 || data?.error?.code !== "csrf_failed") throw refused(response, data);
    const now = await sessionNow();
    if (!now.signed_in) return;
    setCsrf(now.csrf_token);
  }
  throw new ApiError(403, "The box refused to sign out: reload the page and try again.");
}
