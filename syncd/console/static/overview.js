// Overview: refresh the numbers and the account's rate from /api/status, each library's last
// activity from /api/activity?limit=0 (its times only, no list of calls) and the chart from
// /api/calls at once, then every 5 s. Times and counts are worded by common.js.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const KEYS = ["files", "items", "synced", "pending", "failed", "held_deletes"];
  const { absolute, counted, when } = window.syncd;

  function el(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function drawChart(firstMinute, calls) {
    const box = document.getElementById("chart");
    if (!box) return;
    const w = Math.max(300, box.clientWidth || 600), h = 160, pad = 24;
    const peak = Math.max(1, ...calls);
    const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": "API calls per minute over the last hour" });
    const step = (w - pad) / calls.length;
    calls.forEach((n, i) => {
      const bh = (h - pad) * n / peak;
      const bar = el("rect", { class: "bar", x: pad + i * step + 1, y: h - pad - bh, width: Math.max(1, step - 2), height: bh });
      const minute = new Date((firstMinute + i) * 60000);
      bar.appendChild(el("title", {}, `${absolute(minute.getTime() / 1000).slice(11, 16)} UTC: ${counted(n, "call")}`));
      svg.appendChild(bar);
    });
    svg.appendChild(el("text", { x: 2, y: 10 }, String(peak)));
    svg.appendChild(el("text", { x: 2, y: h - pad }, "0"));
    svg.appendChild(el("text", { x: pad, y: h - 6 }, "-60 min"));
    svg.appendChild(el("text", { x: w - 30, y: h - 6 }, "now"));
    box.replaceChildren(svg);
  }

  function setText(id, value) {
    const node = document.getElementById(id);
    if (node) node.textContent = value === undefined || value === null ? "" : String(value);
  }

  // how the root is watched and whether the library is healthy, as the page first showed it
  function healthText(h) {
    return h ? `${h.watch ? h.watch + ", " : ""}${h.ok ? "ok" : "degraded"}` : "";
  }

  function stateText(lib) {
    return lib.pending ? `${counted(lib.pending, "file")} to sync` : "up to date";
  }

  // as the server words it (text.py rate_text): "now 3 calls/s, 10 from 19:00 (UTC+8)"
  function rateText(rate) {
    if (!rate) return "";
    const now = `now ${rate.calls_per_second} calls/s`;
    return rate.next ? `${now}, ${rate.next.calls_per_second} from ${rate.next.at_utc8} (UTC+8)` : `${now}, all day`;
  }

  function showActivity(activity) {
    const last = (activity && activity.last_by_library) || {};
    for (const row of document.querySelectorAll("#libraries tr[data-library]")) {
      const cell = row.querySelector('[data-key="last_activity"]');
      const at = last[row.dataset.library];
      if (!cell || at === undefined) continue;
      cell.replaceChildren(when(at));
    }
  }

  function showStatus(doc) {
    const health = new Map(((doc.health && doc.health.libraries) || []).map((h) => [h.name, h]));
    for (const lib of doc.libraries || []) {
      const row = document.querySelector(`tr[data-library="${CSS.escape(lib.name)}"]`);
      if (!row) continue;
      for (const key of KEYS) {
        const cell = row.querySelector(`[data-key="${key}"]`);
        if (cell) cell.textContent = String(lib[key]);
      }
      const state = row.querySelector('[data-key="state"]');
      if (state) state.textContent = stateText(lib);
      const cell = row.querySelector('[data-key="health"]');
      if (cell) cell.textContent = healthText(health.get(lib.name));
      const bar = row.querySelector("progress");
      if (bar) { bar.max = Math.max(lib.files, 1); bar.value = lib.synced; }
      const pct = row.querySelector(".pct");
      if (pct) pct.textContent = `${lib.files ? Math.round(1000 * lib.synced / lib.files) / 10 : 0} %`;
    }
    const states = document.getElementById("states");
    if (states) {
      const lines = [];
      if (doc.paused) lines.push(["alert", `calls paused: ${doc.paused.reason || JSON.stringify(doc.paused)}`]);
      for (const [gallery, stop] of Object.entries(doc.fatal || {})) {
        lines.push(["alert stopped", `gallery ${gallery} stopped: ${stop.reason || JSON.stringify(stop)}`]);
      }
      for (const lib of health.values()) {
        for (const r of lib.reasons || []) {
          lines.push(r.accepted ? ["muted accepted", `library ${lib.name}: ${r.detail} (accepted)`]
            : ["alert degraded", `library ${lib.name}: ${r.detail}`]);
        }
      }
      states.replaceChildren(...lines.map(([cls, text]) => {
        const p = document.createElement("p"); p.className = cls; p.textContent = text; return p;
      }));
    }
    const budget = document.getElementById("budget");
    if (budget) {
      budget.hidden = !doc.budget;
      if (doc.budget) {
        setText("budget-used", doc.budget.used); setText("budget-limit", counted(doc.budget.limit, "call"));
        document.getElementById("budget-resets").replaceChildren(when(doc.budget.resets_at));
      }
    }
    const hosts = document.getElementById("hosts");
    if (hosts) {
      hosts.hidden = !(doc.hosts && doc.hosts.length);
      const rows = (doc.hosts || []).map((host) => {
        const tr = document.createElement("tr");
        for (const value of [host.name, when(host.last_seen), (host.libraries || []).join(", ")]) {
          const td = document.createElement("td");
          if (value instanceof Node) td.appendChild(value); else td.textContent = String(value ?? "");
          tr.appendChild(td);
        }
        return tr;
      });
      document.getElementById("hosts-rows").replaceChildren(...rows);
    }
    const asOf = document.getElementById("as-of");
    if (asOf && doc.as_of) asOf.replaceChildren("As of ", when(doc.as_of));
    if (doc.rate) setText("rate-text", rateText(doc.rate));
    setText("updated", `Updated ${absolute(Date.now() / 1000)}.`);
  }

  async function refresh() {
    try {
      const [status, calls, activity] = await Promise.all([
        fetch("/api/status", { credentials: "same-origin" }),
        fetch("/api/calls", { credentials: "same-origin" }),
        fetch("/api/activity?limit=0", { credentials: "same-origin" }),
      ]);
      if (status.status === 401) { window.location.assign("/login"); return; }
      if (status.ok) showStatus(await status.json());
      if (activity.ok) showActivity(await activity.json());
      if (calls.ok) { const c = await calls.json(); drawChart(c.first_minute, c.calls); }
    } catch (err) {
      setText("updated", "Cannot reach the console; retrying.");
    }
  }

  const box = document.getElementById("chart");
  if (box) {
    drawChart(Number(box.dataset.firstMinute), (box.dataset.calls || "").split(",").filter(Boolean).map(Number));
  }
  refresh();  // the page may show a snapshot of a big ledger: ask for the newest at once
  setInterval(refresh, 5000);
})();
