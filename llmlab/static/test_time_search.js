// llmlab/static/test_time_search.js — a search tree over solution steps, replayed at several budgets.
// trace = { prompt, answer, method, budgets: [{ budget, answer, correct, tokens, verifier_calls,
//           nodes: [{ parent: index | null, step: str, score: number | null, depth, kept: bool, finished: bool,
//                     correct: bool | null (the oracle's verdict, finished nodes only), path: bool, visits: int | null }] }] }
// `step` indexes budgets (the slider and ◀/▶ drive it). Nodes are steps with their verifier score (fill colour);
// branches the search did not keep are greyed, the chosen path is drawn thick, each finished leaf shows ✓ or ✗.
// Everything was computed in Python by trace_search; nothing is recomputed here.

const CSS = `
.llm-tts { font: 13px/1.45 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 500px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  display: flex; flex-direction: column; gap: 6px; overflow: hidden; }
.llm-tts .bar { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.llm-tts .mono { font-family: var(--jp-code-font-family, monospace); }
.llm-tts .small { font-size: 12px; color: var(--jp-ui-font-color2, #555); }
.llm-tts .tree { flex: 1; min-height: 0; border-top: 1px solid var(--jp-border-color2, #ccc); }
.llm-tts .path { height: 84px; overflow-y: auto; border-top: 1px solid var(--jp-border-color2, #ccc); padding-top: 4px; }
.llm-tts .good { color: #2ca02c; font-weight: 600; } .llm-tts .bad { color: #d62728; font-weight: 600; }
.llm-tts svg text { fill: var(--jp-ui-font-color1, #222); font-size: 10px; }
.llm-tts svg .edge { stroke: var(--jp-ui-font-color2, #888); stroke-width: 1; fill: none; }
.llm-tts svg .edge.on { stroke: #ff7f0e; stroke-width: 3; }
.llm-tts svg .pruned { opacity: 0.3; }
`;

const el_ = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const svgEl = (tag, attrs) => { const e = document.createElementNS("http://www.w3.org/2000/svg", tag); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; };
const fmt = (v) => (v === null || v === undefined || !Number.isFinite(v)) ? "–" : v.toFixed(2);
const fill = (s) => (s === null || !Number.isFinite(s)) ? "rgba(128,128,128,0.5)" : `rgba(31,119,180,${(0.15 + 0.85 * Math.max(0, Math.min(1, s))).toFixed(3)})`;

function layout(nodes) {
  // children lists, then leaves get consecutive rows in depth-first order; a parent sits at its children's mean row
  const kids = nodes.map(() => []);
  nodes.forEach((n, i) => { if (n.parent !== null && n.parent !== undefined && kids[n.parent]) kids[n.parent].push(i); });
  const y = new Array(nodes.length).fill(0);
  let row = 0;
  const visit = (i) => {
    if (!kids[i].length) { y[i] = row++; return; }
    kids[i].forEach(visit);
    y[i] = kids[i].reduce((a, k) => a + y[k], 0) / kids[i].length;
  };
  if (nodes.length) visit(0);
  return { y, rows: Math.max(1, row), depth: Math.max(1, ...nodes.map((n) => n.depth)) };
}

