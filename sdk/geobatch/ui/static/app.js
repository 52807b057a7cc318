// GeoBatch monitor: plain JS, no build step, no third-party code (it must work offline).
// Every call goes to this page's own server (/api/... is forwarded, signed, to the GeoBatch API),
// with the X-GeoBatch-UI header that a cross-site page cannot send. Values from the API are only
// ever put in the page with textContent, never as HTML.
// This file: shared state, helpers, the refresh loop and the wiring. The tables and the job view
// are in functions.js, jobs.js, detail.js and chart.js (loaded before this one).
"use strict";

const OUTSTANDING = ["pending", "running", "cancel", "canceling"];
const TERMINAL = ["success", "failure", "timeout", "canceled"];
const STATUSES = ["pending", "running", "success", "failure", "timeout", "canceled", "cancel", "canceling"];
const FAST_MS = 2000; // while something can still change
const IDLE_MS = 10000; // otherwise, so that new submissions still show up
const FOLLOW_MS = 1000; // a followed live log

const state = {
  functions: new Map(), // id -> Function (with job_statistics)
  saved: new Map(), // id -> modified_date of our last PATCH: older answers are not painted
  deleted: new Set(), // Functions we deleted: a listing read before the delete must not repaint them
  selected: null, // Function id whose jobs are listed
  filter: { status: "", tag: "", from: "", to: "" },
  pageSize: 20,
  cursors: [null], // cursor of each page seen; the last one is the current page
  nextCursor: null,
  total: null, // jobs matching the filter (null: unknown)
  jobsKey: null, // what the job list was loaded for: unchanged Function, unchanged list
  jobsAsked: 0, // job-list reads started: an answer to an older one (say, before a filter change) is not painted
  jobId: null, // job in the detail panel
  job: null, // its last answer
  attempt: null, // attempt whose log and statistics are shown (null: the newest)
  follow: false,
  timer: null,
  followTimer: null,
  apiUrl: null,
  loading: 0,
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

function setLoading(delta) {
  state.loading = Math.max(0, state.loading + delta);
  $("loading").hidden = state.loading === 0;
  document.body.setAttribute("aria-busy", state.loading ? "true" : "false");
}

async function api(method, path, { params, body, raw, headers } = {}) {
  const query = params ? "?" + new URLSearchParams(params).toString() : "";
  const init = { method, headers: { "X-GeoBatch-UI": "1" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  setLoading(1);
  try {
    const response = await fetch(path + query, init);
    const text = await response.text();
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try { message = JSON.parse(text).message || message; } catch (_) { /* not JSON */ }
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    if (headers) response.headers.forEach((v, k) => { headers[k] = v; });
    if (raw) return text;
    return text ? JSON.parse(text) : null;
  } finally {
    setLoading(-1);
  }
}

// Runs an action, shows its error (or the feedback it returns) in one line, then refreshes.
async function act(action) {
  showMessage("");
  try {
    const feedback = await action();
    if (typeof feedback === "string") showMessage(feedback, "info");
  } catch (error) {
    showMessage(error.message);
  }
  await refresh(true);
}

// ------------------------------------------------------------------ refresh loop

// Whether a Function can still change by itself: building, or jobs that can run or are running.
// A build-failed or stopped Function with pending jobs waits for the user, not for a poll.
function busy(fn) {
  const stats = fn.job_statistics || {};
  if (["building", "awaiting_bundle"].includes(fn.status)) return fn.status === "building";
  if (["running", "cancel", "canceling"].some((s) => stats[s] > 0)) return true;
  return fn.status === "ready" && stats.pending > 0;
}

async function loadConfig() {
  const { api_url: url } = await api("GET", "/ui-api/config");
  if (state.apiUrl && url !== state.apiUrl) {
    showMessage(`Reconnected: the API moved to ${url} (local mode restarted).`, "info");
  }
  state.apiUrl = url;
  $("api-url").textContent = url;
}

let refreshing = null;
async function refresh(force = false) {
  // One refresh at a time; a caller that arrives meanwhile waits, then reads the newest state.
  while (refreshing) await refreshing;
  refreshing = (async () => {
    clearTimeout(state.timer);
    let fast = false;
    try {
      await loadConfig();
      await loadFunctions();
      await loadJobs(force);
      await loadJob(force);
      fast = [...state.functions.values()].some(busy) || (state.job && !TERMINAL.includes(state.job.status));
      $("refresh-state").textContent = `${fast ? "running: refreshing every 2 s" : "idle"} · ` +
        `updated ${fmtDate(new Date())}`;
    } catch (error) {
      showMessage(`${error.message} (retrying)`);
      $("refresh-state").textContent = "refresh failed: retrying";
      fast = true; // e.g. local mode restarting: find it again soon
    } finally {
      state.timer = setTimeout(refresh, fast ? FAST_MS : IDLE_MS);
      refreshing = null;
    }
  })();
  return refreshing;
}

// ------------------------------------------------------------------ wiring

document.addEventListener("DOMContentLoaded", async () => {
  $("refresh").addEventListener("click", () => refresh(true));
  wireJobs();
  wireDetail();
  await refresh(true);
});
