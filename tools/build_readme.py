"""Write README.md from nbs/index.ipynb (what `nbdev_readme` does with quarto, which cannot be installed here).

Markdown cells are copied; code cells that are not `#| hide` become python blocks, with their text outputs.
Usage: python tools/build_readme.py [--check]   (--check: exit 1 if README.md is out of date)
"""
import sys, pathlib
import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]

def render() -> str:
    nb = nbformat.read(ROOT / "nbs" / "index.ipynb", as_version=4)
    parts = []
    for c in nb.cells:
        src = c.source.strip()
        if c.cell_type == "markdown":
            parts.append(src)
        elif c.cell_type == "code":
            lines = src.splitlines()
            if any(l.strip() in ("#| hide", "#|hide") for l in lines): continue
            code = "\n".join(l for l in lines if not l.startswith("#|")).strip()
            if code: parts.append(f"```python\n{code}\n```")
            for o in c.get("outputs", []):
                text = o.get("text") or o.get("data", {}).get("text/plain")
                if text: parts.append("```\n" + ("".join(text) if isinstance(text, list) else text).rstrip() + "\n```")
    return "<!-- generated from nbs/index.ipynb by tools/build_readme.py: edit the notebook, not this file -->\n\n" + "\n\n".join(parts) + "\n"

if __name__ == "__main__":
    text, path = render(), ROOT / "README.md"
    if "--check" in sys.argv:
        ok = path.exists() and path.read_text() == text
        print("README.md is up to date" if ok else "README.md is out of date: run `make readme`")
        sys.exit(0 if ok else 1)
    path.write_text(text)
    print(f"wrote {path}")
