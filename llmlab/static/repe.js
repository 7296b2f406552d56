// llmlab/static/repe.js — representation engineering: steer a model along a reading direction and watch what changes.
// trace: {title, layers[], alphas[], mode, positions, prompts[{prompt[], base, steered[layer][alpha]}]} where a run is
//        {tokens[] (completion), top[[token, prob]] (next token after the prompt), heat[layer][token] (projection on that layer's direction)};
// `step` = index of the alpha shown (slider, ◀/▶, arrow keys). Layer and prompt are chosen in the view.
// "generate" asks the kernel for a fresh sampled completion; it stays disabled until the kernel answers (never on the static site).
// No network; model text goes through textContent only; fixed height; colours that read in light and dark themes.

const SVGNS = "http://www.w3.org/2000/svg";
const CSS = `
.llm-repe { font: 12px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 450px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc);
  border-radius: 6px; overflow: hidden; display: flex; flex-direction: column; gap: 6px; outline: none; }
.llm-repe .llm-head { display: flex; gap: 12px; align-items: baseline; }
.llm-repe .llm-title { font-weight: 600; }
.llm-repe .llm-row { display: flex; gap: 8px; align-items: center; }
.llm-repe input[type=range] { flex: 1; }
.llm-repe .llm-cols { display: flex; gap: 10px; }
.llm-repe .llm-col { flex: 1; min-width: 0; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 4px; padding: 4px 6px; }
.llm-repe .llm-col h4 { margin: 0 0 3px 0; font-size: 11px; font-weight: 600; opacity: 0.85; }
.llm-repe .llm-text { height: 40px; overflow: hidden; }
.llm-repe .llm-tok { display: inline-block; padding: 0 2px; margin: 1px; border-radius: 3px; }
.llm-repe .llm-tok.llm-prompt-tok { opacity: 0.55; }
.llm-repe .llm-tok.llm-changed { background: rgba(255, 165, 0, 0.45); outline: 1px solid rgba(214, 96, 39, 0.9); }
.llm-repe .llm-tok.llm-gone { text-decoration: line-through; opacity: 0.6; }
.llm-repe svg text { fill: var(--jp-ui-font-color1, #222); }
.llm-repe .llm-caption { font-size: 11px; opacity: 0.8; }
.llm-repe .llm-live { min-height: 16px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
@media (prefers-color-scheme: dark) { .llm-repe { color: var(--jp-ui-font-color1, #eee); } .llm-repe svg text { fill: var(--jp-ui-font-color1, #eee); } }
`;

