"""Render the documentation site into docs/.

With quarto on PATH this is `nbdev_docs`. Quarto cannot be installed on every machine (it downloads a binary while
building), so otherwise the same nbdev-processed notebooks (`nbdev.serve.proc_nbs`: hidden cells dropped, show_doc
rendered, directives stripped) are rendered by nbconvert with a small template (tools/docs_template/llmlab: the lab
template plus a sidebar). Widgets work on the static site without internet: the widget manager, require.js, anywidget
and MathJax are vendored from the npm registry into .vendor/ (once) and copied into docs/_static/.

Usage: python tools/build_docs.py [--out docs]
"""
import argparse, json, os, pathlib, re, shutil, subprocess, sys, tarfile, tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
VENDOR = ROOT / ".vendor"
TEMPLATES = ROOT / "tools" / "docs_template"

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

def process_notebooks() -> pathlib.Path:
    "nbdev's docs processing of nbs/ into _proc/ (without its quarto install step)."
    from nbdev.serve import proc_nbs
    import nbdev.processors as procs
    # The notebooks are committed with their outputs (show_doc tables included), so nbdev's exec_show_docs step,
    # which re-runs every cell that contains an import, is not needed; it would also re-run training cells that
    # import something, and fail on cells that need names from cells it skips. Switch it off, in this process
    # (n_workers=0: spawned workers would not see the patch).
    procs.exec_show_docs.begin = lambda self: None
    procs.exec_show_docs.end = lambda self: None
    os.chdir(ROOT)
    return pathlib.Path(proc_nbs(force=True, n_workers=0))

def front_matter(nb) -> dict:
    "The title/description nbdev put in the first raw cell's YAML front matter."
    for c in nb.cells[:3]:
        if c.cell_type == "raw" and c.source.lstrip().startswith("---"):
            fm = {}
            for line in c.source.splitlines():
                m = re.match(r"^(title|description):\s*(.*)$", line.strip())
                if m: fm[m.group(1)] = m.group(2).strip().strip("'\"")
            return fm
    return {}

def render(proc: pathlib.Path, out: pathlib.Path):
    import nbformat
    from nbconvert import HTMLExporter
    nbs = sorted(proc.glob("*.ipynb"), key=lambda p: (p.stem != "index", p.stem))
    loaded, pages = {}, []
    for p in nbs:
        nb = nbformat.read(p, as_version=4)
        fm = front_matter(nb)
        href = "index.html" if p.stem == "index" else f"{p.stem}.html"
        loaded[p] = (nb, fm, href)
        pages.append({"href": href, "title": ("Home" if p.stem == "index" else f"{p.stem.split('_')[0]} · {fm.get('title', p.stem)}")})
    exporter = HTMLExporter(template_name="llmlab", extra_template_basedirs=[str(TEMPLATES)])
    exporter.widget_renderer_url = "_static/html-manager/embed-amd.js"
    exporter.require_js_url = "_static/require.js"
    for p, (nb, fm, href) in loaded.items():
        nb.metadata.pop("execution", None)
        for c in nb.cells:
            c.pop("has_sd", None); c.metadata.pop("execution", None)
        nb.cells = [c for c in nb.cells if not (c.cell_type == "raw" and c.source.lstrip().startswith("---"))]
        res = {"llmlab_pages": pages, "llmlab_current": href, "llmlab_title": fm.get("title"),
               "llmlab_description": fm.get("description"), "metadata": {"name": fm.get("title", p.stem)}}
        html, _ = exporter.from_notebook_node(nb, resources=res)
        (out / href).write_text(html)
        print(f"  {href}")
    (out / "pages.json").write_text(json.dumps(pages, indent=1))

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs"))
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    if shutil.which("quarto"):
        r = subprocess.run([str(pathlib.Path(sys.executable).parent / "nbdev_docs")], cwd=ROOT)
        sys.exit(r.returncode)
    print("make docs: quarto is not on PATH; rendering nbdev's processed notebooks with nbconvert (offline)")
    pkgs = vendor()
    try:
        proc = process_notebooks()
    except Exception as e:
        fail("process", f"nbdev could not process the notebooks: {e!r}")
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    copy_static(pkgs, out)
    render(proc, out)
    print(f"make docs: wrote {out} ({len(list(out.glob('*.html')))} pages); serve it with: "
          f"python -m http.server -d {out} -b 127.0.0.1 8000")

if __name__ == "__main__":
    main()
