// llmlab/static/multimodal.js — image tokens and early-fusion generation.
// Trace (llmlab.multimodal.trace_multimodal): size, patch, grid, codebook_size,
// samples[{pixels[], codes[], recon[], caption, truth, ok}] (pixels/recon: size*size "#rrggbb", raster order),
// gens[{caption, codes[], pixels[], read, ok}]. `step` = how many generated image tokens are shown (0..grid*grid).
// No network; model text goes in with textContent; fixed height; light/dark colours.

const CSS = `
.llm-mm { font: 13px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 400px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  overflow: hidden; }
.llm-mm .bar { display: flex; gap: 8px; align-items: center; margin: 4px 0; flex-wrap: wrap; }
.llm-mm .row { display: flex; gap: 14px; align-items: flex-start; }
.llm-mm figure { margin: 0; text-align: center; font-size: 11px; }
.llm-mm svg { border: 1px solid var(--jp-border-color2, #bbb); background: var(--jp-layout-color0, #fff); }
.llm-mm svg text { font-size: 9px; fill: #111; }
.llm-mm .cap { margin: 4px 0; min-height: 18px; }
.llm-mm .ok { color: #2a9d4b; font-weight: bold; } .llm-mm .bad { color: #d1495b; font-weight: bold; }
.llm-mm input[type=text] { width: 220px; }
@media (prefers-color-scheme: dark) { .llm-mm { color: var(--jp-ui-font-color1, #eee); } }
`;
const NS = "http://www.w3.org/2000/svg";
const PX = 7;   // screen pixels per image pixel

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
const codeColour = (id) => `hsl(${(id * 137.508) % 360}, 65%, 62%)`;   // golden-angle hues: neighbours differ

function picture(pixels, size, shown, patch, grid) {  // shown: patches (raster order) drawn; the rest stay blank
  const s = svg("svg", { width: size * PX, height: size * PX, viewBox: `0 0 ${size} ${size}` });
  s.append(svg("rect", { x: 0, y: 0, width: size, height: size, fill: "#e8e8e8" }));
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    const k = Math.floor(y / patch) * grid + Math.floor(x / patch);
    if (k >= shown) continue;
    s.append(svg("rect", { x, y, width: 1.02, height: 1.02, fill: pixels[y * size + x] }));
  }
  return s;
}
function tokenGrid(codes, grid, shown, current) {
  const c = 26, s = svg("svg", { width: grid * c, height: grid * c });
  codes.forEach((id, k) => {
    const x = (k % grid) * c, y = Math.floor(k / grid) * c;
    const on = k < shown;
    s.append(svg("rect", { x: x + 0.5, y: y + 0.5, width: c - 1, height: c - 1, fill: on ? codeColour(id) : "#eee",
      stroke: k === current ? "#000" : "#fff", "stroke-width": k === current ? 2 : 1 }));
    if (on) { const t = svg("text", { x: x + c / 2, y: y + c / 2 + 3, "text-anchor": "middle" }); t.textContent = String(id); s.append(t); }
  });
  return s;
}
function fig(caption, node) { const f = el("figure"); f.append(node, el("figcaption", "", caption)); return f; }

function render({ model, el: host }) {
  const style = el("style"); style.textContent = CSS;
  const root = el("div", "llm-mm");
  // top: a real image, its tokens, the reconstruction, the model's caption
  const bar1 = el("div", "bar");
  const prevS = el("button", "llm-prev-sample", "◀"), nextS = el("button", "llm-next-sample", "▶"), sLabel = el("span");
  bar1.append("image ", prevS, nextS, sLabel);
  const row1 = el("div", "row"), cap1 = el("div", "cap");
  // bottom: type or pick a caption; step through the generated tokens
  const bar2 = el("div", "bar");
  const input = el("input"); input.type = "text"; input.placeholder = "a big red circle .";
  const list = el("datalist"); list.id = `llm-mm-caps-${Math.random().toString(36).slice(2)}`; input.setAttribute("list", list.id);
  const prev = el("button", "llm-prev", "◀"), next = el("button", "llm-next", "▶");
  const slider = el("input", "llm-step"); slider.type = "range"; slider.min = "0"; slider.step = "1";
  const gLabel = el("span");
  bar2.append("caption ", input, list, prev, slider, next, gLabel);
  const row2 = el("div", "row"), cap2 = el("div", "cap");
  root.append(bar1, row1, cap1, bar2, row2, cap2);
  host.append(style, root);

  const trace = () => model.get("trace") || { samples: [], gens: [] };
  let sample = 0, gen = 0;
  const L = () => { const t = trace(); return (t.grid || 0) * (t.grid || 0); };
  const clamp = (s) => Math.max(0, Math.min(L(), s));

  function options() {
    list.replaceChildren(...trace().gens.map((g) => { const o = el("option"); o.value = g.caption; return o; }));
    if (trace().gens.length && !input.value) input.value = trace().gens[0].caption;
  }
  function drawSample() {
    const t = trace();
    if (!t.samples.length) { sLabel.textContent = "empty trace"; return; }
    const s = t.samples[sample];
    sLabel.textContent = `${sample + 1} / ${t.samples.length}`;
    row1.replaceChildren(fig("image", picture(s.pixels, t.size, L(), t.patch, t.grid)),
      fig(`tokens (codebook ${t.codebook_size})`, tokenGrid(s.codes, t.grid, L(), -1)),
      fig("decode(tokens)", picture(s.recon, t.size, L(), t.patch, t.grid)));
    cap1.replaceChildren(el("span", "", "model: "), el("b", "", s.caption), el("span", "", "   truth: " + s.truth),
      el("span", s.ok ? "ok" : "bad", s.ok ? "  ✓ shape and colour" : "  ✗"));
  }
  function drawGen() {
    const t = trace();
    if (!t.gens.length) { gLabel.textContent = "no generations"; return; }
    const g = t.gens[gen], k = clamp(model.get("step"));
    slider.max = String(L()); slider.value = String(k);
    gLabel.textContent = `token ${k} / ${L()}`;
    row2.replaceChildren(fig("generated image", picture(g.pixels, t.size, k, t.patch, t.grid)),
      fig("generated tokens", tokenGrid(g.codes, t.grid, k, k - 1)));
    if (k < L()) cap2.replaceChildren(el("span", "", "step through the tokens: each one decodes to one patch"));
    else cap2.replaceChildren(el("span", "", "pixel oracle reads: "), el("b", "", g.read), el("span", g.ok ? "ok" : "bad", g.ok ? "  ✓ matches" : "  ✗ does not match"));
  }
  function pickCaption() {
    const i = trace().gens.findIndex((g) => g.caption === input.value.trim());
    if (i < 0) { gLabel.textContent = "not precomputed: pick one of the listed captions"; return; }
    gen = i; model.set("step", 0); model.save_changes(); drawGen();
  }
  const go = (d) => { model.set("step", clamp(model.get("step") + d)); model.save_changes(); };
  prev.addEventListener("click", () => go(-1));
  next.addEventListener("click", () => go(1));
  slider.addEventListener("input", () => { model.set("step", clamp(Number(slider.value))); model.save_changes(); });
  input.addEventListener("change", pickCaption);
  prevS.addEventListener("click", () => { const n = trace().samples.length; sample = (sample + n - 1) % Math.max(1, n); drawSample(); });
  nextS.addEventListener("click", () => { const n = trace().samples.length; sample = (sample + 1) % Math.max(1, n); drawSample(); });
  model.on("change:step", drawGen);
  model.on("change:trace", () => { options(); drawSample(); drawGen(); });
  options(); drawSample(); drawGen();
}

export default { render };
