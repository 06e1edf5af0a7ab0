// What every page shares: times and counts worded as the server words them
// (syncd/console/text.py), so a page reads the same before and after it refreshes.
"use strict";
window.syncd = (function () {
  // seconds since the epoch of a number, or of an ISO 8601 time with a zone; else null
  function epochOf(value) {
    if (typeof value === "number" && Number.isFinite(value)) return value;
    if (typeof value === "string" && /(Z|[+-]\d\d:?\d\d)$/.test(value)) {
      const ms = Date.parse(value);
      return Number.isNaN(ms) ? null : ms / 1000;
    }
    return null;
  }

  const pad = (n) => String(n).padStart(2, "0");

  // 2026-12-06 19:40:12 UTC
  function absolute(value) {
    const seconds = epochOf(value);
    if (seconds === null) return value === undefined || value === null ? "" : String(value);
    const d = new Date(Math.floor(seconds) * 1000);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
  }

  // "1 hit", "2 hits"; plural for a noun that does not just take an s
  function counted(n, singular, plural) {
    return `${n} ${n === 1 ? singular : plural || singular + "s"}`;
  }

  // "just now", "40 s ago", "2 min ago", "3 h ago", "2 days ago", "in 5 min"
  function relative(value, now) {
    const seconds = epochOf(value);
    if (seconds === null) return "";
    let delta = (now === undefined ? Date.now() / 1000 : now) - seconds;
    const ahead = delta < 0;
    delta = Math.abs(delta);
    if (delta < 5) return "just now";
    let amount;
    if (delta < 60) amount = `${Math.floor(delta)} s`;
    else if (delta < 3600) amount = `${Math.floor(delta / 60)} min`;
    else if (delta < 86400) amount = `${Math.floor(delta / 3600)} h`;
    else amount = counted(Math.floor(delta / 86400), "day");
    return ahead ? `in ${amount}` : `${amount} ago`;
  }

  // the same markup as the server's macro: <span class="when"><time>…</time> <span class="ago">(…)</span></span>
  function when(value) {
    const box = document.createElement("span");
    const seconds = epochOf(value);
    if (seconds === null && (value === undefined || value === null || value === "")) return box;
    box.className = "when";
    if (seconds !== null) box.dataset.epoch = String(seconds);
    const time = document.createElement("time");
    time.textContent = absolute(value);
    const ago = document.createElement("span");
    ago.className = "ago";
    ago.textContent = `(${relative(value)})`;
    box.append(time, " ", ago);
    return box;
  }

  // keep every "ago" on the page current
  function refreshAgo() {
    for (const node of document.querySelectorAll(".when[data-epoch]")) {
      const ago = node.querySelector(".ago");
      if (ago) ago.textContent = `(${relative(Number(node.dataset.epoch))})`;
    }
  }
  setInterval(refreshAgo, 10000);

  return { epochOf, absolute, relative, counted, when, refreshAgo };
})();
