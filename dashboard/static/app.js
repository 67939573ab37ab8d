// jetworker dashboard: confirmation for destructive forms, live refresh of
// the #live region that the reader controls (pause, interval), and the
// live task page. No dependencies, no inline script (CSP default-src 'self').
"use strict";

document.addEventListener("submit", function (ev) {
  var form = ev.target;
  var msg = form.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    ev.preventDefault();
    return;
  }
  // A bulk form acts on the checkboxes that name it (form="<id>"): ask
  // with their count, and say which of them cannot be replayed.
  if (form.hasAttribute("data-bulk")) {
    var boxes = document.querySelectorAll('input[type=checkbox][name=seq][form="' + form.id + '"]:checked');
    var button = ev.submitter;
    if (boxes.length === 0) {
      ev.preventDefault();
      window.alert("Tick the dead letters to act on first.");
      return;
    }
    var text = ((button && button.getAttribute("data-confirm-bulk")) || "Act on {n} selected dead letters?").replace("{n}", String(boxes.length));
    var problems = 0;
    boxes.forEach(function (b) { if (b.hasAttribute("data-problem")) { problems++; } });
    if (problems > 0 && button && button.value === "replay") {
      text += " " + problems + " of them cannot be replayed and will be kept.";
    }
    if (!window.confirm(text)) {
      ev.preventDefault();
    }
  }
});

// "Select all" ticks every checkbox of the same form in the table.
document.addEventListener("change", function (ev) {
  var all = ev.target;
  if (!all.hasAttribute || !all.hasAttribute("data-select-all")) {
    return;
  }
  var table = all.closest("table");
  table.querySelectorAll("input[type=checkbox][name]").forEach(function (c) { c.checked = all.checked; });
});

