// Sign in: an email address, then the 6-digit code mailed to it. The server sets the cookie.

import { afterSignIn, api, ApiError, leave, waitMs } from "./api.js";
import { busy, field, h, leaving, messageArea, page } from "./ui.js";

// The code step drawn last in this tab ({main, address, shownAddress, ttlSec}), or null. It has
// a history entry of its own (drawn in place, Back left the portal): Back draws the email step
// again (its address kept), Forward the code step. Both entries are marked with their step
// (`signinStep`); any other history step (the skip link's #main) leaves the page as it is, and
// so does one onto the step already drawn (`drawnStep`).
let shownCode = null;
let drawnStep = "";

window.addEventListener("popstate", (event) => {
  const step = event.state?.signinStep;
  if (!shownCode || !step || step === drawnStep) return;
  const { main, address, shownAddress, ttlSec } = shownCode;
  if (step === "code") codeStep(main, address, shownAddress, ttlSec, false);
  else signinPage(main, null, address);
});

// `notice`: a line saying why the person is asked to sign in (their session ended), or null.
// The field reads the notice too: the keyboard is put there at once, which may cut the alert off.
// `address`: the address typed before (back from the code step).
export function signinPage(main, notice, address = "") {
  // A reload on the code step draws this step on the code step's entry: it is this step's now
  // (else Back from the next code step drew the old one again).
  if (window.history.state?.signinStep === "code") window.history.replaceState(null, "");
  drawnStep = "email";
  notice?.setAttribute("id", "signin-notice");
  const email = field("Email address", { type: "email", autocomplete: "email", name: "email",
    value: address, "aria-describedby": notice ? "signin-notice" : null });
  const message = messageArea();
  const submit = h("button", { type: "submit", text: "Email me a code" });
  const form = h("form", { novalidate: true }, email.wrap, message.el, h("div", { class: "row" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.clear();
    await busy(submit, async () => {
      try {
        const sent = await api("POST", "/portal/api/signin/code", { email: email.input.value },
          waitMs("mail"));
        codeStep(main, sent.email, sent.display_email, sent.expires_in_sec);
      } catch (error) {
        message.fieldError(error, form, email.input);
      }
    });
  });
  page(main, "Sign in", notice, h("p", { text: "We email you a 6-digit code; no password." }), form);
  email.input.focus();
}

// A code's lifetime in the mail's words (accounts/mailer.py describe_ttl): whole minutes, else
// seconds; never rounded up, so the page promises no longer than the code lives.
function lifetime(ttlSec) {
  const seconds = Math.max(0, Math.floor(Number(ttlSec) || 0));
  if (seconds % 60 !== 0) return `${seconds} seconds`;
  const minutes = seconds / 60;
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

// A code refused while another tab of this browser signed in (that sign-in asked a newer
// code, or used this one): no code works here any more, so the page goes where signing in
// goes, saying why, rather than leave the refusal on a dead end. Whether it went.
async function signedInElsewhere() {
  const now = await api("GET", "/portal/api/session").catch(() => null);
  if (!now?.signed_in) return false;
  leave(afterSignIn(), "elsewhere");
  return true;
}

// A sign-in the box answered is held only if the browser kept its cookie: one that keeps none
// for the box (cookies blocked, a privacy extension, a proxy dropping Set-Cookie) came back to
// an empty sign-in form without a word, its code spent. It is said instead.
async function sessionHeld() {
  const now = await api("GET", "/portal/api/session");
  if (now.signed_in) return;
  throw new ApiError(0, "The box signed you in, but this browser did not keep its sign-in "
    + "cookie: allow cookies for this site (its own cookie only, never a third party's), then "
    + "send a new code and sign in again.");
}

// The code step is drawn; `push`: on an entry of its own, the one before marked the email step's.
function enterCodeStep(push) {
  drawnStep = "code";
  if (!push) return;
  window.history.replaceState({ signinStep: "email" }, "");
  window.history.pushState({ signinStep: "code" }, "");
}

// To the email step: Back when on the code step's entry (the email step's is the one before),
// else (the skip link's entry) drawn here.
function anotherAddress(main, address) {
  if (window.history.state?.signinStep === "code") window.history.back();
  else signinPage(main, null, address);
}

// `push`: a history entry for the step (false: drawn by Forward, which is on its entry).
function codeStep(main, address, shownAddress, ttlSec, push = true) {
  shownCode = { main, address, shownAddress, ttlSec };
  enterCodeStep(push);
  const code = field(
    "Sign-in code",
    { inputmode: "numeric", autocomplete: "one-time-code", name: "code" },
    `The 6 digits from the mail; the code works for ${lifetime(ttlSec)}.`,
  );
  const message = messageArea();
  const submit = h("button", { type: "submit", text: "Sign in" });
  const again = h("button", {
    type: "button",
    class: "secondary",
    text: "Use another address",
    onclick: () => anotherAddress(main, address),
  });
  const resend = h("button", { type: "button", class: "secondary", text: "Send a new code" });
  resend.addEventListener("click", () => busy(resend, async () => {
    try {
      await api("POST", "/portal/api/signin/code", { email: address }, waitMs("mail"));
      message.ok("A new code is on its way; the one before no longer works.");
    } catch (error) {
      message.error(error.message);
    }
  }));
  const form = h("form", { novalidate: true }, code.wrap, message.el,
    h("div", { class: "row" }, submit, resend, again));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.clear();
    try {
      await leaving(submit, async () => {
        await api("POST", "/portal/api/signin/verify", { email: address, code: code.input.value });
        await sessionHeld();
        window.location.assign(afterSignIn());
      });
    } catch (error) {
      if (!(await signedInElsewhere())) message.fieldError(error, form, code.input);
    }
  });
  page(main, "Check your mail", h("p", {}, "We sent a code to ", h("strong", { text: shownAddress }), "."), form);
  code.input.focus();
}