const el_ = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const svg_ = (tag, attrs = {}) => { const e = document.createElementNS(SVGNS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; };
// projection value in [-1, 1] -> blue (negative) .. transparent .. orange (positive): readable on light and dark
const heatColour = (v) => v >= 0 ? `rgba(230, 120, 20, ${0.08 + 0.9 * Math.min(1, v)})` : `rgba(50, 120, 220, ${0.08 + 0.9 * Math.min(1, -v)})`;
// the slider's unit: c (a multiple of the typical residual norm at the block) when the trace has scales, else α itself;
// the same unit is shown on the slider label, the steered column and the live-generation line
const unit = (tr) => ((tr.scales || []).some((x) => x !== 1) ? "c" : "α");
const fmt = (a) => (a > 0 ? "+" : "") + Number(a).toFixed(Math.abs(a) < 1 && a !== 0 ? 2 : 1);

function render({ model, el }) {
  const style = el_("style"); style.textContent = CSS;
  const root = el_("div", "llm-repe"); root.tabIndex = 0;
  const head = el_("div", "llm-head");
  const title = el_("span", "llm-title"), label = el_("span", "llm-label");
  head.append(title, label);

  const controls = el_("div", "llm-row");
  const layerSel = el_("select", "llm-layer"), promptSel = el_("select", "llm-prompt-select");
  const prev = el_("button", "llm-prev", "◀"), next = el_("button", "llm-next", "▶");
  const slider = el_("input", "llm-alpha"); slider.type = "range"; slider.min = 0; slider.step = 1;
  controls.append(el_("span", "", "layer"), layerSel, el_("span", "", "prompt"), promptSel, prev, slider, next);

  const cols = el_("div", "llm-cols");
  const mkCol = (h) => { const c = el_("div", "llm-col"); const t = el_("h4", "", h); const body = el_("div", "llm-text"); c.append(t, body); return [c, t, body]; };
  const [baseCol, , baseText] = mkCol("baseline (unsteered), greedy");
  const [steerCol, steerHead, steerText] = mkCol("steered");
  cols.append(baseCol, steerCol);

  const W = 900;
  const distCap = el_("div", "llm-caption", "next-token distribution right after the prompt: baseline (left) vs steered (right), top tokens");
  const dist = svg_("svg", { viewBox: `0 0 ${W} 92`, width: "100%", height: 92, class: "llm-dist" });
  const heatCap = el_("div", "llm-caption", "");
  const heat = svg_("svg", { viewBox: `0 0 ${W} 120`, width: "100%", height: 120, class: "llm-heat" });

  const liveRow = el_("div", "llm-row");
  const gen = el_("button", "llm-generate", "generate (live)"); gen.disabled = true;
  gen.title = "needs a running Python kernel: samples a fresh steered completion at the current layer and slider value";
  const live = el_("span", "llm-live", "live generation needs a kernel (disabled on the static page)");
  liveRow.append(gen, live);

  root.append(head, controls, cols, distCap, dist, heatCap, heat, liveRow);
  el.append(style, root);

  const trace = () => model.get("trace") || { layers: [], alphas: [], prompts: [] };
  let layerIdx = 0, promptIdx = 0;
  const nA = () => trace().alphas.length;
  const clamp = (s) => Math.max(0, Math.min(nA() - 1, s));
  const go = (s) => { model.set("step", clamp(s)); model.save_changes(); };

  function fillSelects() {
    const tr = trace();
    layerSel.replaceChildren(...tr.layers.map((L, i) => { const o = el_("option", "", `block ${L} (resid_post)`); o.value = i; return o; }));
    promptSel.replaceChildren(...tr.prompts.map((p, i) => { const o = el_("option", "", p.prompt.filter((t) => t !== "<bos>").join(" ")); o.value = i; return o; }));
    layerIdx = Math.min(layerIdx, Math.max(0, tr.layers.length - 1)); promptIdx = Math.min(promptIdx, Math.max(0, tr.prompts.length - 1));
    layerSel.value = layerIdx; promptSel.value = promptIdx;
  }

  function tokens(box, prompt, toks, other, cls) {
    box.replaceChildren();
    prompt.forEach((t) => { if (t !== "<bos>") box.append(el_("span", "llm-tok llm-prompt-tok", t)); });
    toks.forEach((t, i) => {
      const diff = other[i] !== t;
      box.append(el_("span", "llm-tok" + (diff ? " " + cls : ""), t));
    });
  }

  function drawDist(base, st) {
    dist.replaceChildren();
    const half = W / 2, rows = Math.max(base.top.length, st.top.length), rh = 88 / Math.max(1, rows);
    [[base.top, 0, "rgba(100,149,237,0.75)"], [st.top, half, "rgba(230,120,20,0.8)"]].forEach(([top, x0, fill]) => {
      top.forEach(([tok, p], i) => {
        const y = 2 + i * rh;
        const t = svg_("text", { x: x0 + 88, y: y + rh * 0.72, "text-anchor": "end", "font-size": Math.min(11, rh * 0.85) });
        t.textContent = tok;
        dist.append(t, svg_("rect", { x: x0 + 94, y: y + 1, width: Math.max(1, (half - 160) * p), height: rh - 2, fill, class: "llm-bar" }));
        const v = svg_("text", { x: x0 + 98 + (half - 160) * p, y: y + rh * 0.72, "font-size": Math.min(10, rh * 0.8) });
        v.textContent = p.toFixed(3);
        dist.append(v);
      });
    });
  }

  function drawHeat(entry, run) {
    heat.replaceChildren();
    const tr = trace(), toks = [...entry.prompt, ...run.tokens], rows = run.heat.length;
    if (!rows) return;
    let m = 1e-9;                                               // one colour scale per prompt: across layers, alphas and runs
    entry.steered.forEach((byA) => byA.forEach((r) => r.heat.forEach((row) => row.forEach((v) => { m = Math.max(m, Math.abs(v)); }))));
    const x0 = 110, cw = (W - x0) / Math.max(1, toks.length), rh = 84 / rows;
    run.heat.forEach((row, r) => {
      const lab = svg_("text", { x: x0 - 6, y: 4 + r * rh + rh * 0.65, "text-anchor": "end", "font-size": 10 });
      lab.textContent = `block ${tr.layers[r]}`;
      heat.append(lab);
      row.forEach((v, c) => {
        const cell = svg_("rect", { x: x0 + c * cw + 0.5, y: 4 + r * rh + 0.5, width: cw - 1, height: rh - 1, fill: heatColour(v / m), class: "llm-cell" });
        const tip = svg_("title"); tip.textContent = `${toks[c]} · block ${tr.layers[r]}: projection ${v.toFixed(3)}`;
        cell.append(tip); heat.append(cell);
      });
    });
    const P = entry.prompt.length;
    heat.append(svg_("line", { x1: x0 + P * cw, x2: x0 + P * cw, y1: 2, y2: 90, stroke: "rgba(120,120,120,0.9)", "stroke-dasharray": "3 2" }));
    toks.forEach((t, c) => {
      const tx = svg_("text", { x: x0 + c * cw + cw / 2, y: 104, "text-anchor": "middle", "font-size": Math.min(10, 1.7 * cw / Math.max(3, t.length)) });
      tx.textContent = t; heat.append(tx);
    });
  }

  function draw() {
    const tr = trace();
    title.textContent = tr.title || "representation engineering";
    if (!tr.prompts.length || !tr.alphas.length) { label.textContent = "empty trace"; return; }
    const s = clamp(model.get("step")), a = tr.alphas[s], L = tr.layers[layerIdx];
    const sc = (tr.scales || [])[layerIdx] ?? 1, u = unit(tr);
    const abs = u === "c" ? ` (adds α·v with α = c·‖h‖ = ${fmt(a)} × ${sc.toFixed(1)} = ${(a * sc).toFixed(1)})` : "";
    slider.max = nA() - 1; slider.value = s;
    label.textContent = `block ${L} · ${u} = ${fmt(a)} (${s + 1}/${nA()})${abs} · ${tr.mode === "project_out" ? "project out" : "add"}, ${tr.positions === "all" ? "all positions" : "from the prompt's last token on"}`;
    const entry = tr.prompts[promptIdx], base = entry.base, run = entry.steered[layerIdx][s];
    steerHead.textContent = `steered at block ${L}, ${u} = ${fmt(a)}, greedy`;
    tokens(baseText, entry.prompt, base.tokens, run.tokens, "llm-gone");
    tokens(steerText, entry.prompt, run.tokens, base.tokens, "llm-changed");
    drawDist(base, run);
    heatCap.textContent = `each token's projection on its layer's reading direction in the steered run (orange +, blue −; dashed line: end of prompt)`;
    drawHeat(entry, run);
  }

  prev.addEventListener("click", () => go(model.get("step") - 1));
  next.addEventListener("click", () => go(model.get("step") + 1));
  slider.addEventListener("input", () => go(Number(slider.value)));
  root.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") { go(model.get("step") - 1); e.preventDefault(); }
    if (e.key === "ArrowRight") { go(model.get("step") + 1); e.preventDefault(); }
  });
  layerSel.addEventListener("change", () => { layerIdx = Number(layerSel.value); draw(); });
  promptSel.addEventListener("change", () => { promptIdx = Number(promptSel.value); draw(); });
  gen.addEventListener("click", () => {
    const tr = trace(), entry = tr.prompts[promptIdx];
    gen.disabled = true; live.textContent = "generating…";
    try {
      model.send({ type: "generate", layer: tr.layers[layerIdx], alpha: tr.alphas[clamp(model.get("step"))],
                   prompt: entry.prompt.filter((t) => t !== "<bos>").join(" "), seed: Math.floor(Math.random() * 1e6) });
    } catch (err) { live.textContent = "no kernel: live generation is unavailable here"; }
  });
  model.on("msg:custom", (msg) => {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "pong") {
      gen.disabled = !msg.live;
      live.textContent = msg.live ? "kernel attached: 'generate' samples a new steered completion (temperature 1)" : "kernel attached, but no model was given to the widget";
    } else if (msg.type === "generated") {
      gen.disabled = false;
      const tr = trace(), u = unit(tr), v = u === "c" ? msg.c : msg.alpha;     // the slider's unit, as everywhere else
      live.textContent = msg.error ? `error: ${msg.error}` : `block ${msg.layer}, ${u} = ${fmt(Number(v))} (sampled): … ${msg.text}`;
    }
  });
  model.on("change:step", draw);
  model.on("change:trace", () => { fillSelects(); draw(); });
  fillSelects();
  draw();
  try { model.send({ type: "ping" }); } catch (err) { /* static page: no kernel, the button stays disabled */ }
}

export default { render };
