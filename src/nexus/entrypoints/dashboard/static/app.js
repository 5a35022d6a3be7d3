// Dashboard behaviour: theme switch, filter auto-submit, charts, CSRF header for htmx.
// Loaded as a file (the CSP allows no inline script); everything hangs off data attributes.
(function () {
  "use strict";

  function cookie(name) {
    var match = document.cookie.split("; ").find(function (part) { return part.indexOf(name + "=") === 0; });
    return match ? decodeURIComponent(match.slice(name.length + 1)) : "";
  }

  // Theme: auto (system) -> dark -> light -> auto; kept in localStorage.
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-theme-toggle]");
    if (!toggle) { return; }
    var root = document.documentElement;
    var order = ["auto", "dark", "light"];
    var next = order[(order.indexOf(root.getAttribute("data-theme") || "auto") + 1) % order.length];
    root.setAttribute("data-theme", next);
    try { if (next === "auto") { localStorage.removeItem("nexus-theme"); } else { localStorage.setItem("nexus-theme", next); } } catch (e) { /* ignore */ }
    renderCharts(document, true);
  });

  // Conversation graph: a node (or its label) opens its turn in the transcript beside it,
  // marks the request it stands for, and keeps the turn in the address. Without script the
  // link still scrolls to the turn, which opens with a tap.
  function openTurn(hash, stepId) {
    var turn = hash && hash.indexOf("#turn-") === 0 ? document.getElementById(hash.slice(1)) : null;
    if (!turn) { return false; }
    document.querySelectorAll(".transcript-turn.is-current, .transcript-step.is-current").forEach(function (el) {
      el.classList.remove("is-current");
    });
    turn.open = true;
    turn.classList.add("is-current");
    var step = stepId ? document.getElementById("step-" + stepId) : null;
    if (step) { step.classList.add("is-current"); }
    // Side by side, the transcript scrolls in its own box and the graph stays in view;
    // stacked (narrow screens), the page goes down to the turn.
    var stacked = window.matchMedia("(max-width: 1100px)").matches;
    turn.scrollIntoView({ block: stacked ? "start" : "nearest" });
    if (step && !stacked) { step.scrollIntoView({ block: "nearest" }); }
    return true;
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a.graph-link[data-step]");
    if (!link) { return; }
    var hash = link.getAttribute("href");
    if (openTurn(hash, link.getAttribute("data-step"))) {
      event.preventDefault();
      history.replaceState(null, "", hash);
    }
  });
  document.addEventListener("DOMContentLoaded", function () { openTurn(window.location.hash, null); });

  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) { event.target.form.submit(); }
  });

  // Every state-changing htmx request carries the CSRF token (double-submit cookie).
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["x-csrftoken"] = cookie("nexus_csrf");
  });

  var palette = ["#4f46e5", "#0d9488", "#d97706", "#9333ea", "#dc2626", "#2563eb", "#65a30d", "#db2777", "#0891b2", "#78716c"];
  var charts = [];
  var FEW = 48;  // up to this many buckets, every non-zero point of a line is drawn as a dot

  // A line through one point draws nothing, and a spike one bucket wide among hundreds is a
  // hairline: a non-zero value gets a dot when the buckets are few or when it stands alone.
  function pointRadius(context) {
    var data = context.dataset.data;
    var i = context.dataIndex;
    if (!data[i]) { return 0; }
    return data.length <= FEW || (!data[i - 1] && !data[i + 1]) ? 3 : 0;
  }

  // series.color: a custom property of app.css ("--error"), so the theme's value is used.
  function dataset(spec, series, index, styles) {
    var own = series.color && styles.getPropertyValue(series.color).trim();
    var color = own || palette[index % palette.length];
    if (spec.type === "doughnut") {
      return {
        label: series.label,
        data: series.data,
        backgroundColor: series.data.map(function (_, i) { return palette[i % palette.length]; }),
        borderColor: "transparent",
        borderWidth: 0,
      };
    }
    var many = spec.labels.length > 60;
    var bars = spec.type === "bar";
    return {
      label: series.label,
      // A bar under a pixel high is not seen: every non-zero bar gets 2 px at least. Chart.js
      // gives a zero that length too (across the axis), so a zero is left out (null) instead.
      data: bars ? series.data.map(function (value) { return value || null; }) : series.data,
      minBarLength: bars ? 2 : undefined,
      backgroundColor: color,
      borderColor: color,
      borderWidth: spec.type === "line" ? 2 : 0,
      pointRadius: pointRadius,
      pointHoverRadius: 4,
      tension: 0,  // a curve would dip below zero beside a spike
      // Overlaid bars (errors over their requests) share one full-width slot per bucket, the
      // later series in front; with many buckets the slots touch so a lone bar stays visible.
      grouped: !spec.overlay,
      order: spec.overlay ? -index : index,
      categoryPercentage: many ? 1 : 0.8,
      barPercentage: many ? 1 : 0.9,
    };
  }

  // root: where new canvases are; force: redraw those already drawn too (a theme change).
  function renderCharts(root, force) {
    if (!window.Chart) { return; }
    charts = charts.filter(function (chart) {
      if (document.body.contains(chart.canvas)) { return true; }
      chart.destroy();
      return false;
    });
    var styles = getComputedStyle(document.documentElement);
    var text = styles.getPropertyValue("--muted").trim() || "#666";
    var grid = styles.getPropertyValue("--border").trim() || "#ddd";
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var existing = window.Chart.getChart(canvas);
      if (existing && !force) { return; }
      if (existing) { existing.destroy(); }
      var spec = JSON.parse(canvas.getAttribute("data-chart"));
      var round = spec.type === "doughnut";
      var chart = new window.Chart(canvas, {
        type: spec.type,
        data: {
          labels: spec.labels,
          datasets: spec.series.map(function (series, index) { return dataset(spec, series, index, styles); }),
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          interaction: { mode: round ? "nearest" : "index", intersect: round },
          // The legend in the series' order, whatever their drawing order; a click on an entry
          // hides that series and rescales the axis (Chart.js's own), so small ones can be read.
          plugins: { legend: { labels: { color: text, boxWidth: 12, sort: function (a, b) { return a.datasetIndex - b.datasetIndex; } } } },
          scales: round ? {} : {
            x: { ticks: { color: text, maxRotation: 0, autoSkip: true }, grid: { color: grid } },
            y: { ticks: { color: text }, grid: { color: grid }, beginAtZero: true },
          },
        },
      });
      charts.push(chart);
    });
  }

  // The overview polls its figures (hx-trigger "every 10s"): not while the tab is hidden, and
  // at once when it is shown again.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (document.hidden && event.detail.elt.hasAttribute("data-refresh")) { event.preventDefault(); }
  });
  document.addEventListener("visibilitychange", function () {
    var polled = document.querySelector("[data-refresh]");
    if (!document.hidden && polled && window.htmx) { window.htmx.trigger(polled, "nexus:refresh"); }
  });

  // Live view: connection indicator, status from the server, bounded table.
  function connection(state, text) {
    var indicator = document.querySelector("[data-connection]");
    if (!indicator) { return; }
    indicator.classList.remove("connected", "disconnected");
    if (state) { indicator.classList.add(state); }
    indicator.textContent = text;
  }
  document.addEventListener("htmx:sseOpen", function () { connection("connected", "connected"); });
  document.addEventListener("htmx:sseError", function () { connection("disconnected", "reconnecting…"); });
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var message = event.detail;
    if (message.type === "status") {
      event.preventDefault();
      if (message.data === "live") { connection("connected", "connected"); } else { connection("disconnected", "database unreachable"); }
    } else if (message.type === "gap") {
      event.preventDefault();
      window.location.reload();
    }
  });
  document.addEventListener("htmx:sseMessage", function () {
    var rows = document.getElementById("live-rows");
    if (!rows) { return; }
    var keep = parseInt(rows.getAttribute("data-keep") || "50", 10);
    while (rows.children.length > keep) { rows.removeChild(rows.lastElementChild); }
  });

  document.addEventListener("DOMContentLoaded", function () { renderCharts(document, false); });
  // An outerHTML swap's target has left the page: draw what is new in it, wherever it is.
  document.addEventListener("htmx:afterSwap", function (event) {
    renderCharts(document.body.contains(event.target) ? event.target : document, false);
  });
})();
