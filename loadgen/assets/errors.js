// Loaded first and synchronously: collects every uncaught error and unhandled
// promise rejection into `window.__errors`, so the browser tests (and curious
// humans, from the devtools console) can check that the page runs clean.
"use strict";
window.__errors = [];
window.addEventListener("error", function (e) {
  window.__errors.push(String((e && e.message) || e) + (e && e.filename ? " at " + e.filename + ":" + e.lineno : ""));
});
window.addEventListener("unhandledrejection", function (e) {
  window.__errors.push("unhandled rejection: " + String(e && e.reason));
});
