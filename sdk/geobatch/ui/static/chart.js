// Progress over time as a small SVG bar chart: jobs finished per minute, successes stacked under
// failures (failure + timeout) and cancellations. Plain DOM, no library.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const CHART_COLOURS = { success: "#43a047", failed: "#e53935", canceled: "#8d6e63" };

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function clock(seconds) {
  const d = new Date(seconds * 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

// Draw progress.per_minute ([{minute, success, failed, canceled}]) into `container`.
function drawProgress(container, progress) {
  const W = 320, H = 140, left = 28, bottom = 18, top = 8;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  const bars = progress.per_minute || [];
  const peak = Math.max(1, ...bars.map((b) => b.success + b.failed + b.canceled));
  const plotH = H - bottom - top;
  const step = bars.length ? (W - left - 4) / bars.length : 0;
  svg.append(svgEl("line", { x1: left, y1: H - bottom, x2: W - 2, y2: H - bottom, stroke: "#999" }));
  svg.append(svgEl("text", { x: 2, y: top + 8 }, String(peak)), svgEl("text", { x: 2, y: H - bottom }, "0"));
  bars.forEach((b, i) => {
    let y = H - bottom;
    for (const kind of ["success", "failed", "canceled"]) {
      const h = (b[kind] / peak) * plotH;
      if (!h) continue;
      y -= h;
      const rect = svgEl("rect", {
        x: left + i * step + 0.5, y, width: Math.max(step - 1, 1), height: h,
        fill: CHART_COLOURS[kind], class: `bar bar-${kind}`,
      });
      rect.append(svgEl("title", {}, `${clock(b.minute)}: ${b[kind]} ${kind}`));
      svg.append(rect);
    }
  });
  if (bars.length) {
    svg.append(svgEl("text", { x: left, y: H - 4 }, clock(bars[0].minute)));
    svg.append(svgEl("text", { x: W - 30, y: H - 4 }, clock(bars[bars.length - 1].minute)));
  } else {
    svg.append(svgEl("text", { x: left + 8, y: H / 2 }, "no job has finished yet"));
  }
  container.replaceChildren(svg);
}

function etaText(progress) {
  const failed = (progress.per_minute || []).reduce((n, b) => n + b.failed, 0);
  const rate = `${progress.rate_per_minute} jobs/min (last 5 min)`;
  let eta = "ETA: unknown until jobs finish";
  if (progress.outstanding === 0) eta = "all jobs finished";
  else if (progress.eta_seconds !== null) {
    const s = progress.eta_seconds;
    eta = `ETA ${s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`} for ${progress.outstanding} outstanding`;
  }
  return `${rate} · ${eta} · ${failed} failed`;
}
