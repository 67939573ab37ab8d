// jetworker dashboard: confirmation for destructive forms and live refresh
// of the #live region. No dependencies.
"use strict";

document.addEventListener("submit", function (ev) {
  var msg = ev.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    ev.preventDefault();
  }
});

(function () {
  var main = document.querySelector("main[data-refresh]");
  var live = document.getElementById("live");
  if (!main || !live) {
    return;
  }
  var every = parseInt(main.getAttribute("data-refresh"), 10) || 2000;
  var busy = false;
  function refresh() {
    if (busy || document.visibilityState !== "visible") {
      return;
    }
    busy = true;
    fetch(window.location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        var conn = doc.querySelector(".conn");
        if (fresh) {
          live.innerHTML = fresh.innerHTML;
        }
        var cur = document.querySelector(".conn");
        if (conn && cur) {
          cur.className = conn.className;
          cur.textContent = conn.textContent;
        }
        document.body.classList.remove("stale");
      })
      .catch(function () { document.body.classList.add("stale"); })
      .finally(function () { busy = false; });
  }
  setInterval(refresh, every);
})();
