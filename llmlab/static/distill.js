// llmlab/static/distill.js — two views of knowledge distillation.
// Trace (from llmlab.distill.trace_toy / trace_tokens): {toy: {x[], teacher[], betas[], fits: {forward_kl: path,
// reverse_kl: path, tvd: path, jsd: [path per beta]}}, tokens: {tokens[], teacher[pos][k]{tok,p}, students[],
// student[name][pos][k]{tok,p}, div[name]{forward_kl[], reverse_kl[]}}}; path = [{step, mu, sigma, loss}].
// `step` is the index into a fit's path. No network; model text goes in with textContent; fixed height; light/dark.

const CSS = `
.llm-distill { font: 13px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 430px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  overflow: hidden; }
.llm-distill .bar { display: flex; gap: 8px; align-items: center; margin: 4px 0; flex-wrap: wrap; }
.llm-distill .toks { height: 52px; overflow: auto; }
.llm-distill .tok { display: inline-block; padding: 1px 3px; margin: 1px; border-radius: 3px; cursor: pointer;
  border: 1px solid var(--jp-border-color2, #bbb); }
.llm-distill .tok.sel { outline: 2px solid #3b6fd4; }
.llm-distill .cols { display: flex; gap: 16px; }
.llm-distill .col { width: 280px; }
.llm-distill svg text { fill: var(--jp-ui-font-color1, #222); font-size: 10px; }
@media (prefers-color-scheme: dark) { .llm-distill { color: var(--jp-ui-font-color1, #eee); }
  .llm-distill svg text { fill: var(--jp-ui-font-color1, #eee); } }
`;
const SVGNS = "http://www.w3.org/2000/svg";
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
function svg(tag, attrs) { const e = document.createElementNS(SVGNS, tag); for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v)); return e; }

