// The Functions table: counts and progress, inline settings, start/stop, enable/disable, the
// build log and delete. Shares state and helpers with app.js.
"use strict";

const EDITABLE = [
  // [field, label, parse, step]
  ["maximum_concurrency", "Concurrency", (v) => parseInt(v, 10), "1"],
  ["cpus", "CPUs", (v) => parseFloat(v), "0.25"],
  ["memory", "Memory (MB)", (v) => parseInt(v, 10), "512"],
  ["timeout", "Timeout (s)", (v) => parseInt(v, 10), "1"],
  ["retry_count", "Retries", (v) => parseInt(v, 10), "1"],
];
const FIRST_EDIT = 4; // cells before the editable ones
const ENABLED_CELL = FIRST_EDIT + EDITABLE.length;
const ACTIONS_CELL = ENABLED_CELL + 1;

async function loadFunctions() {
  const page = await api("GET", "/api/functions", { params: { include: "job.statistics", page_size: 100 } });
  const seen = new Set();
  for (const fn of page.data) {
    if (state.deleted.has(fn.id)) continue; // an answer read before our delete went through
    seen.add(fn.id);
    // An answer read before our own save must not paint the old values back.
    const saved = state.saved.get(fn.id);
    if (saved && new Date(fn.modified_date) < new Date(saved)) continue;
    state.functions.set(fn.id, fn);
    renderFunction(fn);
  }
  for (const row of [...$("functions").tBodies[0].rows]) {
    if (!seen.has(row.dataset.id)) { row.remove(); state.functions.delete(row.dataset.id); }
  }
  $("no-functions").hidden = seen.size > 0;
}

function counts(stats) {
  const total = STATUSES.reduce((sum, s) => sum + (stats[s] || 0), 0);
  const done = TERMINAL.reduce((sum, s) => sum + (stats[s] || 0), 0);
  return { total, done };
}

function newRow(fn) {
  const row = el("tr", { "data-id": fn.id });
  row.append(el("td"), el("td"), el("td", { class: "counts" }), el("td"));
  for (const [field, label, , step] of EDITABLE) {
    const input = el("input", {
      type: "number", min: field === "retry_count" ? "0" : step, step, name: field,
      "aria-label": `${label} of ${fn.name}`,
      oninput: (e) => { e.target.dataset.dirty = "1"; },
    });
    row.append(el("td", {}, input));
  }
  row.append(el("td", {}, el("input", {
    type: "checkbox", name: "enabled", "aria-label": `Enabled ${fn.name}`,
    onchange: (e) => setEnabled(fn.id, e.target),
  })));
  row.append(el("td", { class: "actions" }));
  return row;
}

function renderFunction(fn) {
  const body = $("functions").tBodies[0];
  let row = body.querySelector(`tr[data-id="${CSS.escape(fn.id)}"]`);
  if (!row) { row = newRow(fn); body.append(row); }
  const cells = row.cells;
  const stats = fn.job_statistics || {};
  const { total, done } = counts(stats);
  cells[0].replaceChildren(el("button", {
    type: "button", class: "link", onclick: () => selectFunction(fn.id),
    "aria-label": `Show jobs of ${fn.name}`,
  }, fn.name));
  cells[1].replaceChildren(el("span", { class: `status status-${fn.status}` }, fn.status));
  cells[1].title = fn.status_reason || "";
  cells[2].replaceChildren(...STATUSES.filter((s) => stats[s]).map(
    (s) => el("span", { class: `status-${s}` }, `${s} ${stats[s]}`)));
  cells[3].replaceChildren(
    el("progress", { max: String(total || 1), value: String(done), "aria-label": `${fn.name} progress` }),
    el("span", { class: "muted progress-text" }, ` ${done}/${total}`));
  EDITABLE.forEach(([field], i) => {
    const input = cells[FIRST_EDIT + i].firstChild;
    // Never overwrite what the user is typing: an edited field keeps its value until saved.
    if (!input.dataset.dirty && document.activeElement !== input) input.value = fn[field];
  });
  const box = cells[ENABLED_CELL].firstChild;
  if (!box.dataset.pending) box.checked = fn.enabled !== false; // a click being saved stays as clicked
  const stopped = fn.status === "stopped";
  cells[ACTIONS_CELL].replaceChildren(
    el("button", { type: "button", onclick: () => saveSettings(fn.id, row), "aria-label": `Save ${fn.name}` }, "Save"), " ",
    el("button", {
      type: "button", class: stopped ? "" : "danger", onclick: () => startStop(fn.id, stopped),
      disabled: !["ready", "stopped"].includes(fn.status), "aria-label": `${stopped ? "Start" : "Stop"} ${fn.name}`,
    }, stopped ? "Start" : "Stop"), " ",
    el("button", { type: "button", onclick: () => showBuildLog(fn.id), "aria-label": `Build log of ${fn.name}` }, "Build log"), " ",
    el("button", { type: "button", class: "danger", onclick: () => deleteFunction(fn.id), "aria-label": `Delete ${fn.name}` }, "Delete"));
  row.classList.toggle("selected", fn.id === state.selected);
}

