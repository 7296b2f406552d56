// llmlab/static/moe.js — mixture of experts: tokens routed to experts, and expert load over training.
// trace: {tokens[], n_experts, top_k, title, steps[], snapshots[{experts, gates, probs, dropped, capacity, load}],
//         history[[share per expert] per training step]}; `step` = index of the snapshot shown (the scrubber).
// No network, model text through textContent only, fixed height, colours that read in light and dark themes.

const SVGNS = "http://www.w3.org/2000/svg";
const CSS = `
.llm-moe { font: 12px/1.35 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 495px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc);
  border-radius: 6px; overflow: hidden; display: flex; flex-direction: column; gap: 6px; }
.llm-moe .llm-head { display: flex; gap: 12px; align-items: baseline; }
.llm-moe .llm-title { font-weight: 600; }
.llm-moe svg text { fill: var(--jp-ui-font-color1, #222); }
.llm-moe .llm-token rect { fill: var(--jp-layout-color2, #eee); stroke: var(--jp-border-color1, #999); }
.llm-moe .llm-token.llm-hot rect { fill: rgba(255, 165, 0, 0.55); }
.llm-moe .llm-token.llm-dim { opacity: 0.3; }
.llm-moe .llm-token.llm-dropped rect { stroke: #d62728; stroke-width: 2; stroke-dasharray: 3 2; }
.llm-moe .llm-expert rect { fill: rgba(100, 149, 237, 0.25); stroke: var(--jp-border-color1, #999); cursor: pointer; }
.llm-moe .llm-expert.llm-selected rect { fill: rgba(100, 149, 237, 0.8); stroke-width: 2; }
.llm-moe .llm-edge { fill: none; }
.llm-moe .llm-edge.llm-drop { stroke: #d62728 !important; stroke-dasharray: 4 3; }
.llm-moe .llm-edge.llm-dim { opacity: 0.08; }
.llm-moe .llm-row { display: flex; gap: 10px; align-items: center; }
.llm-moe .llm-caption { font-size: 11px; opacity: 0.8; }
.llm-moe .llm-info { min-height: 16px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.llm-moe input[type=range] { flex: 1; }
@media (prefers-color-scheme: dark) { .llm-moe { color: var(--jp-ui-font-color1, #eee); } .llm-moe svg text { fill: var(--jp-ui-font-color1, #eee); } }
`;