function render({ model, el: host }) {
  const style = el("style"); style.textContent = CSS;
  const root = el("div", "llm-distill");
  const bar = el("div", "bar");
  const kindSel = el("select", "llm-kind");
  ["forward_kl", "reverse_kl", "jsd", "tvd"].forEach((k) => { const o = el("option", "", k); o.value = k; kindSel.append(o); });
  const beta = el("input", "llm-beta"); beta.type = "range"; beta.min = "0"; beta.step = "1"; beta.value = "5";
  const betaLab = el("span", "llm-beta-label");
  const prev = el("button", "llm-prev", "◀"), next = el("button", "llm-next", "▶");
  const label = el("span", "llm-label");
  bar.append("divergence ", kindSel, "β ", beta, betaLab, prev, next, label);
  const plot = svg("svg", { width: 600, height: 140, viewBox: "0 0 600 140" });
  const bar2 = el("div", "bar");
  const stuSel = el("select", "llm-student");
  const posLab = el("span", "llm-pos");
  bar2.append("student ", stuSel, posLab);
  const toks = el("div", "toks");
  const cols = el("div", "cols"), colT = el("div", "col"), colS = el("div", "col");
  cols.append(colT, colS);
  root.append(bar, plot, bar2, toks, cols);
  host.append(style, root);

  const trace = () => model.get("trace") || {};
  let pos = 0;
  const path = () => {
    const f = (trace().toy || {}).fits || {};
    if (kindSel.value === "jsd") return (f.jsd || [])[Number(beta.value)] || [];
    return f[kindSel.value] || [];
  };
  const clamp = (s) => Math.max(0, Math.min(path().length - 1, s));

  function drawToy() {
    const toy = trace().toy || { x: [], teacher: [], betas: [] };
    beta.max = String(Math.max(0, toy.betas.length - 1));
    beta.disabled = kindSel.value !== "jsd";
    betaLab.textContent = kindSel.value === "jsd" ? String(toy.betas[Number(beta.value)]) : "";
    plot.replaceChildren();
    const P = path(), k = clamp(model.get("step")), f = P[k];
    if (!toy.x.length || !f) { label.textContent = "empty trace"; return; }
    const x0 = toy.x[0], x1 = toy.x[toy.x.length - 1];
    const dens = toy.x.map((x) => Math.exp(-0.5 * ((x - f.mu) / f.sigma) ** 2));
    const z = dens.reduce((a, b) => a + b, 0);
    const stu = dens.map((d) => d / z);
    const ymax = Math.max(...toy.teacher, ...stu) * 1.05;
    const X = (x) => 10 + ((x - x0) / (x1 - x0)) * 580, Y = (v) => 130 - (v / ymax) * 120;
    const line = (ys, colour, fill) => svg("polyline", { points: toy.x.map((x, i) => `${X(x)},${Y(ys[i])}`).join(" "),
      fill: fill || "none", stroke: colour, "stroke-width": 1.8 });
    plot.append(line(toy.teacher, "#999", "rgba(150,150,150,0.25)"), line(stu, "#3b6fd4"));
    const t = svg("text", { x: 14, y: 12 }); t.textContent = "grey: teacher (two modes); blue: fitted Gaussian student"; plot.append(t);
    label.textContent = `step ${f.step}: mu = ${f.mu.toFixed(2)}, sigma = ${f.sigma.toFixed(2)}, loss = ${f.loss.toFixed(3)}`;
    prev.disabled = k <= 0; next.disabled = k >= P.length - 1;
  }

  function topk(box, who, rows, actual) {
    box.replaceChildren(el("div", "", who));
    (rows || []).forEach((r) => {
      const line = el("div", "");
      const b = el("span", ""); b.style.display = "inline-block"; b.style.height = "10px"; b.style.marginRight = "6px";
      b.style.width = `${Math.round(r.p * 150)}px`; b.style.background = r.tok === actual ? "#2a9d4b" : "#3b6fd4";
      line.append(b, el("span", "", `${r.tok} ${r.p.toFixed(3)}`));
      box.append(line);
    });
  }

  function drawTokens() {
    const T = trace().tokens || { tokens: [], students: [] };
    if (!T.tokens.length) return;
    const name = stuSel.value || T.students[0];
    const div = (T.div[name] || {}).forward_kl || [];
    toks.replaceChildren();
    T.tokens.slice(1).forEach((w, i) => {
      const s = el("span", "tok" + (i === pos ? " sel" : ""), w);
      const a = Math.min(1, (div[i] || 0) / 2) * 0.7;
      s.style.background = `rgba(209, 73, 91, ${a})`;
      s.title = `KL(teacher || student) = ${(div[i] || 0).toFixed(3)}`;
      s.addEventListener("click", () => { pos = i; drawTokens(); });
      toks.append(s);
    });
    const rev = (T.div[name] || {}).reverse_kl || [];
    posLab.textContent = ` position ${pos + 1}: next token "${T.tokens[pos + 1]}", forward KL ${(div[pos] || 0).toFixed(3)}, reverse KL ${(rev[pos] || 0).toFixed(3)} (red = forward KL)`;
    topk(colT, "teacher top-k", T.teacher[pos], T.tokens[pos + 1]);
    topk(colS, `${name} top-k`, (T.student[name] || [])[pos], T.tokens[pos + 1]);
  }

  function options() {
    const T = trace().tokens || { students: [] };
    stuSel.replaceChildren(...T.students.map((n) => { const o = el("option", "", n); o.value = n; return o; }));
  }
  const setStep = (s) => { model.set("step", clamp(s)); model.save_changes(); };
  kindSel.addEventListener("change", () => { setStep(model.get("step")); drawToy(); });
  beta.addEventListener("input", drawToy);
  prev.addEventListener("click", () => setStep(model.get("step") - 1));
  next.addEventListener("click", () => setStep(model.get("step") + 1));
  stuSel.addEventListener("change", drawTokens);
  model.on("change:step", drawToy);
  model.on("change:trace", () => { options(); drawToy(); drawTokens(); });
  options(); drawToy(); drawTokens();
}

export default { render };
