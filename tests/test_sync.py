"""The notebooks are the source: `nbdev_export` must change nothing in llmlab/, notebooks must be committed clean
(as `nbdev_clean` leaves them) and without error outputs, and README.md must be what nbs/index.ipynb renders to."""
import json, re, shutil, subprocess, sys, pathlib, filecmp
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "nbs").glob("*.ipynb"))

def _copy_project(tmp: pathlib.Path) -> pathlib.Path:
    dst = tmp / "proj"
    dst.mkdir()
    shutil.copy(ROOT / "settings.ini", dst)
    shutil.copytree(ROOT / "nbs", dst / "nbs", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(ROOT / "llmlab", dst / "llmlab", ignore=shutil.ignore_patterns("__pycache__"))
    return dst

def _py_files(root: pathlib.Path):
    return sorted(p.relative_to(root) for p in root.rglob("*.py") if "__pycache__" not in p.parts)

def test_export_leaves_no_diff(tmp_path):
    proj = _copy_project(tmp_path)
    r = subprocess.run([sys.executable, "-c", "from nbdev.doclinks import nbdev_export; nbdev_export()"],
                       cwd=proj, capture_output=True, text=True)
    assert r.returncode == 0, f"nbdev_export failed:\n{r.stderr}"
    before, after = _py_files(ROOT / "llmlab"), _py_files(proj / "llmlab")
    assert before == after, f"nbdev_export would add/remove modules: {set(after) ^ set(before)}"
    changed = [str(p) for p in before if (ROOT / "llmlab" / p).read_text() != (proj / "llmlab" / p).read_text()]
    assert not changed, f"llmlab/ is out of step with nbs/ in {changed}: run `make export` and commit"

def test_notebooks_are_clean(tmp_path):
    proj = _copy_project(tmp_path)
    r = subprocess.run([sys.executable, "-c", "from nbdev.clean import nbdev_clean; nbdev_clean()"],
                       cwd=proj, capture_output=True, text=True)
    assert r.returncode == 0, f"nbdev_clean failed:\n{r.stderr}"
    dirty = [p.name for p in NOTEBOOKS if p.read_bytes() != (proj / "nbs" / p.name).read_bytes()]
    assert not dirty, f"notebooks not clean: {dirty}: run `.venv/bin/nbdev_clean` and commit"

@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_error_outputs(nb):
    cells = json.loads(nb.read_text())["cells"]
    errors = [o.get("ename") for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{nb.name} was saved with error outputs {errors}: re-run it with `make outputs NB={nb}`"

def test_readme_is_generated_from_index():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "build_readme.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def test_every_concept_follows_the_one_name_rule():
    "nbs/NN_slug.ipynb exports llmlab/slug.py and is tested by tests/test_slug.py."
    for nb in NOTEBOOKS:
        if nb.stem == "index": continue
        slug = nb.stem.split("_", 1)[1]
        module = slug
        if slug.endswith("_kernels"):          # NNa_slug_kernels.ipynb: the concept's Triton kernels
            slug = slug[: -len("_kernels")]; module = f"kernels.{slug}"
        src = nb.read_text()
        assert f"default_exp {module}\"" in src, f"{nb.name} must export llmlab/{module.replace('.', '/')}.py (#| default_exp {module})"
        assert (ROOT / "tests" / f"test_{slug}.py").exists(), f"{nb.name} has no tests/test_{slug}.py"

def test_each_notebook_exports_one_module():
    "nbdev 2 appends to modules named by `#| export other.module`, so exporting twice would duplicate them."
    for nb in NOTEBOOKS:
        other = [l for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"
                 for l in "".join(c["source"]).splitlines() if re.match(r"^#\|\s*export(s|i)?\s+\S", l)]
        assert not other, f"{nb.name} exports to a second module ({other[0]!r}): give that module its own notebook"

@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_markdown_has_no_control_characters(nb):
    "A backslash escape eaten by a normal Python string ('\\theta' -> TAB + 'heta') breaks the LaTeX: write it raw."
    bad = []
    for i, c in enumerate(json.loads(nb.read_text())["cells"]):
        if c["cell_type"] != "markdown": continue
        src = "".join(c["source"])
        hits = sorted({repr(ch) for ch in src if ord(ch) < 32 and ch != "\n"})
        if hits: bad.append(f"cell {i}: {', '.join(hits)} near {src[max(0, min(src.find(ch) for ch in src if ord(ch) < 32 and ch != chr(10)) - 20):][:40]!r}")
    assert not bad, f"{nb.name} has control characters in markdown (a backslash was eaten; use raw strings): {bad}"

CONCEPTS = [nb for nb in NOTEBOOKS if re.match(r"\d\d_", nb.name)]

@pytest.mark.parametrize("nb", CONCEPTS, ids=lambda p: p.name)
def test_every_ready_notebook_records_its_claims(nb):
    "Each concept notebook records its headline results with lab.claim, saved in its outputs for the claims page."
    from llmlab.lab import collect_claims, VERDICTS
    claims = collect_claims([nb])
    assert claims, f"{nb.name} records no claim: call llmlab.lab.claim(...) in the cells that measure its headline results"
    for c in claims:
        assert c["verdict"] in VERDICTS and c["measured_text"].strip() and c["cell_id"], f"{nb.name}: malformed claim {c}"
