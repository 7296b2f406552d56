// llmlab/static/grpo.js — one prompt's group of G completions during GRPO training, and the training curves.
// trace = { snapshots: [{step, prompt, group: [{tokens: [str], reward, advantage}]}],
//           curves: {step: [..], reward: [..], accuracy: [..] (null where not measured), length: [..]} }
// `step` indexes snapshots. Tokens are tinted by the sign of the gradient they receive (the advantage's sign):
// green = pushed up, red = pushed down, grey = no gradient (the group's rewards were all equal).

const CSS = `
.llm-grpo { font: 13px/1.45 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 430px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  display: flex; flex-direction: column; gap: 6px; overflow: hidden; }
.llm-grpo .bar { display: flex; gap: 8px; align-items: center; }
.llm-grpo .prompt { font-family: var(--jp-code-font-family, monospace); font-weight: 600; }
.llm-grpo .rows { overflow-y: auto; flex: 1; }
.llm-grpo .row { display: flex; gap: 6px; align-items: center; margin: 2px 0; font-family: var(--jp-code-font-family, monospace); }
.llm-grpo .meta { width: 150px; flex: none; font-size: 12px; color: var(--jp-ui-font-color2, #555); }
.llm-grpo .tok { padding: 0 3px; border-radius: 3px; white-space: pre; }
.llm-grpo svg text { fill: var(--jp-ui-font-color1, #222); font-size: 10px; }
.llm-grpo .legend span { margin-right: 12px; }
`;

const el_ = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const svgEl = (tag, attrs) => { const e = document.createElementNS("http://www.w3.org/2000/svg", tag); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; };

function tint(adv, maxAbs) {
  if (Math.abs(adv) < 1e-9) return "rgba(128,128,128,0.25)";
  const a = Math.min(1, Math.abs(adv) / (maxAbs || 1)) * 0.6 + 0.15;
  return adv > 0 ? `rgba(40,167,69,${a})` : `rgba(220,53,69,${a})`;
}

function render({ model, el }) {
  const style = el_("style"); style.textContent = CSS;
  const root = el_("div", "llm-grpo"); root.tabIndex = 0;
  const bar = el_("div", "bar");
  const prev = el_("button", "llm-prev", "◀"), next = el_("button", "llm-next", "▶");
  const slider = el_("input", "llm-slider"); slider.type = "range"; slider.min = 0; slider.step = 1;
  const label = el_("span", "llm-label");
  bar.append(prev, slider, next, label);
  const prompt = el_("div", "prompt");
  const rows = el_("div", "rows");
  const legend = el_("div", "legend");
  [["pushed up (A > 0)", "rgba(40,167,69,0.6)"], ["pushed down (A < 0)", "rgba(220,53,69,0.6)"], ["no gradient (A = 0)", "rgba(128,128,128,0.35)"]]
    .forEach(([t, c]) => { const s = el_("span", "", "■ " + t); s.style.color = c; legend.append(s); });
  const W = 640, H = 120;
  const svg = svgEl("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  root.append(bar, prompt, rows, legend, svg);
  el.append(style, root);

  const tr = () => model.get("trace") || { snapshots: [], curves: {} };
  const n = () => tr().snapshots.length;
  const go = (s) => { model.set("step", Math.max(0, Math.min(n() - 1, s))); model.save_changes(); };

  function drawCurves(curStep) {
    svg.replaceChildren();
    const c = tr().curves || {}; const xs = c.step || [];
    if (!xs.length) return;
    const x0 = Math.min(...xs), x1 = Math.max(...xs) || 1;
    const X = (v) => 40 + (W - 150) * (v - x0) / Math.max(1, x1 - x0);
    const series = [["reward", "#1f77b4", 1], ["accuracy", "#2ca02c", 1], ["length", "#ff7f0e", null]];
    const maxLen = Math.max(1, ...(c.length || [1]));
    series.forEach(([name, color, top], k) => {
      const ys = c[name] || []; const scale = top || maxLen;
      const Y = (v) => H - 15 - (H - 25) * (v / scale);
      let d = "";
      ys.forEach((v, i) => { if (v === null || v === undefined) return; d += (d ? "L" : "M") + X(xs[i]).toFixed(1) + "," + Y(v).toFixed(1); });
      if (d) svg.append(svgEl("path", { d, fill: "none", stroke: color, "stroke-width": 1.5 }));
      const t = svgEl("text", { x: W - 100, y: 14 + 14 * k }); t.textContent = name + (top ? "" : ` (÷${maxLen.toFixed(0)})`);
      t.setAttribute("style", `fill:${color}`); svg.append(t);
    });
    svg.append(svgEl("line", { x1: X(curStep), x2: X(curStep), y1: 5, y2: H - 15, stroke: "currentColor", "stroke-dasharray": "3,3", opacity: 0.6 }));
    const ax = svgEl("text", { x: 40, y: H - 2 }); ax.textContent = `training step ${x0} … ${x1}`; svg.append(ax);
  }

  function draw() {
    const snaps = tr().snapshots; slider.max = Math.max(0, snaps.length - 1);
    if (!snaps.length) { label.textContent = "empty trace"; return; }
    const s = Math.max(0, Math.min(snaps.length - 1, model.get("step"))); slider.value = s;
    const snap = snaps[s];
    label.textContent = `snapshot ${s + 1}/${snaps.length} · training step ${snap.step}`;
    prompt.textContent = "prompt: " + snap.prompt;
    const maxAbs = Math.max(1e-9, ...snap.group.map((g) => Math.abs(g.advantage)));
    rows.replaceChildren(...snap.group.map((g, i) => {
      const row = el_("div", "row llm-completion");
      row.append(el_("span", "meta", `#${i + 1} r=${g.reward.toFixed(2)} A=${g.advantage >= 0 ? "+" : ""}${g.advantage.toFixed(2)}`));
      g.tokens.forEach((t) => { const k = el_("span", "tok", t); k.style.background = tint(g.advantage, maxAbs); k.title = `advantage ${g.advantage.toFixed(3)}`; row.append(k); });
      return row;
    }));
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
