// llmlab/static/sae.js — sparse autoencoder feature dashboard.
// trace: {title, features: [{feature, density, max_act, mean_act, n_tokens, tag, tag_auroc,
//         hist: {edges[], counts[]}, logits_pos: [[token, value]], logits_neg: [[token, value]],
//         groups: [{label, contexts: [{tokens[], acts[], pos, act}]}]}]}; `step` = index of the feature shown.
// No network; model text goes through textContent only (never innerHTML); fixed height; light and dark colours.

const CSS = `
.llm-sae { font: 12px/1.35 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 520px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc);
  border-radius: 6px; overflow: hidden; display: flex; flex-direction: column; gap: 6px; }
.llm-sae .llm-row { display: flex; gap: 8px; align-items: center; }
.llm-sae .llm-title { font-weight: 600; flex: 1; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.llm-sae .llm-search { width: 190px; }
.llm-sae .llm-body { display: flex; gap: 10px; flex: 1; min-height: 0; }
.llm-sae .llm-left { width: 250px; display: flex; flex-direction: column; gap: 6px; flex-shrink: 0; }
.llm-sae .llm-right { flex: 1; overflow-y: auto; min-width: 0; }
.llm-sae .llm-stat { font-variant-numeric: tabular-nums; }
.llm-sae .llm-tag { display: inline-block; padding: 1px 6px; border-radius: 8px; background: rgba(46, 160, 67, 0.25); }
.llm-sae .llm-notag { opacity: 0.6; }
.llm-sae .llm-caption { font-size: 11px; opacity: 0.75; }
.llm-sae table { border-collapse: collapse; width: 100%; }
.llm-sae td { padding: 0 4px; white-space: nowrap; }
.llm-sae td.llm-num { text-align: right; font-variant-numeric: tabular-nums; }
.llm-sae .llm-pos { color: #1f77b4; } .llm-sae .llm-neg { color: #d62728; }
.llm-sae .llm-group { margin-bottom: 6px; }
.llm-sae .llm-group-label { font-weight: 600; font-size: 11px; margin: 2px 0; }
.llm-sae .llm-ctx { font-family: var(--jp-code-font-family, monospace); margin: 1px 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.llm-sae .llm-tok { padding: 0 1px; border-radius: 2px; margin-right: 3px; }
.llm-sae .llm-tok.llm-max { outline: 1px solid rgba(230, 120, 0, 0.9); }
.llm-sae svg text { fill: var(--jp-ui-font-color1, #222); }
.llm-sae .llm-bar { fill: rgba(230, 120, 0, 0.75); }
.llm-sae .llm-empty { opacity: 0.7; padding: 8px; }
@media (prefers-color-scheme: dark) {
  .llm-sae { color: var(--jp-ui-font-color1, #eee); } .llm-sae svg text { fill: var(--jp-ui-font-color1, #eee); }
  .llm-sae .llm-pos { color: #6cb4ee; } .llm-sae .llm-neg { color: #ff7f7f; } }
`;

