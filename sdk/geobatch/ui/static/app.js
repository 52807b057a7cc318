// GeoBatch monitor: plain JS, no build step, no third-party code (it must work offline).
// Every call goes to this page's own server (/api/... is forwarded, signed, to the GeoBatch API),
// with the X-GeoBatch-UI header that a cross-site page cannot send. Values from the API are only
// ever put in the page with textContent, never as HTML.
"use strict";

const OUTSTANDING = ["pending", "running", "cancel", "canceling"];
const TERMINAL = ["success", "failure", "timeout", "canceled"];
const STATUSES = ["pending", "running", "success", "failure", "timeout", "canceled", "cancel", "canceling"];
const EDITABLE = [
  // [field, label, parse, step]
  ["maximum_concurrency", "Concurrency", (v) => parseInt(v, 10), "1"],
  ["cpus", "CPUs", (v) => parseFloat(v), "0.25"],
  ["memory", "Memory (MB)", (v) => parseInt(v, 10), "512"],
  ["retry_count", "Retries", (v) => parseInt(v, 10), "1"],
];
const FAST_MS = 2000; // while any job is outstanding
const IDLE_MS = 10000; // otherwise, so that new submissions still show up
const PAGE_SIZE = 20;

const state = {
  functions: new Map(), // id -> Function (with job_statistics)
  selected: null, // Function id whose jobs are listed
  filter: { status: "", tag: "" },
  cursors: [null], // cursor of each page seen; the last one is the current page
  nextCursor: null,
  jobId: null, // job in the detail panel
  timer: null,
};

// ------------------------------------------------------------------ helpers

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  }
  return node;
}

function fmtDate(value) {
  if (!value) return "";
  const d = new Date(value);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtNum(value, digits = 1) {
  return value === null || value === undefined ? "" : Number(value).toFixed(digits);
}

function statusCell(status) {
  return el("td", { class: `status status-${status}` }, status);
}

function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = kind === "info" ? "info" : "";
  box.hidden = !text;
}

async function api(method, path, { params, body, raw } = {}) {
  const query = params ? "?" + new URLSearchParams(params).toString() : "";
  const init = { method, headers: { "X-GeoBatch-UI": "1" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path + query, init);
  const text = await response.text();
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = JSON.parse(text).message || message; } catch (_) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  if (raw) return text;
  return text ? JSON.parse(text) : null;
}

function jobFilter() {
  const terms = [];
  if (state.filter.status) terms.push({ op: "eq", name: "status", val: state.filter.status });
  if (state.filter.tag) terms.push({ op: "eq", name: "tags", val: state.filter.tag });
  return terms;
}

// ------------------------------------------------------------------ functions table

async function loadFunctions() {
  const page = await api("GET", "/api/functions", { params: { include: "job.statistics", page_size: 100 } });
  const seen = new Set();
  for (const fn of page.data) {
    state.functions.set(fn.id, fn);
    seen.add(fn.id);
    renderFunction(fn);
  }
  for (const row of [...$("functions").tBodies[0].rows]) {
    if (!seen.has(row.dataset.id)) { row.remove(); state.functions.delete(row.dataset.id); }
  }
  $("no-functions").hidden = page.data.length > 0;
}

function counts(stats) {
  const total = STATUSES.reduce((sum, s) => sum + (stats[s] || 0), 0);
  const done = TERMINAL.reduce((sum, s) => sum + (stats[s] || 0), 0);
  return { total, done };
}

