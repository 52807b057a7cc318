// The job view: fields, every attempt, the log of any attempt (followed live while it runs), the
// attempt's CPU/memory chart and the result. Shares state and helpers with app.js.
"use strict";

const statsCache = new Map(); // "job id/attempt" -> answer: an ended attempt's series never changes

async function openJob(id) {
  state.jobId = id;
  state.job = null;
  state.attempt = null;
  setFollow(false);
  $("job-detail").hidden = false;
  for (const row of $("jobs").tBodies[0].rows) row.classList.toggle("selected", row.dataset.id === id);
  await act(() => loadJob(true));
  $("job-detail").scrollIntoView({ block: "nearest" });
}

function closeJob() {
  state.jobId = null;
  state.job = null;
  setFollow(false);
  $("job-detail").hidden = true;
}

function timings(job) {
  const first = (job.attempts || [])[0];
  const started = first?.started || job.last_execution_date;
  const queued = started ? (new Date(started) - new Date(job.creation_date)) / 1000 : null;
  return { queued: queued === null ? "" : `${Math.max(0, queued).toFixed(1)} s`, started };
}

// The attempt whose log and chart are shown: the one picked, else the newest.
function shownAttempt(job) {
  const count = (job?.attempts || []).length;
  return state.attempt && state.attempt <= count ? state.attempt : count;
}

function renderJob(job) {
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
  const shown = shownAttempt(job);
  $("attempts").tBodies[0].replaceChildren(...(job.attempts || []).map((a) => el("tr", {
    class: a.number === shown ? "selected" : "",
  },
  el("td", {}, String(a.number)), el("td", {}, fmtDate(a.started)), el("td", {}, fmtDate(a.ended)),
  statusCell(a.status || "running"), el("td", {}, a.exit_code ?? ""), el("td", {}, fmtNum(a.runtime, 2)),
  el("td", {}, fmtNum(a.statistics?.memory_peak_mb ?? a.peak_memory_mb)),
  el("td", {}, fmtNum(a.statistics?.cpu_peak_percent)), el("td", {}, fmtNum(a.cpu_seconds, 2)),
  el("td", {}, a.reason || ""),
  el("td", {}, el("button", {
    type: "button", onclick: () => showAttempt(a.number), "aria-label": `Show attempt ${a.number}`,
  }, "Log & chart")))));
  $("job-cancel").disabled = TERMINAL.includes(job.status);
  $("job-rerun").disabled = !["failure", "timeout", "canceled"].includes(job.status);
  const live = job.status === "running" && shown === (job.attempts || []).length;
  $("follow-log").disabled = !live;
  if (!live && state.follow) {
    setFollow(false);
    showMessage(`Job ${job.id} is ${job.status}: the log is complete, follow stopped.`, "info");
  }
}

async function loadJob(force) {
  const id = state.jobId;
  if (!id) return;
  // A finished job cannot change by itself (an action refreshes with force): read it once.
  if (!force && state.job?.id === id && TERMINAL.includes(state.job.status)) return;
  const job = await api("GET", `/api/jobs/${id}`);
  if (id !== state.jobId) return; // another job was opened meanwhile
  const before = state.job;
  state.job = job;
  renderJob(job);
  const changed = !before || before.status !== job.status || before.run !== job.run ||
    (before.attempts || []).length !== (job.attempts || []).length;
  if (force || changed || OUTSTANDING.includes(job.status)) {
    await Promise.all([loadLog(), loadResult(job), loadStatistics()]);
  }
}

function logLines(ndjson) {
  return ndjson.split("\n").filter((l) => l.trim()).map((l) => {
    try { const line = JSON.parse(l); return `${fmtDate(line.date)} ${line.log.replace(/\n$/, "")}`; }
    catch (_) { return l; }
  });
}

