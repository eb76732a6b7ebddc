// The console's only script: refreshes the parts of a page marked data-live="URL" (an HTML fragment of the same
// origin, rendered and escaped by the server) every data-every seconds. Everything reads without it.
"use strict";
(function () {
  function refresh(element) {
    fetch(element.dataset.live, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      // redirected: the session ended and this is the login page, not the fragment; keep what is shown
      .then(function (answer) { return answer.ok && !answer.redirected ? answer.text() : null; })
      .then(function (html) {
        if (html !== null) {
          element.innerHTML = html;
          element.dataset.refreshed = String(Date.now());
        }
      })
      .catch(function () { /* the next round tries again */ });
  }
  document.querySelectorAll("[data-live]").forEach(function (element) {
    var every = Math.max(1, Number(element.dataset.every || 5)) * 1000;
    window.setInterval(function () { refresh(element); }, every);
  });
})();
