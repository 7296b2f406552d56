// llmlab/static/gpt.js — attention of the shared GPT over a world document, and the KV cache growing during generation.
// Python precomputes everything (trace_attention): tokens with their true world tags, attention weights per layer and
// head (causal rows), and for each greedy step the fed token, the cache length and that token's attention row.
// No network; model text goes into the DOM with textContent only; fixed height; colours readable in light and dark themes.

const CSS = `
.llm-gpt { font: 12px/1.35 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 480px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc);
  border-radius: 6px; display: flex; flex-direction: column; gap: 6px; overflow: hidden; }
.llm-gpt .llm-controls { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
.llm-gpt .llm-body { display: flex; gap: 12px; min-height: 0; flex: 1; }
.llm-gpt svg { flex: none; }
.llm-gpt .llm-side { flex: 1; min-width: 0; display: flex; flex-direction: column; gap: 4px; overflow: hidden; }
.llm-gpt .llm-cache { overflow-y: auto; flex: 1; font-variant-numeric: tabular-nums; }
.llm-gpt .llm-row { display: flex; align-items: center; gap: 6px; height: 15px; }
.llm-gpt .llm-tok { width: 90px; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; border-radius: 3px; padding: 0 3px; }
.llm-gpt .llm-bar { height: 9px; background: rgba(255, 140, 0, 0.8); border-radius: 2px; }
.llm-gpt .llm-muted { color: var(--jp-ui-font-color2, #777); }
.llm-gpt .llm-legend span { margin-right: 8px; padding: 0 4px; border-radius: 3px; }
.llm-gpt .llm-new { font-weight: bold; outline: 1px solid rgba(255, 140, 0, 0.9); }
`;
const TAGCOL = { NAME: "rgba(66,133,244,0.35)", CITY: "rgba(52,168,83,0.35)", JOB: "rgba(171,71,188,0.35)",
  COLOUR: "rgba(251,188,5,0.40)", SENTIMENT: "rgba(234,67,53,0.35)", NUMBER: "rgba(0,172,193,0.35)",
  OBJECT: "rgba(121,85,72,0.35)", VERB: "rgba(158,157,36,0.35)", GEN: "rgba(255,140,0,0.25)" };
const SVGNS = "http://www.w3.org/2000/svg";
const el_ = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = String(text); return e; };
const svg_ = (tag, attrs) => { const e = document.createElementNS(SVGNS, tag); for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v)); return e; };

