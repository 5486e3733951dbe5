// loadgen dashboard: renders the controller's snapshots, pushed over
// Server-Sent Events (`/api/stream`), and drives runs through the JSON API.
//
// Everything the page shows comes from the latest snapshot, so a reload (or a
// reconnect after the server restarted) shows the run in progress. Only the
// chart history is sent incrementally: the first event of a connection carries
// all of it (`history_full: true`), later ones only the newest points.
"use strict";

(function () {
  var HISTORY_LIMIT = 3600;
  var $ = function (id) { return document.getElementById(id); };

  var state = {
    snap: null,
    history: [],          // accumulated HistoryPoint objects
    touched: {},          // start-form fields the user typed in: never overwritten
    startOpen: false,     // "New test" pressed after a stopped run
    editOpen: false,
    prevUpstream: null,   // {t, byKey: {key: requests}} for per-second rates
    upstreamRates: {},
    charts: {},
    activeTab: "tab-stats",
  };

  // ---- formatting ---------------------------------------------------------
  var intFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  function fmtInt(n) { return n == null || !isFinite(n) ? "–" : intFmt.format(Math.round(n)); }
  function fmtMs(n) {
    if (n == null || !isFinite(n)) return "–";
    if (n >= 100) return intFmt.format(Math.round(n));
    if (n >= 10) return n.toFixed(1);
    return n.toFixed(2);
  }
  function fmtRate(n) { return n == null || !isFinite(n) ? "–" : n >= 100 ? intFmt.format(Math.round(n)) : n.toFixed(1); }
  function fmtPct(ratio) { return ratio == null || !isFinite(ratio) ? "–" : (ratio * 100).toFixed(ratio > 0 && ratio < 0.001 ? 3 : 1) + "%"; }
  function pctLabel(q) {
    var p = q * 100;
    return (Math.abs(p - Math.round(p)) < 1e-9 ? String(Math.round(p)) : String(+p.toFixed(3))) + "%";
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function td(text, cls) { return el("td", cls, text); }
  function emptyRow(tbody, cols, text) {
    var tr = el("tr", "empty"); var c = td(text); c.colSpan = cols; tr.appendChild(c); tbody.replaceChildren(tr);
  }

  // ---- API ------------------------------------------------------------------
  function post(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body || {}),
    }).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!res.ok) {
          var msg = data && data.error ? data.error : "request failed with HTTP " + res.status;
          throw new Error(msg);
        }
        return data;
      });
    }, function () { throw new Error("the loadgen server is not reachable"); });
  }

  function showBanner(msg) {
    var b = $("banner");
    if (!msg) { b.hidden = true; b.textContent = ""; return; }
    b.textContent = msg; b.hidden = false;
  }

  // ---- validation -----------------------------------------------------------
  function setFieldError(input, errEl, msg) {
    errEl.textContent = msg || "";
    if (msg) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    return !msg;
  }
  function validateUsers(input, errEl) {
    var v = input.value.trim();
    if (v === "") return setFieldError(input, errEl, input.validity.badInput ? "Number of users must be a whole number." : "Enter the number of users.");
    var n = Number(v);
    if (!isFinite(n) || Math.floor(n) !== n) return setFieldError(input, errEl, "Number of users must be a whole number.");
    if (n < 1) return setFieldError(input, errEl, "Number of users must be at least 1 (got " + v + ").");
    if (n > 1000000) return setFieldError(input, errEl, "Number of users must be at most 1,000,000.");
    return setFieldError(input, errEl, "");
  }
  function validateRate(input, errEl) {
    var v = input.value.trim();
    if (v === "") return setFieldError(input, errEl, "Enter a spawn rate.");
    var n = Number(v);
    if (!isFinite(n) || n <= 0) return setFieldError(input, errEl, "Spawn rate must be a number above 0 (users per second).");
    return setFieldError(input, errEl, "");
  }
  function validateHost(input, errEl) {
    var v = input.value.trim();
    if (v === "") return setFieldError(input, errEl, "Enter the host to load, e.g. http://127.0.0.1:8000.");
    var u = null;
    try { u = new URL(v); } catch (e) { u = null; }
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:") || !u.hostname) {
      return setFieldError(input, errEl, "Host must be an http:// or https:// URL, e.g. http://127.0.0.1:8000.");
    }
    return setFieldError(input, errEl, "");
  }
  var RUN_TIME_RE = /^\s*(\d+(\.\d+)?\s*(ns|us|ms|s|secs?|m|mins?|h|hrs?|d|days?)?\s*)+$/i;
  function validateRunTime(input, errEl) {
    var v = input.value.trim();
    if (v === "" || RUN_TIME_RE.test(v)) return setFieldError(input, errEl, "");
    return setFieldError(input, errEl, "Run time must look like 30s, 5m or 1h30m (or stay empty).");
  }

  function wireValidation(pairs) {
    pairs.forEach(function (p) {
      var input = $(p[0]), err = $(p[1]), fn = p[2];
      input.addEventListener("blur", function () { if (input.value !== "") fn(input, err); });
      input.addEventListener("input", function () { if (input.getAttribute("aria-invalid")) fn(input, err); });
    });
  }

  // ---- forms ----------------------------------------------------------------
  function onStart(ev) {
    ev.preventDefault();
    $("e-start").textContent = "";
    var ok = [
      validateUsers($("f-users"), $("e-users")),
      validateRate($("f-rate"), $("e-rate")),
      validateHost($("f-host"), $("e-host")),
      validateRunTime($("f-time"), $("e-time")),
    ];
    var firstBad = ["f-users", "f-rate", "f-host", "f-time"].filter(function (_, i) { return !ok[i]; })[0];
    if (firstBad) { $(firstBad).focus(); return; }
    // run_time is always sent: an empty field means "until stopped", while a
    // missing one would mean the plan's run time.
    var body = {
      users: Number($("f-users").value),
      spawn_rate: Number($("f-rate").value),
      host: $("f-host").value.trim(),
      run_time: $("f-time").value.trim(),
    };
    var btn = $("btn-start"); btn.disabled = true;
    post("/api/start", body).then(function () {
      state.startOpen = false; state.touched["f-host"] = false;
      showBanner(null);
      setTab("tab-stats");
    }, function (e) {
      $("e-start").textContent = e.message;
    }).then(function () { btn.disabled = false; });
  }

  function onEdit(ev) {
    ev.preventDefault();
    $("e-edit").textContent = "";
    var ok1 = validateUsers($("e-f-users"), $("e-e-users"));
    var ok2 = validateRate($("e-f-rate"), $("e-e-rate"));
    if (!ok1) { $("e-f-users").focus(); return; }
    if (!ok2) { $("e-f-rate").focus(); return; }
    var btn = $("btn-apply"); btn.disabled = true;
    post("/api/users", { users: Number($("e-f-users").value), spawn_rate: Number($("e-f-rate").value) }).then(function () {
      state.editOpen = false; showBanner(null); render();
    }, function (e) { $("e-edit").textContent = e.message; }).then(function () { btn.disabled = false; });
  }

  function simpleAction(path, btn) {
    btn.disabled = true;
    post(path).then(function () { showBanner(null); }, function (e) { showBanner(e.message); })
      .then(function () { btn.disabled = false; });
  }

  // The start form starts from the plan loadgen was started with (-u -r -t
  // -H, or the scenario's load: and host:), as Locust's form does. Fields the
  // user already typed in are left alone.
  function loadDefaults() {
    fetch("/api/defaults", { headers: { "Accept": "application/json" } }).then(function (res) {
      return res.ok ? res.json() : null;
    }).then(function (d) {
      if (!d) return;
      [["f-users", d.users], ["f-rate", d.spawn_rate], ["f-host", d.host], ["f-time", d.run_time]].forEach(function (f) {
        if (f[1] != null && !state.touched[f[0]]) $(f[0]).value = String(f[1]);
      });
      $("start-form").dataset.defaults = "loaded";
    }, function () { /* the form keeps its built-in values */ });
  }

  // ---- tabs -------------------------------------------------------------------
  function tabs() { return Array.prototype.slice.call(document.querySelectorAll('[role="tab"]')); }
  function setTab(id, focus) {
    state.activeTab = id;
    tabs().forEach(function (t) {
      var on = t.id === id;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
      if (on && focus) t.focus();
    });
    if (id === "tab-charts") { ensureCharts(); resizeCharts(); updateCharts(); }
  }
  function wireTabs() {
    tabs().forEach(function (t, i, all) {
      t.addEventListener("click", function () { setTab(t.id); });
      t.addEventListener("keydown", function (e) {
        var j = null;
        if (e.key === "ArrowRight") j = (i + 1) % all.length;
        else if (e.key === "ArrowLeft") j = (i - 1 + all.length) % all.length;
        else if (e.key === "Home") j = 0;
        else if (e.key === "End") j = all.length - 1;
        if (j !== null) { e.preventDefault(); setTab(all[j].id, true); }
      });
    });
  }

  // ---- rendering ----------------------------------------------------------------
  function render() {
    var s = state.snap;
    if (!s) return;
    var running = s.state === "running" || s.state === "spawning";

    $("h-host").textContent = s.host || "–";
    $("h-host").title = s.host || "";
    var st = $("h-state");
    st.textContent = s.state;
    st.className = "state state-" + s.state;
    $("h-users").textContent = s.target_users && s.target_users !== s.user_count && running
      ? fmtInt(s.user_count) + " → " + fmtInt(s.target_users) : fmtInt(s.user_count);
    // The snapshot's rate covers the last 10 s of requests; once the users
    // are stopped nothing is sent any more, so the header says 0.
    $("h-rps").textContent = running ? fmtRate(s.total_rps) : "0";
    $("h-fail").textContent = fmtPct(s.fail_ratio);
    var anyRequests = (s.stats || []).some(function (r) { return r.num_requests > 0; });
    $("h-lat").textContent = anyRequests
      ? fmtMs(s.current_response_time_p50) + " / " + fmtMs(s.current_response_time_p95) : "– / –";

    if (running) state.startOpen = false; else state.editOpen = false;
    var showStart = s.state === "ready" || (s.state === "stopped" && state.startOpen);
    $("start-panel").hidden = !showStart;
    $("btn-start-cancel").hidden = s.state !== "stopped";
    $("edit-panel").hidden = !(running && state.editOpen);
    $("btn-edit").hidden = !running;
    $("btn-stop").hidden = !running;
    $("btn-new").hidden = !(s.state === "stopped" && !state.startOpen);

    var hostInput = $("f-host");
    if (!state.touched["f-host"] && document.activeElement !== hostInput && s.host && hostInput.value !== s.host) hostInput.value = s.host;

    renderWarnings(s.warnings || []);
    renderStats(s.stats || []);
    renderFailures(s.failures || []);
    renderCodes(s.status_codes || []);
    renderUpstreams(s.upstreams);
    if (state.activeTab === "tab-charts") updateCharts();
  }

  function renderWarnings(ws) {
    var ul = $("warnings");
    ul.hidden = ws.length === 0;
    ul.replaceChildren.apply(ul, ws.map(function (w) { return el("li", null, w); }));
  }

  // The CSV's columns, with short headings; the full name is the tooltip.
  var FIXED_COLS = [
    ["Type", "", "HTTP method"], ["Name", "", "Request name"], ["# Requests", "num", "Request count"],
    ["# Fails", "num", "Failure count"], ["Median", "num", "Median response time (ms)"],
    ["Average", "num", "Average response time (ms)"], ["Min", "num", "Min response time (ms)"],
    ["Max", "num", "Max response time (ms)"], ["Avg size", "num", "Average content size (bytes)"],
    ["RPS", "num", "Requests/s, last 10 s"], ["Failures/s", "num", "Failures/s, last 10 s"],
  ];
  var lastHeadKey = "";
  function renderStats(rows) {
    var qs = rows.length && rows[0].percentiles ? rows[0].percentiles.map(function (p) { return p[0]; }) : [];
    var headKey = qs.join(",");
    if (headKey !== lastHeadKey || !$("stats-head").children.length) {
      lastHeadKey = headKey;
      var cells = FIXED_COLS.map(function (c) { var th = el("th", c[1], c[0]); th.scope = "col"; th.title = c[2]; return th; });
      qs.forEach(function (q) {
        var th = el("th", "num pct", pctLabel(q)); th.scope = "col"; th.title = pctLabel(q) + " percentile (ms)"; cells.push(th);
      });
      $("stats-head").replaceChildren.apply($("stats-head"), cells);
    }
    var body = $("stats-body");
    if (!rows.length) { emptyRow(body, FIXED_COLS.length + qs.length, "No requests yet."); return; }
    var trs = rows.map(function (r, i) {
      var total = i === rows.length - 1 && r.name === "Aggregated";
      var tr = el("tr", total ? "total" : null);
      tr.appendChild(td(r.method || ""));
      tr.appendChild(td(r.name, "name"));
      tr.appendChild(td(fmtInt(r.num_requests), "num"));
      tr.appendChild(td(fmtInt(r.num_failures), "num" + (r.num_failures > 0 ? " fails-nonzero" : "")));
      tr.appendChild(td(fmtMs(r.median_response_time), "num"));
      tr.appendChild(td(fmtMs(r.avg_response_time), "num"));
      tr.appendChild(td(fmtMs(r.min_response_time), "num"));
      tr.appendChild(td(fmtMs(r.max_response_time), "num"));
      tr.appendChild(td(fmtInt(r.avg_content_length), "num"));
      tr.appendChild(td(fmtRate(r.current_rps), "num"));
      tr.appendChild(td(fmtRate(r.current_fail_per_sec), "num"));
      (r.percentiles || []).forEach(function (p) { tr.appendChild(td(fmtMs(p[1]), "num")); });
      return tr;
    });
    body.replaceChildren.apply(body, trs);
  }

  function renderFailures(fs) {
    var body = $("failures-body");
    var total = fs.reduce(function (a, f) { return a + (f.occurrences || 0); }, 0);
    var badge = $("fail-count");
    badge.hidden = total === 0;
    badge.textContent = fmtInt(total);
    if (!fs.length) { emptyRow(body, 4, "No failures."); return; }
    var sorted = fs.slice().sort(function (a, b) { return b.occurrences - a.occurrences; });
    body.replaceChildren.apply(body, sorted.map(function (f) {
      var tr = el("tr");
      tr.appendChild(td(fmtInt(f.occurrences), "num"));
      tr.appendChild(td(f.method || ""));
      tr.appendChild(td(f.name, "name"));
      tr.appendChild(td(typeof f.error === "string" ? f.error : JSON.stringify(f.error), "err"));
      return tr;
    }));
  }

  function renderCodes(codes) {
    var body = $("codes-body");
    if (!codes.length) { emptyRow(body, 3, "No responses yet."); return; }
    var total = codes.reduce(function (a, c) { return a + c[1]; }, 0);
    var sorted = codes.slice().sort(function (a, b) { return a[0] - b[0]; });
    body.replaceChildren.apply(body, sorted.map(function (c) {
      var tr = el("tr");
      tr.appendChild(td(c[0] === 0 ? "no response" : String(c[0]), "code-" + String(c[0]).charAt(0)));
      tr.appendChild(td(fmtInt(c[1]), "num"));
      tr.appendChild(td(fmtPct(total ? c[1] / total : 0), "num"));
      return tr;
    }));
  }

  function renderUpstreams(u) {
    var box = $("upstreams");
    var groups = u && Array.isArray(u.upstreams) ? u.upstreams : null;
    $("upstreams-empty").hidden = !!groups;
    if (!groups) { box.replaceChildren(); return; }

    // Per-second rates from the difference between two consecutive snapshots.
    var now = Date.now(), byKey = {};
    groups.forEach(function (g) { (g.servers || []).forEach(function (srv) { byKey[g.name + "|" + srv.id] = srv.requests || 0; }); });
    var prev = state.prevUpstream;
    if (prev && now - prev.t >= 500) {
      var dt = (now - prev.t) / 1000;
      state.upstreamRates = {};
      Object.keys(byKey).forEach(function (k) {
        if (k in prev.byKey) state.upstreamRates[k] = Math.max(0, byKey[k] - prev.byKey[k]) / dt;
      });
    }
    if (!prev || now - prev.t >= 500) state.prevUpstream = { t: now, byKey: byKey };

    var parts = [];
    if (u.algorithm) parts.push(el("p", "muted", "Balancing algorithm: " + u.algorithm));
    groups.forEach(function (g) {
      var sec = el("section", "upstream");
      var total = (g.servers || []).reduce(function (a, s) { return a + (s.requests || 0); }, 0);
      sec.appendChild(el("h3", null, "Upstream " + g.name + " · " + fmtInt(total) + " requests" +
        (g.queue_depth ? " · queue " + fmtInt(g.queue_depth) : "")));
      var grid = el("div", "share-grid");
      sec.appendChild(grid);
      (g.servers || []).forEach(function (srv) {
        var share = total ? (srv.requests || 0) / total : 0;
        var row = el("div", "share-row st-" + (srv.state || "up"));
        row.setAttribute("role", "group");
        var name = el("div", "share-name");
        name.appendChild(document.createTextNode(srv.addr || ("#" + srv.id)));
        name.appendChild(el("span", "srv-state " + (srv.state || "up"), srv.state || "up"));
        name.title = (srv.addr || "") + " weight " + (srv.weight == null ? "?" : srv.weight);
        var bar = el("div", "share-bar");
        bar.setAttribute("role", "meter");
        bar.setAttribute("aria-valuemin", "0");
        bar.setAttribute("aria-valuemax", "100");
        bar.setAttribute("aria-valuenow", (share * 100).toFixed(1));
        bar.setAttribute("aria-label", "share of requests to " + (srv.addr || srv.id));
        var fill = el("div", "share-fill");
        fill.style.width = (share * 100).toFixed(2) + "%";
        bar.appendChild(fill);
        var rate = state.upstreamRates[g.name + "|" + srv.id];
        var nums = el("div", "share-nums",
          fmtPct(share) + " · " + fmtInt(srv.requests) + " req" +
          (rate != null ? " · " + fmtRate(rate) + " req/s" : "") +
          " · " + fmtMs(srv.latency_avg_ms) + " ms avg · " + fmtInt(srv.active) + " active" +
          (srv.failures ? " · " + fmtInt(srv.failures) + " failed" : ""));
        var cell = el("div", "share-cell");
        cell.appendChild(bar);
        row.appendChild(name); row.appendChild(cell); row.appendChild(nums);
        grid.appendChild(row);
      });
      parts.push(sec);
    });
    box.replaceChildren.apply(box, parts);
  }

  // ---- charts -------------------------------------------------------------------
  var COLORS = { rps: "#1a7f37", fail: "#cf222e", p50: "#1f6feb", p95: "#bf8700", p99: "#8250df", users: "#0969da", hist: "#1f6feb" };

  function pad2(n) { return n < 10 ? "0" + n : String(n); }
  function fmtClock(sec) {
    var d = new Date(sec * 1000);
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
  }
  // Axis ticks: short, no trailing zeros (1.5k, 250, 0.5).
  function fmtTick(v) {
    if (v == null) return "";
    var a = Math.abs(v);
    if (a >= 1e6) return +(v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return +(v / 1e3).toFixed(1) + "k";
    return String(+v.toFixed(2));
  }

  // With the mouse away from a chart its legend shows the newest values
  // (uPlot would show dashes), so the charts read at a glance.
  function legendLatest(u) {
    var n = u.data[0].length;
    if (n && !(u.cursor.left >= 0)) u.setLegend({ idx: n - 1 }, false);
  }
  var LATEST_HOOKS = { setCursor: [legendLatest] };
  // The histogram's legend shows its tallest bucket instead.
  function legendPeak(u) {
    var ys = u.data[1] || [], best = -1;
    for (var i = 0; i < ys.length; i++) if (best < 0 || ys[i] > ys[best]) best = i;
    if (best >= 0 && !(u.cursor.left >= 0)) u.setLegend({ idx: best }, false);
  }

  function chartWidth(div) { return Math.max(280, Math.floor(div.clientWidth || div.parentNode.clientWidth || 600)); }
  function chartHeight() { return window.innerWidth < 640 ? 200 : 240; }

  function timeChart(div, series, yLabel, yFmt) {
    var opts = {
      width: chartWidth(div), height: chartHeight(),
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      hooks: LATEST_HOOKS,
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } } },
      axes: [
        { label: "time", stroke: "#5d6675", grid: { stroke: "#eceff3" }, space: 80,
          incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400],
          values: function (u, vals) { return vals.map(fmtClock); } },
        { label: yLabel, stroke: "#5d6675", grid: { stroke: "#eceff3" }, size: 56,
          values: function (u, vals) { return vals.map(fmtTick); } },
      ],
      series: [{ label: "Time", value: function (u, v) { return v == null ? "–" : fmtClock(v); } }].concat(series.map(function (s) {
        return { label: s[0], stroke: s[1], width: 2, points: { show: false },
          value: function (u, v) { return v == null ? "–" : yFmt(v) + s[2]; } };
      })),
    };
    return new uPlot(opts, [[]].concat(series.map(function () { return []; })), div);
  }

  function histLabel(ms) {
    if (ms == null) return "";
    if (ms >= 1000) return +(ms / 1000).toFixed(ms >= 10000 ? 0 : 1) + " s";
    if (ms >= 1) return +ms.toFixed(ms >= 10 ? 0 : 1) + " ms";
    return +ms.toFixed(2) + " ms";
  }

  function histChart(div) {
    var opts = {
      width: chartWidth(div), height: chartHeight(),
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      hooks: { setCursor: [legendPeak] },
      scales: { x: { time: false }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } } },
      axes: [
        { label: "response time (bucket upper bound)", stroke: "#5d6675", grid: { show: false }, space: 64, incrs: [1, 2, 3, 5, 10, 20, 50],
          values: function (u, vals) {
            var b = state.histBounds || [];
            return vals.map(function (i) { return Number.isInteger(i) && b[i] != null ? histLabel(b[i]) : ""; });
          } },
        { label: "requests", stroke: "#5d6675", grid: { stroke: "#eceff3" }, size: 56,
          values: function (u, vals) { return vals.map(fmtTick); } },
      ],
      series: [
        { label: "≤", value: function (u, i) { var b = state.histBounds || []; return i == null || b[i] == null ? "–" : histLabel(b[i]); } },
        { label: "Requests", stroke: COLORS.hist, fill: "rgba(31,111,235,0.35)", width: 1, points: { show: false },
          paths: uPlot.paths.bars({ size: [0.9, 40] }),
          value: function (u, v) { return v == null ? "–" : fmtInt(v); } },
      ],
    };
    return new uPlot(opts, [[], []], div);
  }

  function ensureCharts() {
    if (state.charts.rps || typeof uPlot === "undefined") return;
    state.charts.rps = timeChart($("chart-rps"), [["RPS", COLORS.rps, " req/s"], ["Failures/s", COLORS.fail, " fail/s"]], "requests / s", fmtRate);
    state.charts.lat = timeChart($("chart-lat"), [["p50", COLORS.p50, " ms"], ["p95", COLORS.p95, " ms"], ["p99", COLORS.p99, " ms"]], "ms", fmtMs);
    state.charts.users = timeChart($("chart-users"), [["Users", COLORS.users, ""]], "users", fmtInt);
    state.charts.hist = histChart($("chart-hist"));
    if (typeof ResizeObserver !== "undefined") {
      var ro = new ResizeObserver(function () { resizeCharts(); });
      ["chart-rps", "chart-lat", "chart-users", "chart-hist"].forEach(function (id) { ro.observe($(id)); });
    }
  }

  function resizeCharts() {
    var map = { rps: "chart-rps", lat: "chart-lat", users: "chart-users", hist: "chart-hist" };
    Object.keys(state.charts).forEach(function (k) {
      var div = $(map[k]);
      if (!div.clientWidth) return;
      var w = chartWidth(div), h = chartHeight(), c = state.charts[k];
      if (Math.abs(c.width - w) > 2 || c.height !== h) c.setSize({ width: w, height: h });
    });
  }

  function updateCharts() {
    if (!state.charts.rps) return;
    var h = state.history;
    var t = new Array(h.length), rps = [], fail = [], p50 = [], p95 = [], p99 = [], users = [];
    for (var i = 0; i < h.length; i++) {
      var p = h[i];
      t[i] = p.time / 1000;
      rps.push(p.rps); fail.push(p.fail_per_sec);
      p50.push(p.p50); p95.push(p.p95); p99.push(p.p99);
      users.push(p.user_count);
    }
    state.charts.rps.setData([t, rps, fail]);
    state.charts.lat.setData([t, p50, p95, p99]);
    state.charts.users.setData([t, users]);
    legendLatest(state.charts.rps); legendLatest(state.charts.lat); legendLatest(state.charts.users);
    ["chart-rps", "chart-lat", "chart-users"].forEach(function (id) { $(id).dataset.points = String(h.length); });

    // Histogram: the snapshot lists only non-empty buckets, log-spaced four
    // per decade. Lay them on that grid, empty buckets included, so that bar
    // positions are proportional to log(latency) and gaps mean "no requests".
    var hist = (state.snap && state.snap.histogram) || [];
    var byStep = {}, lo = Infinity, hi = -Infinity;
    hist.forEach(function (b) {
      if (!(b[0] > 0) || !b[1]) return;
      var k = Math.round(Math.log10(b[0]) * 4);
      byStep[k] = (byStep[k] || 0) + b[1];
      if (k < lo) lo = k;
      if (k > hi) hi = k;
    });
    var bounds = [], xs = [], ys = [];
    if (hi >= lo) {
      for (var k = lo - 1; k <= hi + 1; k++) {
        xs.push(k - lo + 1); bounds.push(Math.pow(10, k / 4)); ys.push(byStep[k] || 0);
      }
    }
    state.histBounds = bounds;
    state.charts.hist.setData([xs, ys]);
    legendPeak(state.charts.hist);
    $("chart-hist").dataset.points = String(hist.length);
  }

  // ---- snapshots ------------------------------------------------------------------
  function applySnapshot(s) {
    if (Array.isArray(s.history)) {
      if (s.history_full || !state.history.length) {
        state.history = s.history.slice();
      } else if (s.history.length) {
        var from = s.history[0].time;
        var h = state.history;
        while (h.length && h[h.length - 1].time >= from) h.pop();
        Array.prototype.push.apply(h, s.history);
      }
      if (state.history.length > HISTORY_LIMIT) state.history.splice(0, state.history.length - HISTORY_LIMIT);
    }
    state.snap = s;
    render();
  }

  function connect() {
    var conn = $("conn");
    var es = new EventSource("/api/stream");
    es.onopen = function () { conn.textContent = "live"; conn.className = "conn live"; };
    es.onmessage = function (ev) {
      var s;
      try { s = JSON.parse(ev.data); } catch (e) { return; }
      applySnapshot(s);
    };
    es.onerror = function () {
      // EventSource reconnects by itself (the server sends `retry:`).
      conn.textContent = "reconnecting…"; conn.className = "conn down";
    };
    window.__dash = { state: state, source: es };
  }

  function init() {
    wireTabs();
    wireValidation([
      ["f-users", "e-users", validateUsers], ["f-rate", "e-rate", validateRate],
      ["f-host", "e-host", validateHost], ["f-time", "e-time", validateRunTime],
      ["e-f-users", "e-e-users", validateUsers], ["e-f-rate", "e-e-rate", validateRate],
    ]);
    ["f-users", "f-rate", "f-host", "f-time"].forEach(function (id) {
      $(id).addEventListener("input", function () { state.touched[id] = true; });
    });
    $("start-form").addEventListener("submit", onStart);
    $("edit-form").addEventListener("submit", onEdit);
    $("btn-stop").addEventListener("click", function () { simpleAction("/api/stop", $("btn-stop")); });
    $("btn-reset").addEventListener("click", function () {
      state.history = [];
      simpleAction("/api/reset", $("btn-reset"));
    });
    $("btn-new").addEventListener("click", function () { state.startOpen = true; render(); $("f-users").focus(); });
    $("btn-start-cancel").addEventListener("click", function () { state.startOpen = false; render(); });
    $("btn-edit").addEventListener("click", function () {
      var s = state.snap || {};
      $("e-f-users").value = s.target_users || s.user_count || 1;
      if (!$("e-f-rate").value) $("e-f-rate").value = $("f-rate").value || 1;
      state.editOpen = true; render(); $("e-f-users").focus();
    });
    $("btn-edit-cancel").addEventListener("click", function () { state.editOpen = false; render(); $("btn-edit").focus(); });
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && state.editOpen) { state.editOpen = false; render(); $("btn-edit").focus(); }
    });
    loadDefaults();
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
