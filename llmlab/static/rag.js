// llmlab/static/rag.js — retrieval on the world's facts: for a chosen query, the BM25, dense, RRF and reranked rankings
// (query words that the corpus knows highlighted), the reader's answer and the passages it read.
// Trace (llmlab.rag.trace_rag): queries[{query, terms[], answer, bm25[{text, score}], dense[...], rrf[...],
// rerank[...] (optional), used[str] (optional)}].
// `step` is the query index. No network; text via textContent only; fixed height.

const CSS = `
.llm-rag { font: 12px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  height: 360px; box-sizing: border-box; padding: 8px; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px;
  overflow: hidden; }
.llm-rag .row { display: flex; gap: 12px; align-items: flex-start; margin: 4px 0; }
.llm-rag .col { flex: 1; min-width: 0; }
.llm-rag .title { font-weight: 600; margin-bottom: 2px; }
.llm-rag .hit { background: rgba(240, 200, 40, 0.5); border-radius: 2px; }
.llm-rag .p { margin: 2px 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.llm-rag select { max-width: 100%; }
`;
const div = (cls, text) => { const e = document.createElement("div"); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };

function passage(p, terms) {
  const e = div("p llm-passage");
  const sc = document.createElement("b"); sc.textContent = p.score.toFixed(3) + "  "; e.append(sc);
  p.text.split(" ").forEach((w) => {
    const s = document.createElement("span"); s.textContent = w + " ";
    if (terms.has(w.toLowerCase())) s.className = "hit";
    e.append(s);
  });
  return e;
}

function render({ model, el }) {
  const style = document.createElement("style"); style.textContent = CSS;
  const root = div("llm-rag");
  el.append(style, root);
  function draw() {
    root.replaceChildren();
    const qs = (model.get("trace") || {}).queries || [];
    if (!qs.length) { root.append(div("", "no queries")); return; }
    const i = Math.max(0, Math.min(model.get("step") || 0, qs.length - 1)), q = qs[i];
    const sel = document.createElement("select");
    qs.forEach((x, j) => { const o = document.createElement("option"); o.value = String(j); o.textContent = x.query; if (j === i) o.selected = true; sel.append(o); });
    sel.addEventListener("change", () => { model.set("step", Number(sel.value)); model.save_changes(); });
    root.append(div("title", "query"), sel);
    const terms = new Set(q.terms);
    const row = div("row");
    const cols = [["BM25", q.bm25], ["dense", q.dense], ["hybrid (RRF)", q.rrf]];
    if (q.rerank) cols.push(["hybrid + rerank", q.rerank]);
    cols.forEach(([name, ps]) => {
      const c = div("col"); c.append(div("title", name)); ps.forEach((p) => c.append(passage(p, terms))); row.append(c);
    });
    root.append(row, div("title llm-answer", "answer: " + q.answer));
    if (q.used) { const u = div("p"); u.textContent = "read: " + q.used.join(" | "); root.append(u); }
  }
  model.on("change:step", draw); model.on("change:trace", draw);
  draw();
}
export default { render };