const SVGNS = "http://www.w3.org/2000/svg";
const el_ = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = String(text); return e; };
const svg_ = (tag, attrs = {}) => { const e = document.createElementNS(SVGNS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; };
const fmt = (v, d = 3) => (typeof v === "number" && isFinite(v)) ? (Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(d) : v.toExponential(1)) : "–";
// activation / max -> orange tint with alpha; reads on light and dark backgrounds
const tint = (a, mx) => `rgba(230, 120, 0, ${mx > 0 ? Math.min(1, Math.max(0, a / mx)) * 0.85 : 0})`;

function render({ model, el }) {
  const style = el_("style"); style.textContent = CSS;
  const root = el_("div", "llm-sae");
  const top = el_("div", "llm-row");
  const prev = el_("button", "llm-prev", "◀"), next = el_("button", "llm-next", "▶");
  const title = el_("span", "llm-title");
  const search = el_("input", "llm-search"); search.type = "search";
  search.placeholder = "id, tag or token, then Enter"; search.setAttribute("aria-label", "search features");
  const found = el_("span", "llm-caption llm-found");
  top.append(prev, next, title, search, found);
  const body = el_("div", "llm-body");
  const left = el_("div", "llm-left"), right = el_("div", "llm-right");
  body.append(left, right);
  root.append(top, body);
  el.append(style, root);

  const feats = () => ((model.get("trace") || {}).features) || [];
  const clamp = (s) => Math.max(0, Math.min(feats().length - 1, s));
  const go = (s) => { model.set("step", clamp(s)); model.save_changes(); };

  // whole-word matching only: a feature id ("8" or "#8"), a world tag ("CITY", "happy word"), or a token ("paris");
  // a partial word matches nothing, so typing never lands on a feature that merely contains the letters
  function matches(f, q) {
    q = q.trim().toLowerCase();
    if (!q) return false;
    if (/^#?\d+$/.test(q)) return String(f.feature) === q.replace(/^#/, "");
    if (f.tag && f.tag.toLowerCase() === q) return true;
    const toks = [...f.logits_pos, ...f.logits_neg].map((p) => String(p[0]).toLowerCase());
    for (const g of f.groups) for (const c of g.contexts) toks.push(String(c.tokens[c.pos]).toLowerCase());
    return toks.some((t) => t === q);
  }

  function histogram(f) {
    const W = 240, H = 70, counts = f.hist.counts, n = counts.length;
    const mx = Math.max(1, ...counts);
    const s = svg_("svg", { viewBox: `0 0 ${W} ${H + 14}`, width: W, height: H + 14, class: "llm-hist" });
    counts.forEach((c, i) => {
      const h = c ? Math.max(1, (H * Math.log1p(c)) / Math.log1p(mx)) : 0;
      const r = svg_("rect", { x: (i * W) / n + 0.5, y: H - h, width: W / n - 1, height: h, class: "llm-bar" });
      const tip = svg_("title"); tip.textContent = `${fmt(f.hist.edges[i], 2)}–${fmt(f.hist.edges[i + 1], 2)}: ${c} tokens`;
      r.append(tip); s.append(r);
    });
    const lo = svg_("text", { x: 0, y: H + 12, "font-size": 9 }); lo.textContent = "0";
    const hi = svg_("text", { x: W, y: H + 12, "font-size": 9, "text-anchor": "end" }); hi.textContent = fmt(f.hist.edges[n], 2);
    s.append(lo, hi);
    return s;
  }

  function logitTable(f) {
    const t = el_("table", "llm-logits");
    const n = Math.max(f.logits_pos.length, f.logits_neg.length);
    const head = el_("tr"); head.append(el_("td", "llm-neg", "− logits"), el_("td"), el_("td", "llm-pos", "+ logits"), el_("td"));
    t.append(head);
    for (let i = 0; i < n; i++) {
      const tr = el_("tr");
      const ng = f.logits_neg[i] || ["", NaN], ps = f.logits_pos[i] || ["", NaN];
      tr.append(el_("td", "llm-neg", ng[0]), el_("td", "llm-num", fmt(ng[1], 2)), el_("td", "llm-pos", ps[0]), el_("td", "llm-num", fmt(ps[1], 2)));
      t.append(tr);
    }
    return t;
  }

  function contexts(f) {
    const box = el_("div");
    if (!f.groups.length) { box.append(el_("div", "llm-empty", "this feature never fires on these tokens")); return box; }
    for (const g of f.groups) {
      const div = el_("div", "llm-group");
      div.append(el_("div", "llm-group-label", g.label));
      for (const c of g.contexts) {
        const line = el_("div", "llm-ctx");
        c.tokens.forEach((tok, i) => {
          const s = el_("span", "llm-tok" + (i === c.pos ? " llm-max" : ""), tok);   // model text: textContent only
          s.style.background = tint(c.acts[i], f.max_act);
          s.title = `${tok}: ${fmt(c.acts[i])}`;
          line.append(s);
        });
        div.append(line);
      }
      box.append(div);
    }
    return box;
  }

  function draw() {
    const fs = feats();
    left.replaceChildren(); right.replaceChildren();
    const tr = model.get("trace") || {};
    if (!fs.length) { title.textContent = "no features in the trace"; return; }
    const i = clamp(model.get("step")), f = fs[i];
    title.textContent = `${tr.title ? tr.title + " · " : ""}feature ${f.feature} (${i + 1}/${fs.length})`;
    prev.disabled = i === 0; next.disabled = i === fs.length - 1;
    const tag = el_("div");
    if (f.tag) { tag.append(el_("span", "llm-tag", `${f.tag}`), el_("span", "llm-caption", ` best world label, AUROC ${fmt(f.tag_auroc)}`)); }
    else tag.append(el_("span", "llm-notag", "no matching world label"));
    const stats = el_("div", "llm-stat",
      `density ${fmt(100 * f.density, 2)}% · max ${fmt(f.max_act, 2)} · mean (active) ${fmt(f.mean_act, 2)}`);
    left.append(tag, stats, el_("div", "llm-caption", "activation histogram (non-zero; log count)"), histogram(f),
                el_("div", "llm-caption", "direct logit effect of the decoder direction"), logitTable(f));
    right.append(contexts(f));
  }

  function doSearch() {                                         // on Enter: jump to the next feature that matches
    const q = search.value, fs = feats();
    if (!q.trim()) { found.textContent = ""; return; }
    const hits = fs.map((f, i) => (matches(f, q) ? i : -1)).filter((i) => i >= 0);
    found.textContent = hits.length ? `${hits.length} match${hits.length > 1 ? "es" : ""}` : `no feature matches "${q.trim()}"`;
    if (!hits.length) return;
    const cur = clamp(model.get("step"));
    go(hits.find((i) => i > cur) ?? hits[0]);
  }

  prev.addEventListener("click", () => go(model.get("step") - 1));
  next.addEventListener("click", () => go(model.get("step") + 1));
  search.addEventListener("input", () => { found.textContent = search.value.trim() ? "Enter to search" : ""; });
  search.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); doSearch(); } });
  model.on("change:step", draw);
  model.on("change:trace", draw);
  draw();
}

export default { render };
