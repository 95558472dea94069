// Small improvements only: every page works without this script.
// 1. A form's submit button is disabled once pressed, so that a double click sends one request (the
//    server would answer a second one with the same result anyway: the idempotency key is in the form).
// 2. A form sent back with errors (or a step refused) puts the focus on the message, so that a screen
//    reader reads it.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form[method='post']").forEach(function (form) {
    form.addEventListener("submit", function () {
      var buttons = form.querySelectorAll("button[type='submit']");
      window.setTimeout(function () {
        buttons.forEach(function (button) { button.disabled = true; });
      }, 0);
    });
  });
  // Back to a page kept in the browser's cache: its buttons work again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("button[type='submit'][disabled]").forEach(function (b) { b.disabled = false; });
  });
  var summary = document.getElementById("erreurs") || document.getElementById("refus");
  if (summary) { summary.focus(); }
});
