// llmlab/static/preference.js — scrub through preference training (DPO family).
// Trace (from llmlab.preference.trace_preference): losses, pairs[{prompt, chosen[], rejected[], r_chosen, r_rejected}],
// snapshots[loss][k] = {step, ratios[pair] = {chosen[], rejected[]}}, curves[loss] = [{step, margin, chosen, rejected, win_rate?}].
// `step` is the snapshot index. No network; model text goes in with textContent; fixed height; light/dark colours.

const CSS = `
.llm-pref { font: 13px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 330px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  overflow: hidden; }
.llm-pref .bar { display: flex; gap: 10px; align-items: center; margin-bottom: 6px; flex-wrap: wrap; }
.llm-pref .side { margin: 4px 0; min-height: 44px; }
.llm-pref .who { font-weight: bold; margin-right: 6px; }
.llm-pref .tok { display: inline-block; padding: 1px 3px; margin: 1px; border-radius: 3px;
  border: 1px solid var(--jp-border-color2, #bbb); }
.llm-pref svg text { fill: var(--jp-ui-font-color1, #222); font-size: 10px; }
.llm-pref .axis { stroke: var(--jp-border-color1, #999); }
@media (prefers-color-scheme: dark) { .llm-pref { color: var(--jp-ui-font-color1, #eee); }
  .llm-pref svg text { fill: var(--jp-ui-font-color1, #eee); } }
`;
const SVGNS = "http://www.w3.org/2000/svg";
const COLOURS = { chosen: "#2a9d4b", rejected: "#d1495b", margin: "#3b6fd4", win_rate: "#b8860b" };

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}
function tint(x) {  // log-ratio -> background: green if the policy likes the token more than the reference, red if less
  const a = Math.min(1, Math.abs(x) / 2) * 0.65;
  return x >= 0 ? `rgba(42, 157, 75, ${a})` : `rgba(209, 73, 91, ${a})`;
}

function render({ model, el: host }) {
  const style = el("style"); style.textContent = CSS;
  const root = el("div", "llm-pref");
  const bar = el("div", "bar");
  const lossSel = el("select", "llm-loss"), pairSel = el("select", "llm-pair");
  const slider = el("input", "llm-step"); slider.type = "range"; slider.min = "0"; slider.step = "1";
  const label = el("span", "llm-label");
  bar.append("loss ", lossSel, "pair ", pairSel, "training ", slider, label);
  const prompt = el("div", "side"), chosen = el("div", "side"), rejected = el("div", "side");
  const plot = svg("svg", { width: 600, height: 120, viewBox: "0 0 600 120" });
  root.append(bar, prompt, chosen, rejected, plot);
  host.append(style, root);

  const trace = () => model.get("trace") || { losses: [], pairs: [], snapshots: {}, curves: {} };
  let loss = null, pair = 0;

  function options() {
    const t = trace();
    lossSel.replaceChildren(...t.losses.map((l) => { const o = el("option", "", l); o.value = l; return o; }));
    pairSel.replaceChildren(...t.pairs.map((_, i) => { const o = el("option", "", String(i + 1)); o.value = String(i); return o; }));
    loss = loss && t.losses.includes(loss) ? loss : t.losses[0];
    lossSel.value = loss || "";
  }
  const snaps = () => (trace().snapshots[loss] || []);
  const clamp = (s) => Math.max(0, Math.min(snaps().length - 1, s));

  function tokens(box, who, toks, ratios, r) {
    box.replaceChildren(el("span", "who", `${who} (oracle ${r >= 0 ? "+" : ""}${r})`));
    toks.forEach((tok, i) => {
      const x = ratios ? ratios[i] || 0 : 0;
      const s = el("span", "tok", tok);
      s.style.background = tint(x);
      s.title = `log pi - log pi_ref = ${x.toFixed(3)}`;
      box.append(s);
    });
  }

  function chart(curve, stepNow) {
    plot.replaceChildren();
    const panels = [["chosen", "rejected"], ["margin"], ["win_rate"]];
    panels.forEach((keys, p) => {
      const x0 = 10 + p * 198, w = 180, y0 = 12, h = 88;
      const pts = curve.filter((r) => keys.some((k) => r[k] !== undefined && r[k] !== null));
      plot.append(svg("rect", { x: x0, y: y0, width: w, height: h, fill: "none", class: "axis" }));
      const title = svg("text", { x: x0, y: 9 }); title.textContent = keys.join(" / "); plot.append(title);
      if (!pts.length) return;
      const steps = curve.map((r) => r.step), smin = Math.min(...steps), smax = Math.max(...steps);
      const vals = pts.flatMap((r) => keys.map((k) => r[k]).filter((v) => v !== undefined && v !== null));
      let vmin = Math.min(...vals), vmax = Math.max(...vals);
      if (keys[0] === "win_rate") { vmin = Math.min(vmin, 0.4); vmax = Math.max(vmax, 0.6); }
      if (vmax - vmin < 1e-9) { vmax += 1; vmin -= 1; }
      const X = (s) => x0 + ((s - smin) / Math.max(1, smax - smin)) * w;
      const Y = (v) => y0 + h - ((v - vmin) / (vmax - vmin)) * h;
      keys.forEach((k) => {
        const kp = pts.filter((r) => r[k] !== undefined && r[k] !== null);
        plot.append(svg("polyline", { points: kp.map((r) => `${X(r.step)},${Y(r[k])}`).join(" "), fill: "none",
          stroke: COLOURS[k], "stroke-width": 1.5 }));
        if (k === "win_rate") kp.forEach((r) => plot.append(svg("circle", { cx: X(r.step), cy: Y(r[k]), r: 2.5, fill: COLOURS[k] })));
      });
      const lo = svg("text", { x: x0 + 2, y: y0 + h - 2 }); lo.textContent = vmin.toFixed(2); plot.append(lo);
      const hi = svg("text", { x: x0 + 2, y: y0 + 10 }); hi.textContent = vmax.toFixed(2); plot.append(hi);
      plot.append(svg("line", { x1: X(stepNow), x2: X(stepNow), y1: y0, y2: y0 + h, stroke: "#888", "stroke-dasharray": "3 2" }));
    });
  }

  function draw() {
    const t = trace();
    if (!t.losses.length || !t.pairs.length) { label.textContent = "empty trace"; return; }
    const k = clamp(model.get("step"));
    const sn = snaps()[k];
    slider.max = String(Math.max(0, snaps().length - 1));
    slider.value = String(k);
    const pr = t.pairs[pair];
    prompt.replaceChildren(el("span", "who", "prompt"), el("span", "", pr.prompt));
    const ratios = sn ? sn.ratios[pair] : null;
    tokens(chosen, "chosen", pr.chosen, ratios && ratios.chosen, pr.r_chosen);
    tokens(rejected, "rejected", pr.rejected, ratios && ratios.rejected, pr.r_rejected);
    label.textContent = sn ? `step ${sn.step}` : "";
    chart(t.curves[loss] || [], sn ? sn.step : 0);
  }

  lossSel.addEventListener("change", () => { loss = lossSel.value; draw(); });
  pairSel.addEventListener("change", () => { pair = Number(pairSel.value) || 0; draw(); });
  slider.addEventListener("input", () => { model.set("step", clamp(Number(slider.value))); model.save_changes(); });
  model.on("change:step", draw);
  model.on("change:trace", () => { options(); draw(); });
  options();
  draw();
}

export default { render };
