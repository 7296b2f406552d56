// llmlab/static/ring_attention.js — ring attention: P devices on a circle pass K/V blocks; step through the ring.
// Python precomputes everything in `trace` (see llmlab.ring_attention.trace_ring_attention): for each
// "P-layout-causal" config the shard positions, work[rank][step] (query-key pairs computed), the running error of
// each device's output, and a modelled compute/comm timeline with and without overlap. `step` is the ring step.
// No network, no innerHTML with data, fixed height, colours from the Jupyter theme with fallbacks.

const NS = "http://www.w3.org/2000/svg";
const CSS = `
.llm-ring { font: 12px/1.35 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 470px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc);
  border-radius: 6px; overflow: hidden; background: var(--jp-layout-color0, transparent); }
.llm-ring .row { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; margin-bottom: 4px; }
.llm-ring button { min-width: 28px; padding: 1px 6px; color: inherit; background: var(--jp-layout-color2, #eee);
  border: 1px solid var(--jp-border-color1, #999); border-radius: 4px; cursor: pointer; }
.llm-ring button.on { background: var(--jp-brand-color1, #1976d2); color: #fff; }
.llm-ring select { color: inherit; background: var(--jp-layout-color1, #fff); }
.llm-ring input[type=range] { width: 140px; }
.llm-ring svg text { fill: var(--jp-ui-font-color1, #222); font-size: 11px; }
.llm-ring svg .muted { fill: var(--jp-ui-font-color2, #666); }
.llm-ring svg .edge { stroke: var(--jp-ui-font-color2, #777); fill: none; stroke-width: 1.5; }
.llm-ring svg .dev { fill: var(--jp-layout-color2, #eee); stroke: var(--jp-ui-font-color2, #666); }
.llm-ring svg .cell { stroke: var(--jp-border-color1, #999); fill: none; }
.llm-ring svg .now { stroke: var(--jp-warn-color0, #e65100); stroke-width: 2.5; }
.llm-ring svg .comm { fill: var(--jp-ui-font-color3, #999); opacity: 0.7; }
.llm-ring svg .cursor { stroke: var(--jp-warn-color0, #e65100); stroke-dasharray: 3 2; }
.llm-ring .llm-label { min-height: 2.6em; white-space: pre-wrap; }
`;

const el_ = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const svg_ = (tag, attrs, text) => {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
};
const hue = (j, P) => `hsl(${Math.round((360 * j) / P)}, 65%, 52%)`;

