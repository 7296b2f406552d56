// llmlab/static/grpo.js — one prompt's group of G completions during GRPO training, and the training curves.
// trace = { snapshots: [{step, until, prompt, group: [{tokens: [str], reward, advantage, logp: [..], dlogp: [..] | null}]}],
//           curves: {step: [..], reward: [..], accuracy: [..] (null where not measured), length: [..]} }
// `step` indexes snapshots. Each token is tinted by the change of its log-probability between this snapshot's
// training step and `until` (the next snapshot, or the end of training), computed in Python by trace_grpo:
// green = the updates made the token more likely, red = less likely. The row's meta shows reward r, advantage A
// (one number per completion) and the change of the completion's whole log-probability (the sum of the tokens').

const CSS = `
.llm-grpo { font: 13px/1.45 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 450px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  display: flex; flex-direction: column; gap: 6px; overflow: hidden; }
.llm-grpo .bar { display: flex; gap: 8px; align-items: center; }
.llm-grpo .prompt { font-family: var(--jp-code-font-family, monospace); font-weight: 600; }
.llm-grpo .rows { overflow-y: auto; flex: 1; }
.llm-grpo .row { display: flex; gap: 6px; align-items: center; margin: 2px 0; font-family: var(--jp-code-font-family, monospace); }
.llm-grpo .meta { width: 230px; flex: none; font-size: 12px; color: var(--jp-ui-font-color2, #555); white-space: pre; }
.llm-grpo .tok { padding: 0 3px; border-radius: 3px; white-space: pre; }
.llm-grpo svg text { fill: var(--jp-ui-font-color1, #222); font-size: 10px; }
.llm-grpo .legend { font-size: 12px; }
.llm-grpo .legend span { margin-right: 12px; }
`;

const el_ = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const svgEl = (tag, attrs) => { const e = document.createElementNS("http://www.w3.org/2000/svg", tag); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; };
const signed = (v, d = 2) => (v >= 0 ? "+" : "") + v.toFixed(d);

// Translucent green/red over the theme's background, so the token text stays readable in light and dark themes.
function tint(d, maxAbs) {
  if (d === null || d === undefined) return "rgba(128,128,128,0.15)";
  if (Math.abs(d) < 1e-6) return "rgba(128,128,128,0.25)";
  const a = Math.min(1, Math.abs(d) / (maxAbs || 1)) * 0.6 + 0.12;
  return d > 0 ? `rgba(40,167,69,${a.toFixed(3)})` : `rgba(220,53,69,${a.toFixed(3)})`;
}

