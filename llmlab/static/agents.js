// llmlab/static/agents.js — constrained generation step by step and an agent's turns.
// Trace (llmlab.agents.trace_agents): steps[{state, n, tok, masked[]}], turns[{turn, kind, call, result, error}].
// No network; text via textContent only; fixed height.
const CSS = `
.llm-agents { font: 12px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 320px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px; overflow: auto; }
.llm-agents .row { display: flex; gap: 12px; align-items: center; margin: 4px 0; flex-wrap: wrap; }
.llm-agents .tok { padding: 1px 4px; border-radius: 3px; background: rgba(100,149,237,0.2); cursor: pointer; }
.llm-agents .tok.on { background: rgba(100,149,237,0.6); font-weight: 600; }
.llm-agents .masked { color: rgb(200,60,60); text-decoration: line-through; }
.llm-agents .err { color: rgb(200,60,60); }
`;
const div = (cls, text) => { const e = document.createElement("div"); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
function render({ model, el }) {
  const style = document.createElement("style"); style.textContent = CSS;
  const root = div("llm-agents"); el.append(style, root);
  function draw() {
    const t = model.get("trace") || {}, steps = t.steps || [], turns = t.turns || [];
    const k = Math.min(model.get("step") || 0, Math.max(steps.length - 1, 0));
    root.replaceChildren();
    root.append(div("title", "Constrained generation: click a token"));
    const row = div("row");
    steps.forEach((s, i) => { const b = document.createElement("span"); b.className = "tok" + (i === k ? " on" : ""); b.textContent = s.tok;
      b.onclick = () => { model.set("step", i); model.save_changes(); }; row.append(b); });
    root.append(row);
    if (steps.length) {
      const s = steps[k];
      root.append(div("", `step ${k}: FSM state ${s.state}, ${s.n} tokens allowed, chose "${s.tok}"`));
      const m = div("row"); m.append(div("", "model's top choices masked out:"));
      (s.masked.length ? s.masked : ["(none)"]).forEach(w => m.append(div("masked", w))); root.append(m);
    }
    root.append(div("title", "Agent turns"));
    turns.forEach(u => {
      const what = u.kind === "answer" ? "answers" : u.kind === "malformed" ? "malformed call" : `calls ${u.kind}`;
      const res = u.kind === "answer" ? "" : u.error ? ` -> error: ${u.error}` : ` -> result "${u.result}"`;
      root.append(div(u.error ? "err" : "", `turn ${u.turn}: ${what} "${u.call}"${res}`));
    });
    if (!turns.length) root.append(div("", "(no turns)"));
  }
  model.on("change:step", draw); model.on("change:trace", draw); draw();
}
export default { render };
