// llmlab/static/mixture_of_agents.js — the layered graph of a Mixture-of-Agents run, one held-out question at a time.
// trace = { proposers: [name, ..], n_samples: int, outcomes: {name: css colour},
//           summary: [{name, accuracy}] (over the whole held-out set),
//           questions: [{question, answer, kind, layers: [[{proposer, answer: str|null, correct: bool}]],
//                        final: {answer: str|null, correct: bool, outcome: "picked"|"repaired"|"broke"|"missed"}}] }
// `step` indexes questions. Columns are layers; each node is one candidate (green right, red wrong by the world's
// checker); the last column is the aggregator, labelled with what it did: picked a right candidate, repaired (right
// while no candidate was), broke (wrong while a candidate was right) or missed (wrong, none right).
// Everything was computed in Python by trace_mixture_of_agents; nothing is recomputed here. Text via textContent only.

const CSS = `
.llm-moa { font: 13px/1.45 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 460px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  display: flex; flex-direction: column; gap: 6px; overflow: hidden; }
.llm-moa .bar { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.llm-moa .mono { font-family: var(--jp-code-font-family, monospace); }
.llm-moa .small { font-size: 12px; color: var(--jp-ui-font-color2, #555); }
.llm-moa svg text { fill: var(--jp-ui-font-color1, #222); font-size: 11px; }
.llm-moa svg .lbl { font-size: 10px; fill: var(--jp-ui-font-color2, #666); }
.llm-moa .sum { display: flex; gap: 10px; flex-wrap: wrap; font-size: 12px; }
.llm-moa .sum span { padding: 0 5px; border-radius: 4px; background: rgba(128,128,128,0.15); }
`;

const el_ = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const svgEl = (tag, attrs) => { const e = document.createElementNS("http://www.w3.org/2000/svg", tag); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; };
const GOOD = "#2ca02c", BAD = "#d62728";

function render({ model, el }) {
  const style = el_("style"); style.textContent = CSS;
  const root = el_("div", "llm-moa"); root.tabIndex = 0;
  const bar = el_("div", "bar");
  const prev = el_("button", "llm-prev", "◀"), next = el_("button", "llm-next", "▶");
  const label = el_("span", "llm-label");
  bar.append(prev, next, label);
  const q = el_("div", "mono");
  const W = 680, H = 300;
  const svg = svgEl("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  const sum = el_("div", "sum");
  root.append(bar, q, svg, sum);
  el.append(style, root);

  const tr = () => model.get("trace") || { questions: [], proposers: [] };
  const nQ = () => (tr().questions || []).length;
  const go = (s) => { model.set("step", Math.max(0, Math.min(nQ() - 1, s))); model.save_changes(); };
  prev.onclick = () => go((model.get("step") || 0) - 1);
  next.onclick = () => go((model.get("step") || 0) + 1);
  root.onkeydown = (e) => { if (e.key === "ArrowRight") { go((model.get("step") || 0) + 1); e.preventDefault(); }
                            if (e.key === "ArrowLeft") { go((model.get("step") || 0) - 1); e.preventDefault(); } };

  function node(x, y, w, h, text, sub, colour) {
    const g = svgEl("g", {});
    g.append(svgEl("rect", { x, y, width: w, height: h, rx: 5, fill: colour, "fill-opacity": 0.18, stroke: colour, "stroke-width": 1.5 }));
    const t = svgEl("text", { x: x + 6, y: y + 14 }); t.textContent = text; g.append(t);
    if (sub) { const s = svgEl("text", { x: x + 6, y: y + h - 5, class: "lbl" }); s.textContent = sub; g.append(s); }
    return g;
  }

  function draw() {
    const t = tr(), qs = t.questions || [];
    const k = Math.max(0, Math.min(qs.length - 1, model.get("step") || 0));
    prev.disabled = k <= 0; next.disabled = k >= qs.length - 1;
    svg.replaceChildren(); sum.replaceChildren();
    (t.summary || []).forEach(s => sum.append(el_("span", "", `${s.name}: ${(100 * s.accuracy).toFixed(1)}%`)));
    if (!qs.length) { label.textContent = "no questions"; q.textContent = ""; return; }
    const cur = qs[k];
    label.textContent = `question ${k + 1} / ${qs.length} (${cur.kind})`;
    q.textContent = `${cur.question}   →   right answer: ${cur.answer}`;
    const L = cur.layers.length, cols = L + 1, colW = Math.min(190, (W - 20) / cols), nodeW = colW - 34;
    const maxN = Math.max(1, ...cur.layers.map(l => l.length)), nodeH = 36;
    const gap = Math.min(14, (H - 40 - maxN * nodeH) / Math.max(1, maxN - 1));
    const ys = (n) => Array.from({ length: n }, (_, i) => 24 + i * (nodeH + gap) + ((maxN - n) * (nodeH + gap)) / 2);
    const pos = [];
    cur.layers.forEach((layer, l) => {
      const x = 10 + l * colW, y = ys(layer.length);
      const hd = svgEl("text", { x, y: 14, class: "lbl" }); hd.textContent = `layer ${l + 1}`; svg.append(hd);
      pos.push(layer.map((c, i) => ({ x, y: y[i] })));
    });
    const fx = 10 + L * colW, fy = ys(1)[0];
    const hd = svgEl("text", { x: fx, y: 14, class: "lbl" }); hd.textContent = "aggregator"; svg.append(hd);
    // edges: every node of layer l feeds every node of layer l+1 (and the last layer feeds the aggregator)
    for (let l = 0; l < L; l++) {
      const to = l + 1 < L ? pos[l + 1] : [{ x: fx, y: fy }];
      pos[l].forEach(a => to.forEach(b => svg.append(svgEl("line", { x1: a.x + nodeW, y1: a.y + nodeH / 2, x2: b.x, y2: b.y + nodeH / 2,
        stroke: "rgba(128,128,128,0.45)", "stroke-width": 1 }))));
    }
    cur.layers.forEach((layer, l) => layer.forEach((c, i) => {
      const p = pos[l][i];
      svg.append(node(p.x, p.y, nodeW, nodeH, c.answer === null ? "(no answer)" : c.answer, c.proposer, c.correct ? GOOD : BAD));
    }));
    const f = cur.final, oc = (t.outcomes || {})[f.outcome] || (f.correct ? GOOD : BAD);
    svg.append(node(fx, fy, nodeW + 20, nodeH + 8, f.answer === null ? "(no answer)" : f.answer, f.outcome, oc));
  }
  model.on("change:step", draw); model.on("change:trace", draw); draw();
}
export default { render };
