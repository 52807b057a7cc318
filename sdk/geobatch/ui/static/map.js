// GeoBatch map: a product (or any COG or STAC imagery) on a Leaflet map with its legend, opacity and a
// swipe comparison with a reference layer; and a run of a Function drawn tile by tile, live.
// Tiles come from this page's own server (/ui-api/map/tiles/...), rendered from the COGs; nothing is
// loaded from elsewhere unless `geobatch ui --basemap URL` names a basemap. API values only reach the
// page through textContent.
"use strict";

const RUN_MS = 2000; // while a run has outstanding jobs
const STATUS_COLOURS = {
  pending: "#9e9e9e", running: "#1e88e5", success: "#43a047", failure: "#e53935",
  timeout: "#fb8c00", canceled: "#6d4c41", cancel: "#8e24aa", canceling: "#8e24aa",
};
const mapState = {
  map: null, token: "", product: null, productUri: "", reference: null, referenceUri: "",
  referenceInfo: null, run: null, runId: "", runTiles: new Map(), runTimer: null, runProduct: null,
  runSuccess: -1, agreementTimer: null,
};

const byId = (id) => document.getElementById(id);

function node(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") n.className = v;
    else if (k === "style") n.style.cssText = v;
    else if (v !== undefined && v !== null) n.setAttribute(k, v);
  }
  for (const c of children) n.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return n;
}

function say(text, kind = "error") {
  const box = byId("message");
  box.textContent = text;
  box.className = kind === "info" ? "info" : "";
  box.hidden = !text;
}

async function call(path, params) {
  const query = params ? "?" + new URLSearchParams(params).toString() : "";
  const response = await fetch(path + query, { headers: { "X-GeoBatch-UI": "1" } });
  const text = await response.text();
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = JSON.parse(text).message || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return text ? JSON.parse(text) : null;
}

function tileUrl(src, extra = {}) {
  const params = new URLSearchParams({ src, t: mapState.token, ...extra });
  return `/ui-api/map/tiles/{z}/{x}/{y}.png?${params.toString()}`;
}

function fitTo(bbox) {
  if (bbox) mapState.map.fitBounds([[bbox[1], bbox[0]], [bbox[3], bbox[2]]], { padding: [20, 20] });
}

function legendItems(list, classes) {
  list.replaceChildren(...classes.filter((c) => !c.nodata && c.color_hint).map((c) => node("li",
    { "data-value": String(c.value) },
    node("span", { class: "swatch", style: `background:#${c.color_hint}` }),
    `${c.value} ${c.name}${c.description ? ` — ${c.description}` : ""}`)));
}

// ------------------------------------------------------------------ product view

async function showProduct(uri) {
  const info = await call("/ui-api/map/layer", { src: uri });
  if (mapState.product) mapState.map.removeLayer(mapState.product);
  mapState.productUri = uri;
  mapState.product = L.tileLayer(tileUrl(uri), {
    pane: "product", maxZoom: 20, opacity: byId("opacity").value / 100, className: "product-tiles",
  }).addTo(mapState.map);
  byId("layer-info").textContent = `${info.kind} · ${info.tiles} tile${info.tiles === 1 ? "" : "s"}`;
  legendItems(byId("legend"), info.classes || []);
  const select = byId("compare-with");
  for (const opt of [...select.options]) if (opt.dataset.related) opt.remove();
  for (const link of info.links || []) {
    const opt = node("option", { value: link.href, "data-related": "1" }, `${link.role}: ${link.title}`);
    select.insertBefore(opt, select.options[select.options.length - 1]);
  }
  fitTo(info.bbox);
  history.replaceState(null, "", `?src=${encodeURIComponent(uri)}`);
  return info;
}

