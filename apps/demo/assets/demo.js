// The demo's own script. The pages carry no inline script, so they run under a strict
// Content-Security-Policy (`script-src 'self'`); what they need beyond livehtml.js or htmx is
// here. It loads first and blocking: its listener must be in place before the CDN scripts fail.
"use strict";

// Scripts that did not load (offline, blocked, or their integrity hash did not match).
const failedScripts = [];
window.addEventListener("error", (event) => {
  if (event.target instanceof HTMLScriptElement) failedScripts.push(event.target.src);
}, true);

// A page on plain htmx says so on screen when htmx or its extension did not load: without it
// the page would sit on its first render with nothing telling why.
document.addEventListener("DOMContentLoaded", () => {
  const notice = document.getElementById("cdn-notice");
  if (!notice || (window.htmx && failedScripts.length === 0)) return;
  const list = notice.querySelector(".failed");
  if (list) list.textContent = failedScripts.join(", ") || "htmx";
  notice.hidden = false;
});

// Enter sends the chat's message, Shift+Enter makes a new line.
document.addEventListener("keydown", (event) => {
  const field = event.target;
  if (event.key !== "Enter" || event.shiftKey || !(field instanceof HTMLTextAreaElement)) return;
  if (!field.hasAttribute("data-enter-sends") || !field.form) return;
  event.preventDefault();
  field.form.requestSubmit();
});

// A plain htmx form marked `data-reset-after` empties once htmx has sent it.
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail && event.detail.elt;
  if (form instanceof HTMLFormElement && form.hasAttribute("data-reset-after") && event.detail.successful) {
    form.reset();
  }
});
