/* LoRAForge dashboard: live "Running now" bars over the progress WebSocket (SPEC 6.5) and a 30 s refresh of the
 * figures through the API. Both are optional: the page is complete without JavaScript, and every failure here is
 * silent (no exceptions, no console output). */
(function () {
  "use strict";

  var REFRESH_MS = 30000;
  var FINISHED_LINGER_MS = 15000;
  var STATUS = { queued: "pending", processing: "running", completed: "succeeded", failed: "failed", cancelled: "cancelled" };
  var TERMINAL = { succeeded: true, failed: true, cancelled: true };

  var body = document.body;
  var list = document.getElementById("running-list");
  var empty = document.getElementById("running-empty");
  var liveDot = document.querySelector("#running-now .live-dot");

  function rawStatus(status) {
    return STATUS[status] || status;
  }

  function cssEscape(value) {
    return String(value).replace(/[^0-9a-zA-Z-]/g, "");
  }

  function rowOf(jobId) {
    return list ? list.querySelector('li[data-job-id="' + cssEscape(jobId) + '"]') : null;
  }

  function syncEmpty() {
    if (empty && list) empty.hidden = list.children.length > 0;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function addRow(jobId, prompt, status) {
    var row = el("li", "job-live");
    row.setAttribute("data-job-id", jobId);
    row.setAttribute("data-status", status);
    var head = el("div", "job-live-head");
    var label = el("span", "job-prompt", prompt || "Job " + String(jobId).slice(0, 8));
    label.title = label.textContent;
    head.appendChild(label);
    head.appendChild(el("span", "status status-" + status, status));
    var bar = el("div", "job-live-bar");
    var progress = el("progress");
    progress.max = 100;
    progress.value = 0;
    progress.setAttribute("data-job-id", jobId);
    progress.setAttribute("aria-label", "Progress of " + label.textContent);
    bar.appendChild(progress);
    bar.appendChild(el("span", "job-percent", "0%"));
    row.appendChild(head);
    row.appendChild(bar);
    list.appendChild(row);
    syncEmpty();
    return row;
  }

  function setStatus(row, status) {
    row.setAttribute("data-status", status);
    var badge = row.querySelector(".status");
    if (badge) {
      badge.className = "status status-" + status;
      badge.textContent = status;
    }
  }

  function setProgress(row, percent) {
    var value = Math.max(0, Math.min(100, Math.round(percent)));
    var progress = row.querySelector("progress");
    if (progress) {
      progress.value = value;
      progress.textContent = value + "%";
    }
    var label = row.querySelector(".job-percent");
    if (label) label.textContent = value + "%";
  }

  function markRecent(jobId, status) {
    var cell = document.querySelector('#recent-jobs tr[data-job-id="' + cssEscape(jobId) + '"] [data-job-status]');
    if (cell) {
      cell.className = "status status-" + status;
      cell.textContent = status;
    }
  }

  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function pad(number) {
    return (number < 10 ? "0" : "") + number;
  }

  function cutPrompt(prompt) {
    return prompt.length <= 60 ? prompt : prompt.slice(0, 60) + "\u2026";
  }

  /* A job that started after the page was drawn goes on top of the recent jobs (ten rows at most). */
  function addRecent(jobId, prompt, status, backend) {
    var tbody = document.querySelector("#recent-jobs tbody");
    if (!tbody || tbody.querySelector('tr[data-job-id="' + cssEscape(jobId) + '"]')) return;
    Array.prototype.forEach.call(tbody.querySelectorAll("tr:not([data-job-id])"), function (row) {
      tbody.removeChild(row);
    });
    var now = new Date();
    var row = el("tr");
    row.setAttribute("data-job-id", jobId);
    var created = el("td", "td-created nowrap");
    var stamp = el("time", "", MONTHS[now.getUTCMonth()] + " " + pad(now.getUTCDate()) + ", " +
      pad(now.getUTCHours()) + ":" + pad(now.getUTCMinutes()));
    stamp.setAttribute("datetime", now.toISOString());
    created.appendChild(stamp);
    var statusCell = el("td", "td-status");
    var badge = el("span", "status status-" + status, status);
    badge.setAttribute("data-job-status", "");
    statusCell.appendChild(badge);
    row.appendChild(created);
    row.appendChild(el("td", "td-kind", "generation"));
    row.appendChild(statusCell);
    row.appendChild(el("td", "td-prompt", cutPrompt(prompt || "")));
    row.appendChild(el("td", "td-backend", backend || ""));
    tbody.insertBefore(row, tbody.firstChild);
    while (tbody.children.length > 10) tbody.removeChild(tbody.lastChild);
  }

  function update(jobId, status, percent, prompt) {
    if (!list || !jobId) return;
    var row = rowOf(jobId);
    if (!row) {
      if (TERMINAL[status]) return markRecent(jobId, status);
      row = addRow(jobId, prompt, status);
    }
    setStatus(row, status);
    if (typeof percent === "number") setProgress(row, percent);
    if (status === "succeeded") setProgress(row, 100);
    markRecent(jobId, status);
    if (TERMINAL[status] && !row.getAttribute("data-finished")) {
      row.setAttribute("data-finished", "true");
      window.setTimeout(function () {
        if (row.parentNode) row.parentNode.removeChild(row);
        syncEmpty();
      }, FINISHED_LINGER_MS);
    }
  }

  function handle(event) {
    var data = (event && event.data) || {};
    switch (event && event.type) {
      case "generation_started":
        addRecent(data.job_id, data.params && data.params.prompt, "running", data.backend);
        update(data.job_id, "running", null, data.params && data.params.prompt);
        break;
      case "progress_update":
        update(data.job_id, rawStatus(data.status), 100 * (Number(data.progress) || 0));
        break;
      case "generation_complete":
        update(data.job_id, rawStatus(data.status), null);
        break;
      case "job_progress":
        if (data.kind === "delivery") update(data.job_id, data.status, 100 * (Number(data.progress) || 0));
        break;
      default:
        break;
    }
  }

  function connect(path, attempt) {
    if (!window.WebSocket || !path) return;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket;
    var opened = false;
    try {
      socket = new window.WebSocket(scheme + window.location.host + path);
    } catch (error) {
      return;
    }
    socket.onopen = function () {
      opened = true;
      if (liveDot) liveDot.hidden = false;
      socket.send(JSON.stringify({ type: "subscribe", job_ids: null, include_previews: false }));
    };
    socket.onmessage = function (message) {
      try {
        handle(JSON.parse(message.data));
      } catch (error) {
        /* a malformed frame is ignored */
      }
    };
    socket.onerror = function () {};
    socket.onclose = function () {
      if (liveDot) liveDot.hidden = true;
      // Reconnect only a socket that worked (a refused one stays closed: no retry storm).
      if (opened && attempt < 5) {
        window.setTimeout(function () { connect(path, attempt + 1); }, 3000 * (attempt + 1));
      }
    };
  }

  /* --- 30 s refresh of the figures through the API (session auth, same origin) ------------------------------ */
  function percentText(value) {
    return value === null || value === undefined ? "\u2014" : Number(value).toFixed(1) + "%";
  }

  function secondsText(value) {
    return value === null || value === undefined ? "\u2014" : Number(value).toFixed(1) + " s";
  }

  function setKpi(key, text) {
    var node = document.querySelector('[data-kpi="' + key + '"] .kpi-value');
    if (node) node.textContent = text;
  }

  function applyData(summary, stats) {
    var kpis = summary.kpis || {};
    var counts = stats.stats || {};
    var health = stats.system_health || {};
    setKpi("total_generations", String(kpis.total_generations));
    setKpi("success_rate", percentText(kpis.success_rate));
    setKpi("avg_generation_time", secondsText(kpis.avg_generation_time));
    setKpi("total_failed", String(kpis.total_failed));
    setKpi("active_loras", kpis.active_loras + " / " + kpis.total_loras);
    setKpi("active_jobs", String(counts.active_jobs));
    setKpi("embeddings_coverage", counts.embeddings_coverage + "%");
    var section = document.getElementById("system-health");
    if (section && health.status) {
      section.setAttribute("data-status", health.status);
      var pill = section.querySelector("[data-health-status]");
      if (pill) {
        pill.className = "pill pill-" + health.status;
        pill.textContent = health.status;
      }
    }
    var block = document.getElementById("dashboard-data");
    if (block) block.textContent = JSON.stringify({ summary: summary, stats: stats }).replace(/</g, "\\u003c");
  }

  function getJson(url) {
    return window.fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  function refresh() {
    if (!window.fetch || !window.Promise) return;
    var range = encodeURIComponent(body.getAttribute("data-range") || "24h");
    Promise.all([getJson("/api/v1/analytics/summary?time_range=" + range), getJson("/api/v1/dashboard/stats")])
      .then(function (bodies) { applyData(bodies[0], bodies[1]); })
      .catch(function () { /* keep the figures on the page */ });
  }

  connect(body.getAttribute("data-progress-socket"), 0);
  window.setInterval(refresh, REFRESH_MS);
})();