function render({ model, el }) {
  const style = el_("style"); style.textContent = CSS;
  const root = el_("div", "llm-grpo"); root.tabIndex = 0;
  const bar = el_("div", "bar");
  const prev = el_("button", "llm-prev", "◀"), next = el_("button", "llm-next", "▶");
  const slider = el_("input", "llm-slider"); slider.type = "range"; slider.min = 0; slider.step = 1; slider.value = 0;
  const label = el_("span", "llm-label");
  bar.append(prev, slider, next, label);
  const prompt = el_("div", "prompt");
  const rows = el_("div", "rows");
  const legend = el_("div", "legend");
  const W = 640, H = 120;
  const svg = svgEl("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  root.append(bar, prompt, rows, legend, svg);
  el.append(style, root);

  const tr = () => model.get("trace") || { snapshots: [], curves: {} };
  const n = () => tr().snapshots.length;
  const go = (s) => { model.set("step", Math.max(0, Math.min(n() - 1, s))); model.save_changes(); };

  function drawLegend(snap) {
    legend.replaceChildren();
    const span = snap.until === null || snap.until === undefined ? "not measured" : `steps ${snap.step} → ${snap.until}`;
    [[`token more likely after ${span}`, "rgba(40,167,69,0.9)"], ["less likely", "rgba(220,53,69,0.9)"],
     ["r reward · A advantage · Δ log π(o) of the completion", null]]
      .forEach(([t, c]) => { const s = el_("span", "", (c ? "■ " : "") + t); if (c) s.style.color = c; legend.append(s); });
  }

  function drawCurves(curStep) {
    svg.replaceChildren();
    const c = tr().curves || {}; const xs = c.step || [];
    if (!xs.length) return;
    const x0 = Math.min(...xs), x1 = Math.max(...xs);
    const X = (v) => 40 + (W - 160) * (v - x0) / Math.max(1, x1 - x0);
    const maxLen = Math.max(1, ...(c.length || [1]));
    const series = [["reward", "#1f77b4", 1, "reward"], ["accuracy", "#2ca02c", 1, "accuracy (eval_fn)"],
                    ["length", "#ff7f0e", null, `length (÷${maxLen.toFixed(0)})`]];
    let k = 0;
    series.forEach(([name, color, top, text]) => {
      const ys = c[name] || []; const scale = top || maxLen;
      const pts = ys.map((v, i) => [v, i]).filter(([v]) => v !== null && v !== undefined && Number.isFinite(v));
      if (!pts.length) return;                                   // a series never measured gets no line and no legend
      const Y = (v) => H - 15 - (H - 25) * (v / scale);
      const d = pts.map(([v, i], j) => (j ? "L" : "M") + X(xs[i]).toFixed(1) + "," + Y(v).toFixed(1)).join("");
      svg.append(svgEl("path", { d, fill: "none", stroke: color, "stroke-width": 1.5 }));
      if (pts.length < ys.length) pts.forEach(([v, i]) => svg.append(svgEl("circle", { cx: X(xs[i]), cy: Y(v), r: 2.5, fill: color })));
      const t = svgEl("text", { x: W - 115, y: 14 + 14 * k++ }); t.textContent = text;
      t.setAttribute("style", `fill:${color}`); svg.append(t);
    });
    svg.append(svgEl("line", { x1: X(curStep), x2: X(curStep), y1: 5, y2: H - 15, stroke: "currentColor", "stroke-dasharray": "3,3", opacity: 0.6 }));
    const ax = svgEl("text", { x: 40, y: H - 2 }); ax.textContent = `training step ${x0} … ${x1}`; svg.append(ax);
  }

  function draw() {
    const snaps = tr().snapshots; slider.max = Math.max(0, snaps.length - 1);
    if (!snaps.length) { label.textContent = "empty trace"; rows.replaceChildren(); return; }
    const s = Math.max(0, Math.min(snaps.length - 1, model.get("step"))); slider.value = s;
    const snap = snaps[s];
    label.textContent = `snapshot ${s + 1}/${snaps.length} · training step ${snap.step}`;
    prompt.textContent = "prompt: " + snap.prompt;
    const all = snap.group.flatMap((g) => g.dlogp || []);
    const maxAbs = Math.max(1e-6, ...all.map(Math.abs));
    rows.replaceChildren(...snap.group.map((g, i) => {
      const row = el_("div", "row llm-completion");
      const dsum = g.dlogp ? g.dlogp.reduce((a, b) => a + b, 0) : null;
      row.append(el_("span", "meta", `#${i + 1} r=${g.reward.toFixed(2)} A=${signed(g.advantage)} Δ=${dsum === null ? "–" : signed(dsum)}`));
      g.tokens.forEach((t, j) => {
        const d = g.dlogp ? g.dlogp[j] : null;
        const k = el_("span", "tok", t); k.style.background = tint(d, maxAbs);
        k.title = `log p ${g.logp[j].toFixed(3)}` + (d === null ? "" : ` → ${(g.logp[j] + d).toFixed(3)} (Δ ${signed(d, 3)})`);
        row.append(k);
      });
      return row;
    }));
    drawLegend(snap);
    drawCurves(snap.step);
  }

  prev.addEventListener("click", () => go(model.get("step") - 1));
  next.addEventListener("click", () => go(model.get("step") + 1));
  slider.addEventListener("input", () => go(parseInt(slider.value, 10)));
  root.addEventListener("keydown", (e) => { if (e.key === "ArrowLeft") go(model.get("step") - 1); if (e.key === "ArrowRight") go(model.get("step") + 1); });
  model.on("change:step", draw); model.on("change:trace", draw);
  draw();
}

export default { render };
