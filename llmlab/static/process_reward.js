// llmlab/static/process_reward.js — best-of-N with process and outcome verifiers, one held-out problem at a time.
// trace = { ns: [1, 2, 4, ..], verifiers: [name, ..], colours: {name: css colour},
//           curves: {name: [accuracy at each N]} (over the whole held-out set),
//           problems: [{prompt, answer, candidates: [{steps: [str], prm: [p per step], oracle: [0/1 per step],
//                       orm: p, answer: str | null, correct: bool}], picks: {name: [candidate index at each N]}}] }
// `step` indexes problems. The N slider shows the first N candidates and which one each verifier keeps among them;
// click a candidate to see its steps, each with the PRM's score bar and the oracle's verdict (first wrong step marked).
// Everything was computed in Python by trace_process_reward; nothing is recomputed here.

const CSS = `
.llm-prm { font: 13px/1.45 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 520px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  display: flex; flex-direction: column; gap: 6px; overflow: hidden; }
.llm-prm .bar { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.llm-prm .mono { font-family: var(--jp-code-font-family, monospace); }
.llm-prm .main { display: flex; gap: 10px; flex: 1; min-height: 0; }
.llm-prm .cands { width: 46%; overflow-y: auto; border-right: 1px solid var(--jp-border-color2, #ccc); padding-right: 6px; }
.llm-prm .cand { display: flex; gap: 6px; align-items: center; padding: 1px 4px; border-radius: 4px; cursor: pointer; }
.llm-prm .cand.sel { outline: 2px solid rgba(31,119,180,0.7); }
.llm-prm .cand .ans { width: 74px; flex: none; }
.llm-prm .chip { font-size: 11px; padding: 0 4px; border-radius: 8px; color: #fff; white-space: nowrap; }
.llm-prm .detail { flex: 1; overflow-y: auto; }
.llm-prm .step { display: grid; grid-template-columns: 1fr 110px 44px 96px; gap: 6px; align-items: center; margin: 2px 0; }
.llm-prm .track { height: 10px; background: rgba(128,128,128,0.2); border-radius: 3px; position: relative; }
.llm-prm .fill { height: 10px; border-radius: 3px; background: rgba(31,119,180,0.85); }
.llm-prm .good { color: #2ca02c; } .llm-prm .bad { color: #d62728; font-weight: 600; } .llm-prm .after { color: var(--jp-ui-font-color2, #777); }
.llm-prm svg text { fill: var(--jp-ui-font-color1, #222); font-size: 10px; }
.llm-prm .small { font-size: 12px; color: var(--jp-ui-font-color2, #555); }
`;

const el_ = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const svgEl = (tag, attrs) => { const e = document.createElementNS("http://www.w3.org/2000/svg", tag); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; };
const fmt = (v) => (v === null || v === undefined || !Number.isFinite(v)) ? "–" : v.toFixed(2);