function render({ model, el }) {
  const style = el_("style"); style.textContent = CSS;
  const root = el_("div", "llm-gpt");
  const controls = el_("div", "llm-controls");
  const laySel = el_("select"), headSel = el_("select");
  const prev = el_("button", null, "◀"), next = el_("button", null, "▶"), stepLab = el_("span");
  prev.title = "previous generation step"; next.title = "next generation step";
  controls.append(el_("span", "llm-muted", "layer"), laySel, el_("span", "llm-muted", "head"), headSel,
                  el_("span", "llm-muted", "| generation"), prev, next, stepLab);
  const legend = el_("div", "llm-legend");
  for (const [t, c] of Object.entries(TAGCOL)) { const s = el_("span", null, t === "GEN" ? "generated" : t.toLowerCase()); s.style.background = c; legend.append(s); }
  const body = el_("div", "llm-body");
  const SIZE = 330;
  const svg = svg_("svg", { width: SIZE, height: SIZE, viewBox: `0 0 ${SIZE} ${SIZE}` });
  const side = el_("div", "llm-side");
  const info = el_("div", "llm-muted"), cacheHead = el_("div"), cache = el_("div", "llm-cache");
  side.append(info, cacheHead, cache);
  body.append(svg, side);
  root.append(controls, legend, body);
  el.append(style, root);

  let query = -1;                                     // hovered query row of the heatmap (-1: none)
  const tr = () => model.get("trace") || {};
  function fillSelect(sel, n, label) {
    if (sel.options.length === n) return;
    sel.textContent = "";
    for (let i = 0; i < n; i++) { const o = el_("option", null, `${label} ${i}`); o.value = String(i); sel.append(o); }
  }
  function draw() {
    const t = tr(); if (!t.tokens) return;
    fillSelect(laySel, t.n_layer, "L"); fillSelect(headSel, t.n_head, "H");
    const L = +laySel.value || 0, H = +headSel.value || 0, T = t.tokens.length;
    const nSteps = t.steps.length, step = Math.max(0, Math.min(model.get("step") || 0, nSteps));
    stepLab.textContent = `step ${step} / ${nSteps}`;
    // heatmap of the prompt's attention (rows: queries, columns: keys)
    svg.textContent = "";
    const pad = 4, cell = (SIZE - 2 * pad) / T, rows = t.attn[L][H];
    for (let i = 0; i < T; i++) for (let j = 0; j <= i; j++) {
      const w = rows[i][j];
      const r = svg_("rect", { x: pad + j * cell, y: pad + i * cell, width: cell, height: cell,
        fill: `rgba(255,140,0,${Math.min(1, 0.05 + w).toFixed(3)})`, stroke: i === query ? "currentColor" : "none", "stroke-width": 0.5 });
      const tip = svg_("title"); tip.textContent = `${t.tokens[i]} → ${t.tokens[j]}: ${w.toFixed(3)}`; r.append(tip);
      r.addEventListener("mouseenter", () => { query = i; drawSide(); });
      svg.append(r);
    }
    svg.append(svg_("rect", { x: pad, y: pad, width: T * cell, height: T * cell, fill: "none", stroke: "currentColor", "stroke-opacity": 0.3 }));
    drawSide();
  }
  function tokRow(text, tag, w, isNew) {
    const row = el_("div", "llm-row");
    const tk = el_("span", "llm-tok" + (isNew ? " llm-new" : ""), text); tk.style.background = TAGCOL[tag] || "transparent"; tk.title = tag;
    const bar = el_("div", "llm-bar"); bar.style.width = `${Math.round(160 * w)}px`;
    row.append(tk, bar, el_("span", "llm-muted", w.toFixed(3)));
    return row;
  }
  function drawSide() {
    const t = tr(); if (!t.tokens) return;
    const L = +laySel.value || 0, H = +headSel.value || 0, T = t.tokens.length;
    const step = Math.max(0, Math.min(model.get("step") || 0, t.steps.length));
    cache.textContent = "";
    if (step === 0) {
      const q = query >= 0 ? query : T - 1;
      info.textContent = `Prompt: ${T} tokens in the cache after prefill. Hover a heatmap row to pick a query; ▶ decodes one token.`;
      cacheHead.textContent = `layer ${L} head ${H}: query "${t.tokens[q]}" (position ${q}) attends to`;
      t.attn[L][H][q].forEach((w, j) => cache.append(tokRow(t.tokens[j], t.tags[j], w, j === q)));
    } else {
      const s = t.steps[step - 1];
      const toks = t.tokens.concat(t.steps.slice(0, step).map((x) => x.token));
      const tags = t.tags.concat(t.steps.slice(0, step).map(() => "GEN"));
      info.textContent = `Step ${step}: fed "${s.token}", the cache now holds ${s.cache_len} rows (keys and values per layer); the model predicts "${s.next}" next.`;
      cacheHead.textContent = `layer ${L} head ${H}: the new token's attention over the ${s.cache_len} cached rows`;
      s.attn[L][H].forEach((w, j) => cache.append(tokRow(toks[j], tags[j], w, j === s.cache_len - 1)));
      cache.scrollTop = cache.scrollHeight;
    }
  }
  const setStep = (v) => { const n = (tr().steps || []).length; model.set("step", Math.max(0, Math.min(n, v))); model.save_changes(); };
  prev.addEventListener("click", () => setStep((model.get("step") || 0) - 1));
  next.addEventListener("click", () => setStep((model.get("step") || 0) + 1));
  laySel.addEventListener("change", draw); headSel.addEventListener("change", draw);
  model.on("change:step", drawSide); model.on("change:trace", draw);
  draw();
}
export default { render };