// Paints what a PATCH answered at once, and remembers it so that older answers are not painted.
function saved(fn) {
  state.saved.set(fn.id, fn.modified_date);
  state.functions.set(fn.id, { ...fn, job_statistics: state.functions.get(fn.id)?.job_statistics });
  renderFunction(state.functions.get(fn.id));
  return fn;
}

async function saveSettings(id, row) {
  await act(async () => {
    const changes = {};
    EDITABLE.forEach(([field, label, parse], i) => {
      const input = row.cells[FIRST_EDIT + i].firstChild;
      if (!input.dataset.dirty) return;
      const value = parse(input.value);
      if (Number.isNaN(value)) throw new Error(`${label} must be a number`);
      changes[field] = value;
    });
    if (!Object.keys(changes).length) throw new Error("Nothing changed: edit a value first.");
    const fn = await api("PATCH", `/api/functions/${id}`, { body: changes });
    row.querySelectorAll("input[type=number]").forEach((input) => { delete input.dataset.dirty; });
    saved(fn);
    return `Saved ${fn.name}: ${Object.entries(changes).map(([k, v]) => `${k}=${v}`).join(", ")}`;
  });
}

async function startStop(id, start) {
  const name = state.functions.get(id)?.name || id;
  await act(async () => {
    const fn = saved(await api("PATCH", `/api/functions/${id}`, { body: { status: start ? "ready" : "stopped" } }));
    return start ? `Started ${name}: status ${fn.status}, pending jobs will run.`
      : `Stopped ${name}: status ${fn.status}, pending jobs wait until it is started.`;
  });
}

async function setEnabled(id, box) {
  const name = state.functions.get(id)?.name || id;
  const enabled = box.checked;
  box.dataset.pending = "1";
  await act(async () => {
    try {
      saved(await api("PATCH", `/api/functions/${id}`, { body: { enabled } }));
    } finally {
      delete box.dataset.pending;
    }
    return enabled ? `Enabled ${name}: it accepts new jobs.` : `Disabled ${name}: it refuses new jobs and reruns.`;
  });
}

async function showBuildLog(id) {
  const name = state.functions.get(id)?.name || id;
  await act(async () => {
    let text;
    try {
      text = await api("GET", `/api/functions/${id}/log`, { raw: true });
    } catch (error) {
      if (error.status !== 404) throw error;
      text = "";
    }
    $("build-log-section").hidden = false;
    $("build-log-function").textContent = name;
    $("build-log").textContent = text || "(no build log yet)";
    $("build-log-section").scrollIntoView({ block: "nearest" });
  });
}

async function deleteFunction(id) {
  const fn = state.functions.get(id);
  const { total } = counts(fn?.job_statistics || {});
  if (!window.confirm(`Delete Function ${fn?.name} and its ${total} jobs? Running jobs are canceled. ` +
    "Results are kept.")) {
    showMessage(`Kept ${fn?.name}: nothing was deleted.`, "info");
    return;
  }
  await act(async () => {
    // The API deletes a page of jobs per call and answers 202 until the Function itself is gone.
    for (let i = 0; i < 10000; i++) {
      const answer = await api("DELETE", `/api/functions/${id}`);
      if (!answer || !answer.remaining) break;
      showMessage(`Deleting ${fn?.name}: removing its jobs…`, "info");
    }
    state.deleted.add(id);
    state.functions.delete(id);
    $("functions").tBodies[0].querySelector(`tr[data-id="${CSS.escape(id)}"]`)?.remove();
    if (state.selected === id) closeJobs();
    return `Deleted Function ${fn?.name} and its jobs.`;
  });
}