function render({ model, el }) {
  const style = el_("style"); style.textContent = CSS;
  const root = el_("div", "llm-tts"); root.tabIndex = 0;
  const bar = el_("div", "bar");
  const prev = el_("button", "llm-prev", "◀"), next = el_("button", "llm-next", "▶");
  const label = el_("span", "llm-label");
  const slider = el_("input", "llm-budget"); slider.type = "range"; slider.min = 0; slider.step = 1; slider.value = 0;
  const summary = el_("span", "small");
  bar.append(prev, next, label, el_("span", "small", " budget:"), slider, summary);
  const prompt = el_("div", "mono");
  const W = 760, H = 300;
  const svg = svgEl("svg", { width: "100%", height: "100%", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "xMinYMin meet" });
  const tree = el_("div", "tree"); tree.append(svg);
  const path = el_("div", "path mono");
  root.append(bar, prompt, tree, path);
  el.append(style, root);

  const tr = () => model.get("trace") || { budgets: [] };
  const nB = () => (tr().budgets || []).length;
  const go = (s) => { model.set("step", Math.max(0, Math.min(nB() - 1, s))); model.save_changes(); };

  function draw() {
    const t = tr(), bs = t.budgets || [];
    slider.max = Math.max(0, bs.length - 1);
    if (!bs.length) { label.textContent = "no search recorded"; svg.replaceChildren(); path.replaceChildren(); return; }
    const s = Math.max(0, Math.min(bs.length - 1, model.get("step") || 0)), b = bs[s];
    slider.value = s;
    label.textContent = `budget ${s + 1}/${bs.length}: ${b.budget}`;
    summary.textContent = `${t.method || "search"} · ${b.nodes.length - 1} steps sampled · ${b.tokens} tokens · ${b.verifier_calls} verifier calls`;
    prompt.textContent = `${t.prompt}   (right answer ${t.answer})`;
    const { y, rows, depth } = layout(b.nodes);
    const x = (d) => 16 + d * (W - 90) / depth, yy = (r) => 10 + (rows > 1 ? r * (H - 20) / (rows - 1) : (H - 20) / 2);
    const rad = Math.max(2.5, Math.min(7, (H - 20) / rows / 2.2));
    svg.replaceChildren();
    b.nodes.forEach((n, i) => {                                   // edges first, the chosen path on top
      if (n.parent === null || n.parent === undefined) return;
      const p = b.nodes[n.parent], on = n.path && p.path;
      const e = svgEl("path", { class: "edge" + (on ? " on" : "") + (!on && !n.kept && !n.finished ? " pruned" : ""),
        d: `M${x(p.depth)},${yy(y[n.parent])} C${(x(p.depth) + x(n.depth)) / 2},${yy(y[n.parent])} ${(x(p.depth) + x(n.depth)) / 2},${yy(y[i])} ${x(n.depth)},${yy(y[i])}` });
      svg.append(e);
    });
    b.nodes.forEach((n, i) => {
      const pruned = !n.kept && !n.finished && !n.path;
      const g = svgEl("g", { class: pruned ? "pruned" : "" });
      const c = svgEl("circle", { cx: x(n.depth), cy: yy(y[i]), r: n.path ? rad + 1.5 : rad, fill: i === 0 ? "rgba(128,128,128,0.6)" : fill(n.score),
                                  stroke: n.path ? "#ff7f0e" : "none", "stroke-width": 2 });
      const tip = svgEl("title", {}); tip.textContent = i === 0 ? "prompt" : `${n.step}  (score ${fmt(n.score)}${n.visits !== null && n.visits !== undefined ? `, ${n.visits} visits` : ""})`;
      c.append(tip); g.append(c);
      if (n.finished) {
        const m = svgEl("text", { x: x(n.depth) + rad + 3, y: yy(y[i]) + 3.5, fill: n.correct ? "#2ca02c" : "#d62728" });
        m.textContent = n.correct ? "✓" : "✗"; m.style.fill = n.correct ? "#2ca02c" : "#d62728"; g.append(m);
      }
      svg.append(g);
    });
    const chosen = b.nodes.filter((n) => n.path && n.parent !== null && n.parent !== undefined);
    path.replaceChildren(el_("div", "small", "chosen path (step · verifier score):"),
      ...chosen.map((n) => el_("div", "", `${n.step}   · ${fmt(n.score)}`)),
      el_("div", b.correct ? "good" : "bad", `answer ${b.answer === null ? "—" : b.answer} ${b.correct ? "✓ right" : "✗ wrong"}`));
  }

  prev.addEventListener("click", () => go(model.get("step") - 1));
  next.addEventListener("click", () => go(model.get("step") + 1));
  slider.addEventListener("input", () => go(parseInt(slider.value, 10)));
  root.addEventListener("keydown", (e) => { if (e.key === "ArrowLeft") go(model.get("step") - 1); if (e.key === "ArrowRight") go(model.get("step") + 1); });
  model.on("change:step", draw); model.on("change:trace", draw);
  draw();
}

export default { render };
