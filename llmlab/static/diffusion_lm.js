// llmlab/static/diffusion_lm.js — a denoising stepper for masked diffusion LMs.
// Trace (llmlab.diffusion_lm.trace_denoising): prompt, gen_length, strategies[name] = [{tokens[], pred[], conf[], revealed[]}],
// ar = [{token, conf}]. `step` is the unmasking step. No network; model text goes in with textContent.
const CSS = `
.llm-dlm { font: 13px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 260px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px; overflow: hidden; }
.llm-dlm .bar { display: flex; gap: 10px; align-items: center; margin-bottom: 6px; flex-wrap: wrap; }
.llm-dlm .row { margin: 6px 0; min-height: 44px; }
.llm-dlm .who { font-weight: bold; margin-right: 6px; }
.llm-dlm .tok { display: inline-block; min-width: 44px; text-align: center; padding: 2px 4px; margin: 2px; border-radius: 3px;
  border: 1px solid var(--jp-border-color2, #bbb); }
.llm-dlm .tok.mask { color: #888; border-style: dashed; }
.llm-dlm .tok.new { outline: 2px solid #3b6fd4; }
.llm-dlm .c { display: block; font-size: 10px; color: #777; }
@media (prefers-color-scheme: dark) { .llm-dlm { color: var(--jp-ui-font-color1, #eee); } }
`;
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
function tint(c) { return `rgba(42, 157, 75, ${(0.1 + 0.55 * c).toFixed(2)})`; }

function render({ model, el: host }) {
  const style = el("style"); style.textContent = CSS;
  const root = el("div", "llm-dlm"), bar = el("div", "bar");
  const sel = el("select", "llm-remask");
  const prev = el("button", "llm-prev", "◀"), next = el("button", "llm-next", "▶"), label = el("span", "llm-label");
  bar.append("remasking ", sel, prev, next, label);
  const prompt = el("div", "row"), diff = el("div", "row"), ar = el("div", "row");
  root.append(bar, prompt, diff, ar); host.append(style, root);
  const trace = () => model.get("trace") || { strategies: {}, ar: [] };
  let strat = null;
  function options() {
    const names = Object.keys(trace().strategies || {});
    sel.replaceChildren(...names.map((n) => { const o = el("option", "", n); o.value = n; return o; }));
    strat = strat && names.includes(strat) ? strat : names[0]; sel.value = strat || "";
  }
  const steps = () => (trace().strategies[strat] || []);
  const clamp = (s) => Math.max(0, Math.min(steps().length - 1, s));
  function draw() {
    const t = trace(), st = steps();
    if (!st.length) { label.textContent = "empty trace"; return; }
    const k = clamp(model.get("step")), s = st[k];
    label.textContent = `step ${k + 1} / ${st.length}`;
    prompt.replaceChildren(el("span", "who", "prompt"), el("span", "", t.prompt || ""));
    diff.replaceChildren(el("span", "who", "diffusion"));
    s.tokens.forEach((tok, i) => {
      const masked = tok === "<mask>", box = el("span", "tok" + (masked ? " mask" : "") + (s.revealed[i] ? " new" : ""), masked ? "▒" : tok);
      if (!masked) box.style.background = tint(s.conf[i]);
      box.title = `prediction ${s.pred[i]}, confidence ${s.conf[i].toFixed(3)}` + (masked ? " (remasked)" : "");
      box.append(el("span", "c", (masked ? s.pred[i] + " " : "") + s.conf[i].toFixed(2)));
      diff.append(box);
    });
    ar.replaceChildren(el("span", "who", "autoregressive"));
    const shown = Math.round(((k + 1) / st.length) * t.ar.length);
    t.ar.forEach((r, i) => {
      const box = el("span", "tok" + (i < shown ? "" : " mask"), i < shown ? r.token : "▒");
      if (i < shown) box.style.background = tint(r.conf);
      box.append(el("span", "c", i < shown ? r.conf.toFixed(2) : "")); ar.append(box);
    });
  }
  const go = (d) => { model.set("step", clamp(model.get("step") + d)); model.save_changes(); };
  prev.addEventListener("click", () => go(-1)); next.addEventListener("click", () => go(1));
  sel.addEventListener("change", () => { strat = sel.value; draw(); });
  model.on("change:step", draw); model.on("change:trace", () => { options(); draw(); });
  options(); draw();
}
export default { render };
