// Live training curves: scalars from the run's TensorBoard event files (/api/runs/N/scalars), drawn as SVG.
"use strict";
const charts = document.getElementById("charts");
const runId = charts.dataset.run;
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea"];
// One chart per group; any other scalar gets a chart of its own.
const GROUPS = [
  ["loss", ["train/loss", "eval/loss"]],
  ["learning rate", ["train/learning_rate"]],
  ["grad norm", ["train/grad_norm"]],
  ["tokens per second", ["train/tokens_per_second"]],
];
// Scalars that are bookkeeping, not curves (TensorBoard itself shows them all).
const SKIP = /^train\/(epoch|num_|train_|total_flos|entropy|mean_token)|^eval\/(runtime|samples|steps|num_)/;

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.append(node);
  return node;
}

function chart(title, series) {
  const W = 420, H = 200, L = 58, R = 10, T = 24, B = 26;
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 += Math.abs(y1) * 0.05 || 1; y0 -= Math.abs(y0) * 0.05 || 1; }
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const box = document.createElement("figure");
  box.className = "chart";
  box.dataset.title = title;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img" }, box);
  el("text", { x: L, y: 14, class: "title" }, svg).textContent = title;
  el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }, svg);
  el("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }, svg);
  for (const [y, label] of [[y1, y1], [y0, y0]]) {
    el("text", { x: L - 4, y: sy(y) + 4, class: "tick", "text-anchor": "end" }, svg).textContent = Number(label).toPrecision(3);
  }
  el("text", { x: L, y: H - 8, class: "tick" }, svg).textContent = `step ${x0}`;
  el("text", { x: W - R, y: H - 8, class: "tick", "text-anchor": "end" }, svg).textContent = `${x1}`;
  series.forEach((s, i) => {
    const d = s.points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ");
    el("polyline", { points: d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 2, "data-tag": s.tag }, svg);
    if (s.points.length === 1) el("circle", { cx: sx(s.points[0][0]), cy: sy(s.points[0][1]), r: 3, fill: COLORS[i % COLORS.length] }, svg);
    el("text", { x: W - R - 4, y: T + 12 + 13 * i, class: "legend", fill: COLORS[i % COLORS.length], "text-anchor": "end" }, svg)
      .textContent = `${s.tag} ${s.points[s.points.length - 1][1].toPrecision(4)}`;
  });
  return box;
}

async function refresh() {
  let data;
  try {
    const response = await fetch(`/api/runs/${runId}/scalars`);
    if (!response.ok) return true;
    data = await response.json();
  } catch (error) {
    return true; // the console restarting: try again
  }
  const scalars = data.scalars;
  const used = new Set();
  const figures = [];
  for (const [title, tags] of GROUPS) {
    const series = tags.filter((t) => scalars[t] && scalars[t].length).map((t) => ({ tag: t, points: scalars[t] }));
    tags.forEach((t) => used.add(t));
    if (series.length) figures.push(chart(title, series));
  }
  for (const [tag, points] of Object.entries(scalars)) {
    if (!used.has(tag) && points.length > 1 && !SKIP.test(tag)) figures.push(chart(tag, [{ tag, points }]));
  }
  if (figures.length) charts.replaceChildren(...figures);
  charts.dataset.points = String((scalars["train/loss"] || []).length);
  document.getElementById("checkpoints").textContent = data.checkpoints.join(", ") || "none";
  const badge = document.getElementById("run-status");
  if (badge.textContent !== data.status) {
    if (charts.dataset.status === "running") location.reload(); // buttons and times change with the status
  }
  return data.status === "running";
}

(async function poll() {
  if (await refresh()) setTimeout(poll, 2000);
})();
