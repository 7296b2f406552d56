"""Execute notebooks top to bottom (as a reader would), save their outputs and widget state, then clean them.

Usage: python tools/execute_nbs.py [nbs/NN_slug.ipynb ...]   (default: every notebook in nbs/)
Cells flagged `#| slow` or `#| gpu` run too only when LLMLAB_RUN_FLAGS names the flag (e.g. LLMLAB_RUN_FLAGS=slow),
so a committed notebook shows the results of the flagged runs when they were made on purpose.
LLMLAB_RUN_CELLS=id1,id2 narrows that to the flagged cells with those cell ids (the other flagged cells keep their
saved outputs): re-run one slow experiment without the notebook's other slow ones.
"""
import os, sys, time, pathlib, subprocess
import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"

def directives(cell) -> set[str]:
    "A code cell's `#|` directives ('slow', 'gpu', 'eval: false', 'export', ...); none for a markdown cell."
    return {l[2:].strip() for l in cell.source.splitlines() if l.startswith("#|")} if cell.cell_type == "code" else set()

def execute(path: pathlib.Path, timeout: int = 1800):
    nb = nbformat.read(path, as_version=4)
    allowed = set(os.environ.get("LLMLAB_RUN_FLAGS", "").split(","))
    only = {i for i in os.environ.get("LLMLAB_RUN_CELLS", "").split(",") if i}
    unknown = only - {c.get("id") for c in nb.cells}
    if unknown: sys.exit(f"execute_nbs: {path.name} has no cell with id {', '.join(sorted(unknown))}")
    skipped = []
    for c in nb.cells:       # cells whose flag is not asked for keep their saved outputs
        fl = directives(c) & {"slow", "gpu"}
        if fl and (not fl <= allowed or (only and c.get("id") not in only)):
            c.metadata["llmlab_skip"] = True; skipped.append(c)
    keep = {id(c): (c.outputs, c.execution_count) for c in skipped}
    code_cells = nb.cells
    nb_run = nbformat.from_dict(nb)
    nb_run.cells = [c for c in nb.cells if not c.metadata.get("llmlab_skip")]
    t0 = time.time()
    NotebookClient(nb_run, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NBS)}},
                   store_widget_state=True, record_timing=False).execute()
    ran = iter(nb_run.cells)
    out_cells = []
    for c in code_cells:
        if c.metadata.get("llmlab_skip"):
            del c.metadata["llmlab_skip"]; out_cells.append(c)
        else:
            out_cells.append(next(ran))
    nb.cells = out_cells
    nb.metadata = nb_run.metadata
    nbformat.write(nb, path)
    subprocess.run([sys.executable, "-c", f"from nbdev.clean import nbdev_clean; nbdev_clean(fname={str(path)!r})"], check=True, cwd=ROOT)
    print(f"{path.name}: executed in {time.time() - t0:.1f} s" + (f" ({len(skipped)} flagged cells kept as saved)" if skipped else ""))

if __name__ == "__main__":
    if any(a in ("-h", "--help") for a in sys.argv[1:]): print(__doc__); sys.exit(0)
    missing = [a for a in sys.argv[1:] if not pathlib.Path(a).is_file()]
    if missing: sys.exit(f"execute_nbs: no such notebook: {', '.join(missing)}")
    paths = [pathlib.Path(p).resolve() for p in sys.argv[1:]] or sorted(NBS.glob("*.ipynb"))
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for p in paths: execute(p)
