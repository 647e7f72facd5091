// Polls the JSON API every second and draws the page. No libraries.
"use strict";
const token = new URLSearchParams(location.search).get("token");
const headers = token ? { Authorization: "Bearer " + token } : {};
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

async function get(path) {
  const r = await fetch(path, { headers, cache: "no-store" });
  if (!r.ok) throw new Error(path + " answered " + r.status);
  return r.json();
}

function num(n) {
  if (n === null || n === undefined) return "–";
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(2) + " M";
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + " k";
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
function secs(s) {
  if (s === null || s === undefined) return "–";
  if (Math.abs(s) < 1) return (s * 1000).toFixed(0) + " ms";
  if (Math.abs(s) < 120) return s.toFixed(1) + " s";
  if (Math.abs(s) < 7200) return (s / 60).toFixed(1) + " min";
  if (Math.abs(s) < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(0) + " d";
}
function time(ms) {
  return ms === null || ms === undefined ? "–" : new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}
function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
// Neighbouring series get distant hues (golden angle).
function color(i) {
  return "hsl(" + Math.round(i * 137.508) % 360 + ",65%,45%)";
}

function renderJob(job) {
  $("job-name").textContent = job.name;
  const st = $("job-state");
  st.textContent = job.state;
  st.className = "badge " + job.state;
  $("events-in").textContent = num(job.events.in);
  $("rate-in").textContent = num(job.rates.in_per_second) + " /s";
  $("events-out").textContent = num(job.events.out);
  $("rate-out").textContent = num(job.rates.out_per_second) + " /s";
  $("watermark").textContent = job.watermark_ms === null ? "–" : time(job.watermark_ms).slice(11);
  $("lag").textContent = "lag " + secs(job.watermark_lag_seconds);
  $("dropped").textContent = num(job.events.late) + " / " + num(job.events.malformed);
  $("uptime").textContent = "up " + secs(job.uptime_seconds);
  $("cp-count").textContent = num(job.checkpoints.completed) + (job.checkpoints.failed ? " (" + job.checkpoints.failed + " failed)" : "");
  $("cp-age").textContent = job.checkpoints.last_complete_ms ? "last " + secs((Date.now() - job.checkpoints.last_complete_ms) / 1000) + " ago" : "none yet";
  renderGraph(job);
}

// Columns by depth along the job graph's edges (sources first); each
// operator a box listing its subtasks with their rates and the share of
// time they spent blocked on backpressure.
function renderGraph(job) {
  const ops = new Map();
  for (const t of job.operators) {
    const o = ops.get(t.operator) || { name: t.operator, subs: [], inRate: 0, outRate: 0, in: 0, out: 0, wm: null, lag: null, cache: 0, hits: 0, misses: 0, mqtt: null, bp: 0 };
    o.subs.push(t); o.inRate += t.in_per_second; o.outRate += t.out_per_second; o.in += t.records_in; o.out += t.records_out;
    o.cache += t.state_cache_bytes; o.hits += t.state_cache_hits || 0; o.misses += t.state_cache_misses || 0;
    o.bp = Math.max(o.bp, t.backpressure_ratio || 0);
    if (t.watermark_ms !== null && (o.wm === null || t.watermark_ms < o.wm)) { o.wm = t.watermark_ms; o.lag = t.watermark_lag_seconds; }
    if (t.mqtt) o.mqtt = t.mqtt;
    ops.set(t.operator, o);
  }
  const edges = (job.edges || []).filter((e) => e.from !== e.to);
  for (const e of edges) for (const n of [e.from, e.to]) if (!ops.has(n)) ops.set(n, { name: n, subs: [], inRate: 0, outRate: 0, in: 0, out: 0, wm: null, cache: 0, hits: 0, misses: 0, mqtt: null, bp: 0 });
  const depth = new Map([...ops.keys()].map((k) => [k, 0]));
  for (let round = 0; round < ops.size; round++) {
    let moved = false;
    for (const e of edges) if (depth.get(e.to) <= depth.get(e.from)) { depth.set(e.to, depth.get(e.from) + 1); moved = true; }
    if (!moved) break;
  }
  const cols = [];
  for (const [name, d] of depth) (cols[d] = cols[d] || []).push(ops.get(name));
  const g = $("graph");
  g.replaceChildren();
  cols.forEach((col, d) => {
    if (d > 0) g.appendChild(el("span", { class: "arrow" }, "→"));
    const c = el("div", { class: "col" });
    for (const o of col) c.appendChild(opBox(o, edges));
    g.appendChild(c);
  });
}

function opBox(o, edges) {
  const box = el("div", { class: "op" + (o.bp > 0.5 ? " hot" : ""), "data-operator": o.name });
  box.appendChild(el("b", {}, o.name + (o.subs.length > 1 ? " ×" + o.subs.length : "")));
  box.appendChild(el("div", {}, "in " + num(o.inRate) + "/s · out " + num(o.outRate) + "/s"));
  box.appendChild(el("div", { class: "sub" }, num(o.in) + " in · " + num(o.out) + " out"));
  const to = edges.filter((e) => e.from === o.name).map((e) => e.to);
  if (to.length) box.appendChild(el("div", { class: "sub edges", "data-to": to.join(" ") }, "→ " + to.join(", ")));
  if (o.wm !== null) box.appendChild(el("div", { class: "sub" }, "watermark lag " + secs(o.lag)));
  if (o.cache) box.appendChild(el("div", { class: "sub" }, "state cache " + num(o.cache) + "B" + (o.hits + o.misses ? " · hit " + (100 * o.hits / (o.hits + o.misses)).toFixed(1) + " %" : "")));
  if (o.mqtt) box.appendChild(el("div", { class: "sub" }, (o.mqtt.connected ? "connected" : "DISCONNECTED") + " · inflight " + o.mqtt.inflight + " · reconnects " + o.mqtt.reconnects));
  if (o.subs.length) {
    const t = el("table", { class: "subtasks" });
    for (const s of o.subs) {
      const bp = s.backpressure_ratio || 0;
      const tr = el("tr", { class: "subtask" + (bp > 0.5 ? " hot" : ""), "data-task": s.task });
      tr.appendChild(el("td", {}, "#" + s.subtask + (s.slot !== null && s.slot !== undefined ? " @w" + s.slot : "")));
      tr.appendChild(el("td", {}, num(s.in_per_second) + "/s"));
      const bar = el("td", { class: "bp", title: "time blocked on backpressure" });
      const fill = el("span", { class: "bpbar" });
      fill.style.width = Math.round(bp * 100) + "%";
      bar.appendChild(fill);
      bar.appendChild(el("span", { class: "bptext" }, (bp * 100).toFixed(0) + " %"));
      tr.appendChild(bar);
      t.appendChild(tr);
    }
    box.appendChild(t);
  }
  return box;
}

function renderNodes(nodes) {
  const workers = nodes.nodes.filter((n) => n.role === "worker" && n.id !== nodes.nodes[0].id);
  $("workers-section").hidden = workers.length === 0;
  if (!workers.length) return;
  const t = $("workers");
  t.replaceChildren();
  const head = el("tr");
  for (const c of ["slot", "state", "address", "last heartbeat", "generation", "RSS", "CPU", "state on disk", "records in"]) head.appendChild(el("th", {}, c));
  t.appendChild(head);
  for (const w of workers) {
    const tr = el("tr", { class: "worker " + w.state, "data-slot": w.slot, "data-state": w.state });
    const cells = [
      "worker " + w.slot, w.state, w.address || "–",
      w.last_heartbeat_age_seconds === undefined || w.last_heartbeat_age_seconds === null ? "–" : secs(w.last_heartbeat_age_seconds) + " ago",
      w.generation === null || w.generation === undefined ? "–" : String(w.generation),
      w.rss_bytes ? num(w.rss_bytes) + "B" : "–", w.cpu_seconds === null || w.cpu_seconds === undefined ? "–" : secs(w.cpu_seconds),
      w.state_disk_bytes ? num(w.state_disk_bytes) + "B" : "–", num(w.records_in),
    ];
    for (const v of cells) tr.appendChild(el("td", {}, v));
    t.appendChild(tr);
  }
  const up = workers.filter((w) => w.state === "up").length;
  $("workers-title").textContent = "Workers (" + up + " of " + workers.length + " up)";
}

// A line chart: series is Map key -> [[x, y]...]; draws lines and the
// points of the newest x.
function lineChart(host, series, opts) {
  const W = 800, H = 260, L = 48, R = 10, T = 10, B = 24;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const pts of series.values()) for (const [x, y] of pts) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const svg = el("svg:svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img" });
  if (!isFinite(x0)) {
    svg.appendChild(el("svg:text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, opts.empty));
    host.replaceChildren(svg);
    return;
  }
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { y0 -= 1; y1 += 1; }
  const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  for (const [v, at] of [[y1, T], [y0, H - B]]) svg.appendChild(el("svg:text", { x: 2, y: at + 4 }, opts.fy(v)));
  svg.appendChild(el("svg:text", { x: L, y: H - 6 }, opts.fx(x0)));
  svg.appendChild(el("svg:text", { x: W - R, y: H - 6, "text-anchor": "end" }, opts.fx(x1)));
  svg.appendChild(el("svg:line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#d9dde5" }));
  let i = 0;
  for (const [key, pts] of series) {
    const c = color(i++);
    if (pts.length > 1) {
      svg.appendChild(el("svg:polyline", { class: "series", "data-key": key, fill: "none", stroke: c, "stroke-width": 1.5,
        "vector-effect": "non-scaling-stroke", points: pts.map(([x, y]) => sx(x).toFixed(1) + "," + sy(y).toFixed(1)).join(" ") }));
    }
    const [lx, ly] = pts[pts.length - 1];
    if (lx === x1 || opts.allPoints) {
      const p = el("svg:circle", { class: "pt", cx: sx(lx).toFixed(1), cy: sy(ly).toFixed(1), r: 2.5, fill: c });
      p.appendChild(el("svg:title", {}, key + ": " + opts.fy(ly)));
      svg.appendChild(p);
    }
  }
  host.replaceChildren(svg);
}

function renderResults(res) {
  const cols = res.columns;
  const [kc, xc, yc] = [cols[0], cols[1], cols[2]];
  const series = new Map();
  let latest = -Infinity;
  for (const r of res.rows) {
    const x = r[xc], y = r[yc];
    if (typeof x !== "number" || typeof y !== "number") continue;
    if (!series.has(r[kc])) series.set(r[kc], []);
    series.get(r[kc]).push([x, y]);
    latest = Math.max(latest, x);
  }
  for (const pts of series.values()) pts.sort((a, b) => a[0] - b[0]);
  const sorted = new Map([...series.entries()].sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
  lineChart($("results-chart"), sorted, {
    empty: "no window results yet",
    fx: (x) => time(x).slice(11),
    fy: (y) => y.toFixed(2),
  });
  const rows = res.rows.filter((r) => r[xc] === latest);
  rows.sort((a, b) => String(a[kc]).localeCompare(String(b[kc])));
  $("latest-title").textContent = isFinite(latest) ? "Latest window (ending " + time(latest) + " UTC, " + rows.length + " rows)" : "Latest window";
  const t = $("latest");
  t.replaceChildren();
  const head = el("tr");
  for (const c of cols) head.appendChild(el("th", {}, c));
  t.appendChild(head);
  for (const r of rows) {
    const tr = el("tr");
    for (const c of cols) tr.appendChild(el("td", {}, typeof r[c] === "number" && !Number.isInteger(r[c]) ? r[c].toFixed(3) : String(r[c])));
    t.appendChild(tr);
  }
}

function renderCheckpoints(cps) {
  const done = cps.history.filter((c) => c.duration_seconds !== null);
  lineChart($("cp-chart"), new Map([["duration", done.map((c) => [c.epoch, c.duration_seconds])]]), {
    empty: "no checkpoint completed yet",
    fx: (x) => "epoch " + Math.round(x),
    fy: (y) => secs(y),
    allPoints: true,
  });
  const t = $("cp-table");
  t.replaceChildren();
  const head = el("tr");
  for (const c of ["epoch", "status", "triggered (UTC)", "duration", "entries", "bytes"]) head.appendChild(el("th", {}, c));
  t.appendChild(head);
  for (const c of cps.history.slice(-10).reverse()) {
    const tr = el("tr");
    for (const v of [c.epoch, c.status, time(c.triggered_ms).slice(11), secs(c.duration_seconds), num(c.entries), num(c.bytes)]) tr.appendChild(el("td", {}, String(v)));
    t.appendChild(tr);
  }
}

async function tick() {
  try {
    const [job, res, cps, nodes] = await Promise.all([get("/api/v1/job"), get("/api/v1/results"), get("/api/v1/checkpoints"), get("/api/v1/nodes")]);
    renderJob(job);
    renderNodes(nodes);
    renderResults(res);
    renderCheckpoints(cps);
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    $("status").textContent = "no answer from the job: " + e.message;
  }
}
tick();
setInterval(tick, 1000);
