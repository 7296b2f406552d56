// llmlab/static/merging.js — model merging on world-tiny: task-A and task-B accuracy over (lambda_A, lambda_B).
// Trace (llmlab.merging.trace_merging): lams[], methods[{name, densities[], a[d][i][j], b[d][i][j]}] (rows lambda_A,
// columns lambda_B), own {a, b} (the fine-tunes' own accuracy), curves[{label, t[], loss[], barrier}].
// `step` is the density index of the chosen method. No network; text via textContent only; fixed height.

const CSS = `
.llm-merging { font: 12px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 470px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  overflow: hidden; }
.llm-merging .row { display: flex; gap: 16px; align-items: center; margin: 4px 0; flex-wrap: wrap; }
.llm-merging .title { font-weight: 600; margin-bottom: 2px; }
.llm-merging button { padding: 2px 8px; border: 1px solid var(--jp-border-color1, #999); border-radius: 4px;
  background: var(--jp-layout-color1, #fff); color: inherit; cursor: pointer; }
.llm-merging button.on { background: rgba(100, 149, 237, 0.35); font-weight: 600; }
.llm-merging button:disabled { opacity: 0.4; cursor: default; }
.llm-merging svg text { fill: var(--jp-ui-font-color1, #222); font-size: 10px; }
@media (prefers-color-scheme: dark) { .llm-merging { color: var(--jp-ui-font-color1, #eee); }
  .llm-merging svg text { fill: var(--jp-ui-font-color1, #eee); } }
`;
const NS = "http://www.w3.org/2000/svg";
const COLORS = ["rgb(60,120,230)", "rgb(240,140,30)", "rgb(40,170,90)", "rgb(200,60,60)", "rgb(140,90,200)"];
const svgEl = (tag, attrs) => { const e = document.createElementNS(NS, tag); for (const k in attrs) e.setAttribute(k, String(attrs[k])); return e; };
const div = (cls, text) => { const e = document.createElement("div"); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const txt = (svg, x, y, s, attrs) => { const e = svgEl("text", Object.assign({ x, y }, attrs || {})); e.textContent = s; svg.append(e); return e; };

function render({ model, el }) {
  const style = document.createElement("style"); style.textContent = CSS;
  const root = div("llm-merging");
  el.append(style, root);
  let mi = 0, metric = "min";

  function heat(t, m, d) {
    const L = t.lams, n = L.length, C = 46, P = 46, W = P + n * C + 10, H = n * C + 40;
    const svg = svgEl("svg", { width: W, height: H, class: "llm-map" });
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      const a = m.a[d][i][j], b = m.b[d][i][j], ka = a / t.own.a, kb = b / t.own.b;
      const v = metric === "a" ? a : metric === "b" ? b : Math.min(ka, kb, 1);
      const y = (n - 1 - i) * C;
      svg.append(svgEl("rect", { x: P + j * C, y, width: C - 2, height: C - 2, fill: `rgba(60,120,230,${0.08 + 0.85 * v})`,
        stroke: ka >= 0.9 && kb >= 0.9 ? "currentColor" : "none", "stroke-width": 2, class: "llm-cell" }));
      txt(svg, P + j * C + C / 2 - 1, y + C / 2 - 3, `A ${(100 * a).toFixed(0)}%`, { "text-anchor": "middle" });
      txt(svg, P + j * C + C / 2 - 1, y + C / 2 + 9, `B ${(100 * b).toFixed(0)}%`, { "text-anchor": "middle" });
    }
    L.forEach((l, i) => { txt(svg, P - 4, (n - 1 - i) * C + C / 2 + 3, String(l), { "text-anchor": "end" });
                          txt(svg, P + i * C + C / 2, n * C + 12, String(l), { "text-anchor": "middle" }); });
    txt(svg, P + n * C / 2, n * C + 28, "λ_B (rows: λ_A)", { "text-anchor": "middle" });
    return svg;
  }

  function barrier(t) {
    const W = 380, H = 260, P = 34, cs = t.curves;
    const svg = svgEl("svg", { width: W, height: H, class: "llm-barrier" });
    if (!cs.length) return svg;
    const all = cs.flatMap((c) => c.loss), lo = Math.min(...all), hi = Math.max(...all);
    const y = (v) => 10 + (H - 60) * (1 - (v - lo) / Math.max(hi - lo, 1e-9)), x = (u) => P + u * (W - P - 10);
    cs.forEach((c, k) => {
      const pts = c.t.map((u, i) => `${x(u)},${y(c.loss[i])}`).join(" ");
      svg.append(svgEl("polyline", { points: pts, fill: "none", stroke: COLORS[k % COLORS.length], "stroke-width": 2, class: "llm-curve" }));
      txt(svg, 4, H - 36 + 11 * k, `${c.label}: barrier ${c.barrier.toFixed(2)}`, { style: `fill: ${COLORS[k % COLORS.length]}` });
    });
    txt(svg, P - 3, 14, hi.toFixed(2), { "text-anchor": "end" }); txt(svg, P - 3, H - 50, lo.toFixed(2), { "text-anchor": "end" });
    return svg;
  }

  function draw() {
    const t = model.get("trace") || {};
    if (!t.methods || !t.methods.length) { root.textContent = "no trace"; return; }
    mi = Math.min(mi, t.methods.length - 1);
    const m = t.methods[mi], nd = m.densities.length, d = Math.max(0, Math.min(nd - 1, model.get("step") || 0));
    root.replaceChildren();
    const bar = div("row");
    t.methods.forEach((mm, k) => { const b = document.createElement("button"); b.className = "llm-method" + (k === mi ? " on" : "");
      b.textContent = mm.name; b.onclick = () => { mi = k; model.set("step", 0); model.save_changes(); draw(); }; bar.append(b); });
    const slider = document.createElement("input"); slider.type = "range"; slider.min = "0"; slider.max = String(nd - 1);
    slider.value = String(d); slider.disabled = nd < 2; slider.className = "llm-density";
    slider.oninput = () => { model.set("step", Number(slider.value)); model.save_changes(); };
    const next = document.createElement("button"); next.className = "llm-next"; next.textContent = "next density"; next.disabled = nd < 2;
    next.onclick = () => { model.set("step", (d + 1) % nd); model.save_changes(); };
    bar.append(` density ${m.densities[d]}`, slider, next);
    const bar2 = div("row");
    [["min", "kept (worse task)"], ["a", "task A"], ["b", "task B"]].forEach(([k, label]) => {
      const b = document.createElement("button"); b.className = "llm-metric" + (k === metric ? " on" : ""); b.textContent = label;
      b.onclick = () => { metric = k; draw(); }; bar2.append(b); });
    bar2.append(div("", `own accuracy: A ${(100 * t.own.a).toFixed(0)}%, B ${(100 * t.own.b).toFixed(0)}%; outlined: both ≥ 90% of own`));
    const left = div(""); left.append(div("title", `${m.name}, density ${m.densities[d]}: accuracy of θ0 + merge(λ_A τ_A, λ_B τ_B)`), heat(t, m, d));
    const right = div(""); right.append(div("title", "loss along the line between two models"), barrier(t));
    const row = div("row"); row.style.alignItems = "flex-start"; row.append(left, right);
    root.append(bar, bar2, row);
  }
  model.on("change:trace", draw);
  model.on("change:step", draw);
  draw();
}
export default { render };
