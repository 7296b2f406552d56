// llmlab/static/detection.js — the detection arms race: watermark green lists on text, detector scores on images.
// Trace (llmlab.detection.trace_detection): gamma, z_threshold,
//   texts[{label, tokens[], green[] (one per token after the first), z[] (running z after each scored token), rank[]}],
//   size, strengths{kind: [s...]}, images[{label, attacks{kind: [{pixels[] "#rrggbb" raster, spectrum[] in [0,1], p_fake}]}}].
// `step` = index of the attack strength shown (0 = no attack). No network; model text goes in with textContent;
// fixed height; colours readable in light and dark themes.

const CSS = `
.llm-det { font: 13px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 440px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  overflow: hidden; display: flex; gap: 14px; }
.llm-det .pane { flex: 1 1 50%; min-width: 0; display: flex; flex-direction: column; gap: 4px; }
.llm-det .bar { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.llm-det .toks { height: 190px; overflow-y: auto; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 4px;
  padding: 4px; line-height: 1.9; }
.llm-det .tok { padding: 1px 3px; margin: 1px; border-radius: 3px; color: #111; white-space: pre; }
.llm-det .g { background: #8fd19e; } .llm-det .r { background: #f4a3a8; } .llm-det .first { background: #ddd; }
.llm-det .imgs { display: flex; gap: 14px; }
.llm-det figure { margin: 0; text-align: center; font-size: 11px; }
.llm-det svg { border: 1px solid var(--jp-border-color2, #bbb); }
.llm-det .pbar { height: 10px; background: #ddd; border-radius: 3px; overflow: hidden; margin-top: 3px; }
.llm-det .pbar > div { height: 100%; background: #d1495b; }
.llm-det .note { font-size: 11px; opacity: 0.8; }
@media (prefers-color-scheme: dark) { .llm-det { color: var(--jp-ui-font-color1, #eee); } }
`;
const NS = "http://www.w3.org/2000/svg";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}
function grid(colours, size, px) {   // colours: size*size CSS colours in raster order
  const s = svg("svg", { width: size * px, height: size * px, viewBox: `0 0 ${size} ${size}` });
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++)
    s.append(svg("rect", { x, y, width: 1.02, height: 1.02, fill: colours[y * size + x] }));
  return s;
}
const heat = (v) => `hsl(${240 - 240 * Math.max(0, Math.min(1, v))}, 80%, ${20 + 45 * Math.max(0, Math.min(1, v))}%)`;
const rankColour = (r) => `hsl(210, 70%, ${Math.min(92, 45 + 12 * Math.log2(r))}%)`;   // rank 1 dark blue, rare tokens pale

function sparkline(z, thr) {
  const W = 300, H = 70, n = Math.max(2, z.length);
  const lo = Math.min(-2, ...z), hi = Math.max(thr + 1, ...z);
  const X = (i) => 4 + (W - 8) * i / (n - 1), Y = (v) => H - 4 - (H - 8) * (v - lo) / (hi - lo);
  const s = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  s.append(svg("line", { x1: 0, x2: W, y1: Y(thr), y2: Y(thr), stroke: "#d1495b", "stroke-dasharray": "4 3" }));
  s.append(svg("line", { x1: 0, x2: W, y1: Y(0), y2: Y(0), stroke: "#999" }));
  s.append(svg("polyline", { points: z.map((v, i) => `${X(i)},${Y(v)}`).join(" "), fill: "none", stroke: "#2a7ab0", "stroke-width": 2 }));
  return s;
}

