// llmlab/static/synthetic_data.js — a generation scrubber for model collapse.
// Trace (llmlab.synthetic_data.trace_collapse): zipf[], words[], metrics[], tail_from, runs[label] = {rank_freq[gen][rank], <metric>[gen]}.
// `step` is the generation. Log-log rank-frequency of the generation's samples vs the true Zipf line; metric curves per run.
const CSS = `
.llm-sd { font: 13px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px; }
.llm-sd .bar { display: flex; gap: 10px; align-items: center; margin-bottom: 6px; flex-wrap: wrap; }
.llm-sd svg { background: var(--jp-layout-color0, #fff); border: 1px solid var(--jp-border-color2, #ddd); margin-right: 6px; }
.llm-sd .lost { color: #b33; font-size: 11px; }
`;
const NS = "http://www.w3.org/2000/svg";
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
function svg(tag, attrs) { const e = document.createElementNS(NS, tag); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; }
const COLORS = ["#3b6fd4", "#d4553b", "#2a9d4b", "#9b59b6", "#e0a100", "#555"];

function render({ model, el: host }) {
  const style = el("style"); style.textContent = CSS;
  const root = el("div", "llm-sd"), bar = el("div", "bar");
  const sel = el("select", "llm-run");
  const prev = el("button", "llm-prev", "◀"), next = el("button", "llm-next", "▶"), label = el("span", "llm-label");
  bar.append("run ", sel, prev, next, label);
  const plots = el("div"), lost = el("div", "lost");
  root.append(bar, plots, lost); host.append(style, root);
  const trace = () => model.get("trace") || { runs: {}, zipf: [], words: [] };
  let run = null;
  function options() {
    const names = Object.keys(trace().runs || {});
    sel.replaceChildren(...names.map((n) => { const o = el("option", "", n); o.value = n; return o; }));
    run = run && names.includes(run) ? run : names[0]; sel.value = run || "";
  }
  const gens = () => ((trace().runs[run] || {}).rank_freq || []).length;
  const clamp = (s) => Math.max(0, Math.min(gens() - 1, s));
  function rankPlot(t, f) {
    const W = 300, H = 200, s = svg("svg", { width: W, height: H });
    const n = t.zipf.length, lx = (i) => 30 + (Math.log(i + 1) / Math.log(n)) * (W - 40);
    const lo = Math.log(1e-4), hi = Math.log(1), ly = (p) => H - 20 - ((Math.log(Math.max(p, 1e-4)) - lo) / (hi - lo)) * (H - 30);
    const line = (ys, color, dash) => s.append(svg("polyline", { points: ys.map((p, i) => `${lx(i)},${ly(p)}`).join(" "),
      fill: "none", stroke: color, "stroke-width": 1.5, "stroke-dasharray": dash || "" }));
    line(t.zipf, "#888", "4 3");
    f.forEach((p, i) => s.append(svg("circle", { cx: lx(i), cy: ly(p), r: p > 0 ? 2.2 : 1.5, fill: p > 0 ? "#3b6fd4" : "#d33" })));
    const cap = svg("text", { x: 34, y: 14, "font-size": 11, fill: "#666" }); cap.textContent = "rare-word rank vs frequency (log-log; dashed: true Zipf; red: lost)";
    s.append(cap); return s;
  }
  function metricPlot(t, key, g) {
    const W = 180, H = 120, s = svg("svg", { width: W, height: H });
    const runs = Object.keys(t.runs).filter((r) => Array.isArray(t.runs[r][key])), all = runs.flatMap((r) => t.runs[r][key]).filter((v) => isFinite(v));
    if (!all.length) return s;
    let lo = Math.min(...all), hi = Math.max(...all); if (hi - lo < 1e-9) { hi += 1e-3; lo -= 1e-3; }
    const G = Math.max(...runs.map((r) => t.runs[r][key].length));
    const x = (i) => 10 + (i / Math.max(1, G - 1)) * (W - 20), y = (v) => H - 12 - ((v - lo) / (hi - lo)) * (H - 30);
    runs.forEach((r, j) => s.append(svg("polyline", { points: t.runs[r][key].map((v, i) => `${x(i)},${y(v)}`).join(" "),
      fill: "none", stroke: COLORS[j % COLORS.length], "stroke-width": r === run ? 2.5 : 1 })));
    s.append(svg("line", { x1: x(g), x2: x(g), y1: 14, y2: H - 10, stroke: "#aaa", "stroke-dasharray": "2 2" }));
    const cap = svg("text", { x: 6, y: 11, "font-size": 11, fill: "#666" }); cap.textContent = key; s.append(cap);
    return s;
  }
  function draw() {
    const t = trace(), R = t.runs[run];
    if (!R || !gens()) { label.textContent = "empty trace"; plots.replaceChildren(); return; }
    const g = clamp(model.get("step")), f = R.rank_freq[g];
    const metrics = (t.metrics || ["coverage", "real_loss"]).filter((k) => Array.isArray(R[k]));
    label.textContent = `generation ${g} / ${gens() - 1}: ` + metrics.map((k) => `${k} ${Number(R[k][g]).toFixed(3)}`).join(", ");
    plots.replaceChildren(rankPlot(t, f), ...metrics.map((k) => metricPlot(t, k, g)));
    const gone = t.words.filter((w, i) => f[i] === 0);
    lost.textContent = `${gone.length} of the top ${t.words.length} rare words absent: ` + gone.slice(0, 30).join(", ");
  }
  const go = (d) => { model.set("step", clamp(model.get("step") + d)); model.save_changes(); };
  prev.addEventListener("click", () => go(-1)); next.addEventListener("click", () => go(1));
  sel.addEventListener("change", () => { run = sel.value; draw(); });
  model.on("change:step", draw); model.on("change:trace", () => { options(); draw(); });
  options(); draw();
}
export default { render };
