// llmlab/static/bitnet.js — ternary quantisation of a weight matrix (per tensor / per group) and int8 activations.
// Contract: Python puts everything in `trace` (see llmlab.bitnet.trace_bitnet); `step` selects the mode
// (0 = per tensor, 1 = per group). No network, text via textContent only, fixed height, theme-aware colours.

const CSS = `
.llm-bitnet { font: 12px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 560px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  overflow: hidden; }
.llm-bitnet .row { display: flex; gap: 14px; align-items: flex-start; margin: 4px 0; }
.llm-bitnet .panel { display: flex; flex-direction: column; gap: 2px; }
.llm-bitnet .title { font-weight: 600; }
.llm-bitnet button { padding: 2px 8px; border: 1px solid var(--jp-border-color1, #999); border-radius: 4px;
  background: var(--jp-layout-color1, #fff); color: inherit; cursor: pointer; }
.llm-bitnet button.on { background: rgba(100, 149, 237, 0.35); font-weight: 600; }
.llm-bitnet .llm-info { min-height: 18px; font-family: var(--jp-code-font-family, monospace); }
.llm-bitnet svg text { fill: var(--jp-ui-font-color1, #222); font-size: 10px; }
@media (prefers-color-scheme: dark) { .llm-bitnet { color: var(--jp-ui-font-color1, #eee); }
  .llm-bitnet svg text { fill: var(--jp-ui-font-color1, #eee); } }
`;
const NS = "http://www.w3.org/2000/svg";
const svgEl = (tag, attrs) => { const e = document.createElementNS(NS, tag); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; };
// diverging colour: blue for negative, orange for positive, transparent at zero (reads on light and dark backgrounds)
const colour = (v, vmax) => { const a = Math.min(1, Math.abs(v) / (vmax || 1));
  return v < 0 ? `rgba(60, 120, 230, ${a.toFixed(3)})` : `rgba(240, 140, 30, ${a.toFixed(3)})`; };

function heatmap(rows, cols, values, vmax, cell, onHover, cls) {
  const svg = svgEl("svg", { width: cols * cell + 1, height: rows * cell + 1, class: cls });
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
    const i = r * cols + c;
    const rect = svgEl("rect", { x: c * cell, y: r * cell, width: cell - 1, height: cell - 1, fill: colour(values[i], vmax),
      stroke: "var(--jp-border-color2, #ccc)", "stroke-width": 0.5, class: "llm-cell", "data-i": i });
    rect.addEventListener("mouseenter", () => onHover(i, r, c));
    svg.append(rect);
  }
  return svg;
}