function renderFunction(fn) {
  const body = $("functions").tBodies[0];
  let row = body.querySelector(`tr[data-id="${CSS.escape(fn.id)}"]`);
  if (!row) {
    row = el("tr", { "data-id": fn.id });
    row.append(el("td"), el("td"), el("td", { class: "counts" }), el("td"));
    for (const [field, label, , step] of EDITABLE) {
      const input = el("input", {
        type: "number", min: field === "retry_count" ? "0" : step, step, name: field,
        "aria-label": `${label} of ${fn.name}`,
        oninput: (e) => { e.target.dataset.dirty = "1"; },
      });
      row.append(el("td", {}, input));
    }
    row.append(el("td", { class: "actions" }));
    body.append(row);
  }
  const cells = row.cells;
  const stats = fn.job_statistics || {};
  const { total, done } = counts(stats);
  cells[0].replaceChildren(el("button", {
    type: "button", class: "link", onclick: () => selectFunction(fn.id),
    "aria-label": `Show jobs of ${fn.name}`,
  }, fn.name));
  cells[1].replaceChildren(el("span", { class: `status status-${fn.status}` }, fn.status));
  if (fn.status_reason) cells[1].title = fn.status_reason;
  cells[2].replaceChildren(...STATUSES.filter((s) => stats[s]).map(
    (s) => el("span", { class: `status-${s}` }, `${s} ${stats[s]}`)));
  cells[3].replaceChildren(
    el("progress", { max: String(total || 1), value: String(done), "aria-label": `${fn.name} progress` }),
    el("span", { class: "muted progress-text" }, ` ${done}/${total}`));
  EDITABLE.forEach(([field], i) => {
    const input = cells[4 + i].firstChild;
    // Never overwrite what the user is typing: an edited field keeps its value until saved.
    if (!input.dataset.dirty && document.activeElement !== input) input.value = fn[field];
  });
  const stopped = fn.status === "stopped";
  cells[8].replaceChildren(
    el("button", { type: "button", onclick: () => saveSettings(fn.id, row) }, "Save"), " ",
    el("button", {
      type: "button", class: stopped ? "" : "danger", onclick: () => startStop(fn.id, stopped),
      disabled: !["ready", "stopped"].includes(fn.status),
    }, stopped ? "Start" : "Stop"));
  row.classList.toggle("selected", fn.id === state.selected);
}

async function saveSettings(id, row) {
  await act(async () => {
    const changes = {};
    EDITABLE.forEach(([field, label, parse], i) => {
      const input = row.cells[4 + i].firstChild;
      if (!input.dataset.dirty) return;
      const value = parse(input.value);
      if (Number.isNaN(value)) throw new Error(`${label} must be a number`);
      changes[field] = value;
    });
    if (!Object.keys(changes).length) throw new Error("Nothing changed: edit a value first.");
    const fn = await api("PATCH", `/api/functions/${id}`, { body: changes });
    row.querySelectorAll("input").forEach((input) => { delete input.dataset.dirty; });
    showMessage(`Saved ${fn.name}: ${Object.entries(changes).map(([k, v]) => `${k}=${v}`).join(", ")}`, "info");
  });
}

async function startStop(id, start) {
  await act(() => api("PATCH", `/api/functions/${id}`, { body: { status: start ? "ready" : "stopped" } }));
}

// ------------------------------------------------------------------ jobs list

function selectFunction(id) {
  state.selected = id;
  state.cursors = [null];
  $("jobs-section").hidden = false;
  $("jobs-function").textContent = state.functions.get(id)?.name || id;
  for (const row of $("functions").tBodies[0].rows) row.classList.toggle("selected", row.dataset.id === id);
  return act(loadJobs);
}

async function loadJobs() {
  if (!state.selected) return;
  const params = { function_id: state.selected, page_size: PAGE_SIZE };
  const cursor = state.cursors[state.cursors.length - 1];
  if (cursor) params.page_cursor = cursor;
  else {
    const filter = jobFilter();
    if (filter.length) params.filter = JSON.stringify(filter);
  }
  const page = await api("GET", "/api/jobs", { params });
  state.nextCursor = page.meta?.page_cursor || null;
  const body = $("jobs").tBodies[0];
  body.replaceChildren(...page.data.map((job) => el("tr", {
    "data-id": job.id, class: job.id === state.jobId ? "selected" : "",
    onclick: () => openJob(job.id),
  },
  el("td", {}, el("button", { type: "button", class: "link", "aria-label": `Open job ${job.id}` }, job.id)),
  statusCell(job.status),
  el("td", {}, String(job.execution_count)),
  el("td", {}, fmtNum(job.runtime)),
  el("td", {}, fmtDate(job.creation_date)),
  el("td", {}, job.error_reason || job.status_reason || ""))));
  $("next-page").disabled = !state.nextCursor;
  $("first-page").disabled = state.cursors.length === 1;
  $("page-info").textContent = `page ${state.cursors.length}, ${page.data.length} jobs`;
}

