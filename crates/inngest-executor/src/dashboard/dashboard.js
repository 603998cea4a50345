// Live updates of the run dashboard: every element with a `data-live` URL is re-fetched every
// two seconds (while the tab is visible) and its content replaced by the HTML fragment served
// there. No framework, no build step.
(function () {
  "use strict";
  function refresh() {
    if (document.hidden) { return; }
    document.querySelectorAll("[data-live]").forEach(function (el) {
      fetch(el.getAttribute("data-live"), { headers: { "Accept": "text/html" } })
        .then(function (res) { return res.ok ? res.text() : null; })
        .then(function (html) {
          if (html !== null && html !== el.innerHTML) { el.innerHTML = html; }
        })
        .catch(function () { /* the server is restarting: try again next tick */ });
    });
  }
  window.setInterval(refresh, 2000);
})();