function render({ model, el }) {
  const style = el_("style"); style.textContent = CSS;
  const root = el_("div", "llm-prm"); root.tabIndex = 0;
  const bar = el_("div", "bar");
  const prev = el_("button", "llm-prev", "◀"), next = el_("button", "llm-next", "▶");
  const label = el_("span", "llm-label");
  const nSlider = el_("input", "llm-n"); nSlider.type = "range"; nSlider.min = 0; nSlider.step = 1; nSlider.value = 0;
  const nLabel = el_("span", "llm-nlabel");
  bar.append(prev, next, label, el_("span", "small", " N:"), nSlider, nLabel);
  const prompt = el_("div", "mono");
  const main = el_("div", "main");
  const cands = el_("div", "cands"), detail = el_("div", "detail");
  main.append(cands, detail);
  const W = 640, H = 110;
  const svg = svgEl("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  root.append(bar, prompt, main, svg);
  el.append(style, root);

  let nIdx = 0, selected = null;                   // view-only state: the N shown and the candidate clicked
  const tr = () => model.get("trace") || { problems: [], ns: [], verifiers: [] };
  const nProb = () => (tr().problems || []).length;
  const go = (s) => { selected = null; model.set("step", Math.max(0, Math.min(nProb() - 1, s))); model.save_changes(); };
  const colour = (v) => (tr().colours || {})[v] || "#555";

  function drawCurves() {
    svg.replaceChildren();
    const t = tr(), ns = t.ns || [];
    if (!ns.length) return;
    const X = (i) => 40 + (W - 200) * i / Math.max(1, ns.length - 1);
    const Y = (v) => H - 18 - (H - 28) * v;
    [0, 0.5, 1].forEach((v) => { const g = svgEl("text", { x: 8, y: Y(v) + 3 }); g.textContent = v.toFixed(1); svg.append(g);
      svg.append(svgEl("line", { x1: 38, x2: W - 160, y1: Y(v), y2: Y(v), stroke: "currentColor", opacity: 0.15 })); });
    ns.forEach((n, i) => { const g = svgEl("text", { x: X(i) - 4, y: H - 4 }); g.textContent = n; svg.append(g); });
    (t.verifiers || []).forEach((v, k) => {
      const ys = (t.curves || {})[v] || [];
      const d = ys.map((y, i) => (i ? "L" : "M") + X(i).toFixed(1) + "," + Y(y).toFixed(1)).join("");
      svg.append(svgEl("path", { d, fill: "none", stroke: colour(v), "stroke-width": 1.8 }));
      const g = svgEl("text", { x: W - 150, y: 12 + 13 * k }); g.textContent = v; g.setAttribute("style", `fill:${colour(v)}`); svg.append(g);
    });
    svg.append(svgEl("line", { x1: X(nIdx), x2: X(nIdx), y1: 5, y2: H - 18, stroke: "currentColor", "stroke-dasharray": "3,3", opacity: 0.6 }));
    const cap = svgEl("text", { x: 40, y: 10 }); cap.textContent = "held-out accuracy vs N (all problems)"; svg.append(cap);
  }

  function drawDetail(c) {
    detail.replaceChildren();
    if (!c) return;
    const head = el_("div", "small", `candidate: answer ${c.answer === null ? "none" : c.answer} — ${c.correct ? "right" : "wrong"} · ORM ${fmt(c.orm)}`);
    detail.append(head);
    const firstBad = c.oracle.findIndex((o) => o < 0.5);
    c.steps.forEach((s, i) => {
      const row = el_("div", "step");
      row.append(el_("span", "mono", s));
      const track = el_("div", "track"), fill = el_("div", "fill");
      const p = c.prm[i]; fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`; track.title = `PRM p(step good) = ${fmt(p)}`;
      track.append(fill); row.append(track, el_("span", "mono", fmt(p)));
      const verdict = i === firstBad ? el_("span", "bad", "✗ first wrong") : (firstBad >= 0 && i > firstBad ? el_("span", "after", "after an error") : el_("span", "good", "✓ oracle"));
      row.append(verdict);
      detail.append(row);
    });
  }

  function draw() {
    const t = tr(), probs = t.problems || [], ns = t.ns || [];
    nSlider.max = Math.max(0, ns.length - 1);
    if (!probs.length || !ns.length) { label.textContent = "empty trace"; cands.replaceChildren(); detail.replaceChildren(); return; }
    const s = Math.max(0, Math.min(probs.length - 1, model.get("step")));
    nIdx = Math.max(0, Math.min(ns.length - 1, nIdx)); nSlider.value = nIdx;
    const p = probs[s], N = Math.min(ns[nIdx], p.candidates.length);
    label.textContent = `problem ${s + 1}/${probs.length}`;
    nLabel.textContent = `${N} candidate${N > 1 ? "s" : ""}`;
    prompt.textContent = `${p.prompt}   (right answer ${p.answer})`;
    const picks = {};
    (t.verifiers || []).forEach((v) => { const j = ((p.picks || {})[v] || [])[nIdx]; if (j !== undefined) (picks[j] = picks[j] || []).push(v); });
    if (selected === null || selected >= N) {                    // default: the candidate the first verifier keeps
      const j = (((p.picks || {})[(t.verifiers || [])[0]]) || [])[nIdx];
      selected = j === undefined ? 0 : j;
    }
    cands.replaceChildren(...p.candidates.slice(0, N).map((c, j) => {
      const row = el_("div", "cand llm-cand" + (j === selected ? " sel" : ""));
      row.append(el_("span", "mono small", `#${j + 1}`), el_("span", "mono ans " + (c.correct ? "good" : "bad"), `${c.answer === null ? "—" : c.answer} ${c.correct ? "✓" : "✗"}`));
      (picks[j] || []).forEach((v) => { const chip = el_("span", "chip", v); chip.style.background = colour(v); row.append(chip); });
      row.addEventListener("click", () => { selected = j; draw(); });
      return row;
    }));
    drawDetail(p.candidates[selected]);
    drawCurves();
  }

  prev.addEventListener("click", () => go(model.get("step") - 1));
  next.addEventListener("click", () => go(model.get("step") + 1));
  nSlider.addEventListener("input", () => { nIdx = parseInt(nSlider.value, 10); selected = null; draw(); });
  root.addEventListener("keydown", (e) => { if (e.key === "ArrowLeft") go(model.get("step") - 1); if (e.key === "ArrowRight") go(model.get("step") + 1); });
  model.on("change:step", draw); model.on("change:trace", draw);
  draw();
}

export default { render };