async function bulk(action) {
  const fn = state.functions.get(state.selected);
  const what = [state.filter.status || "all statuses", state.filter.tag && `tag ${state.filter.tag}`]
    .filter(Boolean).join(", ");
  if (action === "cancel" && !window.confirm(`Cancel every job of ${fn?.name} matching ${what}?`)) return;
  await act(async () => {
    let cursor = null;
    let changed = 0;
    do { // a small filter is done at once (with the ids); a large one is a background operation
      const body = { function_id: state.selected, filter: jobFilter() };
      if (cursor) body.page_cursor = cursor;
      const answer = await api("POST", `/api/jobs/${action}`, { body });
      if (answer.state) {
        changed += (await followOperation(answer)).changed;
        cursor = null;
      } else {
        changed += answer.job_ids.length;
        cursor = answer.page_cursor;
      }
    } while (cursor);
    showMessage(`${action === "cancel" ? "Canceled" : "Reran"} ${changed} jobs (${what}).`, "info");
  });
}

async function followOperation(op) {
  while (op.state === "queued" || op.state === "running") {
    const of = op.total === null || op.total === undefined ? "" : ` of ${op.total}`;
    showMessage(`${op.action}: ${op.processed}${of} jobs looked at, ${op.changed} changed…`, "info");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    op = await api("GET", `/api/operations/${op.id}`);
  }
  if (op.state === "failed") throw new Error(`${op.action} stopped: ${op.error}`);
  return op;
}

// ------------------------------------------------------------------ job detail

async function openJob(id) {
  state.jobId = id;
  $("job-detail").hidden = false;
  for (const row of $("jobs").tBodies[0].rows) row.classList.toggle("selected", row.dataset.id === id);
  await act(() => loadJob(true));
  $("job-detail").scrollIntoView({ block: "nearest" });
}

function timings(job) {
  const first = (job.attempts || [])[0];
  const started = first?.started || job.last_execution_date;
  const queued = started ? (new Date(started) - new Date(job.creation_date)) / 1000 : null;
  return { queued: queued === null ? "" : `${Math.max(0, queued).toFixed(1)} s`, started };
}

async function loadJob(full) {
  const id = state.jobId;
  if (!id) return;
  const job = await api("GET", `/api/jobs/${id}`);
  if (id !== state.jobId) return; // another job was opened meanwhile
  $("detail-id").textContent = job.id;
  const t = timings(job);
  const fields = [
    ["Status", job.status], ["Status reason", job.status_reason], ["Error reason", job.error_reason],
    ["Function", state.functions.get(job.function_id)?.name || job.function_id],
    ["Arguments", JSON.stringify({ args: job.args, kwargs: job.kwargs })],
    ["Tags", (job.tags || []).join(", ")], ["Run", job.run], ["Tries in this run", job.execution_count],
    ["Created", fmtDate(job.creation_date)], ["Queued", t.queued], ["Started", fmtDate(t.started)],
    ["Ended", fmtDate(job.last_completion_date)], ["Runtime", job.runtime == null ? "" : `${fmtNum(job.runtime, 2)} s`],
  ];
  $("detail-fields").replaceChildren(...fields.flatMap(([k, v]) => [
    el("dt", {}, k), el("dd", { class: k === "Status" ? `status status-${v}` : "" }, v === null ? "" : String(v ?? "")),
  ]));
  $("attempts").tBodies[0].replaceChildren(...(job.attempts || []).map((a) => el("tr", {},
    el("td", {}, String(a.number)), el("td", {}, fmtDate(a.started)), el("td", {}, fmtDate(a.ended)),
    statusCell(a.status || ""), el("td", {}, a.exit_code ?? ""), el("td", {}, fmtNum(a.runtime, 2)),
    el("td", {}, fmtNum(a.peak_memory_mb)), el("td", {}, fmtNum(a.cpu_seconds, 2)), el("td", {}, a.reason || ""))));
  $("job-cancel").disabled = TERMINAL.includes(job.status);
  $("job-rerun").disabled = !["failure", "timeout", "canceled"].includes(job.status);
  // The log and result change only while the job runs: fetch them again only then.
  if (full || OUTSTANDING.includes(job.status) || $("job-log").dataset.status !== job.status) {
    $("job-log").dataset.status = job.status;
    await Promise.all([loadLog(job), loadResult(job)]);
  }
}