async function loadLog() {
  const job = state.job;
  const n = shownAttempt(job);
  const box = $("job-log");
  if (!n) { box.textContent = "(no attempt yet: the job has not started)"; $("log-attempt").textContent = ""; return; }
  const lines = [];
  let offset = null;
  for (let part = 0; part < 50; part++) { // a long log comes in parts: follow the offsets
    const headers = {};
    const params = { attempt: n };
    if (offset) params.offset = offset;
    try {
      lines.push(...logLines(await api("GET", `/api/jobs/${job.id}/log`, { params, raw: true, headers })));
    } catch (error) {
      if (error.status !== 404) throw error;
      break;
    }
    offset = headers["x-geobatch-next-offset"];
    if (!offset) break;
  }
  if (job !== state.job) return;
  const a = job.attempts[n - 1];
  $("log-attempt").textContent = `attempt ${n} of ${job.attempts.length} (run ${a.run}, ${a.status || "running"})`;
  box.textContent = lines.join("\n") || "(no log yet)";
  if (state.follow) box.scrollTop = box.scrollHeight;
}

async function loadResult(job) {
  const box = $("job-result");
  if (job.status !== "success") { box.textContent = `(no result: the job is ${job.status})`; return; }
  const result = await api("GET", `/ui-api/result/${job.id}`);
  if (result.json) box.textContent = JSON.stringify(result.value, null, 2);
  else box.textContent = result.size ? `<${result.size} bytes>` : "(no result stored)";
}

async function loadStatistics() {
  const job = state.job;
  const n = shownAttempt(job);
  const attempt = n ? job.attempts[n - 1] : null;
  const svg = $("stats-chart");
  if (!attempt || !attempt.statistics) {
    svg.replaceChildren();
    svg.setAttribute("aria-label", "no statistics yet");
    $("stats-caption").textContent = n ? `Attempt ${n}: statistics are stored when the attempt ends.` : "No attempt yet.";
    return;
  }
  const key = `${job.id}/${n}/${attempt.ended}`;
  let answer = statsCache.get(key);
  if (!answer) {
    answer = (await api("GET", `/api/jobs/${job.id}/statistics`, { params: { attempt: n } })).attempts[0];
    if (answer) statsCache.set(key, answer);
  }
  if (job !== state.job) return;
  $("stats-caption").textContent = answer ? `Attempt ${n}: ${drawChart(svg, answer)}` : `Attempt ${n}: no statistics.`;
}

async function showAttempt(n) {
  state.attempt = n;
  setFollow(false);
  await act(async () => {
    renderJob(state.job);
    await Promise.all([loadLog(), loadStatistics()]);
  });
}

function setFollow(on) {
  state.follow = on;
  $("follow-log").checked = on;
  clearInterval(state.followTimer);
  if (on) {
    state.followTimer = setInterval(() => loadLog().catch((e) => showMessage(e.message)), FOLLOW_MS);
  }
}

async function jobAction(action) {
  const id = state.jobId;
  if (action === "delete") {
    if (!window.confirm(`Delete job ${id} and its logs? Its result is kept.`)) {
      showMessage(`Kept job ${id}.`, "info");
      return;
    }
    await act(async () => {
      await api("DELETE", `/api/jobs/${id}`);
      closeJob();
      return `Deleted job ${id}.`;
    });
    return;
  }
  await act(async () => {
    const job = await api("POST", `/api/jobs/${id}/${action}`);
    return `${action === "cancel" ? "Cancel requested for" : "Reran"} job ${id}: now ${job.status}.`;
  });
}

function wireDetail() {
  $("job-cancel").addEventListener("click", () => jobAction("cancel"));
  $("job-rerun").addEventListener("click", () => jobAction("rerun"));
  $("job-delete").addEventListener("click", () => jobAction("delete"));
  $("job-close").addEventListener("click", closeJob);
  $("follow-log").addEventListener("change", (e) => {
    setFollow(e.target.checked);
    if (e.target.checked) showMessage(`Following the log of job ${state.jobId} (every second).`, "info");
  });
  $("build-log-close").addEventListener("click", () => { $("build-log-section").hidden = true; });
}
