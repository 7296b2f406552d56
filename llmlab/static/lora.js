// llmlab/static/lora.js — the update Delta W of one weight matrix: full fine-tuning vs LoRA.
// Trace (llmlab.lora.trace_lora): sv_full[], sv_lora[] singular values, energy[r-1] = share of ||Delta W_full||^2 in its
// top-r directions, accuracy {full, "LoRA r=4": ...} new-fact accuracy, merge {prompt, tokens[], unmerged[], merged[],
// max_diff}. `step` is the rank r shown by the slider. No network; text via textContent only; fixed height.

const CSS = `
.llm-lora { font: 12px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 430px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  overflow: hidden; }
.llm-lora .row { display: flex; gap: 16px; align-items: flex-start; margin: 4px 0; flex-wrap: wrap; }
.llm-lora .title { font-weight: 600; margin-bottom: 2px; }
.llm-lora button { padding: 2px 8px; border: 1px solid var(--jp-border-color1, #999); border-radius: 4px;
  background: var(--jp-layout-color1, #fff); color: inherit; cursor: pointer; }
.llm-lora button.on { background: rgba(100, 149, 237, 0.35); font-weight: 600; }
.llm-lora table { border-collapse: collapse; font-family: var(--jp-code-font-family, monospace); }
.llm-lora td, .llm-lora th { padding: 1px 8px; text-align: right; border-bottom: 1px solid var(--jp-border-color2, #ddd); }
.llm-lora svg text { fill: var(--jp-ui-font-color1, #222); font-size: 10px; }
@media (prefers-color-scheme: dark) { .llm-lora { color: var(--jp-ui-font-color1, #eee); }
  .llm-lora svg text { fill: var(--jp-ui-font-color1, #eee); } }
`;
const NS = "http://www.w3.org/2000/svg";
const FULL = "rgba(60, 120, 230, 0.85)", LORA = "rgba(240, 140, 30, 0.9)";
const svgEl = (tag, attrs) => { const e = document.createElementNS(NS, tag); for (const k in attrs) e.setAttribute(k, String(attrs[k])); return e; };
const div = (cls, text) => { const e = document.createElement("div"); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const rankOf = (name) => { const m = /r=(\d+)/.exec(name); return m ? Number(m[1]) : null; };

function render({ model, el }) {
  const style = document.createElement("style"); style.textContent = CSS;
  const root = div("llm-lora");
  el.append(style, root);
  let merged = false;

  function spectrum(t, r) {
    const W = 430, H = 170, P = 28, n = t.sv_full.length;
    const svg = svgEl("svg", { width: W, height: H + 24, class: "llm-spectrum" });
    const all = t.sv_full.concat(t.sv_lora).filter((v) => v > 0);
    const hi = Math.log10(Math.max(...all, 1e-12)), lo = Math.max(hi - 6, Math.log10(Math.min(...all, 1)));
    const y = (v) => H - Math.max(0, (Math.log10(Math.max(v, 1e-30)) - lo) / Math.max(hi - lo, 1e-9)) * (H - 10);
    const bw = (W - P) / n;
    [[t.sv_full, FULL, 0], [t.sv_lora, LORA, bw / 2]].forEach(([sv, fill, dx]) => sv.forEach((v, i) => {
      if (!(v > 0)) return;
      svg.append(svgEl("rect", { x: P + i * bw + dx, y: y(v), width: Math.max(1, bw / 2 - 0.5), height: H - y(v), fill, class: "llm-sv" }));
    }));
    svg.append(svgEl("line", { x1: P + r * bw, x2: P + r * bw, y1: 0, y2: H, stroke: "currentColor", "stroke-dasharray": "3 2" }));
    const lab = (x, yy, s, anchor) => { const e = svgEl("text", { x, y: yy, "text-anchor": anchor || "start" }); e.textContent = s; svg.append(e); };
    lab(P - 2, 10, `1e${Math.round(hi)}`, "end"); lab(P - 2, H, `1e${Math.round(lo)}`, "end");
    lab(P, H + 12, "1"); lab(W, H + 12, String(n), "end"); lab(P + r * bw + 2, H + 22, `r = ${r}`);
    return svg;
  }

  function accuracy(t, r) {
    const names = Object.keys(t.accuracy), W = 250, bh = 16;
    const svg = svgEl("svg", { width: W, height: names.length * (bh + 4) + 4, class: "llm-acc" });
    const measured = names.map(rankOf).filter((k) => k !== null && k <= r);
    const best = measured.length ? Math.max(...measured) : null;
    names.forEach((name, i) => {
      const a = t.accuracy[name], k = rankOf(name), y0 = 2 + i * (bh + 4);
      const on = name === "full" || (k !== null && k === best);
      svg.append(svgEl("rect", { x: 90, y: y0, width: a * (W - 130), height: bh, fill: name === "full" ? FULL : LORA,
        opacity: on ? 1 : 0.35, class: "llm-acc-bar" }));
      const l = svgEl("text", { x: 86, y: y0 + 12, "text-anchor": "end" }); l.textContent = name; svg.append(l);
      const v = svgEl("text", { x: 94 + a * (W - 130), y: y0 + 12 }); v.textContent = `${(100 * a).toFixed(1)}%`; svg.append(v);
    });
    return svg;
  }

  function mergeTable(t) {
    const m = t.merge, box = div("");
    const b = document.createElement("button"); b.className = "llm-merge" + (merged ? " on" : "");
    b.textContent = merged ? "merged: W + sBA in one matrix (click to unmerge)" : "unmerged: W x + s B A x (click to merge)";
    b.onclick = () => { merged = !merged; draw(); };
    const tab = document.createElement("table"); tab.className = "llm-merge-table";
    const head = document.createElement("tr");
    ["next token", "p"].forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.append(th); });
    tab.append(head);
    const probs = merged ? m.merged : m.unmerged;
    m.tokens.forEach((tok, i) => {
      const tr = document.createElement("tr");
      [tok, probs[i].toFixed(5)].forEach((s) => { const td = document.createElement("td"); td.textContent = s; tr.append(td); });
      tab.append(tr);
    });
    box.append(div("title", `after "${m.prompt}"`), b, tab,
               div("llm-merge-diff", `max |p_merged - p_unmerged| = ${m.max_diff.toExponential(2)}`));
    return box;
  }

  function draw() {
    const t = model.get("trace") || {};
    if (!t.sv_full || !t.sv_full.length) { root.textContent = "no trace"; return; }
    const n = t.sv_full.length, r = Math.max(1, Math.min(n, model.get("step") || 1));
    root.replaceChildren();
    const bar = div("row");
    const slider = document.createElement("input"); slider.type = "range"; slider.min = "1"; slider.max = String(n);
    slider.value = String(r); slider.className = "llm-rank";
    slider.oninput = () => { model.set("step", Number(slider.value)); model.save_changes(); };
    const info = document.createElement("span"); info.className = "llm-energy";
    info.textContent = `rank r = ${r}: the top-${r} directions hold ${(100 * t.energy[r - 1]).toFixed(1)}% of the full fine-tune's ||ΔW||²`;
    bar.append("rank ", slider, info);
    const left = div(""); left.append(div("title", `singular values of ΔW${t.name ? " (" + t.name + ")" : ""}: full fine-tune (blue) vs LoRA (orange), log scale`), spectrum(t, r));
    const mid = div(""); mid.append(div("title", "new-fact accuracy (the largest measured rank ≤ r is highlighted)"), accuracy(t, r));
    const row = div("row"); row.append(left, mid);
    root.append(bar, row, mergeTable(t));
  }
  model.on("change:trace", draw);
  model.on("change:step", draw);
  draw();
}
export default { render };