async function showReference(uri) {
  clearReference();
  if (!uri) return;
  const info = await call("/ui-api/map/layer", { src: uri });
  mapState.referenceUri = uri;
  mapState.referenceInfo = info;
  const composites = info.composites || [];
  byId("composite-field").hidden = !composites.length;
  byId("composite").replaceChildren(...composites.map((c) => node("option", { value: c }, c.replace("-", " "))));
  const extra = composites.length ? { composite: byId("composite").value } : {};
  mapState.reference = L.tileLayer(tileUrl(uri, extra), {
    pane: "reference", maxZoom: 20, className: "reference-tiles",
  }).addTo(mapState.map);
  legendItems(byId("compare-legend"), info.classes || []);
  byId("swipe").hidden = false;
  byId("swipe-line").hidden = false;
  clip();
  scheduleAgreement();
}

function clearReference() {
  if (mapState.reference) mapState.map.removeLayer(mapState.reference);
  mapState.reference = null;
  mapState.referenceUri = "";
  mapState.referenceInfo = null;
  byId("swipe").hidden = true;
  byId("swipe-line").hidden = true;
  byId("agreement").textContent = "";
  byId("compare-legend").replaceChildren();
  byId("composite-field").hidden = true;
}

// The reference pane shows only right of the handle: clip it in layer coordinates, which move with the map.
function clip() {
  const map = mapState.map;
  const size = map.getSize();
  const x = (size.x * byId("swipe").value) / 100;
  const nw = map.containerPointToLayerPoint([0, 0]);
  const se = map.containerPointToLayerPoint(size);
  map.getPane("reference").style.clip = mapState.reference
    ? `rect(${nw.y}px, ${se.x}px, ${se.y}px, ${nw.x + x}px)` : "";
  byId("swipe-line").style.left = `${x}px`;
}

function scheduleAgreement() {
  clearTimeout(mapState.agreementTimer);
  const ref = mapState.referenceInfo;
  if (!ref || ref.kind !== "classes" || !mapState.productUri) return;
  mapState.agreementTimer = setTimeout(async () => {
    const b = mapState.map.getBounds();
    const clampLat = (v) => Math.max(-85, Math.min(85, v));
    const clampLon = (v) => Math.max(-180, Math.min(180, v));
    const bbox = [clampLon(b.getWest()), clampLat(b.getSouth()), clampLon(b.getEast()), clampLat(b.getNorth())];
    try {
      const a = await call("/ui-api/map/agreement", {
        a: mapState.productUri, b: mapState.referenceUri, bbox: bbox.map((v) => v.toFixed(6)).join(","),
      });
      byId("agreement").textContent = a.agreement === null
        ? "Agreement: no pixel where both layers have a class"
        : `Agreement in view: ${(a.agreement * 100).toFixed(1)}% of ${a.pixels.toLocaleString()} pixels`;
    } catch (error) {
      byId("agreement").textContent = `Agreement: ${error.message}`;
    }
  }, 300);
}

// ------------------------------------------------------------------ run view

async function loadFunctions() {
  const page = await call("/api/functions", { page_size: 100 });
  const select = byId("run-function");
  for (const fn of page.data) {
    if (!select.querySelector(`option[value="${CSS.escape(fn.id)}"]`)) {
      select.append(node("option", { value: fn.id }, `${fn.name} (${fn.id})`));
    }
  }
}

function tileStyle(status) {
  const colour = STATUS_COLOURS[status] || "#000";
  return { color: colour, weight: 2, fillColor: colour, fillOpacity: status === "success" ? 0.15 : 0.45 };
}

function showRun(id) {
  clearTimeout(mapState.runTimer);
  if (mapState.run) mapState.map.removeLayer(mapState.run);
  mapState.runTiles = new Map();
  mapState.runId = id;
  mapState.runSuccess = -1;
  mapState.run = L.geoJSON(null, { pane: "run" }).addTo(mapState.map);
  history.replaceState(null, "", `?function=${encodeURIComponent(id)}`);
  return pollRun(true);
}

