// A small SVG chart of one attempt's CPU and memory series (no library: the page works offline).
"use strict";

const STATS_SVG_NS = "http://www.w3.org/2000/svg";
const CHART = { width: 640, height: 180, left: 44, right: 52, top: 12, bottom: 24 };

function statsSvgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(STATS_SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "n/a";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// Draws ``stats`` (an AttemptStatistics answer) into ``svg``; returns the caption text.
function drawChart(svg, stats) {
  const { width, height, left, right, top, bottom } = CHART;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const series = stats.series || [];
  const tMax = Math.max(1, ...series.map((s) => s.t));
  const cpuMax = Math.max(100, ...series.map((s) => s.cpu_percent));
  const memMax = Math.max(1, stats.memory_peak_mb || 0, ...series.map((s) => s.memory_mb)) * 1.1;
  const x = (t) => left + (t / tMax) * (width - left - right);
  const y = (v, max) => height - bottom - (v / max) * (height - top - bottom);
  svg.append(
    statsSvgEl("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, class: "axis" }),
    statsSvgEl("line", { x1: left, y1: top, x2: left, y2: height - bottom, class: "axis" }),
    statsSvgEl("line", { x1: width - right, y1: top, x2: width - right, y2: height - bottom, class: "axis" }),
    statsSvgEl("text", { x: left - 4, y: top + 8, "text-anchor": "end", class: "cpu-label" }, `${cpuMax.toFixed(0)}%`),
    statsSvgEl("text", { x: left - 4, y: height - bottom, "text-anchor": "end" }, "0"),
    statsSvgEl("text", { x: width - right + 4, y: top + 8, class: "mem-label" }, `${memMax.toFixed(0)} MB`),
    statsSvgEl("text", { x: width - right, y: height - 6, "text-anchor": "end" }, `${tMax.toFixed(1)} s`),
  );
  // One point only (a short job): draw it as a level line from the start.
  const points = series.length === 1 ? [{ ...series[0], t: 0 }, series[0]] : series;
  const line = (value, max, cls) => statsSvgEl("polyline", {
    class: cls, fill: "none",
    points: points.map((s) => `${x(s.t).toFixed(1)},${y(value(s), max).toFixed(1)}`).join(" "),
  });
  if (points.length) {
    svg.append(line((s) => s.cpu_percent, cpuMax, "cpu-line"), line((s) => s.memory_mb, memMax, "mem-line"));
  }
  const caption = `Peak memory ${fmtNum(stats.memory_peak_mb)} MB · peak CPU ${fmtNum(stats.cpu_peak_percent)}% ` +
    `(mean ${fmtNum(stats.cpu_mean_percent)}%, 100% = one core) · network in ${fmtBytes(stats.net_rx_bytes)}, ` +
    `out ${fmtBytes(stats.net_tx_bytes)} · ${stats.samples} samples, every ${fmtNum(stats.interval_seconds)} s`;
  svg.setAttribute("aria-label", `CPU and memory of attempt ${stats.attempt}: ${caption}`);
  return caption;
}
