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
    renderCharts(document);
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

  function renderCharts(root) {
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
      if (existing) { existing.destroy(); }
      var spec = JSON.parse(canvas.getAttribute("data-chart"));
      var round = spec.type === "doughnut";
      var chart = new window.Chart(canvas, {
        type: spec.type,
        data: {
          labels: spec.labels,
          datasets: spec.series.map(function (series, index) {
            var color = palette[index % palette.length];
            return {
              label: series.label,
              data: series.data,
              backgroundColor: round ? palette.slice(0, series.data.length) : color,
              borderColor: round ? "transparent" : color,
              borderWidth: round ? 0 : 2,
              pointRadius: 0,
              tension: 0.25,
            };
          }),
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          plugins: { legend: { labels: { color: text, boxWidth: 12 } } },
          scales: round ? {} : {
            x: { ticks: { color: text, maxRotation: 0, autoSkip: true }, grid: { color: grid } },
            y: { ticks: { color: text }, grid: { color: grid }, beginAtZero: true },
          },
        },
      });
      charts.push(chart);
    });
  }

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

  document.addEventListener("DOMContentLoaded", function () { renderCharts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { renderCharts(event.target); });
})();