function render({ model, el }) {
  const style = document.createElement("style"); style.textContent = CSS;
  const root = document.createElement("div"); root.className = "llm-bitnet";
  el.append(style, root);

  function draw() {
    const t = model.get("trace") || {};
    if (!t.modes) { root.textContent = "no trace"; return; }
    const modeName = model.get("step") === 1 ? "group" : "tensor";
    const m = t.modes[modeName];
    root.replaceChildren();
    const controls = document.createElement("div"); controls.className = "row";
    const b1 = document.createElement("button"); b1.textContent = "per tensor"; b1.className = "llm-mode-tensor" + (modeName === "tensor" ? " on" : "");
    const b2 = document.createElement("button"); b2.textContent = `per group of ${t.group_size}`; b2.className = "llm-mode-group" + (modeName === "group" ? " on" : "");
    b1.onclick = () => { model.set("step", 0); model.save_changes(); };
    b2.onclick = () => { model.set("step", 1); model.save_changes(); };
    const stats = document.createElement("span"); stats.className = "llm-stats";
    stats.textContent = `scales: ${m.n_scales} · zeros: ${(100 * m.zero_frac).toFixed(1)}% · relative error ‖γW̃ − W‖/‖W‖: ${m.rel_err.toFixed(3)}`;
    controls.append(b1, b2, stats);
    const info = document.createElement("div"); info.className = "llm-info";
    info.textContent = "hover a cell: original → scaled → quantised";
    const hover = (i, r, c) => {
      info.textContent = `W[${r}, ${c}] = ${t.w[i].toFixed(4)} → /γ=${m.scale[i].toFixed(4)} → ${m.scaled[i].toFixed(3)} → ${m.q[i]}`;
    };
    const wmax = Math.max(...t.w.map(Math.abs));
    const cell = Math.max(6, Math.min(14, Math.floor(300 / t.K)));
    const grids = document.createElement("div"); grids.className = "row";
    const panel = (title, svg) => { const p = document.createElement("div"); p.className = "panel";
      const h = document.createElement("div"); h.className = "title"; h.textContent = title; p.append(h, svg); return p; };
    grids.append(panel("full precision W", heatmap(t.N, t.K, t.w, wmax, cell, hover, "llm-heat-fp")),
                 panel("scaled W / γ", heatmap(t.N, t.K, m.scaled, 1.5, cell, hover, "llm-heat-scaled")),
                 panel("ternary W̃", heatmap(t.N, t.K, m.q, 1, cell, hover, "llm-heat-q")));
    // histogram of scaled values with the rounding thresholds at ±0.5 (and the clip at ±1)
    const H = 110, Wd = 420, PAD = 16, n = m.hist.length, hmax = Math.max(...m.hist, 1);
    const hist = svgEl("svg", { width: Wd, height: H + 16, class: "llm-hist" });
    // the plot area is inset by PAD on both sides, so the end labels ("−3", "3") are drawn whole, centred on their tick
    const x0 = m.edges[0], x1 = m.edges[m.edges.length - 1], sx = (v) => PAD + (v - x0) / (x1 - x0) * (Wd - 2 * PAD);
    const bw = (Wd - 2 * PAD) / n;
    m.hist.forEach((h, i) => {
      if (h === 0) return;                                   // an empty bin draws nothing
      const mid = (m.edges[i] + m.edges[i + 1]) / 2, q = Math.abs(mid) < 0.5 ? 0 : Math.sign(mid);
      // bins that round to 0 are neutral grey; those that round to -1 / +1 get the heatmaps' blue / orange
      const fill = q === 0 ? "rgba(128, 128, 128, 0.55)" : colour(q, 1);
      hist.append(svgEl("rect", { x: sx(m.edges[i]), y: H - h / hmax * H, width: Math.max(1, bw - 1), height: h / hmax * H, fill, class: "llm-bin" }));
    });
    for (const th of [-0.5, 0.5]) {
      hist.append(svgEl("line", { x1: sx(th), x2: sx(th), y1: 0, y2: H, stroke: "currentColor", "stroke-dasharray": "3 2" }));
      const lab = svgEl("text", { x: sx(th) + (th > 0 ? 2 : -2), y: 10, "text-anchor": th > 0 ? "start" : "end" });
      lab.textContent = th > 0 ? "+½ → 1" : "−½ → −1"; hist.append(lab);
    }
    for (const v of [-3, -1, 0, 1, 3]) {
      const lab = svgEl("text", { x: sx(v), y: H + 12, "text-anchor": "middle" });
      lab.textContent = v < 0 ? `−${-v}` : String(v); hist.append(lab);
    }
    const hpanel = panel("histogram of W / γ (clipped to ±3), rounding thresholds ±½", hist);
    // activation panel: x and its int8 codes, one scale per token (row)
    const amax = Math.max(...t.x.map(Math.abs)), acell = Math.max(8, Math.min(14, Math.floor(260 / t.C)));
    const ainfo = document.createElement("div"); ainfo.className = "llm-info";
    ainfo.textContent = `int8 absmax per token · relative error ${t.x_rel_err.toFixed(4)} · hover a cell`;
    const ahover = (i, r) => { ainfo.textContent = `x = ${t.x[i].toFixed(4)} → ×127/max|x| → ${t.x_q[i]} (token ${r}: scale ${t.x_scale[r].toExponential(3)})`; };
    const arow = document.createElement("div"); arow.className = "row";
    arow.append(panel("activations x (tokens × features)", heatmap(t.T, t.C, t.x, amax, acell, ahover, "llm-heat-x")),
                panel("int8 x_q", heatmap(t.T, t.C, t.x_q, 127, acell, ahover, "llm-heat-xq")));
    const apanel = document.createElement("div"); apanel.className = "panel"; apanel.append(arow, ainfo);
    const bottom = document.createElement("div"); bottom.className = "row"; bottom.append(hpanel, apanel);
    root.append(controls, grids, info, bottom);
  }
  model.on("change:trace", draw);
  model.on("change:step", draw);
  draw();
}
export default { render };
