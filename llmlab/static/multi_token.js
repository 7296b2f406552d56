// llmlab/static/multi_token.js — step through self-speculative decoding with multi-token heads.
// Trace (from llmlab.multi_token.trace_speculative): prompt[], runs[name] = {n_future, kind, output[], tokens_per_forward,
// forwards, acceptance[], steps[{drafts[], accepted, verified[], forwards, tokens, tokens_per_forward}]}.
// `step` is the forward-pass index. No network; model text goes in with textContent; fixed height; light/dark colours.

const CSS = `
.llm-mtp { font: 13px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 300px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  overflow: hidden; }
.llm-mtp .bar { display: flex; gap: 8px; align-items: center; margin-bottom: 6px; flex-wrap: wrap; }
.llm-mtp .box { margin: 4px 0; max-height: 150px; overflow-y: auto; }
.llm-mtp .who { font-weight: bold; margin-right: 6px; }
.llm-mtp .tok { display: inline-block; padding: 1px 3px; margin: 1px; border-radius: 3px;
  border: 1px solid var(--jp-border-color2, #bbb); }
.llm-mtp .prompt { opacity: 0.6; }
.llm-mtp .acc { background: rgba(42, 157, 75, 0.35); }
.llm-mtp .rej { background: rgba(209, 73, 91, 0.35); text-decoration: line-through; }
.llm-mtp .ver { background: rgba(59, 111, 212, 0.35); }
.llm-mtp .new { outline: 2px solid rgba(255, 165, 0, 0.8); }
.llm-mtp button.on { font-weight: bold; }
@media (prefers-color-scheme: dark) { .llm-mtp { color: var(--jp-ui-font-color1, #eee); } }
`;

function mk(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render({ model, el }) {
  const style = mk("style"); style.textContent = CSS;
  const root = mk("div", "llm-mtp"); root.tabIndex = 0;
  const bar = mk("div", "bar");
  const kinds = mk("span", "llm-kinds");
  const prev = mk("button", "llm-prev", "◀"), next = mk("button", "llm-next", "▶");
  const label = mk("span", "llm-label");
  bar.append(kinds, prev, next, label);
  const drafts = mk("div", "box llm-drafts"), text = mk("div", "box llm-text"), summary = mk("div", "llm-summary");
  const legend = mk("div", "llm-legend");
  legend.append(mk("span", "tok acc", "accepted draft"), mk("span", "tok rej", "rejected draft"),
    mk("span", "tok ver", "verifier's token"), mk("span", "tok new", "new in this forward"));
  root.append(bar, legend, drafts, text, summary);
  el.append(style, root);

  const trace = () => model.get("trace") || { prompt: [], runs: {} };
  let run = null;
  const steps = () => ((trace().runs[run] || {}).steps || []);
  const clamp = (s) => Math.max(0, Math.min(steps().length - 1, s));
  const go = (s) => { model.set("step", clamp(s)); model.save_changes(); };

  function buttons() {
    const names = Object.keys(trace().runs);
    if (!names.includes(run)) run = names[0] || null;
    kinds.replaceChildren(...names.map((n) => {
      const b = mk("button", "llm-kind" + (n === run ? " on" : ""), n);
      b.addEventListener("click", () => { run = n; buttons(); go(model.get("step")); draw(); });
      return b;
    }));
  }

  function draw() {
    const t = trace(), r = t.runs[run];
    if (!r || !r.steps.length) { label.textContent = "empty trace"; drafts.replaceChildren(); text.replaceChildren(); return; }
    const k = clamp(model.get("step")), st = r.steps[k];
    label.textContent = `forward ${st.forwards} of ${r.forwards} (the prefill is forward 1): ${st.tokens} tokens, ` +
      `${st.tokens_per_forward.toFixed(2)} tokens per forward`;
    drafts.replaceChildren(mk("span", "who", `drafts of depths 2..${r.n_future}:`));
    st.drafts.forEach((d, i) => {
      const ok = i < st.accepted;
      const s = mk("span", "tok " + (ok ? "acc" : i === st.accepted ? "rej" : "prompt"), d);
      s.title = ok ? `depth ${i + 2}: accepted` : i === st.accepted ? `depth ${i + 2}: rejected` : `depth ${i + 2}: not checked (after a rejection)`;
      drafts.append(s);
    });
    const v = st.verified[st.verified.length - 1];
    drafts.append(mk("span", "who", "  verifier's next token:"), mk("span", "tok ver", v));
    // the text so far: prompt, then every token produced up to this step, this step's tokens outlined
    text.replaceChildren(mk("span", "who", "text:"));
    t.prompt.forEach((p) => text.append(mk("span", "tok prompt", p)));
    const before = k > 0 ? r.steps[k - 1].tokens : 1;      // tokens produced before this forward (the prefill gave one)
    r.output.slice(0, st.tokens).forEach((o, i) => text.append(mk("span", "tok" + (i >= before ? " new" : ""), o)));
    summary.textContent = `${run}: ${r.tokens_per_forward.toFixed(2)} tokens per forward over the whole output; ` +
      `acceptance per depth ${r.acceptance.map((a) => (a === null ? "-" : a.toFixed(2))).join(", ")}`;
  }

  prev.addEventListener("click", () => go(model.get("step") - 1));
  next.addEventListener("click", () => go(model.get("step") + 1));
  root.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") go(model.get("step") - 1);
    if (e.key === "ArrowRight") go(model.get("step") + 1);
  });
  model.on("change:step", draw);
  model.on("change:trace", () => { buttons(); draw(); });
  buttons();
  draw();
}

export default { render };
