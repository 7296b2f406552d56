// llmlab's site search: page titles, section headings and API names, from the index `make docs` wrote into
// _static/search-index.js (window.LLMLAB_SEARCH). Client-side only: nothing is fetched, so it works from file:// too.
(function () {
  "use strict";
  const entries = window.LLMLAB_SEARCH || [];
  const input = document.getElementById("llm-search");
  const box = document.getElementById("llm-search-results");
  if (!input || !box) return;
  const KIND_RANK = { api: 0, page: 1, section: 2 };
  const MAX = 15;
  let hits = [], active = -1;

  function score(e, words, q) {
    const t = e.t.toLowerCase();
    const hay = (t + " " + (e.p || "") + " " + (e.d || "")).toLowerCase();
    if (!words.every((w) => hay.includes(w))) return null;
    let s = KIND_RANK[e.k] ?? 3;
    if (t === q) s -= 30;                         // the exact name or title first
    else if (t.startsWith(q)) s -= 20;
    else if (t.includes(q)) s -= 10;
    else if (!words.every((w) => t.includes(w))) s += 10;   // matched only in the page or docstring
    return s + t.length / 1000;
  }

  function show() {
    const q = input.value.trim().toLowerCase();
    box.replaceChildren();
    active = -1;
    if (!q) { box.hidden = true; hits = []; return; }
    const words = q.split(/\s+/);
    hits = entries.map((e) => [score(e, words, q), e]).filter((x) => x[0] !== null)
                  .sort((a, b) => a[0] - b[0]).slice(0, MAX).map((x) => x[1]);
    if (!hits.length) {
      const none = document.createElement("div");
      none.className = "llm-none";
      none.textContent = "no match";
      box.append(none);
    }
    for (const e of hits) {           // textContent only: nothing from the index becomes HTML
      const a = document.createElement("a");
      a.href = e.h;
      a.className = "llm-hit llm-hit-" + e.k;
      const kind = document.createElement("span");
      kind.className = "llm-hit-kind";
      kind.textContent = e.k === "api" ? "api" : e.k === "page" ? "page" : "§";
      const title = document.createElement("span");
      title.className = "llm-hit-title";
      title.textContent = e.t;
      a.append(kind, title);
      if (e.k !== "page" && e.p) {
        const where = document.createElement("span");
        where.className = "llm-hit-where";
        where.textContent = e.p;
        a.append(where);
      }
      if (e.d) a.title = e.d;
      box.append(a);
    }
    box.hidden = false;
  }

  function move(d) {
    const links = box.querySelectorAll("a");
    if (!links.length) return;
    if (active >= 0) links[active].classList.remove("active");
    active = (active + d + links.length) % links.length;
    links[active].classList.add("active");
    links[active].scrollIntoView({ block: "nearest" });
  }

  input.addEventListener("input", show);
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown") { ev.preventDefault(); move(1); }
    else if (ev.key === "ArrowUp") { ev.preventDefault(); move(-1); }
    else if (ev.key === "Enter") {
      const links = box.querySelectorAll("a");
      if (links.length) { ev.preventDefault(); links[Math.max(active, 0)].click(); }
    } else if (ev.key === "Escape") { input.value = ""; show(); }
  });
  document.addEventListener("keydown", (ev) => {    // "/" focuses the search box, as on most documentation sites
    if (ev.key === "/" && document.activeElement !== input && !/^(INPUT|TEXTAREA)$/.test(document.activeElement.tagName)) {
      ev.preventDefault(); input.focus();
    }
  });
})();