async function pollRun(first) {
  const id = mapState.runId;
  if (!id) return;
  let outstanding = 0;
  try {
    const run = await call(`/ui-api/map/run/${encodeURIComponent(id)}`);
    if (id !== mapState.runId) return;
    for (const f of run.features) drawRunTile(f);
    const counts = run.counts || {};
    outstanding = run.progress.outstanding;
    byId("run-info").textContent = `${run.jobs} jobs, ${run.features.length} on the map` +
      (run.undrawn ? ` (${run.undrawn} without a tile, bbox or geometry)` : "");
    byId("run-legend").replaceChildren(...Object.keys(STATUS_COLOURS).filter((s) => counts[s]).map((s) =>
      node("li", { "data-status": s }, node("span", { class: "swatch", style: `background:${STATUS_COLOURS[s]}` }),
        `${s} ${counts[s]}`)));
    byId("run-eta").textContent = etaText(run.progress);
    drawProgress(byId("run-chart"), run.progress);
    if (run.product && !byId("run-product").value) byId("run-product").value = run.product;
    await refreshRunProduct(counts.success || 0);
    if (first && run.features.length) mapState.map.fitBounds(mapState.run.getBounds(), { padding: [20, 20] });
    byId("map-state").textContent = `run updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    say(error.message);
  }
  // A finished run changes no more: stop asking (a rerun is picked up by pressing Show run again).
  if (outstanding > 0 && id === mapState.runId) mapState.runTimer = setTimeout(() => pollRun(false), RUN_MS);
}

function drawRunTile(feature) {
  const p = feature.properties;
  let layer = mapState.runTiles.get(p.job_id);
  if (!layer) {
    mapState.run.addData(feature);
    layer = mapState.run.getLayers().find((l) => l.feature.properties.job_id === p.job_id);
    layer.on("click", () => openJobCard(layer.feature.properties.job_id));
    mapState.runTiles.set(p.job_id, layer);
  }
  layer.feature = feature;
  layer.setStyle(tileStyle(p.status));
  const path = layer.getElement && layer.getElement();
  if (path) {
    path.classList.add("run-tile");
    path.setAttribute("data-status", p.status);
    path.setAttribute("data-job", p.job_id);
  }
  layer.bindTooltip(`${p.status}${p.reason ? `: ${p.reason}` : ""}`, { sticky: true });
}

// The product fills in as tiles land: ask for its tiles again whenever more jobs have succeeded.
async function refreshRunProduct(success) {
  const uri = byId("run-product").value.trim();
  if (!byId("run-product-on").checked || !uri) {
    if (mapState.runProduct) mapState.map.removeLayer(mapState.runProduct);
    mapState.runProduct = null;
    return;
  }
  if (success === mapState.runSuccess && mapState.runProduct) return;
  mapState.runSuccess = success;
  const url = tileUrl(uri, { v: String(success) });
  if (mapState.runProduct) mapState.runProduct.setUrl(url);
  else {
    mapState.runProduct = L.tileLayer(url, { pane: "product", maxZoom: 20, className: "run-product-tiles" })
      .addTo(mapState.map);
  }
}

async function openJobCard(jobId) {
  byId("job-card").hidden = false;
  byId("job-card-id").textContent = jobId;
  byId("job-card-link").href = `/#job=${encodeURIComponent(jobId)}`;
  const job = await call(`/api/jobs/${encodeURIComponent(jobId)}`);
  const last = (job.attempts || []).at(-1) || {};
  const fields = [
    ["Status", job.status], ["Reason", job.error_reason || job.status_reason || ""],
    ["Attempts", String((job.attempts || []).length)], ["Last attempt", last.reason || last.status || ""],
    ["Runtime", job.runtime == null ? "" : `${Number(job.runtime).toFixed(2)} s`],
    ["Arguments", JSON.stringify({ args: job.args, kwargs: job.kwargs })],
  ];
  byId("job-card-fields").replaceChildren(...fields.flatMap(([k, v]) => [node("dt", {}, k), node("dd", {}, v)]));
  byId("job-card-log").textContent = "…";
  byId("job-card-result").textContent = "…";
  try {
    const response = await fetch(`/api/jobs/${encodeURIComponent(jobId)}/log`, { headers: { "X-GeoBatch-UI": "1" } });
    const lines = (await response.text()).split("\n").filter((l) => l.trim()).map((l) => {
      try { return JSON.parse(l).log.replace(/\n$/, ""); } catch (_) { return l; }
    });
    byId("job-card-log").textContent = response.ok ? (lines.slice(-40).join("\n") || "(empty)") : "(no log yet)";
  } catch (error) { byId("job-card-log").textContent = error.message; }
  if (job.has_result) {
    try {
      const r = await call(`/ui-api/result/${encodeURIComponent(jobId)}`);
      byId("job-card-result").textContent = r.json ? JSON.stringify(r.value, null, 2) : `${r.size} bytes (not JSON)`;
    } catch (error) { byId("job-card-result").textContent = error.message; }
  } else byId("job-card-result").textContent = "(no result)";
}

// ------------------------------------------------------------------ wiring

function selectTab(name) {
  for (const tab of ["product", "run"]) {
    byId(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    byId(`panel-${tab}`).hidden = tab !== name;
  }
}

function guarded(fn) {
  return async (...args) => {
    try { say(""); await fn(...args); } catch (error) { say(error.message); }
  };
}

function makeMap(config) {
  const map = L.map("map", { zoomControl: true, attributionControl: !!config.basemap }).setView([44.03, -73.43], 11);
  for (const [name, z] of [["basemap", 200], ["product", 400], ["reference", 410], ["run", 450]]) {
    map.createPane(name).style.zIndex = String(z);
  }
  map.getPane("run").style.pointerEvents = "auto";
  if (config.basemap) L.tileLayer(config.basemap, { pane: "basemap", maxZoom: 19, attribution: "basemap" }).addTo(map);
  map.on("move zoom resize", clip);
  map.on("moveend", scheduleAgreement);
  return map;
}

document.addEventListener("DOMContentLoaded", async () => {
  try {
    const config = await call("/ui-api/map/config");
    mapState.token = config.token;
    mapState.map = makeMap(config);
  } catch (error) {
    say(error.message);
    return;
  }
  byId("tab-product").addEventListener("click", () => selectTab("product"));
  byId("tab-run").addEventListener("click", () => selectTab("run"));
  byId("layer-form").addEventListener("submit", guarded(async (e) => {
    e.preventDefault();
    await showProduct(byId("layer-uri").value.trim());
  }));
  byId("opacity").addEventListener("input", () => {
    byId("opacity-value").textContent = `${byId("opacity").value}%`;
    if (mapState.product) mapState.product.setOpacity(byId("opacity").value / 100);
  });
  byId("compare-with").addEventListener("change", guarded(async () => {
    const value = byId("compare-with").value;
    byId("compare-other").hidden = value !== "other";
    if (value !== "other") await showReference(value);
  }));
  byId("compare-show").addEventListener("click", guarded(() => showReference(byId("compare-uri").value.trim())));
  byId("composite").addEventListener("change", () => {
    if (mapState.reference) mapState.reference.setUrl(tileUrl(mapState.referenceUri, { composite: byId("composite").value }));
  });
  byId("swipe").addEventListener("input", clip);
  byId("run-show").addEventListener("click", guarded(() => showRun(byId("run-function").value)));
  byId("run-product-on").addEventListener("change", () => refreshRunProduct(mapState.runSuccess + 1));
  byId("map-state").textContent = "ready";
  const params = new URLSearchParams(location.search);
  await guarded(loadFunctions)();
  if (params.get("src")) {
    byId("layer-uri").value = params.get("src");
    await guarded(showProduct)(params.get("src"));
  }
  if (params.get("function")) {
    selectTab("run");
    byId("run-function").value = params.get("function");
    await guarded(showRun)(params.get("function"));
  }
});
