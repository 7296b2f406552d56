// llmlab/static/flash_attention.js — step through the tiles of FlashAttention's forward pass.
// Python precomputes everything (trace_flash_attention): for each config "<full|causal>-<bq>x<bk>-<fa2|fa1>" the
// visited tiles in loop order, the skipped causal tiles, per-row running max m, denominator l and rescale factor,
// and the HBM bytes read/written so far. `step` indexes the visited tiles of the chosen config.
// No network, data put in the DOM with textContent, fixed height, colours from JupyterLab variables with fallbacks.

const CSS = `
.llm-fa { font: 12px/1.35 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 460px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc);
  border-radius: 6px; display: flex; flex-direction: column; gap: 6px; overflow: hidden; }
.llm-fa .llm-controls { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
.llm-fa .llm-body { display: flex; gap: 12px; min-height: 0; flex: 1; }
.llm-fa svg { flex: none; }
.llm-fa .llm-side { flex: 1; min-width: 0; display: flex; flex-direction: column; gap: 6px; overflow: hidden; }
.llm-fa table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.llm-fa td, .llm-fa th { padding: 1px 6px; text-align: right; border-bottom: 1px solid var(--jp-border-color3, #e4e4e4); }
.llm-fa tr.llm-now td { background: rgba(255, 165, 0, 0.35); font-weight: bold; }
.llm-fa tr.llm-future td { opacity: 0.35; }
.llm-fa .llm-bar { height: 10px; background: rgba(100, 149, 237, 0.65); border-radius: 2px; }
.llm-fa .llm-bar.naive { background: rgba(220, 80, 80, 0.6); }
.llm-fa .llm-muted { color: var(--jp-ui-font-color2, #666); }
.llm-fa button { min-width: 30px; }
.llm-fa .llm-tablewrap { overflow-y: auto; max-height: 230px; }
`;

