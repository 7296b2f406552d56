// llmlab/static/autograd.js — step backwards through a computation graph (the 01_autograd widget).
// Contract: Python's trace_backward() fills `trace` = {nodes[{id,label,op,symbol,value,col,row}], edges[[from,to]],
// steps[{node, rule, pushes[{to, local, amount}], grads[]}], root}; `step` is driven by both sides.
// Everything is precomputed: no kernel needed, no network, text goes in with textContent, fixed height.

const NS = "http://www.w3.org/2000/svg";
const CSS = `
.llm-autograd { font: 13px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 400px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc);
  border-radius: 6px; display: flex; flex-direction: column; gap: 6px; overflow: hidden; }
.llm-autograd svg { flex: 1 1 auto; min-height: 0; width: 100%; }
.llm-autograd .box { fill: var(--jp-layout-color1, #fff); stroke: var(--jp-border-color1, #888); stroke-width: 1.2; }
.llm-autograd .op .box { fill: var(--jp-layout-color2, #eee); }
.llm-autograd .now .box { fill: rgba(255, 165, 0, 0.55); stroke: #d08000; stroke-width: 2.5; }
.llm-autograd .got .box { fill: rgba(100, 149, 237, 0.35); stroke: #3b6fd0; stroke-width: 2; }
.llm-autograd text { fill: var(--jp-ui-font-color1, #222); font-size: 12px; }
.llm-autograd text.small { font-size: 11px; fill: var(--jp-ui-font-color2, #555); }
.llm-autograd text.grad { font-size: 11px; font-weight: bold; fill: #c03030; }
.llm-autograd path.edge { fill: none; stroke: var(--jp-border-color1, #999); stroke-width: 1.3; }
.llm-autograd path.edge.active { stroke: #d08000; stroke-width: 3; }
.llm-autograd .controls { display: flex; gap: 6px; align-items: center; }
.llm-autograd .llm-rule { font-family: var(--jp-code-font-family, monospace); min-height: 1.4em; }
.llm-autograd .llm-pushes { font-family: var(--jp-code-font-family, monospace); font-size: 12px; min-height: 2.8em; white-space: pre; }
.llm-autograd button { min-width: 32px; }
@media (prefers-color-scheme: dark) { .llm-autograd { color: var(--jp-ui-font-color1, #eee); }
  .llm-autograd text { fill: var(--jp-ui-font-color1, #eee); } .llm-autograd .box { fill: var(--jp-layout-color1, #222); } }
`;

const fmt = (x) => (x === null || x === undefined) ? "·" : (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(2) : (+x.toFixed(4)).toString());

function svg(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function render({ model, el }) {
  const style = document.createElement("style");
  style.textContent = CSS;
  const root = document.createElement("div");
  root.className = "llm-autograd";
  root.tabIndex = 0;
  const graph = svg("svg", { preserveAspectRatio: "xMidYMid meet" });
  const controls = document.createElement("div");
  controls.className = "controls";
  const prev = document.createElement("button"); prev.textContent = "◀"; prev.className = "llm-prev"; prev.title = "previous step";
  const next = document.createElement("button"); next.textContent = "▶"; next.className = "llm-next"; next.title = "next step";
  const label = document.createElement("span"); label.className = "llm-label";
  controls.append(prev, next, label);
  const rule = document.createElement("div"); rule.className = "llm-rule";
  const pushes = document.createElement("div"); pushes.className = "llm-pushes";
  root.append(graph, controls, rule, pushes);
  el.append(style, root);

  const W = 150, H = 64, BW = 104, BH = 50;
  const trace = () => model.get("trace") || { nodes: [], edges: [], steps: [] };
  const clamp = (s) => Math.max(0, Math.min(trace().steps.length - 1, s));
  const go = (s) => { model.set("step", clamp(s)); model.save_changes(); };

  function draw() {
    const { nodes, edges, steps } = trace();
    graph.replaceChildren();
    if (!steps.length) { label.textContent = "empty trace"; return; }
    const s = clamp(model.get("step"));
    const st = steps[s];
    const cols = Math.max(...nodes.map((n) => n.col)) + 1;
    const rows = Math.max(...nodes.map((n) => n.row)) + 1;
    graph.setAttribute("viewBox", `0 0 ${cols * W + 10} ${rows * H + BH + 10}`);
    const pos = (n) => [10 + n.col * W, 8 + n.row * H];
    const receivers = new Set(st.pushes.map((p) => p.to));
    for (const [a, b] of edges) {
      const [x1, y1] = pos(nodes[a]); const [x2, y2] = pos(nodes[b]);
      const active = b === st.node && receivers.has(a) && st.pushes.length > 0;
      // a cubic curve; edges that skip columns bow below the rows so they do not run through other boxes
      const sx = x1 + BW, sy = y1 + BH / 2, ex = x2, ey = y2 + BH / 2;
      const skip = nodes[b].col - nodes[a].col - 1;
      const dip = skip > 0 ? Math.max(sy, ey) + BH * 0.75 + 8 * skip : null;
      const d = dip === null ? `M${sx},${sy} C${sx + 22},${sy} ${ex - 22},${ey} ${ex},${ey}`
        : `M${sx},${sy} C${sx + 40},${dip} ${ex - 40},${dip} ${ex},${ey}`;
      graph.append(svg("path", { d, class: active ? "edge active" : "edge" }));
    }
    for (const n of nodes) {
      const [x, y] = pos(n);
      const cls = ["node", n.op ? "op" : "leaf", n.id === st.node ? "now" : "", receivers.has(n.id) ? "got" : ""].join(" ");
      const g = svg("g", { class: cls, transform: `translate(${x},${y})` });
      g.append(svg("rect", { class: "box", width: BW, height: BH, rx: 6 }));
      const head = n.op && n.label !== n.symbol ? `${n.label} = ${n.symbol}` : n.label;
      g.append(svg("text", { x: 6, y: 15 }, head));
      g.append(svg("text", { x: 6, y: 30, class: "small" }, `value ${fmt(n.value)}`));
      g.append(svg("text", { x: 6, y: 44, class: "grad" }, `grad ${fmt(st.grads[n.id])}`));
      const tip = svg("title", {}, `${n.label}: value ${n.value}, grad ${st.grads[n.id]}`);
      g.append(tip);
      graph.append(g);
    }
    const who = nodes[st.node];
    label.textContent = `step ${s + 1}/${steps.length}` + (s === 0 ? ": seed the output" : `: ${who.label} pushes its gradient ${fmt(st.grads[st.node])}`);
    rule.textContent = st.rule;
    const me = who.label;
    pushes.textContent = st.pushes.map((p) => { const to = nodes[p.to].label;
      return `∂L/∂${to} += ∂L/∂${me} × ∂${me}/∂${to} = ${fmt(st.grads[st.node])} × ${fmt(p.local)} = ${fmt(p.amount)}   (∂L/∂${to} now ${fmt(st.grads[p.to])})`; }).join("\n");
  }

  prev.addEventListener("click", () => go(model.get("step") - 1));
  next.addEventListener("click", () => go(model.get("step") + 1));
  root.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") go(model.get("step") - 1);
    if (e.key === "ArrowRight") go(model.get("step") + 1);
  });
  model.on("change:step", draw);
  model.on("change:trace", draw);
  draw();
}

export default { render };
