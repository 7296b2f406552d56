"""Write README.md from nbs/index.ipynb (what `nbdev_readme` does with quarto, which cannot be installed here).

Markdown cells are copied; code cells that are not `#| hide` become python blocks, with their text outputs. Links are
made to work on a code host: `NN_slug.ipynb` (relative to nbs/) becomes `nbs/NN_slug.ipynb`, and a link to a page of
the docs site (`claims.html`) keeps only its text. Planned rows of the map whose notebook has landed in nbs/ link it and
say `ready` (`fill_map`). The `<!-- claims-summary -->` marker becomes the count of claims
per notebook, read from the notebooks' outputs (`llmlab.lab.collect_claims`); the docs site fills it the same way.
Usage: python tools/build_readme.py [--check]   (--check: exit 1 if README.md is out of date)
"""
import re, sys, pathlib
import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLAIMS_MARKER = "<!-- claims-summary -->"

def notebook_paths() -> list[pathlib.Path]:
    return sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if p.stem != "index")

def claims_summary(paths=None) -> str:
    "Markdown: how many claims each notebook records, per verdict (links are to `NN_slug.ipynb`, relative to nbs/)."
    from llmlab.lab import collect_claims, VERDICTS
    claims = collect_claims(paths if paths is not None else notebook_paths())
    if not claims: return "No notebook has recorded a claim yet."
    stems = sorted({pathlib.Path(c["path"]).stem for c in claims})
    count = lambda cs, v: str(sum(c["verdict"] == v for c in cs) or "")
    rows = ["| notebook | claims | " + " | ".join(VERDICTS) + " |", "|---|---:|" + "---:|" * len(VERDICTS)]
    for s in stems:
        cs = [c for c in claims if pathlib.Path(c["path"]).stem == s]
        rows.append(f"| [{s}]({s}.ipynb) | {len(cs)} | " + " | ".join(count(cs, v) for v in VERDICTS) + " |")
    rows.append(f"| all {len(stems)} | {len(claims)} | " + " | ".join(count(claims, v) or "0" for v in VERDICTS) + " |")
    return "\n".join(rows)

def fill_map(md: str, existing: set[str] | None = None) -> str:
    """The map's rows follow nbs/: a planned row (`` `NN_slug` `` ... `planned`) whose notebook now exists links it
    (and its `NNa_slug_kernels` companion) and says `ready`, so a new lesson is on the map the day it lands."""
    if existing is None: existing = {p.stem for p in notebook_paths()}
    def row(line: str) -> str:
        m = re.search(r"`(\d+_\w+)`", line)
        if not line.startswith("|") or not m or m.group(1) not in existing: return line
        stem = m.group(1)
        link = f"[{stem}]({stem}.ipynb)"
        kernels = sorted(s for s in existing if re.fullmatch(rf"{stem.split('_')[0]}a_\w+_kernels", s))
        if kernels: link += f" (+ [kernels]({kernels[0]}.ipynb))"
        return re.sub(r"\|\s*planned\s*\|\s*$", "| ready |", line.replace(m.group(0), link, 1))
    return "\n".join(row(l) for l in md.split("\n"))

def for_code_host(md: str) -> str:
    "Links that work on a code host: notebooks under nbs/, docs-site pages reduced to their text."
    md = re.sub(r"\]\((?:\./)?([\w.-]+\.ipynb(?:#[^)\s]*)?)\)", r"](nbs/\1)", md)
    return re.sub(r"\[([^\]]+)\]\((?![a-z]+:)[\w.-]+\.html(?:#[^)\s]*)?\)", r"\1", md)

def render() -> str:
    nb = nbformat.read(ROOT / "nbs" / "index.ipynb", as_version=4)
    parts = []
    for c in nb.cells:
        src = c.source.strip()
        if c.cell_type == "markdown":
            if CLAIMS_MARKER in src: src = src.replace(CLAIMS_MARKER, claims_summary())
            parts.append(for_code_host(fill_map(src)))
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
        print("README.md is up to date" if ok else
              "README.md is out of date (nbs/index.ipynb changed, or a notebook recorded a new claim): run `make readme`")
        sys.exit(0 if ok else 1)
    path.write_text(text)
    print(f"wrote {path}")