const el_ = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const svg_ = (tag, attrs = {}) => { const e = document.createElementNS(SVGNS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; };
// gate weight 0..1 -> colour from pale blue to dark orange (readable on light and dark backgrounds)
const gateColour = (g) => `hsl(${Math.round(210 - 180 * g)}, 80%, ${Math.round(60 - 15 * g)}%)`;

function render({ model, el }) {
  const style = el_("style"); style.textContent = CSS;
  const root = el_("div", "llm-moe");
  const head = el_("div", "llm-head");
  const title = el_("span", "llm-title");
  const stepLabel = el_("span", "llm-step-label");
  head.append(title, stepLabel);
  const W = 900, H = 250;
  const graph = svg_("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", height: H, class: "llm-graph" });
  const info = el_("div", "llm-info", "hover a token for its router probabilities; click an expert to highlight its tokens");
  const probs = svg_("svg", { viewBox: `0 0 ${W} 40`, width: "100%", height: 40, class: "llm-probs" });
  const heatCap = el_("div", "llm-caption", "expert load share per training step (rows: E0 at the top; darker = more tokens); blue line: the step shown");
  const heat = el_("canvas", "llm-heat"); heat.width = W; heat.height = 70; heat.style.width = "100%"; heat.style.height = "70px";
  const controls = el_("div", "llm-row");
  const prev = el_("button", "llm-prev", "◀"), next = el_("button", "llm-next", "▶");
  const scrub = el_("input", "llm-scrub"); scrub.type = "range"; scrub.min = 0; scrub.step = 1;
  controls.append(prev, scrub, next);
  root.append(head, graph, info, probs, heatCap, heat, controls);
  el.append(style, root);

  let selected = -1, hovered = -1;
  const trace = () => model.get("trace") || { tokens: [], steps: [], snapshots: [], history: [], n_experts: 0 };
  const clamp = (s) => Math.max(0, Math.min(trace().steps.length - 1, s));
  const go = (s) => { model.set("step", clamp(s)); model.save_changes(); };

  function drawProbs(snap, t) {
    probs.replaceChildren();
    const E = trace().n_experts;
    if (t < 0 || !snap) return;
    const p = snap.probs[t], bw = W / E;
    p.forEach((v, e) => {
      const h = Math.max(1, 26 * v);
      const chosen = snap.experts[t].includes(e);
      const r = svg_("rect", { x: e * bw + 2, y: 28 - h, width: bw - 4, height: h, class: "llm-prob",
                               fill: chosen ? "rgba(255,140,0,0.85)" : "rgba(100,149,237,0.6)" });
      probs.append(r);
      const tx = svg_("text", { x: e * bw + bw / 2, y: 38, "text-anchor": "middle", "font-size": 9 });
      tx.textContent = `E${e} ${v.toFixed(2)}`;
      probs.append(tx);
    });
  }

  function drawHeat(cur) {
    const { history, steps, n_experts: E } = trace();
    const ctx = heat.getContext("2d");
    ctx.clearRect(0, 0, heat.width, heat.height);
    if (!history.length) return;
    const S = history.length, cw = heat.width / S, ch = heat.height / E;
    const fair = 1 / E;
    for (let s = 0; s < S; s++) for (let e = 0; e < E; e++) {
      const v = Math.min(1, history[s][e] / (3 * fair));           // share, saturating at 3x the fair share
      ctx.fillStyle = `rgba(214, 96, 39, ${0.08 + 0.92 * v})`;
      ctx.fillRect(s * cw, e * ch, Math.ceil(cw), Math.ceil(ch));
    }
    const x = (steps[cur] + 0.5) * cw;
    ctx.strokeStyle = "rgba(30, 144, 255, 1)"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, heat.height); ctx.stroke();
  }

  let tokEls = [], expEls = [], edgeEls = [];                    // rebuilt when the step changes; restyled on hover/click
  function build() {
    const tr = trace();
    const cur = clamp(model.get("step"));
    const snap = tr.snapshots[cur];
    scrub.max = Math.max(0, tr.steps.length - 1); scrub.value = cur;
    title.textContent = tr.title || "mixture of experts";
    graph.replaceChildren(); tokEls = []; expEls = []; edgeEls = [];
    if (!snap) { stepLabel.textContent = "empty trace"; return; }
    const nDrop = snap.dropped.flat().filter(Boolean).length;
    stepLabel.textContent = `training step ${tr.steps[cur]} (${cur + 1}/${tr.steps.length}) · load ${snap.load.join(" ")}` +
      (snap.capacity ? ` · capacity ${snap.capacity}, ${nDrop} dropped` : " · dropless");
    const N = tr.tokens.length, E = tr.n_experts;
    const tw = W / N, ew = W / E, ty = 8, th = 22, ey = H - 34, eh = 26;
    const edges = svg_("g"), toks = svg_("g"), exps = svg_("g");
    graph.append(edges, toks, exps);
    snap.experts.forEach((row, t) => row.forEach((e, j) => {
      const g = snap.gates[t][j], drop = snap.dropped[t][j];
      const x1 = t * tw + tw / 2, x2 = e * ew + ew / 2;
      const path = svg_("path", { d: `M${x1},${ty + th} C${x1},${(ty + ey) / 2} ${x2},${(ty + ey) / 2} ${x2},${ey}`,
                                  stroke: gateColour(g), "stroke-width": 0.6 + 3 * g, class: "llm-edge" + (drop ? " llm-drop" : "") });
      const tip = svg_("title"); tip.textContent = `${tr.tokens[t]} -> E${e}: gate ${g.toFixed(3)}${drop ? " (dropped)" : ""}`;
      path.append(tip); edges.append(path); edgeEls.push({ el: path, t, e });
    }));
    tr.tokens.forEach((tok, t) => {
      const g = svg_("g", { class: "llm-token" + (snap.dropped[t].some(Boolean) ? " llm-dropped" : ""), "data-token": t });
      g.append(svg_("rect", { x: t * tw + 1, y: ty, width: tw - 2, height: th, rx: 3 }));
      const tx = svg_("text", { x: t * tw + tw / 2, y: ty + 15, "text-anchor": "middle", "font-size": Math.min(11, 1.6 * tw / Math.max(3, tok.length)) });
      tx.textContent = tok;                                         // model text: textContent only
      g.append(tx);
      g.addEventListener("mouseenter", () => { hovered = t; restyle(); });
      g.addEventListener("mouseleave", () => { if (hovered === t) { hovered = -1; restyle(); } });
      toks.append(g); tokEls.push(g);
    });
    for (let e = 0; e < E; e++) {
      const g = svg_("g", { class: "llm-expert", "data-expert": e });
      g.append(svg_("rect", { x: e * ew + 3, y: ey, width: ew - 6, height: eh, rx: 4 }));
      const tx = svg_("text", { x: e * ew + ew / 2, y: ey + 17, "text-anchor": "middle", "font-size": 11 });
      tx.textContent = `E${e} · ${snap.load[e]}`;
      g.append(tx);
      g.addEventListener("click", () => { selected = selected === e ? -1 : e; restyle(); });
      exps.append(g); expEls.push(g);
    }
    drawHeat(cur);
  }

  function restyle() {
    const tr = trace();
    const snap = tr.snapshots[clamp(model.get("step"))];
    if (!snap) return;
    const tokenHasExpert = (t, e) => snap.experts[t].some((x, j) => x === e && !snap.dropped[t][j]);
    tokEls.forEach((g, t) => {
      g.classList.toggle("llm-hot", t === hovered);
      g.classList.toggle("llm-dim", selected >= 0 && !tokenHasExpert(t, selected));
    });
    expEls.forEach((g, e) => g.classList.toggle("llm-selected", e === selected));
    edgeEls.forEach(({ el, t, e }) => el.classList.toggle("llm-dim", (selected >= 0 && e !== selected) || (hovered >= 0 && t !== hovered)));
    if (hovered >= 0) {
      const t = hovered;
      info.textContent = `"${tr.tokens[t]}" -> ` + snap.experts[t].map((e, j) =>
        `E${e} (gate ${snap.gates[t][j].toFixed(2)}${snap.dropped[t][j] ? ", dropped" : ""})`).join(", ");
    } else if (selected >= 0) {
      const mine = tr.tokens.filter((_, t) => tokenHasExpert(t, selected));
      info.textContent = `E${selected} takes ${mine.length} of these ${tr.tokens.length} tokens: ${mine.join(" ")}`;
    } else info.textContent = "hover a token for its router probabilities; click an expert to highlight its tokens";
    drawProbs(snap, hovered);
  }

  const draw = () => { build(); restyle(); };

  prev.addEventListener("click", () => go(model.get("step") - 1));
  next.addEventListener("click", () => go(model.get("step") + 1));
  scrub.addEventListener("input", () => go(Number(scrub.value)));
  model.on("change:step", draw);
  model.on("change:trace", draw);
  draw();
}

export default { render };