// Live refresh: every few seconds the page is fetched again and its #live
// region swapped in. The reader can pause it and pick the interval; both
// are remembered in localStorage for every page.
(function () {
  var main = document.querySelector("main[data-refresh]");
  var live = document.getElementById("live");
  if (!main || !live) {
    return;
  }
  var store = {
    get: function (k) { try { return window.localStorage.getItem("jetworker." + k); } catch (e) { return null; } },
    set: function (k, v) { try { window.localStorage.setItem("jetworker." + k, v); } catch (e) { /* private mode */ } }
  };
  var every = parseInt(store.get("refresh-every"), 10) || parseInt(main.getAttribute("data-refresh"), 10) || 2000;
  var paused = store.get("refresh-paused") === "1";
  var ctl = document.querySelector("[data-testid=refresh]");
  var toggle = ctl && ctl.querySelector("[data-refresh-toggle]");
  var select = ctl && ctl.querySelector("[data-refresh-every]");
  var state = ctl && ctl.querySelector(".state");
  var timer = null;
  var busy = false;

  function show() {
    if (!ctl) {
      return;
    }
    ctl.hidden = false;
    toggle.textContent = paused ? "Resume" : "Pause";
    toggle.setAttribute("aria-pressed", paused ? "true" : "false");
    state.textContent = paused ? "paused" : "live";
    state.classList.toggle("paused", paused);
    if (!select.querySelector('option[value="' + every + '"]')) {
      var o = document.createElement("option");
      o.value = String(every);
      o.textContent = (every / 1000) + "s";
      select.appendChild(o);
    }
    select.value = String(every);
  }

  // The checkboxes ticked in #live survive a refresh.
  function ticked() {
    var out = {};
    live.querySelectorAll("input[type=checkbox][name]:checked").forEach(function (c) { out[c.name + "=" + c.value] = true; });
    return out;
  }

  // A refresh waits while the reader is using the live region: just
  // after a press in it, or while one of its controls has the focus.
  var touched = 0;
  live.addEventListener("pointerdown", function () { touched = Date.now(); });
  function inUse() {
    var f = document.activeElement;
    return Date.now() - touched < 1500 || (f && f !== document.body && live.contains(f) && f.matches("input, select, textarea, button"));
  }

  function refresh() {
    if (busy || paused || document.visibilityState !== "visible" || inUse()) {
      return;
    }
    busy = true;
    fetch(window.location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        var conn = doc.querySelector(".conn");
        if (fresh && !paused) {
          var keep = ticked();
          live.innerHTML = fresh.innerHTML;
          live.querySelectorAll("input[type=checkbox][name]").forEach(function (c) {
            if (keep[c.name + "=" + c.value]) {
              c.checked = true;
            }
          });
          live.dispatchEvent(new Event("refreshed", { bubbles: true }));
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

  function schedule() {
    if (timer) {
      clearInterval(timer);
    }
    timer = paused ? null : setInterval(refresh, every);
  }

  if (ctl) {
    toggle.addEventListener("click", function () {
      paused = !paused;
      store.set("refresh-paused", paused ? "1" : "0");
      show();
      schedule();
      if (!paused) {
        refresh();
      }
    });
    select.addEventListener("change", function () {
      every = parseInt(select.value, 10) || 2000;
      store.set("refresh-every", String(every));
      schedule();
    });
  }
  show();
  schedule();
})();

// The task page follows its task live: GET /api/tasks/{id}/events sends
// the record now and at every change (text/event-stream), and ends when
// the task does.
(function () {
  var root = document.querySelector("[data-events]");
  if (!root || !window.EventSource) {
    return;
  }
  var badge = root.querySelector("[data-live]");
  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }
  function text(name, v) {
    var el = field(name);
    if (el) {
      el.textContent = v;
    }
  }
  function section(name, show) {
    var el = root.querySelector('[data-section="' + name + '"]');
    if (el) {
      el.hidden = !show;
    }
  }
  function when(name, show) {
    root.querySelectorAll('[data-when="' + name + '"]').forEach(function (el) { el.hidden = !show; });
  }
  function status(label, on) {
    if (badge) {
      badge.hidden = false;
      badge.textContent = label;
      badge.classList.toggle("on", !!on);
    }
  }
  var classes = { succeeded: "ok", failed: "bad", cancelled: "warn", retrying: "warn" };
  function stamp(s) {
    if (!s || s.indexOf("0001-") === 0) {
      return "—";
    }
    return new Date(s).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }
  // A result is bytes (base64 in JSON): show it as text, JSON indented.
  function result(b64) {
    try {
      var bin = window.atob(b64);
      var bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) {
        bytes[i] = bin.charCodeAt(i);
      }
      var s = new TextDecoder().decode(bytes);
      try {
        return JSON.stringify(JSON.parse(s), null, 2);
      } catch (e) {
        return s;
      }
    } catch (e) {
      return b64;
    }
  }
  function cell(tr, v, cls) {
    var td = document.createElement("td");
    if (cls) {
      td.className = cls;
    }
    td.textContent = v;
    tr.appendChild(td);
    return td;
  }
  function render(t) {
    var state = field("state");
    if (state) {
      state.textContent = t.state;
      state.className = "tag " + (classes[t.state] || "");
    }
    var terminal = t.state === "succeeded" || t.state === "failed" || t.state === "cancelled";
    var flag = field("cancel_requested");
    if (flag) {
      flag.hidden = !t.cancel_requested || terminal;
    }
    var p = t.progress;
    var bar = field("progress");
    if (bar) {
      bar.value = p ? p.percent : 0;
    }
    text("percent", p ? Math.round(p.percent) + "%" : "—");
    text("progress_message", p ? (p.message || "") : "no progress reported");
    text("attempt", t.attempt || "—");
    text("worker", t.worker || "—");
    text("updated", stamp(t.updated));
    text("last_error", t.last_error || "");
    section("last_error", !!t.last_error);
    text("result", t.result ? result(t.result) : "");
    section("result", !!t.result);
    when("live", !terminal);
    when("scheduled", t.state === "scheduled");
    var body = field("history");
    if (body) {
      body.textContent = "";
      (t.history || []).forEach(function (h) {
        var tr = document.createElement("tr");
        var tag = document.createElement("span");
        tag.className = "tag " + (classes[h.state] || "");
        tag.textContent = h.state;
        cell(tr, "").appendChild(tag);
        cell(tr, stamp(h.at));
        cell(tr, h.attempt || "—", "num");
        cell(tr, h.worker || "—", "mono");
        cell(tr, h.error || "", "error");
        body.appendChild(tr);
      });
    }
  }
  var es = new EventSource(root.getAttribute("data-events"));
  es.addEventListener("open", function () { status("live", true); });
  es.addEventListener("task", function (ev) {
    status("live", true);
    render(JSON.parse(ev.data));
  });
  es.addEventListener("end", function () {
    es.close();
    status("finished", false);
  });
  es.addEventListener("problem", function (ev) {
    es.close();
    var msg = "live updates stopped";
    try { msg += ": " + JSON.parse(ev.data).error; } catch (e) { /* keep the short text */ }
    status(msg, false);
  });
  es.addEventListener("error", function () {
    if (es.readyState !== EventSource.CLOSED) {
      status("reconnecting…", false);
    }
  });
})();
