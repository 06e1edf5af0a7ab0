// Search: an image chosen or dropped is sent at once; hits show score, thumbnail and paths.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const form = document.getElementById("search-form");
  const input = document.getElementById("image");
  const drop = document.getElementById("drop");
  const state = document.getElementById("search-state");
  const list = document.getElementById("hits");

  async function search(file) {
    const started = performance.now();
    list.replaceChildren();
    list.removeAttribute("data-done");
    state.textContent = `Searching with ${file.name}…`;
    const body = new FormData();
    body.append("image", file, file.name);
    body.append("library", document.getElementById("library").value);
    body.append("top", document.getElementById("top").value || "10");
    let answer;
    try {
      answer = await fetch("/search/hits", {
        method: "POST", body, credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
      });
    } catch (err) {
      state.textContent = "Cannot reach the console.";
      return;
    }
    const data = await answer.json().catch(() => ({ error: `HTTP ${answer.status}` }));
    if (!answer.ok) {
      state.textContent = data.error || `HTTP ${answer.status}`;
      list.dataset.done = "error";
      return;
    }
    for (const hit of data) list.appendChild(hitItem(hit));
    const ms = Math.round(performance.now() - started);
    state.textContent = data.length ? `${data.length} hits (${ms} ms)` : `No hit (${ms} ms).`;
    list.dataset.ms = String(ms);
    list.dataset.done = "ok";
  }

  function hitItem(hit) {
    const li = document.createElement("li");
    li.className = "hit";
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = Number(hit.score).toFixed(3);
    li.appendChild(score);
    const first = (hit.files || [])[0];
    if (first) {
      const img = document.createElement("img");
      img.src = `/thumb/${first.id}`;
      img.alt = first.path;
      li.appendChild(img);
    }
    const paths = document.createElement("div");
    const shown = (hit.files || []).map((f) => f.path);
    for (const path of shown.length ? shown : [`(not a file syncd knows) ${hit.brief}`]) {
      const line = document.createElement("div");
      line.className = "path";
      line.textContent = path;
      paths.appendChild(line);
    }
    li.appendChild(paths);
    return li;
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
