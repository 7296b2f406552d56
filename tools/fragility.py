"""Which of a notebook's asserts hold only on the CPU its outputs were saved on?

A notebook that trains a model asserts the sentences its prose states. Another CPU rounds float32 differently (its
matrix multiplies and vector kernels take other code paths), so a fine-tune lands elsewhere and a sentence that held
by a small margin may not. This runs the notebook's default cells (not `#| slow` / `#| gpu`) in a fresh kernel with
every `assert` turned into a record, so one run lists *every* assert that fails, with the values it compared — not
just the first, as `nbdev_test` does.

    python tools/fragility.py nbs/32_process_reward.ipynb               # this CPU, as it is
    python tools/fragility.py --rounding avx2 nbs/32_process_reward.ipynb  # another float rounding, same machine

`--rounding` picks the code paths (set before torch loads): `native` (as is), `avx2` (ATen's AVX2 kernels, MKL's AVX2
path), `default` (ATen's baseline kernels, MKL's compatible path). None of them is "the right one": an assert that
fails under any of them states a draw, not a finding. The notebook itself is not changed.
"""
import argparse, ast, json, os, pathlib, sys, time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from execute_nbs import directives                    # the one parser of a cell's `#|` directives
ROUNDING = {"native": {}, "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"},
            "default": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}}

class _Soft(ast.NodeTransformer):
    "`assert x, msg` -> record (cell, line, source, the names' values) when x is false, and go on."
    def __init__(self, cell, src): self.cell, self.src = cell, src
    def visit_Assert(self, node):
        text = ast.get_source_segment(self.src, node) or ast.unparse(node)
        lam = lambda body: ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]), body=body)
        operands = [n for c in ast.walk(node.test) if isinstance(c, ast.Compare) for n in [c.left, *c.comparators]
                    if not isinstance(n, ast.Constant)]
        call = ast.parse(f"_llmlab_soft({self.cell}, {node.lineno}, {text!r}, None, [])").body[0].value
        call.args[3] = lam(node.test)
        call.args[4] = ast.List(elts=[ast.Tuple(elts=[ast.Constant(ast.unparse(n)), lam(n)], ctx=ast.Load()) for n in operands], ctx=ast.Load())
        return ast.copy_location(ast.Expr(call), node)

def soften(source: str, cell: int) -> str:
    "The cell's source with its asserts made soft; unchanged if it does not parse as Python (magics)."
    lines = source.splitlines()
    body = "\n".join(l for l in lines if not l.startswith("#|"))
    try: tree = ast.parse(body)
    except SyntaxError: return source
    if not any(isinstance(n, ast.Assert) for n in ast.walk(tree)): return source
    return ast.unparse(ast.fix_missing_locations(_Soft(cell, body).visit(tree)))

HELPER = '''
_llmlab_fails = []
def _llmlab_soft(cell, line, text, test, operands):
    try: ok = bool(test())
    except Exception as e: ok, text = False, f"{text}  -> raised {type(e).__name__}: {e}"
    if ok: return
    vals = []
    for name, f in operands:
        try: v = repr(f())
        except Exception as e: v = f"<{type(e).__name__}>"
        vals.append(f"{name} = {v[:120]}")
    text += "  [" + "; ".join(vals) + "]"
    _llmlab_fails.append((cell, line, text)); print(f"FRAGILE? cell {cell} line {line}: {text}")
'''

def run(path: pathlib.Path, rounding: str, timeout: int = 1800, save: str | None = None):
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    cells = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code" or directives(c) & {"slow", "gpu", "eval: false"}: continue
        cells.append(nbformat.v4.new_code_cell(soften(c.source, i)))
    cells.insert(0, nbformat.v4.new_code_cell(HELPER))
    cells.append(nbformat.v4.new_code_cell("import json; print('LLMLAB_FAILS=' + json.dumps(_llmlab_fails))"))
    run_nb = nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)
    os.environ.update(ROUNDING[rounding]); os.environ.setdefault("MPLBACKEND", "Agg")
    if not os.environ.get("LLMLAB_CACHE"):             # models the notebook caches are trained again, under this rounding
        import tempfile; os.environ["LLMLAB_CACHE"] = tempfile.mkdtemp(prefix="llmlab-fragility-")
    t0 = time.time()
    NotebookClient(run_nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [(c.source.splitlines()[:1], o.get("ename"), o.get("evalue")) for c in run_nb.cells for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    fails = []
    for o in run_nb.cells[-1].get("outputs", []):
        for line in o.get("text", "").splitlines():
            if line.startswith("LLMLAB_FAILS="): fails = json.loads(line.split("=", 1)[1])
    if save: nbformat.write(run_nb, save)
    print(f"{path.name} [{rounding}]: {time.time() - t0:.0f} s, {len(fails)} assert(s) failed, {len(errors)} cell error(s)")
    for cell, line, text in fails: print(f"  cell {cell} line {line}: {text}")
    for first, ename, evalue in errors: print(f"  error {ename}: {evalue}  (cell starting {first})")
    return fails, errors

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+")
    ap.add_argument("--rounding", choices=sorted(ROUNDING), default="native")
    ap.add_argument("--save", help="write the executed copy here (one notebook only), to read what it printed")
    a = ap.parse_args()
    if a.save and len(a.notebooks) > 1: ap.error("--save takes one notebook")
    bad = 0
    for p in a.notebooks:
        f, e = run(pathlib.Path(p).resolve(), a.rounding, save=a.save); bad += len(f) + len(e)
    sys.exit(1 if bad else 0)
