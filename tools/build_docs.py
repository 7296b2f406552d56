"""Render the documentation site into docs/.

With quarto on PATH this is `nbdev_docs`. Quarto cannot be installed on every machine (it downloads a binary while
building), so otherwise each notebook goes through nbdev's own processors (hidden cells dropped, a `show_doc` cell
added after every exported name) in this process, and the steps quarto would take are done here:

- the opening cell (`# title`, `> summary`, then papers and the introduction) becomes the page header and its first
  cell, whole (nbdev's frontmatter step keeps only the title and the summary's first line, and drops the rest);
- every `show_doc(X)` cell is rendered by nbdev's `show_doc`, with `X` looked up in the module the notebook exports
  (the notebooks are committed with their outputs, so nothing else is executed);
- quarto cell options (`#| echo: false`, `#| output: ...`, `#| include: false`) are applied and every `#|` line is
  removed; exported code is shown in an open fold under its API entry; each cell carries the anchor `cell-<id>`;
- links between notebooks (`NN_slug.ipynb`) point at their pages.

Then nbconvert renders each page with a small template (tools/docs_template/llmlab: the lab template plus a sidebar
with a search box), and the build writes "What we measured" (claims.html: every `llmlab.lab.claim` recorded in the
notebooks' outputs) and a search index (_static/search-index.js) over page titles, headings and API names. Widgets
work on the static site without internet: the widget manager, require.js, anywidget and MathJax are vendored from
the npm registry into .vendor/ (once) and copied into docs/_static/.

Usage: python tools/build_docs.py [--out docs]
"""
import argparse, html, importlib, json, os, pathlib, re, shutil, subprocess, sys, tarfile, tempfile, time

ROOT = pathlib.Path(__file__).resolve().parents[1]
VENDOR = ROOT / ".vendor"
TEMPLATES = ROOT / "tools" / "docs_template"
SITE_STATIC = TEMPLATES / "site"
CLAIMS_PAGE = "claims.html"
sys.path.insert(0, str(ROOT / "tools"))
from build_readme import claims_summary, fill_map, CLAIMS_MARKER     # the home page's map and claims, as in the README

def npm_packages() -> dict[str, str]:
    "npm packages to vendor, pinned; anywidget's JS must match the Python anywidget's version."
    import anywidget
    return {"@jupyter-widgets/html-manager": "1.0.15", "requirejs": "2.3.8", "mathjax": "3.2.2",
            "anywidget": anywidget.__version__}

def fail(step: str, msg: str):
    print(f"make docs: step '{step}' failed: {msg}", file=sys.stderr)
    sys.exit(1)

def vendor() -> dict[str, pathlib.Path]:
    "Fetch each npm package once (npm pack) into .vendor/<name>@<version>/ and return their package folders."
    out = {}
    for name, version in npm_packages().items():
        dest = VENDOR / f"{name.replace('/', '__')}@{version}"
        if not (dest / "package" / "package.json").exists():
            if not shutil.which("npm"):
                fail("vendor", f"npm is needed once to fetch {name}@{version} from the npm registry (apt-get install npm)")
            with tempfile.TemporaryDirectory() as tmp:
                r = subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=tmp, capture_output=True, text=True)
                tgz = [p for p in pathlib.Path(tmp).glob("*.tgz")]
                if r.returncode or not tgz:
                    fail("vendor", f"npm pack {name}@{version} failed (is the npm registry reachable?): {r.stderr.strip()[-300:]}")
                dest.mkdir(parents=True, exist_ok=True)
                with tarfile.open(tgz[0]) as t: t.extractall(dest, filter="data")
        out[name] = dest / "package"
    return out

