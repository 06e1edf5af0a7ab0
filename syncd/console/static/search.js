// Search: an image chosen or dropped is shown and sent at once; hits show score, thumbnail,
// library and paths; an error is shown once, in the error style.
"use strict";
(function () {
  const { counted } = window.syncd;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const form = document.getElementById("search-form");
  const input = document.getElementById("image");
  const drop = document.getElementById("drop");
  const state = document.getElementById("search-state");
  const table = document.getElementById("hits-table");
  const list = document.getElementById("hits");
  const preview = document.getElementById("query-preview");
  let previewUrl = null;

  function say(text, error) {
    state.textContent = text;
    state.className = error ? "error" : "muted";
    if (error) state.setAttribute("role", "alert"); else state.setAttribute("role", "status");
  }

  function showPreview(file) {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    preview.alt = `the image searched with: ${file.name}`;
    preview.hidden = false;
  }

  async function search(file) {
    const started = performance.now();
    showPreview(file);
    list.replaceChildren();
    table.hidden = true;
    list.removeAttribute("data-done");
    say(`Searching with ${file.name}…`, false);
    const body = new FormData();
    body.append("image", file, file.name);
    body.append("library", document.getElementById("library").value);
    body.append("top", document.getElementById("top").value || "10");
    body.append("min_score", document.getElementById("min_score").value || "0");
    let answer;
    try {
      answer = await fetch("/search/hits", {
        method: "POST", body, credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
      });
    } catch (err) {
      say("Cannot reach the console.", true);
      list.dataset.done = "error";
      return;
    }
    const data = await answer.json().catch(() => ({ error: `HTTP ${answer.status}` }));
    if (!answer.ok) {
      say(data.error || `HTTP ${answer.status}`, true);
      list.dataset.done = "error";
      return;
    }
    for (const hit of data) list.appendChild(hitRow(hit));
    table.hidden = !data.length;
    const ms = Math.round(performance.now() - started);
    say(data.length ? `${counted(data.length, "hit")} (${ms} ms)` : `No hit (${ms} ms).`, false);
    list.dataset.ms = String(ms);
    list.dataset.done = "ok";
  }

  function cell(row, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  // the library a hit is in: its files' libraries, else the one its brief names
  function libraryOf(hit) {
    const names = [...new Set((hit.files || []).map((f) => f.library))];
    if (names.length) return names.join(", ");
    try { return JSON.parse(hit.brief).lib || ""; } catch (err) { return ""; }
  }

  function hitRow(hit) {
    const row = document.createElement("tr");
    row.className = "hit";
    const score = cell(row, "n score");
    score.textContent = Number(hit.score).toFixed(3);
    const thumb = cell(row, "thumb");
    const first = (hit.files || [])[0];
    if (first) {
      const img = document.createElement("img");
      img.className = "thumb";
      img.src = `/thumb/${first.id}`;
      img.alt = first.path;
      thumb.appendChild(img);
    }
    cell(row, "library").textContent = libraryOf(hit);
    const paths = cell(row, "paths");
    const shown = (hit.files || []).map((f) => f.path);
    for (const path of shown.length ? shown : [`(not a file syncd knows) ${hit.brief}`]) {
      const line = document.createElement("div");
      line.className = "path";
      line.textContent = path;
      paths.appendChild(line);
    }
    return row;
  }

  input.addEventListener("change", () => { if (input.files.length) search(input.files[0]); });
  form.addEventListener("submit", (event) => { event.preventDefault(); if (input.files.length) search(input.files[0]); });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) search(file);
  });
})();
