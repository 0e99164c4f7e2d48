// llm-heartbeat status page: keeps the server-rendered view fresh from api/v1/targets.
// Mirrors exporter/server/web/page.py (same markup) and format.py (same numbers); the short
// human reasons come from the API ("summary", exporter/server/words.py), never re-derived here.
// Safety: text from targets only ever goes through textContent and setAttribute, never markup.
(function () {
  "use strict";

  var STATES = ["down", "degraded", "overloaded", "starting", "unknown", "up"];
  var NOTES = { overloaded: "busy, not broken", starting: "loading: expected" };
  var MARKS = { "true": "✓", "false": "✗", wait: "…", na: "-", busy: "…" };
  var CHECKS = ["health", "models", "chat"];
  var W = 120, H = 28, PAD = 2, CLIP = 240;
  var SVG = "http://www.w3.org/2000/svg";

  var body = document.body;
  var refresh = parseFloat(body.dataset.refresh) || 0;
  var rowsEl = document.getElementById("rows");
  var tableEl = document.getElementById("targets");
  var emptyEl = document.getElementById("empty");
  var nomatchEl = document.getElementById("nomatch");
  var transEl = document.getElementById("transitions");
  var notransEl = document.getElementById("notrans");
  var problemEl = document.getElementById("problem");
  var ownEl = document.getElementById("ownfaults");
  var updatedEl = document.getElementById("updated");
  var filterEl = document.getElementById("filter");
  var summaryEl = document.getElementById("summary");

  var rows = new Map(); // name -> {tr, key, hay, state}
  var order = []; // names in DOM order
  var stateFilter = "";
  var transKey = null;
  var lastGenerated = parseFloat(body.dataset.generatedAt) || 0;
  // server clock minus client clock, so relative times don't depend on the phone's clock
  var skew = lastGenerated ? lastGenerated - Date.now() / 1000 : 0;
  var waiting = false; // a refresh is due but the tab is hidden

  // ---- formatting (same as format.py) ------------------------------------------------------
  function fmtSeconds(v) {
    if (v === null || v === undefined) return "–";
    if (v < 0.0005) return "<1 ms";
    if (v < 1) return Math.round(v * 1000) + " ms";
    if (v < 10) return v.toFixed(2) + " s";
    if (v < 100) return v.toFixed(1) + " s";
    return Math.round(v) + " s";
  }
  function fmtSpan(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 86400) return Math.floor(s / 3600) + " h";
    return Math.floor(s / 86400) + " d";
  }
  function fmtAgo(ts, now) {
    if (!ts) return "never";
    if (now - ts < 1) return "just now";
    return fmtSpan(now - ts) + " ago";
  }
  function stamp(ts) {
    return ts ? new Date(ts * 1000).toLocaleString() : "";
  }
  function serverNow() {
    return Date.now() / 1000 + skew;
  }
  function rank(state) {
    var i = STATES.indexOf(state);
    return i < 0 ? STATES.length : i;
  }
  function byWorstThenName(a, b) {
    var d = rank(a.state) - rank(b.state);
    if (d) return d;
    var x = String(a.name), y = String(b.name);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  function clip(text) {
    text = String(text);
    return text.length <= CLIP ? text : text.slice(0, CLIP - 1) + "\u2026";
  }
  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  // ---- DOM helpers -------------------------------------------------------------------------
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function timeEl(ts, cls, now) {
    var t = el("time", cls);
    t.setAttribute("data-ts", ts ? String(ts) : "");
    t.title = stamp(ts);
    t.textContent = timeText(t, ts, now);
    return t;
  }
  function timeText(t, ts, now) {
    if (t.classList.contains("span")) return fmtSpan(now - (ts || now));
    if (t.classList.contains("left")) return fmtSpan((ts || now) - now);
    return fmtAgo(ts, now);
  }
  function updateTimes(now) {
    var all = document.querySelectorAll("time[data-ts]");
    for (var i = 0; i < all.length; i++) {
      var t = all[i];
      var ts = parseFloat(t.getAttribute("data-ts"));
      if (!ts) continue;
      var text = timeText(t, ts, now);
      if (t.textContent !== text) t.textContent = text;
    }
  }

  // ---- sparklines (same as format.py) ------------------------------------------------------
  function ttftSeries(recent) {
    var out = [];
    recent.forEach(function (r) {
      if (r.check !== "chat") return;
      if (!r.success) out.push(null);
      else if (typeof r.ttft === "number") out.push(r.ttft);
    });
    return out;
  }
  function latencySeries(recent) {
    var chat = recent.filter(function (r) { return r.check === "chat"; });
    return (chat.length ? chat : recent).map(function (r) {
      return r.success && typeof r.duration === "number" ? r.duration : null;
    });
  }
  function round1(v) {
    return Math.round(v * 10) / 10;
  }
  function sparkSvg(series, label) {
    var n = series.length;
    var values = series.filter(function (v) { return v !== null; });
    var top = values.length ? Math.max.apply(null, values) : 0;
    if (!(top > 0)) top = 1;
    var step = n > 1 ? (W - 2 * PAD) / (n - 1) : 0;
    if (values.length) {
      label += ", last " + n + " probes: " + fmtSeconds(Math.min.apply(null, values)) +
        " to " + fmtSeconds(Math.max.apply(null, values));
    }
    var s = svg("svg", { "class": "spark", viewBox: "0 0 " + W + " " + H, width: W, height: H,
      role: "img", "aria-label": label });
    var title = svg("title", {});
    title.textContent = label;
    s.appendChild(title);
    var points = [];
    series.forEach(function (v, i) {
      var x = round1(n > 1 ? PAD + i * step : W - PAD);
      if (v === null) {
        s.appendChild(svg("line", { "class": "fail", x1: x, y1: 2, x2: x, y2: H - 2 }));
      } else {
        points.push([x, round1(H - PAD - (v / top) * (H - 2 * PAD))]);
      }
    });
    if (points.length) {
      s.appendChild(svg("polyline", { "class": "line",
        points: points.map(function (p) { return p[0] + "," + p[1]; }).join(" ") }));
      var last = points[points.length - 1];
      s.appendChild(svg("circle", { "class": "dot", cx: last[0], cy: last[1], r: 2 }));
    }
    return s;
  }

  // ---- one target row (same cells as page.py's render_row) ---------------------------------
  function checkItem(name, r, now, state) {
    var li = el("li", "check");
    li.setAttribute("data-check", name);
    var mark = el("span", "mark");
    mark.setAttribute("aria-hidden", "true");
    li.appendChild(mark);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "cname", name));
    li.appendChild(document.createTextNode(" "));
    if (!r) {
      li.setAttribute("data-ok", "none");
      mark.textContent = "·";
      li.appendChild(el("span", "cval muted", "not yet"));
      return li;
    }
    // not offered: the server has no such endpoint (neither pass nor fail); rate limited: busy
    var ok = r.success ? "true" : r.offered === false ? "na"
      : r.reason === "rate_limited" ? "busy" : state === "starting" ? "wait" : "false", value;
    var stale = !!r.stale;
    li.setAttribute("data-ok", ok);
    li.setAttribute("data-stale", stale ? "true" : "false");
    li.title = [r.reason, r.detail].filter(Boolean).join(" · ");
    mark.textContent = MARKS[ok];
    if (ok === "true") {
      value = fmtSeconds(r.duration_seconds);
      if (r.tokens_per_second) value += " · " + Math.round(r.tokens_per_second) + " tok/s";
    } else {
      value = String(r.summary || r.reason || "failed");
    }
    li.appendChild(el("span", "cval", value));
    li.appendChild(document.createTextNode(" "));
    var age = timeEl(r.timestamp, "ago muted", now);
    if (stale) {
      var wrap = el("span", "stale muted", "not re-checked since " + state + ", ");
      wrap.appendChild(age);
      age = wrap;
    }
    li.appendChild(age);
    return li;
  }

  function transitionItem(t, withTarget, now) {
    var li = el("li");
    // the history file may have been edited by hand: a time is a number or nothing
    var ts = typeof t.time === "number" && isFinite(t.time) ? t.time : null;
    li.appendChild(timeEl(ts, "ago", now));
    li.appendChild(document.createTextNode(" "));
    if (withTarget) {
      li.appendChild(el("span", "tname", t.target));
      li.appendChild(document.createTextNode(" "));
    }
    li.appendChild(el("span", "word s-" + String(t.from), t.from));
    li.appendChild(document.createTextNode(" → "));
    li.appendChild(el("span", "word s-" + String(t.to), t.to));
    var why = String(t.summary || t.reason || "");
    if (why) {
      li.appendChild(document.createTextNode(" "));
      var w = el("span", "why muted", clip(why));
      w.title = [t.reason, t.detail].filter(Boolean).join(" · ");
      li.appendChild(w);
    }
    return li;
  }

  function fillRow(tr, t, now) {
    var wasOpen = !!tr.querySelector("details.hist[open]");
    var reasonOpen = !!tr.querySelector("details.reason[open]");
    var checks = t.checks || {};
    var recent = t.recent || [];
    var enabled = t.consecutive_failures || checks;
    var word = String(t.state);
    tr.textContent = "";

    var state = el("td", "c-state");
    state.appendChild(el("span", "badge", word));
    state.appendChild(document.createTextNode(" "));
    if (word === "overloaded" && t.reason === "rate_limited") {
      state.appendChild(el("span", "note", "rate limited: busy, not broken"));
    } else if (Object.prototype.hasOwnProperty.call(NOTES, word)) {
      state.appendChild(el("span", "note", NOTES[word]));
    }
    var since = el("span", "since muted", "for ");
    since.appendChild(timeEl(t.since, "span", now));
    state.appendChild(since);
    tr.appendChild(state);

    var target = el("td", "c-target");
    target.appendChild(el("div", "name", t.name));
    target.appendChild(el("div", "model", t.model || "model not known yet"));
    target.appendChild(el("div", "url muted", t.url));
    if (t.tls_warning) target.appendChild(el("div", "tlswarn", t.tls_warning));
    if (t.state !== "up" && (t.reason || t.detail)) {
      var rd = el("details", "reason");
      rd.open = reasonOpen;
      rd.appendChild(el("summary", null, t.summary || t.reason));
      rd.appendChild(el("div", "rdetail", clip([t.reason, t.detail].filter(Boolean).join(" · "))));
      target.appendChild(rd);
    }
    var m = t.maintenance;
    if (m && m.end > now) {
      var maint = el("div", "maint", "in maintenance, ");
      maint.appendChild(timeEl(m.end, "left", now));
      maint.appendChild(document.createTextNode(" left" + (m.reason ? ": " + clip(m.reason) : "")));
      target.appendChild(maint);
    }
    if (t.grace_until && t.grace_until > now) {
      var grace = el("div", "grace muted", "recovery grace, ");
      grace.appendChild(timeEl(t.grace_until, "left", now));
      grace.appendChild(document.createTextNode(" left"));
      target.appendChild(grace);
    }
    var transitions = t.transitions || [];
    if (transitions.length) {
      var det = el("details", "hist");
      det.open = wasOpen;
      det.appendChild(el("summary", null, plural(transitions.length, "transition")));
      var ol = el("ol", "tlist");
      for (var i = transitions.length - 1; i >= 0; i--) {
        ol.appendChild(transitionItem(transitions[i], false, now));
      }
      det.appendChild(ol);
      target.appendChild(det);
    }
    tr.appendChild(target);

    var cell = el("td", "c-checks");
    var ul = el("ul", "checks");
    CHECKS.forEach(function (c) {
      if (c in enabled) ul.appendChild(checkItem(c, checks[c], now, word));
    });
    cell.appendChild(ul);
    tr.appendChild(cell);

    var chatOnly = recent.filter(function (r) { return r.check === "chat"; });
    tr.appendChild(metricCell("c-ttft", "TTFT", newest(chatOnly, "ttft"), now,
      sparkSvg(ttftSeries(recent), "time to first token")));
    tr.appendChild(metricCell("c-lat", "Latency", newest(chatOnly.length ? chatOnly : recent,
      "duration"), now, sparkSvg(latencySeries(recent), "probe latency")));
  }

  // the newest successful value and when it was measured (format.py's last_ttft/last_latency)
  function newest(items, key) {
    for (var i = items.length - 1; i >= 0; i--) {
      var r = items[i];
      if (r.success && typeof r[key] === "number") {
        return [r[key], typeof r.time === "number" ? r.time : null];
      }
    }
    return [null, null];
  }

  function metricCell(cls, label, value, now, spark) {
    var td = el("td", cls);
    td.appendChild(el("span", "label", label));
    td.appendChild(document.createTextNode(" "));
    var val = el("span", "val", fmtSeconds(value[0]));
    if (value[0] !== null && value[1]) {
      val.appendChild(document.createTextNode(" "));
      val.appendChild(timeEl(value[1], "ago muted", now));
    }
    td.appendChild(val);
    td.appendChild(spark);
    return td;
  }

  function rowKey(t) {
    var recent = t.recent || [], trans = t.transitions || [];
    return JSON.stringify([t.state, t.since, t.model, t.url, t.tls_warning, t.reason, t.detail, t.grace_until, t.maintenance,
      t.checks, t.consecutive_failures, recent.length, recent.length ? recent[recent.length - 1] : 0,
      trans.length, trans.length ? trans[trans.length - 1].time : 0]);
  }

  function haystack(name, model, url) {
    return [name, model, url].join(" ").toLowerCase();
  }

  // ---- the whole page ----------------------------------------------------------------------
  function render(data) {
    var now = data.generated_at;
    skew = now - Date.now() / 1000;
    lastGenerated = now;
    var targets = (data.targets || []).slice().sort(byWorstThenName);
    var seen = new Set();
    var counts = { all: targets.length };
    STATES.forEach(function (s) { counts[s] = 0; });
    targets.forEach(function (t) {
      var name = String(t.name);
      seen.add(name);
      counts[t.state] = (counts[t.state] || 0) + 1;
      var entry = rows.get(name);
      if (!entry) {
        var tr = el("tr", "target");
        tr.setAttribute("data-name", name);
        entry = { tr: tr, key: null };
        rows.set(name, entry);
      }
      var key = rowKey(t);
      if (entry.key !== key) {
        fillRow(entry.tr, t, now);
        entry.key = key;
      }
      entry.state = String(t.state);
      entry.tr.setAttribute("data-state", entry.state);
      entry.hay = haystack(name, t.model || "", t.url || "");
    });
    rows.forEach(function (entry, name) {
      if (!seen.has(name)) {
        entry.tr.remove();
        rows.delete(name);
      }
    });
    var names = targets.map(function (t) { return String(t.name); });
    if (names.length !== order.length || names.some(function (n, i) { return n !== order[i]; })) {
      var frag = document.createDocumentFragment();
      names.forEach(function (n) { frag.appendChild(rows.get(n).tr); });
      rowsEl.appendChild(frag); // moves the rows: ends in the sorted order
      order = names;
    }

    summaryEl.querySelectorAll("b[data-count]").forEach(function (b) {
      b.textContent = String(counts[b.getAttribute("data-count")] || 0);
    });
    var first = summaryEl.querySelector("button[data-filter='']");
    if (first) first.lastChild.textContent = targets.length === 1 ? " target" : " targets";
    document.title = pageTitle(counts, targets.length);
    tableEl.hidden = targets.length === 0;
    emptyEl.hidden = targets.length !== 0;

    var overall = (data.transitions || []).slice(-20);
    var key = JSON.stringify(overall.length ? [overall.length, overall[overall.length - 1]] : []);
    if (key !== transKey) {
      transEl.textContent = "";
      for (var i = overall.length - 1; i >= 0; i--) {
        transEl.appendChild(transitionItem(overall[i], true, now));
      }
      notransEl.hidden = overall.length !== 0;
      transKey = key;
    }

    var own = ownProblemsText(data.exporter_problems || []);
    if (ownEl && ownEl.textContent !== own) ownEl.textContent = own;
    if (ownEl) ownEl.hidden = !own;

    updatedEl.setAttribute("data-ts", String(now));
    updatedEl.title = stamp(now);
    applyFilter();
    updateTimes(now);
    body.dataset.generatedAt = String(now);
    body.dataset.renders = String((parseInt(body.dataset.renders, 10) || 0) + 1);
  }

  // page.py's own_problems_text: the exporter's own problems, never a target's state
  function ownProblemsText(problems) {
    if (!problems.length) return "";
    var shown = problems.slice(0, 5).map(function (p) { return String(p.detail || p.kind); });
    var more = problems.length > 5 ? " (and " + (problems.length - 5) + " more)" : "";
    return "The exporter's own problem, not a target's: " + shown.join("; ") + more;
  }

  function pageTitle(counts, total) {
    if (!total) return "llm-heartbeat: no targets";
    var bad = STATES.slice(0, 4).filter(function (s) { return counts[s]; })
      .map(function (s) { return counts[s] + " " + s; });
    if (bad.length) return "llm-heartbeat: " + bad.join(", ");
    return "llm-heartbeat: " + (counts.up || 0) + "/" + total + " up";
  }

  function applyFilter() {
    var q = filterEl.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (entry) {
      var show = (!stateFilter || entry.state === stateFilter) &&
        (!q || entry.hay.indexOf(q) >= 0);
      if (entry.tr.hidden === show) entry.tr.hidden = !show;
      if (show) shown++;
    });
    nomatchEl.hidden = rows.size === 0 || shown > 0;
  }

  // ---- refreshing --------------------------------------------------------------------------
  function showProblem(err) {
    if (!err) {
      if (!problemEl.hidden) problemEl.hidden = true;
      return;
    }
    problemEl.textContent = "Cannot reach the exporter (" +
      (err && err.name === "AbortError" ? "timed out" : String(err && err.message || err)) +
      "). Showing what it said ";
    problemEl.appendChild(timeEl(lastGenerated, "ago", serverNow()));
    problemEl.appendChild(document.createTextNode("; retrying."));
    problemEl.hidden = false;
  }

  function schedule() {
    if (refresh > 0) setTimeout(tick, refresh * 1000);
  }

  function tick() {
    if (document.hidden) {
      waiting = true;
      return;
    }
    var ctrl = new AbortController();
    var timeout = setTimeout(function () { ctrl.abort(); }, Math.max(10, refresh * 2) * 1000);
    fetch("api/v1/targets", { cache: "no-store", signal: ctrl.signal,
      headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (data) {
        render(data);
        showProblem(null);
      })
      .catch(showProblem)
      .then(function () {
        clearTimeout(timeout);
        schedule();
      });
  }

  // ---- start: adopt the server-rendered rows -----------------------------------------------
  Array.prototype.forEach.call(rowsEl.querySelectorAll("tr.target"), function (tr) {
    var name = tr.getAttribute("data-name");
    var text = function (sel) {
      var e = tr.querySelector(sel);
      return e ? e.textContent : "";
    };
    rows.set(name, { tr: tr, key: null, state: tr.getAttribute("data-state"),
      hay: haystack(name, text(".model"), text(".url")) });
    order.push(name);
  });

  summaryEl.addEventListener("click", function (ev) {
    var btn = ev.target.closest("button[data-filter]");
    if (!btn) return;
    stateFilter = btn.getAttribute("data-filter");
    summaryEl.querySelectorAll("button[data-filter]").forEach(function (b) {
      b.setAttribute("aria-pressed", b === btn ? "true" : "false");
    });
    applyFilter();
  });
  filterEl.addEventListener("input", applyFilter);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && waiting) {
      waiting = false;
      tick();
    }
  });

  applyFilter();
  updateTimes(serverNow());
  schedule();
})();