async function loadLog(job) {
  let text;
  try {
    const ndjson = await api("GET", `/api/jobs/${job.id}/log`, { raw: true });
    text = ndjson.split("\n").filter((l) => l.trim()).map((l) => {
      try { const line = JSON.parse(l); return `${fmtDate(line.date)} ${line.log.replace(/\n$/, "")}`; }
      catch (_) { return l; }
    }).join("\n");
  } catch (error) {
    if (error.status !== 404) throw error;
    text = "";
  }
  $("job-log").textContent = text || "(no log yet)";
}

async function loadResult(job) {
  const box = $("job-result");
  if (job.status !== "success") { box.textContent = `(no result: the job is ${job.status})`; return; }
  const result = await api("GET", `/ui-api/result/${job.id}`);
  if (result.json) box.textContent = JSON.stringify(result.value, null, 2);
  else box.textContent = result.size ? `<${result.size} bytes>` : "(no result stored)";
}

async function jobAction(action) {
  await act(async () => {
    await api("POST", `/api/jobs/${state.jobId}/${action}`);
    showMessage(`${action === "cancel" ? "Canceled" : "Reran"} job ${state.jobId}.`, "info");
  });
}

// ------------------------------------------------------------------ refresh loop

// Runs an action, shows its error in one line, then refreshes what is on screen.
async function act(action) {
  showMessage("");
  try {
    await action();
  } catch (error) {
    showMessage(error.message);
  }
  await refresh();
}

let refreshing = null;
async function refresh() {
  // One refresh at a time; a caller that arrives meanwhile waits, then reads the newest state.
  while (refreshing) await refreshing;
  refreshing = (async () => {
    clearTimeout(state.timer);
    let busy = false;
    try {
      await loadFunctions();
      await loadJobs();
      await loadJob(false);
      busy = [...state.functions.values()].some((fn) =>
        ["building", "awaiting_bundle"].includes(fn.status) ||
        OUTSTANDING.some((s) => (fn.job_statistics || {})[s] > 0));
      $("refresh-state").textContent = `${busy ? "running: refreshing every 2 s" : "idle"} · ` +
        `updated ${fmtDate(new Date())}`;
    } catch (error) {
      showMessage(error.message);
      $("refresh-state").textContent = "refresh failed";
    } finally {
      state.timer = setTimeout(refresh, busy ? FAST_MS : IDLE_MS);
      refreshing = null;
    }
  })();
  return refreshing;
}

// ------------------------------------------------------------------ wiring

document.addEventListener("DOMContentLoaded", async () => {
  $("refresh").addEventListener("click", () => refresh());
  $("job-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    state.filter = { status: $("filter-status").value, tag: $("filter-tag").value.trim() };
    state.cursors = [null];
    act(loadJobs);
  });
  $("next-page").addEventListener("click", () => {
    if (!state.nextCursor) return;
    state.cursors.push(state.nextCursor);
    act(loadJobs);
  });
  $("first-page").addEventListener("click", () => { state.cursors = [null]; act(loadJobs); });
  $("cancel-all").addEventListener("click", () => bulk("cancel"));
  $("rerun-all").addEventListener("click", () => bulk("rerun"));
  $("job-cancel").addEventListener("click", () => jobAction("cancel"));
  $("job-rerun").addEventListener("click", () => jobAction("rerun"));
  $("job-close").addEventListener("click", () => { state.jobId = null; $("job-detail").hidden = true; });
  try {
    $("api-url").textContent = (await api("GET", "/ui-api/config")).api_url;
  } catch (error) {
    showMessage(error.message);
  }
  await refresh();
});