const SVGNS = "http://www.w3.org/2000/svg";
const el_ = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = String(text); return e; };
const svg_ = (tag, attrs) => { const e = document.createElementNS(SVGNS, tag); for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v)); return e; };
const fmtB = (b) => b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} B`;

function render({ model, el }) {
  const uid = "fa" + Math.random().toString(36).slice(2, 9);
  const style = el_("style"); style.textContent = CSS;
  const root = el_("div", "llm-fa"); root.tabIndex = 0;

  // controls: stepper, play, causal, block sizes, loop order, chosen row
  const controls = el_("div", "llm-controls");
  const prev = el_("button", "llm-prev", "◀"); prev.title = "previous tile";
  const play = el_("button", "llm-play", "▶ play");
  const next = el_("button", "llm-next", "▶"); next.title = "next tile";
  const label = el_("span", "llm-label");
  const causalBox = el_("input", "llm-causal"); causalBox.type = "checkbox";
  const causalLab = el_("label", null); causalLab.append(causalBox, document.createTextNode(" causal"));
  const blockSel = el_("select", "llm-block");
  const orderSel = el_("select", "llm-order");
  for (const [v, t] of [["fa2", "FA2: Q outer, K/V inner"], ["fa1", "FA1: K/V outer, Q inner"]]) {
    const o = el_("option", null, t); o.value = v; orderSel.append(o);
  }
  const rowSlider = el_("input", "llm-row"); rowSlider.type = "range"; rowSlider.min = "0"; rowSlider.step = "1";
  const rowLab = el_("span", "llm-rowlabel");
  controls.append(prev, play, next, label, causalLab, el_("span", "llm-muted", "blocks (q×k)"), blockSel, orderSel,
                  el_("span", "llm-muted", "row"), rowSlider, rowLab);

  const body = el_("div", "llm-body");
  const SIZE = 340;
  const svg = svg_("svg", { width: SIZE, height: SIZE, viewBox: `0 0 ${SIZE} ${SIZE}` });
  const side = el_("div", "llm-side");
  const counters = el_("div", "llm-counters");
  const tableWrap = el_("div", "llm-tablewrap");
  const note = el_("div", "llm-muted");
  side.append(counters, tableWrap, note);
  body.append(svg, side);
  root.append(controls, body);
  el.append(style, root);

  const state = { causal: false, block: 0, order: "fa2", row: 0, timer: null };
  const trace = () => model.get("trace") || {};
  const key = () => { const t = trace(); const b = (t.blocks || [[8, 8]])[state.block]; return `${state.causal ? "causal" : "full"}-${b[0]}x${b[1]}-${state.order}`; };
  const cfg = () => (trace().configs || {})[key()];
  const nSteps = () => (cfg() ? cfg().steps.length : 0);
  const clamp = (s) => Math.max(0, Math.min(nSteps() - 1, s));
  const go = (s) => { model.set("step", clamp(s)); model.save_changes(); };

  function fillBlockOptions() {
    blockSel.replaceChildren(...(trace().blocks || []).map((b, i) => { const o = el_("option", null, `${b[0]} × ${b[1]}`); o.value = String(i); return o; }));
    blockSel.value = String(state.block);
    const maxRow = Math.max(0, (trace().N || 1) - 1);
    state.row = Math.min(state.row, maxRow);
    rowSlider.max = String(maxRow);            // set max first: an input's value is clamped to [min, max]
    rowSlider.value = String(state.row);       // then the thumb shows the row the panel shows (a new range input sits mid-way)
  }

  function drawGrid(c, s) {
    const t = trace(), N = t.N, cell = SIZE / N;
    const nq = Math.ceil(N / c.bq), nk = Math.ceil(N / c.bk);
    const defs = svg_("defs");
    const pat = svg_("pattern", { id: `${uid}-hatch`, width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
    pat.append(svg_("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "rgba(128,128,128,0.8)", "stroke-width": 2 }));
    defs.append(pat);
    const nodes = [defs];
    const status = {};                                      // "i,j" -> done | now
    c.steps.forEach((st, n) => { if (n <= s) status[`${st.i},${st.j}`] = n === s ? "now" : "done"; });
    const skipped = new Set(c.skipped.map(([i, j]) => `${i},${j}`));
    for (let i = 0; i < nq; i++) for (let j = 0; j < nk; j++) {
      const k = `${i},${j}`, x = j * c.bk * cell, y = i * c.bq * cell;
      const w = Math.min(c.bk, N - j * c.bk) * cell, h = Math.min(c.bq, N - i * c.bq) * cell;
      let fill = "transparent";
      if (skipped.has(k)) fill = `url(#${uid}-hatch)`;
      else if (status[k] === "now") fill = "rgba(255,165,0,0.75)";
      else if (status[k] === "done") fill = "rgba(100,149,237,0.28)";
      const r = svg_("rect", { x, y, width: w, height: h, fill, stroke: "var(--jp-ui-font-color2, #888)", "stroke-width": 1, class: "llm-tile" });
      const tt = svg_("title"); tt.textContent = skipped.has(k) ? `tile (${i}, ${j}): skipped, fully masked` : `tile (${i}, ${j})`;
      r.append(tt); nodes.push(r);
    }
    if (state.causal) {                                     // masked elements (j > i) inside visited diagonal tiles
      for (let i = 0; i < N; i++) {
        const x = (i + 1) * cell, w = SIZE - x;
        if (w > 0) nodes.push(svg_("rect", { x, y: i * cell, width: w, height: cell, fill: "rgba(128,128,128,0.22)" }));
      }
    }
    const y = state.row * cell;                             // the chosen row
    nodes.push(svg_("rect", { x: 0, y, width: SIZE, height: cell, fill: "none", stroke: "rgba(200,40,40,0.9)", "stroke-width": 1.5 }));
    svg.replaceChildren(...nodes);
  }

  function drawSide(c, s) {
    const t = trace(), st = c.steps[s];
    const rd = st ? st.read : 0, wr = st ? st.write : 0, naive = t.naive_bytes || 1;
    const bar = (v, cls) => { const b = el_("div", "llm-bar" + (cls ? " " + cls : "")); b.style.width = `${Math.min(100, (100 * v) / naive)}%`; return b; };
    counters.replaceChildren(
      el_("div", null, `HBM so far: read ${fmtB(rd)}, written ${fmtB(wr)} (total ${fmtB(rd + wr)})`), bar(rd + wr),
      el_("div", null, `naive attention: read ${fmtB(t.naive_read)}, written ${fmtB(t.naive_write)} (total ${fmtB(naive)})`), bar(naive, "naive"),
      el_("div", "llm-muted", `${c.steps.length} tiles visited, ${c.skipped.length} skipped; bytes at 2 per element, 4 per fp32 statistic`));
    const rows = (c.rows || [])[state.row] || [];
    const table = el_("table");
    const head = el_("tr"); for (const h of ["tile step", "m (max)", "l (denominator)", "rescale e^(m−m′)"]) head.append(el_("th", null, h));
    table.append(head);
    for (const [n, m, l, a] of rows) {
      const tr = el_("tr", n === s ? "llm-now" : n > s ? "llm-future" : "");
      const stn = c.steps[n];
      for (const v of [`${n + 1} (${stn.i},${stn.j})`, m.toFixed(4), l.toFixed(4), a.toFixed(4)]) tr.append(el_("td", null, v));
      table.append(tr);
    }
    tableWrap.replaceChildren(el_("div", null, `query row ${state.row}: running statistics after each tile that covers it`), table);
    const lse = (c.lse || [])[state.row];
    note.textContent = lse === undefined ? "" : `final LSE = m + ln l = ${Number(lse).toFixed(4)}`;
  }

  function draw() {
    const c = cfg();
    if (!c) { label.textContent = "no trace"; svg.replaceChildren(); return; }
    const s = clamp(model.get("step"));
    const st = c.steps[s];
    label.textContent = st ? `tile ${s + 1}/${c.steps.length}: Q block ${st.i} × K/V block ${st.j}${st.diag ? " (diagonal, masked)" : ""}` : "no tiles";
    rowLab.textContent = String(state.row);
    if (rowSlider.value !== String(state.row)) rowSlider.value = String(state.row);
    drawGrid(c, s); drawSide(c, s);
  }

  const stop = () => { if (state.timer) { clearInterval(state.timer); state.timer = null; } play.textContent = "▶ play"; };
  play.addEventListener("click", () => {
    if (state.timer) return stop();
    if (model.get("step") >= nSteps() - 1) go(0);
    play.textContent = "❚❚ pause";
    state.timer = setInterval(() => { const s = model.get("step"); if (s >= nSteps() - 1) stop(); else go(s + 1); }, 450);
  });
  prev.addEventListener("click", () => { stop(); go(model.get("step") - 1); });
  next.addEventListener("click", () => { stop(); go(model.get("step") + 1); });
  const reconfigure = () => { stop(); go(0); draw(); };
  causalBox.addEventListener("change", () => { state.causal = causalBox.checked; reconfigure(); });
  blockSel.addEventListener("change", () => { state.block = Number(blockSel.value); reconfigure(); });
  orderSel.addEventListener("change", () => { state.order = orderSel.value; reconfigure(); });
  rowSlider.addEventListener("input", () => { state.row = Number(rowSlider.value); draw(); });
  root.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") go(model.get("step") - 1);
    if (e.key === "ArrowRight") go(model.get("step") + 1);
  });
  model.on("change:step", draw);
  model.on("change:trace", () => { fillBlockOptions(); draw(); });
  fillBlockOptions();
  draw();
  return () => stop();
}

export default { render };