function render({ model, el }) {
  const style = el_("style"); style.textContent = CSS;
  const root = el_("div", "llm-ring"); root.tabIndex = 0;
  const trace = () => model.get("trace") || { configs: {}, worlds: [], layouts: [] };
  const init = trace().initial || { P: 4, layout: "contiguous", causal: true, overlap: true };
  const state = { P: init.P, layout: init.layout, causal: init.causal, overlap: init.overlap };

  // controls: P, layout, causal, overlap; then the stepper
  const top = el_("div", "row"), stepper = el_("div", "row");
  const psel = el_("select", "llm-p");
  for (const P of trace().worlds) { const o = el_("option", "", `P = ${P}`); o.value = String(P); psel.append(o); }
  const layoutBtns = (trace().layouts || []).map((l) => { const b = el_("button", "llm-layout", l); b.dataset.layout = l; return b; });
  const causalBox = el_("input", "llm-causal"); causalBox.type = "checkbox";
  const overlapBox = el_("input", "llm-overlap"); overlapBox.type = "checkbox";
  const lab = (box, text) => { const l = el_("label"); l.append(box, document.createTextNode(" " + text)); return l; };
  top.append(psel, ...layoutBtns, lab(causalBox, "causal"), lab(overlapBox, "overlap (send before compute)"));
  const prev = el_("button", "llm-prev", "◀"), next = el_("button", "llm-next", "▶");
  const slider = el_("input", "llm-step"); slider.type = "range"; slider.min = "0";
  const stepText = el_("span", "llm-steptext");
  stepper.append(prev, slider, next, stepText);
  const svg = svg_("svg", { width: 660, height: 330, viewBox: "0 0 660 330" });
  const label = el_("div", "llm-label");
  root.append(top, stepper, svg, label);
  el.append(style, root);

  const cfg = () => trace().configs[`${state.P}-${state.layout}-${state.causal ? 1 : 0}`];
  const clamp = (s) => Math.max(0, Math.min(state.P - 1, s));
  const go = (s) => { model.set("step", clamp(s)); model.save_changes(); };

  function draw() {
    const c = cfg();
    svg.replaceChildren();
    if (!c) { label.textContent = "no trace for this configuration"; return; }
    const P = c.P, s = clamp(model.get("step") || 0), full = trace().n_local * trace().n_local;
    psel.value = String(P); causalBox.checked = state.causal; overlapBox.checked = state.overlap;
    layoutBtns.forEach((b) => b.classList.toggle("on", b.dataset.layout === state.layout));
    slider.max = String(P - 1); slider.value = String(s);
    stepText.textContent = `step ${s + 1}/${P}`;

    // 1. the ring: device r holds K/V block (r - s) mod P; arrows r -> r+1
    const cx = 120, cy = 138, R = 88;
    const at = (r) => [cx + R * Math.sin((2 * Math.PI * r) / P), cy - R * Math.cos((2 * Math.PI * r) / P)];
    const defs = svg_("defs");
    const marker = svg_("marker", { id: "llm-ring-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" });
    marker.append(svg_("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "edge", fill: "currentColor" }));
    defs.append(marker); svg.append(defs);
    svg.append(svg_("text", { x: 10, y: 16 }, "devices on a ring (K/V block held now)"));
    for (let r = 0; r < P; r++) {
      const [x0, y0] = at(r), [x1, y1] = at((r + 1) % P);
      const dx = x1 - x0, dy = y1 - y0, d = Math.hypot(dx, dy) || 1, pad = 26;
      if (P > 1) svg.append(svg_("line", { x1: x0 + (dx * pad) / d, y1: y0 + (dy * pad) / d, x2: x1 - (dx * pad) / d, y2: y1 - (dy * pad) / d,
        class: "edge", "marker-end": "url(#llm-ring-arrow)" }));
    }
    for (let r = 0; r < P; r++) {
      const [x, y] = at(r), src = (((r - s) % P) + P) % P;
      svg.append(svg_("circle", { cx: x, cy: y, r: 22, class: "dev", style: `stroke: ${hue(r, P)}; stroke-width: 3` }));
      svg.append(svg_("text", { x: x - 9, y: y - 4 }, `D${r}`));
      svg.append(svg_("rect", { x: x - 12, y: y + 2, width: 24, height: 12, rx: 2, fill: hue(src, P) }));
      svg.append(svg_("text", { x: x - 10, y: y + 12, style: "font-size: 9px; fill: #fff" }, `KV${src}`));
    }

    // 2. blocks seen: row = device (its queries), column = K/V block; shade = share of the block computed
    const gx = 265, gy = 30, cs = Math.min(22, 170 / P);
    svg.append(svg_("text", { x: gx, y: 16 }, "blocks seen (queries × K/V)"));
    for (let r = 0; r < P; r++) {
      svg.append(svg_("text", { x: gx - 22, y: gy + r * cs + cs * 0.7, class: "muted" }, `D${r}`));
      for (let j = 0; j < P; j++) {
        const when = (((r - j) % P) + P) % P, w = c.work[r][when] / full;
        const g = svg_("rect", { x: gx + j * cs, y: gy + r * cs, width: cs - 2, height: cs - 2, class: "cell" + (when === s ? " now" : "") });
        if (when <= s) { g.style.fill = hue(j, P); g.style.fillOpacity = String(0.15 + 0.85 * w); }
        const t = svg_("title", {}, `D${r} × KV${j}: step ${when + 1}, ${c.work[r][when]} of ${full} query-key pairs` + (w === 0 ? " (skipped: fully masked)" : ""));
        g.append(t); svg.append(g);
        if (when <= s && w === 0) svg.append(svg_("text", { x: gx + j * cs + cs / 2 - 4, y: gy + r * cs + cs * 0.7, class: "muted" }, "×"));
      }
    }
    for (let j = 0; j < P; j++) svg.append(svg_("text", { x: gx + j * cs + 2, y: gy + P * cs + 12, class: "muted", style: "font-size: 9px" }, `${j}`));

    // 3. timeline (model): compute (colour of the block) and comm (grey) per device, same scale with/without overlap
    const tl = c.timeline[state.overlap ? "1" : "0"], tmax = Math.max(c.timeline["1"].end, c.timeline["0"].end);
    const tx = 485, ty = 30, tw = 165, lane = Math.min(26, 250 / P), sx = (t) => tx + (tw * t) / tmax;
    svg.append(svg_("text", { x: tx, y: 16 }, `timeline (model, ${state.overlap ? "overlap" : "no overlap"})`));
    for (let r = 0; r < P; r++) {
      svg.append(svg_("text", { x: tx - 22, y: ty + r * lane + lane * 0.6, class: "muted" }, `D${r}`));
      for (const [kind, st, t0, t1] of tl.events[r]) {
        const src = (((r - st) % P) + P) % P;
        const h = kind === 0 ? lane * 0.55 : lane * 0.25, y = ty + r * lane + (kind === 0 ? 0 : lane * 0.6);
        const rect = svg_("rect", { x: sx(t0), y, width: Math.max(0.5, sx(t1) - sx(t0)), height: h,
          class: kind === 0 ? "" : "comm", fill: kind === 0 ? hue(src, P) : undefined, "fill-opacity": st <= s ? 1 : 0.25 });
        rect.append(svg_("title", {}, `${kind === 0 ? "compute KV" + src : "send/receive"} at step ${st + 1}: ${t0.toFixed(2)} – ${t1.toFixed(2)}`));
        svg.append(rect);
      }
    }
    const tNow = Math.max(...tl.events.map((evs) => Math.max(...evs.filter((e) => e[0] === 0 && e[1] === s).map((e) => e[3]))));
    svg.append(svg_("line", { x1: sx(tNow), y1: ty - 4, x2: sx(tNow), y2: ty + P * lane, class: "cursor" }));
    svg.append(svg_("text", { x: tx, y: ty + P * lane + 14, class: "muted" }, `end ${tl.end.toFixed(2)} (1.0 = one full block)`));

    // 4. the positions each device holds (its queries): a strip per device
    const px = 10, py = 292, pw = 640, cell = pw / c.N;
    svg.append(svg_("text", { x: px, y: py - 6 }, `sequence of N=${c.N} tokens, coloured by the device that holds it (${c.layout})`));
    c.positions.forEach((ps, r) => ps.forEach((p) =>
      svg.append(svg_("rect", { x: px + p * cell, y: py, width: Math.max(0.5, cell - 0.5), height: 14, fill: hue(r, P) }))));

    const err = c.error.map((row) => row[s]);
    const pct = (x) => `${Math.round(100 * x)}%`;
    label.textContent = `${c.layout}, ${c.causal ? "causal" : "not causal"}, P=${P}: work balance ${pct(c.efficiency.balance)}, ` +
      `lock-step efficiency ${pct(c.efficiency.lockstep)}; modelled ring time ${c.timeline["1"].end.toFixed(2)} with overlap, ` +
      `${c.timeline["0"].end.toFixed(2)} without.\nafter step ${s + 1}, each device's max |output − exact| (simulated ring, float64): ` +
      err.map((e, r) => `D${r} ${e < 1e-12 ? "0" : e.toExponential(1)}`).join(", ");
  }

  psel.addEventListener("change", () => { state.P = Number(psel.value); go(model.get("step")); draw(); });
  layoutBtns.forEach((b) => b.addEventListener("click", () => { state.layout = b.dataset.layout; draw(); }));
  causalBox.addEventListener("change", () => { state.causal = causalBox.checked; draw(); });
  overlapBox.addEventListener("change", () => { state.overlap = overlapBox.checked; draw(); });
  prev.addEventListener("click", () => go((model.get("step") || 0) - 1));
  next.addEventListener("click", () => go((model.get("step") || 0) + 1));
  slider.addEventListener("input", () => go(Number(slider.value)));
  root.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") go((model.get("step") || 0) - 1);
    if (e.key === "ArrowRight") go((model.get("step") || 0) + 1);
  });
  model.on("change:step", draw);
  model.on("change:trace", draw);
  draw();
}

export default { render };