function render({ model, el: host }) {
  const style = el("style"); style.textContent = CSS;
  const root = el("div", "llm-det"); root.tabIndex = 0;
  const left = el("div", "pane"), right = el("div", "pane");
  root.append(left, right); host.append(style, root);
  const T = () => model.get("trace") || { texts: [], images: [], strengths: {} };

  // ---- text pane ----
  const pick = el("select"), mode = el("select");
  for (const [v, t] of [["wm", "colour: watermark green/red"], ["rank", "colour: rank under observer"]]) {
    const o = el("option", "", t); o.value = v; mode.append(o);
  }
  const toks = el("div", "toks"), zline = el("div"), zlab = el("div", "note");
  left.append(el("b", "", "Text"), (() => { const b = el("div", "bar"); b.append(pick, mode); return b; })(), toks, zline, zlab);

  // ---- image pane ----
  const kind = el("select"), prev = el("button", "llm-prev", "◀"), next = el("button", "llm-next", "▶"), lab = el("span", "llm-label");
  const imgs = el("div", "imgs");
  right.append(el("b", "", "Images"), (() => { const b = el("div", "bar"); b.append(kind, prev, next, lab); return b; })(), imgs,
               el("div", "note", "left: pixels; right: log-spectrum (centre = low frequency); bar: detector's P(generated)"));

  function fill() {
    const t = T();
    pick.replaceChildren(...t.texts.map((x, i) => { const o = el("option", "", x.label); o.value = String(i); return o; }));
    kind.replaceChildren(...Object.keys(t.strengths || {}).map((k) => { const o = el("option", "", k); o.value = k; return o; }));
  }
  const nSteps = () => ((T().strengths || {})[kind.value] || [0]).length;
  const clamp = (s) => Math.max(0, Math.min(nSteps() - 1, s));
  const go = (s) => { model.set("step", clamp(s)); model.save_changes(); };

  function drawText() {
    const t = T(), x = t.texts[Number(pick.value) || 0];
    if (!x) { toks.replaceChildren(el("span", "", "no text in trace")); return; }
    toks.replaceChildren(...x.tokens.map((w, i) => {
      const s = el("span", "tok", w);
      if (i === 0) { s.classList.add("first"); s.title = "first token: conditions the first green list, not scored"; return s; }
      if (mode.value === "wm") { s.classList.add(x.green[i - 1] ? "g" : "r"); s.title = `z after this token: ${x.z[i - 1]}`; }
      else { s.style.background = rankColour(x.rank[i - 1]); s.title = `rank ${x.rank[i - 1]} under the observer`; }
      return s;
    }));
    zline.replaceChildren(sparkline(x.z, t.z_threshold));
    const g = x.green.reduce((a, b) => a + b, 0);
    zlab.textContent = `${g}/${x.green.length} green (gamma = ${t.gamma}); final z = ${x.z[x.z.length - 1]} ` +
      `(dashed: detection threshold z = ${t.z_threshold})`;
  }
  function drawImages() {
    const t = T(), s = clamp(model.get("step")), st = (t.strengths || {})[kind.value] || [];
    lab.textContent = st.length ? `${kind.value} strength ${st[s]} (${s + 1}/${st.length})` : "no images";
    imgs.replaceChildren(...t.images.map((im) => {
      const a = (im.attacks[kind.value] || [])[s];
      const f = el("figure");
      if (!a) return f;
      const row = el("div", "bar");
      row.append(grid(a.pixels, t.size, 6), grid(a.spectrum.map(heat), t.size, 6));
      const pb = el("div", "pbar"), fillb = el("div"); fillb.style.width = `${Math.round(100 * a.p_fake)}%`; pb.append(fillb);
      f.append(row, el("figcaption", "", `${im.label}: P(generated) = ${a.p_fake.toFixed(3)}`), pb);
      return f;
    }));
  }
  function draw() { drawText(); drawImages(); }

  pick.addEventListener("change", drawText); mode.addEventListener("change", drawText);
  kind.addEventListener("change", () => { go(0); drawImages(); });
  prev.addEventListener("click", () => go(model.get("step") - 1));
  next.addEventListener("click", () => go(model.get("step") + 1));
  root.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") go(model.get("step") - 1);
    if (e.key === "ArrowRight") go(model.get("step") + 1);
  });
  model.on("change:step", drawImages);
  model.on("change:trace", () => { fill(); draw(); });
  fill(); draw();
}

export default { render };
