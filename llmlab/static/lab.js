// llmlab/static/lab.js — the template widget: step through a running maximum.
// Contract: Python puts everything in `trace` (xs, steps[{i, max}]); `step` is driven by both sides.
// No network, no innerHTML for data, fixed height, colours that read in light and dark themes.

const CSS = `
.llm-lab { font: 13px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 120px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px; }
.llm-lab .row { display: flex; gap: 4px; margin: 6px 0; }
.llm-lab .cell { width: 34px; height: 34px; display: flex; align-items: center; justify-content: center;
  border-radius: 4px; border: 1px solid var(--jp-border-color1, #999); }
.llm-lab .seen { background: rgba(100, 149, 237, 0.25); }
.llm-lab .now { background: rgba(255, 165, 0, 0.55); font-weight: bold; }
.llm-lab button { min-width: 32px; }
@media (prefers-color-scheme: dark) { .llm-lab { color: var(--jp-ui-font-color1, #eee); } }
`;

function render({ model, el }) {
  const style = document.createElement("style");
  style.textContent = CSS;
  const root = document.createElement("div");
  root.className = "llm-lab";
  root.tabIndex = 0;
  const cells = document.createElement("div");
  cells.className = "row";
  const controls = document.createElement("div");
  controls.className = "row";
  const prev = document.createElement("button");
  prev.textContent = "◀";
  prev.className = "llm-prev";
  const next = document.createElement("button");
  next.textContent = "▶";
  next.className = "llm-next";
  const label = document.createElement("span");
  label.className = "llm-label";
  controls.append(prev, next, label);
  root.append(cells, controls);
  el.append(style, root);

  const trace = () => model.get("trace") || { xs: [], steps: [] };
  const clamp = (s) => Math.max(0, Math.min(trace().steps.length - 1, s));
  const go = (s) => { model.set("step", clamp(s)); model.save_changes(); };

  function draw() {
    const { xs, steps } = trace();
    const s = clamp(model.get("step"));
    cells.replaceChildren(...xs.map((x, i) => {
      const c = document.createElement("div");
      c.className = "cell" + (i === s ? " now" : i < s ? " seen" : "");
      c.textContent = String(x);
      c.title = `x[${i}] = ${x}`;
      return c;
    }));
    const st = steps[s];
    label.textContent = st ? `step ${s + 1}/${steps.length}: running max = ${st.max}` : "empty trace";
  }

  prev.addEventListener("click", () => go(model.get("step") - 1));
  next.addEventListener("click", () => go(model.get("step") + 1));
  root.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") go(model.get("step") - 1);
    if (e.key === "ArrowRight") go(model.get("step") + 1);
  });
  model.on("change:step", draw);
  model.on("change:trace", draw);
  draw();
}

export default { render };