def copy_static(pkgs: dict[str, pathlib.Path], out: pathlib.Path):
    st = out / "_static"
    st.mkdir(parents=True, exist_ok=True)
    shutil.copytree(pkgs["@jupyter-widgets/html-manager"] / "dist", st / "html-manager", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.map"))
    shutil.copy(pkgs["requirejs"] / "require.js", st / "require.js")
    shutil.copy(pkgs["anywidget"] / "dist" / "index.js", st / "anywidget.js")
    mj = pkgs["mathjax"] / "es5"
    (st / "mathjax").mkdir(exist_ok=True)
    shutil.copy(mj / "tex-chtml-full.js", st / "mathjax" / "tex-chtml-full.js")
    shutil.copytree(mj / "output", st / "mathjax" / "output", dirs_exist_ok=True)
    for f in SITE_STATIC.iterdir(): shutil.copy(f, st / f.name)

# ---------------------------------------------------------------------------------------------------------------------
# The opening cell

def split_opening(src: str) -> tuple[str, str, str]:
    """`# title`, the `> summary` block (all its lines, joined) and everything else of a notebook's first cell.

    nbdev's frontmatter step reads the title and the first `>` line and drops the whole cell; here nothing is lost."""
    lines, title, summary, rest, i = src.strip().splitlines(), "", [], [], 0
    while i < len(lines):
        l = lines[i]
        if not title and re.match(r"^#\s+\S", l): title = l.lstrip("#").strip()
        elif title and not summary and l.startswith(">") and not rest:
            while i < len(lines) and lines[i].startswith(">"):
                summary.append(lines[i][1:].strip()); i += 1
            continue
        elif rest or l.strip(): rest.append(l)
        i += 1
    return title, " ".join(s for s in summary if s), "\n".join(rest).strip()

def notebook_links(md: str, stems: set[str]) -> str:
    "Links to another notebook (`NN_slug.ipynb`, optionally `#anchor`) point at its page."
    return re.sub(r"\]\((?:\./)?([\w.-]+)\.ipynb(#[^)\s]*)?\)",
                  lambda m: f"]({m.group(1)}.html{m.group(2) or ''})" if m.group(1) in stems else m.group(0), md)

# ---------------------------------------------------------------------------------------------------------------------
# nbdev processing, show_doc, quarto cell options

def nbdev_procs():
    "nbdev's docs processors, less the ones quarto-specific or replaced here (see the module docstring)."
    import nbdev.processors as P
    return [P.populate_language, P.add_show_docs, P.strip_ansi, P.hide_line, P.filter_stream_, P.rm_header_dash,
            P.ai_magics, P.clean_magics, P.hide_, P.strip_hidden_metadata]

_RE_OPT = re.compile(r"^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")
_RE_DIRECTIVE_LINE = re.compile(r"^\s*#\|")
_RE_SHOW_DOC = re.compile(r"^show_doc\((.+)\)\s*$", re.DOTALL)

def quarto_options(src: str) -> tuple[dict, str]:
    "The `#| key: value` options left in a code cell after nbdev took its own, and the code without any `#|` line."
    opts, code = {}, []
    for l in src.splitlines():
        m = _RE_OPT.match(l)
        if m: opts[m.group(1)] = m.group(2).strip("'\"").lower()
        if not _RE_DIRECTIVE_LINE.match(l): code.append(l)
    return opts, "\n".join(code).strip("\n")

def render_show_doc(expr: str, ns: dict) -> tuple[str, str]:
    "nbdev's show_doc markdown for `expr` looked up in `ns`, and the name it documents."
    from nbdev.showdoc import show_doc
    obj = eval(expr, ns)
    expr = expr.strip()
    # shown under the name it is exported and called by: `GPT.forward`, and `register_mlp` for an object a factory
    # made (`register_mlp = _registrar(...)`, whose __name__ is `register`)
    name = expr if re.fullmatch(r"[\w.]+", expr) else None
    return show_doc(obj, name=name)._repr_markdown_(), expr

def run_imports(nb, ns: dict):
    "Run the import statements of `nb`'s code cells (and nothing else) in `ns`, as nbdev's exec_show_docs would."
    import ast
    for c in nb.cells:
        if c.cell_type != "code" or c.source.lstrip()[:1] in ("%", "!"): continue
        try: tree = ast.parse(c.source)
        except SyntaxError: continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                try: exec(compile(ast.Module([node], []), "<imports>", "exec"), ns)
                except Exception: pass

def exported_api(module) -> list[str]:
    "The functions and classes `module` exports (its __all__, defined in it), each of which gets an API entry."
    import inspect
    if module is None: return []
    return [n for n in getattr(module, "__all__", []) if (inspect.isfunction(getattr(module, n, None)) or inspect.isclass(getattr(module, n, None)))
            and getattr(getattr(module, n), "__module__", None) == module.__name__]

def module_of(nb) -> str | None:
    for c in nb.cells:
        if c.cell_type == "code":
            m = re.search(r"^\s*#\|\s*default_exp\s+(\S+)", c.source, flags=re.MULTILINE)
            if m: return m.group(1)
    return None

def claim_cell_ids(nb) -> list[str]:
    from llmlab.lab import CLAIM_MIME
    return [c.get("id") for c in nb.cells if c.cell_type == "code"
            and any(CLAIM_MIME in (o.get("data") or {}) for o in c.get("outputs", []))]

def process(path: pathlib.Path, stems: set[str], problems: list) -> dict:
    "One notebook, ready for nbconvert: its cells, title, summary, API names and the anchors claims link to."
    from execnb.nbio import read_nb, mk_cell, nb2str
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import _fm2dict
    import nbformat
    nb = read_nb(path)
    nb.path_ = str(path)
    fm = {}
    for c in nb.cells[:3]:          # YAML front matter in a raw cell, if a notebook has one
        if c.cell_type == "raw" and c.source.lstrip().startswith("---"): fm, c.source = _fm2dict(c.source), ""
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    title, summary, rest = split_opening(first.source) if first is not None else ("", "", "")
    title, summary = fm.get("title", title) or path.stem, fm.get("description", summary)
    if first is not None: first.source = rest
    order = [c.get("id") for c in nb.cells]
    claim_ids = claim_cell_ids(nb)
    NBProcessor(nb=nb, procs=nbdev_procs()).process()
    raw = read_nb(path)
    modname = module_of(raw)
    module, ns = None, {}
    if modname:
        try: module = importlib.import_module(f"llmlab.{modname}"); ns = dict(vars(module))
        except Exception as e: problems.append(f"{path.name}: import llmlab.{modname}: {e!r}")
    exec("from nbdev.showdoc import show_doc", ns)
    api = []

    def document(expr: str, c, auto: bool):
        "Make `c` show nbdev's show_doc of `expr` (looked up in the module, then in the notebook's imports)."
        try:
            try: md, name = render_show_doc(expr, ns)
            except NameError:       # a name the notebook imports (e.g. from its kernels module)
                run_imports(raw, ns); md, name = render_show_doc(expr, ns)
        except Exception as e:
            problems.append(f"{path.name}: show_doc({expr}) could not be rendered: {e!r}"); return
        if auto or not c.get("id"): c["id"] = "api-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)
        c.outputs = [{"output_type": "display_data", "metadata": {}, "data": {"text/markdown": md}}]
        c.metadata.setdefault("transient", {})["remove_source"] = True
        doc = ((getattr(eval(expr, ns), "__doc__", None) or "").strip().splitlines() or [""])[0]
        api.append({"name": name, "id": c["id"], "doc": doc})

    cells = []
    for c in nb.cells:
        directives = getattr(c, "directives_", {}) or {}
        if c.cell_type == "raw" and not c.source.strip(): continue
        if c.cell_type == "markdown":
            if not c.source.strip() and c is not first: continue
            if CLAIMS_MARKER in c.source: c.source = c.source.replace(CLAIMS_MARKER, claims_summary())
            if path.stem == "index": c.source = fill_map(c.source)
            c.source = notebook_links(c.source, stems)
        if c.cell_type == "code":
            opts, code = quarto_options(c.source)
            if opts.get("include") == "false": continue
            if opts.get("output") == "false": c.outputs = []
            if opts.get("echo") == "false": c.metadata.setdefault("transient", {})["remove_source"] = True
            c.source = code
            m = _RE_SHOW_DOC.match(code.strip())
            if m: document(m.group(1), c, auto=bool(getattr(c, "has_sd", False)))
            if directives.keys() & {"export", "exporti", "exports"}: c.metadata["llmlab"] = {"fold": "Exported source"}
            tags = [f"llm-{k}" for k in ("slow", "gpu") if k in directives]
            if tags: c.metadata["tags"] = tags
            if not c.source.strip() and not c.get("outputs"): continue
            if not c.source.strip(): c.metadata.setdefault("transient", {})["remove_source"] = True
        if hasattr(c, "has_sd"): del c["has_sd"]
        cells.append(c)
    # Every function and class the module exports gets an entry, also those nbdev leaves out (made by assignment,
    # `register_x = _registrar(...)`, or whose show_doc cell is hidden): after the exported cell that defines it.
    shown = {a["name"] for a in api}
    for name in exported_api(module):
        if name in shown: continue
        c = mk_cell(f"show_doc({name})")
        document(name, c, auto=True)
        pat = re.compile(rf"^(?:(?:async\s+)?def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*(?::[^=\n]*)?=", re.MULTILINE)
        at = next((n + 1 for n, x in enumerate(cells) if "llmlab" in x.metadata and pat.search(x.source)), len(cells))
        cells.insert(at, c)
    # API entry first, then its (exported) source: nbdev's mv_exports order, for every exported cell
    for i in range(len(cells) - 1, 0, -1):
        if cells[i - 1].cell_type == "code" and "llmlab" in cells[i - 1].metadata:
            j = i
            while j < len(cells) and cells[j].get("id", "").startswith("api-"): j += 1
            if j > i: cells[i - 1:j] = cells[i:j] + [cells[i - 1]]
    # a claim recorded in a cell the page does not show still gets its anchor, where the cell was
    present = {c.get("id") for c in cells}
    for cid in claim_ids:
        if cid in present: continue
        k = order.index(cid)
        before = next((order[j] for j in range(k - 1, -1, -1) if order[j] in present), None)
        at = next((n + 1 for n, c in enumerate(cells) if c.get("id") == before), 0)
        cells.insert(at, mk_cell("", "markdown", id=cid)); present.add(cid)
    nb.cells = cells
    node = nbformat.reads(nb2str(nb), as_version=4)
    node.metadata.pop("execution", None)
    for c in node.cells: c.metadata.pop("execution", None)
    return {"nb": node, "title": title, "summary": notebook_links(summary, stems), "api": api,
            "first_id": first.get("id") if first is not None else None}

# ---------------------------------------------------------------------------------------------------------------------
# The claims page

def claims_page(nb_paths: list[pathlib.Path]) -> tuple[dict, list[dict]]:
    "The 'What we measured' page: every claim recorded in the notebooks' outputs, one table."
    import nbformat
    from llmlab.lab import collect_claims, claims_markdown, VERDICTS
    claims = collect_claims(nb_paths)
    counts = {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS}
    n_nb = len({c["path"] for c in claims})
    intro = ("Every concept notebook measures its paper's headline claim on the world model, and records it with "
             "`llmlab.lab.claim` in the cell that computed it: the paper's number and setting, ours (sizes, seed, "
             "steps, model, device, time), the computed value and a verdict. This page is gathered from those "
             "outputs by `make docs` (`llmlab.lab.collect_claims`); nothing here is typed by hand. Each row links to "
             "the cell that measured it.")
    tally = (f"**{len(claims)} claims** from {n_nb} notebook{'s' if n_nb != 1 else ''}: "
             + ", ".join(f"{n} {v}" for v, n in counts.items()) + "." if claims else "No notebook has recorded a claim yet.")
    cells = [nbformat.v4.new_markdown_cell(intro, id="claims-intro"), nbformat.v4.new_markdown_cell(tally, id="claims-tally")]
    if claims: cells.append(nbformat.v4.new_markdown_cell(claims_markdown(claims), id="claims-table"))
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    return {"nb": nb, "title": "What we measured", "summary": "Each notebook's headline results against the papers' claims, "
            "read from the executed notebooks.", "api": [], "first_id": "claims-intro"}, claims

# ---------------------------------------------------------------------------------------------------------------------
# Rendering and the search index

_RE_HEADING = re.compile(r'<h([1-4])[^>]*\bid="([^"]+)"[^>]*>(.*?)</h\1>', re.DOTALL)

def strip_tags(s: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", s)).replace("¶", "").strip()

class _PageAsIs:
    """Stands in for BeautifulSoup in nbconvert's HTMLExporter.from_notebook_node, whose parse of each whole page (widget
    state and figures included: a fifth of the build) only adds alt text to images and tabindex to cells;
    `finish_html` does the same with two substitutions."""
    def __init__(self, markup, features=None): self.markup = markup
    def select(self, _selector): return []
    def __str__(self): return self.markup

def finish_html(body: str) -> str:
    body = re.sub(r"<img (?![^>]*\balt=)", '<img alt="No description has been provided for this image" ', body)
    return re.sub(r'<div class="(jp-Cell-inputWrapper|jp-OutputArea-output[^"]*)"', r'<div class="\1" tabindex="0"', body)

def render(pages: list[dict], out: pathlib.Path) -> list[dict]:
    from nbconvert import HTMLExporter
    import nbconvert.exporters.html
    nbconvert.exporters.html.BeautifulSoup = _PageAsIs
    from nbconvert.filters.markdown import markdown2html
    exporter = HTMLExporter(template_name="llmlab", extra_template_basedirs=[str(TEMPLATES)])
    exporter.widget_renderer_url = "_static/html-manager/embed-amd.js"
    exporter.require_js_url = "_static/require.js"
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True     # a page, not a kernel session: no In [ ]
    nav = [{"href": p["href"], "title": p["nav"]} for p in pages]
    search = []
    for p in pages:
        summary_html = re.sub(r"^<p>(.*)</p>\s*$", r"\1", markdown2html(p["summary"]).strip(), flags=re.DOTALL) if p["summary"] else ""
        res = {"llmlab_pages": nav, "llmlab_current": p["href"], "llmlab_title": p["title"],
               "llmlab_summary_html": summary_html, "metadata": {"name": f"{p['nav']} · llmlab"}}
        body, _ = exporter.from_notebook_node(p["nb"], resources=res)
        body = finish_html(body)
        (out / p["href"]).write_text(body)
        search.append({"t": p["nav"] if p["href"] != "index.html" else "llmlab: home", "h": p["href"], "k": "page", "p": p["summary"][:120]})
        api_names = {a["name"] for a in p["api"]}
        for a in p["api"]:
            search.append({"t": a["name"], "h": f"{p['href']}#cell-{a['id']}", "k": "api", "p": p["nav"], "d": a["doc"][:120]})
        for level, hid, inner in _RE_HEADING.findall(body):
            text = strip_tags(inner)
            if text and text not in api_names and level != "1":
                search.append({"t": text, "h": f"{p['href']}#{hid}", "k": "section", "p": p["nav"]})
        print(f"  {p['href']}")
    return search

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs"))
    args = ap.parse_args()
    out = pathlib.Path(args.out).resolve()
    if shutil.which("quarto"):
        r = subprocess.run([str(pathlib.Path(sys.executable).parent / "nbdev_docs")], cwd=ROOT)
        sys.exit(r.returncode)
    print("make docs: quarto is not on PATH; rendering the notebooks with nbdev's processors and nbconvert (offline)")
    t0 = time.time()
    pkgs = vendor()
    os.chdir(ROOT)                  # nbdev reads settings.ini from the working directory
    os.environ.setdefault("IN_TEST", "1")
    paths = sorted((ROOT / "nbs").glob("*.ipynb"), key=lambda p: (p.stem != "index", p.stem))
    stems = {p.stem for p in paths} | {CLAIMS_PAGE[:-5]}
    pages, problems = [], []
    for p in paths:
        try: page = process(p, stems, problems)
        except Exception as e:
            fail("process", f"{p.name} could not be processed: {e!r}")
        page["href"] = "index.html" if p.stem == "index" else f"{p.stem}.html"
        page["nav"] = "Home" if p.stem == "index" else f"{p.stem.split('_')[0]} · {page['title']}"
        page["source"] = p.name
        pages.append(page)
    if problems:
        fail("api", "the API reference could not be rendered (is llmlab/ exported? run `make export`):\n  " + "\n  ".join(problems))
    t1 = time.time()
    claims, records = claims_page([p for p in paths if p.stem != "index"])
    claims.update(href=CLAIMS_PAGE, nav="What we measured", source=None)
    pages.insert(1, claims)
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    copy_static(pkgs, out)
    search = render(pages, out)
    t2 = time.time()
    (out / "pages.json").write_text(json.dumps([{"href": p["href"], "title": p["nav"], "source": p["source"],
                                                  "first_cell": p["first_id"]} for p in pages], indent=1))
    (out / "search.json").write_text(json.dumps(search, indent=0))
    (out / "_static" / "search-index.js").write_text("window.LLMLAB_SEARCH = " + json.dumps(search) + ";\n")
    print(f"make docs: wrote {out} ({len(pages)} pages, {len(records)} claims, {len(search)} search entries) "
          f"in {time.time() - t0:.0f} s (processing {t1 - t0:.0f} s, rendering {t2 - t1:.0f} s); serve it with: python -m http.server -d {out} -b 127.0.0.1 8000")

if __name__ == "__main__":
    main()
