// The jobs of one Function: filters (status, tag, time window), pages with totals, bulk actions
// and failures grouped by cause. Shares state and helpers with app.js.
"use strict";

function jobFilter() {
  const f = state.filter;
  const terms = [];
  if (f.status) terms.push({ op: "eq", name: "status", val: f.status });
  if (f.tag) terms.push({ op: "eq", name: "tags", val: f.tag });
  if (f.from) terms.push({ op: "ge", name: "creation_date", val: new Date(f.from).toISOString() });
  if (f.to) terms.push({ op: "le", name: "creation_date", val: new Date(f.to).toISOString() });
  return terms;
}

function filterText() {
  const f = state.filter;
  return [f.status || "all statuses", f.tag && `tag ${f.tag}`, f.from && `from ${f.from}`, f.to && `to ${f.to}`]
    .filter(Boolean).join(", ");
}

function selectFunction(id) {
  state.selected = id;
  state.cursors = [null];
  state.total = null;
  $("jobs-section").hidden = false;
  $("failures").hidden = true;
  $("jobs-function").textContent = state.functions.get(id)?.name || id;
  for (const row of $("functions").tBodies[0].rows) row.classList.toggle("selected", row.dataset.id === id);
  return act(() => loadJobs(true));
}

function closeJobs() {
  state.selected = null;
  $("jobs-section").hidden = true;
}

// The number of jobs the filter matches: from the Function's counts when only the status is
// filtered (free), else one count request per filter (not per refresh).
async function countJobs(fn) {
  const f = state.filter;
  if (!f.tag && !f.from && !f.to) {
    const stats = fn?.job_statistics || {};
    return f.status ? stats[f.status] || 0 : STATUSES.reduce((s, k) => s + (stats[k] || 0), 0);
  }
  const params = { function_id: state.selected, count: "true" };
  params.filter = JSON.stringify(jobFilter());
  return (await api("GET", "/api/jobs", { params })).meta.total;
}

// A pending job waiting to retry says so ("backing off ..."); its last error is in the job view.
function reason(job) {
  if (job.status === "pending" && job.status_reason) return job.status_reason;
  return job.error_reason || job.status_reason || "";
}

async function loadJobs(force = false) {
  if (!state.selected) return;
  const fn = state.functions.get(state.selected);
  // Nothing in the list can change while the Function's counts and settings stay the same.
  const key = JSON.stringify([fn?.job_statistics, fn?.modified_date, state.filter, state.pageSize, state.cursors]);
  if (!force && key === state.jobsKey && !busy(fn || {})) return;
  const params = { function_id: state.selected, page_size: state.pageSize };
  const cursor = state.cursors[state.cursors.length - 1];
  if (cursor) params.page_cursor = cursor;
  else {
    const filter = jobFilter();
    if (filter.length) params.filter = JSON.stringify(filter);
  }
  const cheap = !state.filter.tag && !state.filter.from && !state.filter.to;
  const counting = cheap || force || state.total === null ? countJobs(fn) : state.total;
  const asked = ++state.jobsAsked;
  const [page, total] = await Promise.all([api("GET", "/api/jobs", { params }), counting]);
  if (asked !== state.jobsAsked) return; // a newer read (another filter, page or refresh) paints
  state.jobsKey = key;
  state.total = total;
  state.nextCursor = page.meta?.page_cursor || null;
  $("jobs").tBodies[0].replaceChildren(...page.data.map((job) => el("tr", {
    "data-id": job.id, class: job.id === state.jobId ? "selected" : "",
    onclick: () => openJob(job.id),
  },
  el("td", {}, el("button", { type: "button", class: "link", "aria-label": `Open job ${job.id}` }, job.id)),
  statusCell(job.status),
  el("td", {}, String(job.execution_count)),
  el("td", {}, fmtNum(job.runtime)),
  el("td", {}, fmtDate(job.creation_date)),
  el("td", { class: "reason" }, reason(job)))));
  $("next-page").disabled = !state.nextCursor;
  $("prev-page").disabled = state.cursors.length === 1;
  $("first-page").disabled = state.cursors.length === 1;
  const first = (state.cursors.length - 1) * state.pageSize;
  const range = page.data.length ? `jobs ${first + 1}–${first + page.data.length}` : "no jobs";
  const pages = state.total === null ? "" : ` of ${state.total} · page ${state.cursors.length} of ${Math.max(1, Math.ceil(state.total / state.pageSize))}`;
  $("page-info").textContent = `${range}${pages}`;
}

async function bulk(action) {
  const fn = state.functions.get(state.selected);
  const what = filterText();
  const verbs = { cancel: ["Cancel", "Canceled"], rerun: ["Rerun", "Reran"], delete: ["Delete", "Deleted"] };
  if (action !== "rerun" && !window.confirm(`${verbs[action][0]} every job of ${fn?.name} matching ${what}?`)) {
    showMessage(`Nothing was ${action === "cancel" ? "canceled" : "deleted"}.`, "info");
    return;
  }
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
    state.cursors = [null];
    return `${verbs[action][1]} ${changed} jobs (${what}).`;
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

async function showFailures() {
  const fn = state.functions.get(state.selected);
  await act(async () => {
    const summary = await api("GET", `/api/functions/${state.selected}/failures`);
    $("failures").hidden = false;
    $("failures-total").textContent = `${summary.failed} failed jobs of ${fn?.name}, by cause`;
    $("failure-groups").tBodies[0].replaceChildren(...summary.groups.map((g) => el("tr", {},
      el("td", {}, String(g.count)), el("td", {}, g.kind), el("td", {}, g.cause),
      el("td", {}, el("button", {
        type: "button", class: "link", onclick: () => openJob(g.example_job_id),
        "aria-label": `Open example job of ${g.cause}`,
      }, g.example_job_id)))));
  });
}

function wireJobs() {
  $("job-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    state.filter = {
      status: $("filter-status").value, tag: $("filter-tag").value.trim(),
      from: $("filter-from").value, to: $("filter-to").value,
    };
    state.cursors = [null];
    state.total = null;
    act(() => loadJobs(true));
  });
  $("page-size").addEventListener("change", (e) => {
    state.pageSize = parseInt(e.target.value, 10);
    state.cursors = [null];
    act(() => loadJobs(true));
  });
  $("next-page").addEventListener("click", () => {
    if (!state.nextCursor) return;
    state.cursors.push(state.nextCursor);
    act(() => loadJobs(true));
  });
  $("prev-page").addEventListener("click", () => {
    if (state.cursors.length > 1) state.cursors.pop();
    act(() => loadJobs(true));
  });
  $("first-page").addEventListener("click", () => { state.cursors = [null]; act(() => loadJobs(true)); });
  $("cancel-all").addEventListener("click", () => bulk("cancel"));
  $("rerun-all").addEventListener("click", () => bulk("rerun"));
  $("delete-all").addEventListener("click", () => bulk("delete"));
  $("show-failures").addEventListener("click", () => showFailures());
}
