"""The GPU run in one command: `make gpu` (or `python tools/gpu_check.py`).

Runs on a bare Linux GPU machine with only torch, triton, numpy and this repository (no network, no nbdev, no
anywidget, pytest optional):

1. the GPU tests in tests/gpu/ -- with pytest when it is installed, else with a minimal runner over the same test
   functions (parametrize, skipif and raises are understood);
2. the notebooks' `#| gpu` cells, each notebook's code cells run in order in one namespace (cells that need
   notebook-only packages are skipped and listed);
3. every kernels/bench_*.py, which writes its tables to kernels/results/<device>/;

then prints one summary (tests passed/failed, each bench's headline ratio against its baseline, and the goal the
bench's issue set) and writes it to kernels/results/<device>/gpu_check.md.

Without a GPU it says so, runs the CPU-side checks (the package imports without notebook-only packages, the GPU
tests are collected, every bench runs its CPU reference path at small sizes) and exits 0.

    python tools/gpu_check.py                 # everything, ~10 minutes on one H100/H200-class GPU
    python tools/gpu_check.py --skip-benches  # tests and notebook cells only
    python tools/gpu_check.py --budget 300    # stop starting new steps after 300 s
"""
from __future__ import annotations
import argparse, ast, importlib, importlib.util, inspect, itertools, json, os, pathlib, re, subprocess, sys, time
import traceback, types

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The goal each bench's issue set, shown beside the measured headline (the table says whether it was reached).
GOALS = {
    "bench_flash_attention": "fwd >= 400 TFLOP/s, bwd >= 320 at D=128, N=16k non-causal (H100), >= 0.9x SDPA",
    "bench_bitnet": ">= 4x bf16 matmul at M=1 on the large shapes, >= 60% of copy bandwidth",
    "bench_moe": ">= 5x the per-expert loop at E=64, >= 0.7x the dense MLP's TFLOP/s",
    "bench_ring_attention": "zigzag causal layout >= 0.85 of the ideal equal split",
    "bench_preference": "fused log-probs: peak memory <= 1/8 of materialised logits at vocab 128k, time <= 1.1x",
}
NOTEBOOK_ONLY = ("nbdev", "fastcore", "anywidget", "ipywidgets", "traitlets", "IPython")


def say(msg: str = "") -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# A minimal pytest stand-in, used only when pytest is not installed.
class _Skip(Exception):
    pass


class _Mark:
    "pytest.mark.<name>(...) records itself on the function, in decoration order."
    def __init__(self, name): self.name = name
    def __call__(self, *args, **kwargs):
        if self.name != "parametrize" and len(args) == 1 and callable(args[0]) and not kwargs:
            return self._attach(args[0], (), {})
        def deco(f): return self._attach(f, args, kwargs)
        return deco
    def _attach(self, f, args, kwargs):
        f.__dict__.setdefault("_marks", []).append((self.name, args, kwargs))
        return f


class _MarkFactory:
    def __getattr__(self, name): return _Mark(name)


class _Raises:
    def __init__(self, exc, match=None): self.exc, self.match = exc, match
    def __enter__(self): return self
    def __exit__(self, et, ev, tb):
        if et is None: raise AssertionError(f"DID NOT RAISE {self.exc}")
        if not issubclass(et, self.exc): return False
        if self.match and not re.search(self.match, str(ev)): raise AssertionError(f"{ev!r} does not match {self.match!r}")
        return True


def _fake_pytest() -> types.ModuleType:
    m = types.ModuleType("pytest")
    m.mark = _MarkFactory()
    def skip(reason=""): raise _Skip(reason)
    m.skip = skip
    m.raises = lambda exc, match=None: _Raises(exc, match)
    m.approx = lambda v, rel=1e-6, abs=1e-12: v
    m.fixture = lambda *a, **k: (a[0] if a and callable(a[0]) else (lambda f: f))
    return m


def _param_sets(fn):
    "Expand stacked parametrize marks into keyword dicts (cartesian product); also the skip reasons."
    grids, skips = [], []
    for name, args, kwargs in getattr(fn, "_marks", []):
        if name == "parametrize":
            names = [n.strip() for n in (args[0].split(",") if isinstance(args[0], str) else args[0])]
            rows = [v if len(names) > 1 else (v,) for v in args[1]]
            grids.append([dict(zip(names, r)) for r in rows])
        elif name == "skipif" and args and args[0]:
            skips.append(kwargs.get("reason", "skipif"))
        elif name == "skip":
            skips.append(kwargs.get("reason", "skip"))
    combos = [dict(itertools.chain.from_iterable(d.items() for d in c)) for c in itertools.product(*grids)] or [{}]
    return combos, skips


def run_tests_minimal(paths: list[pathlib.Path], collect_only: bool) -> dict:
    "Run the test functions of `paths` without pytest: returns counts and the failures."
    sys.modules.setdefault("pytest", _fake_pytest())
    res = {"passed": 0, "failed": 0, "skipped": 0, "collected": 0, "failures": []}
    for p in paths:
        name = f"_gpu_check_{p.stem}"
        spec = importlib.util.spec_from_file_location(name, p)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception as e:
            res["failed"] += 1; res["failures"].append(f"{p.name}: import failed: {e!r}"); continue
        mod_skips = []
        for mark in (getattr(mod, "pytestmark", None) or []) if isinstance(getattr(mod, "pytestmark", None), list) \
                else [getattr(mod, "pytestmark", None)]:
            if mark is None: continue
            f = mark(lambda: None) if callable(mark) else None
            if f is not None: mod_skips += _param_sets(f)[1]
        for tname, fn in sorted(vars(mod).items()):
            if not (tname.startswith("test_") and inspect.isfunction(fn)): continue
            combos, skips = _param_sets(fn)
            for kw in combos:
                res["collected"] += 1
                if collect_only: continue
                if mod_skips or skips: res["skipped"] += 1; continue
                try:
                    fn(**kw); res["passed"] += 1
                except _Skip:
                    res["skipped"] += 1
                except Exception:
                    res["failed"] += 1
                    res["failures"].append(f"{p.name}::{tname}[{kw}]\n{traceback.format_exc(limit=3)}")
    return res


def run_tests(gpu: bool) -> dict:
    paths = sorted((ROOT / "tests" / "gpu").glob("test_*.py"))
    try:
        import pytest  # noqa: F401
        have_pytest = True
    except ImportError:
        have_pytest = False
    if have_pytest:
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/gpu"] + ([] if gpu else ["--co"])
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        tail = (r.stdout + r.stderr).strip().splitlines()
        say("\n".join(tail[-15:]))
        last = tail[-1] if tail else ""
        counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors|tests? collected)", last)}
        collected = sum(v for k, v in counts.items() if "collected" in k)
        ok = r.returncode == 0 or (not gpu and collected > 0)
        return {"runner": "pytest", "passed": counts.get("passed", 0), "failed": counts.get("failed", 0) + counts.get("errors", 0)
                + counts.get("error", 0), "skipped": counts.get("skipped", 0), "collected": collected or None, "ok": ok,
                "failures": [] if ok else tail[-15:]}
    res = run_tests_minimal(paths, collect_only=not gpu)
    for f in res["failures"]: say(f)
    res.update(runner="built-in (pytest not installed)", ok=res["failed"] == 0)
    return res


# ---------------------------------------------------------------------------------------------------------------
# Notebooks' `#| gpu` cells.
def _flags(src: str) -> set[str]:
    return {l[2:].strip().split()[0] for l in src.splitlines() if l.startswith("#|") and l[2:].strip()}


def _install_shims() -> None:
    "Stand-ins for fastcore.test and nbdev.showdoc when they are missing, so lesson cells with asserts still run."
    try:
        import fastcore.test  # noqa: F401
    except ImportError:
        import numpy as np
        def _as_np(x):
            return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
        def test_eq(a, b):
            try: ok = bool(np.array_equal(_as_np(a), _as_np(b)))
            except Exception: ok = a == b
            assert ok, f"{a!r} != {b!r}"
        def test_ne(a, b):
            try: same = bool(np.array_equal(_as_np(a), _as_np(b)))
            except Exception: same = a == b
            assert not same, f"{a!r} == {b!r}"
        def test_close(a, b, eps=1e-5):
            assert np.allclose(_as_np(a).astype(float), _as_np(b).astype(float), atol=eps, rtol=0), f"{a!r} not close to {b!r}"
        def test_fail(f, msg="", contains="", args=None, kwargs=None):
            try: f(*(args or ()), **(kwargs or {}))
            except Exception as e:
                assert not contains or contains in str(e), f"{e!r} does not contain {contains!r}"
                return
            raise AssertionError(f"expected an exception {msg}")
        fc, ft = types.ModuleType("fastcore"), types.ModuleType("fastcore.test")
        ft.test_eq, ft.test_ne, ft.test_close, ft.test_fail = test_eq, test_ne, test_close, test_fail
        fc.test = ft
        sys.modules.update({"fastcore": fc, "fastcore.test": ft})
    try:
        import nbdev.showdoc  # noqa: F401
    except ImportError:
        nb, sd = types.ModuleType("nbdev"), types.ModuleType("nbdev.showdoc")
        sd.show_doc = lambda *a, **k: None
        nb.showdoc = sd
        sys.modules.update({"nbdev": nb, "nbdev.showdoc": sd})


def _importable(name: str) -> bool:
    if name in sys.modules: return True
    try: return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError): return False


def _needs_notebook_only(src: str) -> str | None:
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return "not plain Python (a magic?)"
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        for n in names:
            if n.split(".")[0] in NOTEBOOK_ONLY and not _importable(n):
                return f"imports {n}"
    return None


def run_notebook_gpu_cells(nb: pathlib.Path, timeout: float) -> dict:
    "Run `nb`'s code cells (not slow ones) in order in one namespace, in a subprocess; report the gpu cells."
    code = f"""
import json, sys, os, time, traceback
sys.path.insert(0, {str(ROOT)!r}); os.chdir({str(ROOT / 'nbs')!r})
os.environ.setdefault("MPLBACKEND", "Agg"); os.environ.setdefault("LLMLAB_PROGRESS", "0")
sys.path.insert(0, {str(ROOT / 'tools')!r})
from gpu_check import _flags, _needs_notebook_only, _install_shims
_install_shims()
cells = [c for c in json.load(open({str(nb)!r}))["cells"] if c["cell_type"] == "code"]
ns = {{"__name__": "__main__"}}
out = {{"gpu_passed": 0, "gpu_failed": 0, "skipped": [], "failures": []}}
for i, c in enumerate(cells):
    src = "".join(c["source"]); fl = _flags(src)
    if "slow" in fl: continue
    why = _needs_notebook_only(src)
    if why:
        out["skipped"].append(f"cell {{i}}{{' (a gpu cell)' if 'gpu' in fl else ''}}: {{why}}")
        continue
    try:
        exec(compile(src, f"{nb.name}[{{i}}]", "exec"), ns)
        if "gpu" in fl: out["gpu_passed"] += 1
    except Exception as e:
        if "gpu" in fl:
            out["gpu_failed"] += 1; out["failures"].append(f"cell {{i}}: " + traceback.format_exc(limit=2))
        else:
            out["skipped"].append(f"cell {{i}}: raised {{type(e).__name__}}: {{str(e)[:80]}}")
print("@@RESULT@@" + json.dumps(out))
"""
    try:
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"gpu_passed": 0, "gpu_failed": 1, "skipped": [], "failures": [f"timed out after {timeout:.0f} s"]}
    m = re.search(r"@@RESULT@@(.*)", r.stdout)
    if not m:
        return {"gpu_passed": 0, "gpu_failed": 1, "skipped": [], "failures": [r.stderr[-2000:]]}
    return json.loads(m.group(1))


def notebooks_with_gpu_cells() -> list[pathlib.Path]:
    out = []
    for nb in sorted((ROOT / "nbs").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        if any(c["cell_type"] == "code" and "gpu" in _flags("".join(c["source"])) for c in cells): out.append(nb)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Benches and their tables.
def parse_tables(text: str) -> list[dict]:
    "Rows of the markdown tables in a result file written by `llmlab.lab.save_result`."
    rows, head = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            head = None; continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if head is None: head = cells; continue
        if set("".join(cells)) <= set("-: "): continue
        rows.append(dict(zip(head, cells)))
    return rows


def headline(rows: list[dict]) -> str:
    "The kernel's row of a table (a name with 'triton', 'fused' or 'llmlab'), else its best speed-up; with TFLOP/s or GB/s."
    best = None
    ours = [r for r in rows if any(k in r.get("name", "").lower() for k in ("triton", "fused", "llmlab"))]
    for r in ours or rows:
        try: s = float(r.get("speedup", ""))
        except ValueError: continue
        if abs(s - 1.0) < 1e-12 and best is not None: continue
        if best is None or s > float(best["speedup"]) or abs(float(best["speedup"]) - 1) < 1e-12: best = r
    if best is None: return "no speed-up column"
    extra = "".join(f", {best[c]} {c}" for c in ("TFLOP/s", "GB/s") if best.get(c))
    return f"{best['name']}: {float(best['speedup']):.2f}x{extra}"


def run_benches(device: str, budget_end: float, per_bench: float, results_root: pathlib.Path) -> list[dict]:
    "Run every bench, its tables going under `results_root`/<device>/; each bench's status and headline."
    out = []
    results_dir = results_root / device
    env = {**os.environ, "LLMLAB_RESULTS": str(results_root)}
    for b in sorted((ROOT / "kernels").glob("bench_*.py")):
        cmd = [sys.executable, str(b)] + (["--out", str(results_root)] if '"--out"' in b.read_text() else [])
        if time.time() > budget_end:
            out.append({"bench": b.stem, "status": "not run (time budget spent)", "headline": ""}); continue
        t0 = time.time()
        say(f"== {b.name} ==")
        try:
            r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=min(per_bench, max(10.0, budget_end - time.time())))
            status = "ok" if r.returncode == 0 else f"exit {r.returncode}"
            if r.returncode: say((r.stdout + r.stderr)[-1500:])
        except subprocess.TimeoutExpired:
            status = "timed out"
        written = sorted(p for p in results_dir.glob(f"{b.stem}*.md") if p.stat().st_mtime >= t0 - 1) if results_dir.exists() else []
        heads = [f"{p.stem[len(b.stem):].lstrip('_') or 'table'}: {headline(parse_tables(p.read_text()))}" for p in written]
        out.append({"bench": b.stem, "status": f"{status} ({time.time() - t0:.0f} s)", "headline": "; ".join(heads) or "no table written",
                    "goal": GOALS.get(b.stem, "")})
    return out


# ---------------------------------------------------------------------------------------------------------------
def import_check() -> dict:
    "Every llmlab module imports with the notebook-only packages hidden, as on a bare GPU machine."
    mods = sorted(p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
                  for p in (ROOT / "llmlab").rglob("*.py") if p.name != "__init__.py" and p.name != "_modidx.py")
    code = f"""
import sys, importlib
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {list(NOTEBOOK_ONLY[:5])!r}: raise ImportError("hidden by gpu_check: " + name)
sys.meta_path.insert(0, Block()); sys.path.insert(0, {str(ROOT)!r})
bad = []
for m in {mods!r}:
    try: importlib.import_module(m)
    except Exception as e: bad.append(f"{{m}}: {{e!r}}")
print("\\n".join(bad))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    bad = [l for l in r.stdout.splitlines() if l.strip()] + ([r.stderr[-500:]] if r.returncode else [])
    return {"modules": len(mods), "failed": bad}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=540.0, help="seconds after which no new step starts (default 540)")
    p.add_argument("--per-bench", type=float, default=150.0, help="time limit of one bench in seconds")
    p.add_argument("--skip-benches", action="store_true")
    p.add_argument("--skip-notebooks", action="store_true")
    args = p.parse_args(argv)
    t_start = time.time(); end = t_start + args.budget
    import torch
    from llmlab.lab import device_name, HAS_TRITON
    gpu = torch.cuda.is_available()
    device = device_name("cuda" if gpu else "cpu")
    say(f"gpu_check: device {device}; torch {torch.__version__}; triton "
        f"{__import__('triton').__version__ if HAS_TRITON else 'not installed'}; python {sys.version.split()[0]}")
    if not gpu:
        say("gpu_check: NO GPU FOUND (torch.cuda.is_available() is False). Running the CPU-side checks only: imports "
            "without notebook-only packages, collecting the GPU tests, and every bench's CPU reference path. "
            "Run this on a machine with an NVIDIA GPU for the real numbers.")
    summary = []

    imp = import_check()
    summary.append(("imports without nbdev/anywidget", f"{imp['modules'] - len(imp['failed'])}/{imp['modules']} modules",
                    "ok" if not imp["failed"] else "FAILED: " + "; ".join(imp["failed"])[:300]))

    say("== GPU tests (tests/gpu) ==")
    t = run_tests(gpu)
    if gpu:
        summary.append(("GPU tests", f"{t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped ({t['runner']})",
                        "ok" if t["ok"] else "FAILED"))
    else:
        summary.append(("GPU tests", f"{t.get('collected')} collected, not run: no GPU ({t['runner']})",
                        "ok" if t["ok"] else "FAILED to collect"))

    nb_fail = 0
    if not args.skip_notebooks:
        for nb in notebooks_with_gpu_cells():
            if not gpu:
                summary.append((f"{nb.name} gpu cells", "not run: no GPU", "skipped")); continue
            if time.time() > end:
                summary.append((f"{nb.name} gpu cells", "not run: time budget spent", "skipped")); continue
            say(f"== {nb.name}: code cells in order, gpu cells checked ==")
            r = run_notebook_gpu_cells(nb, timeout=max(30.0, end - time.time()))
            nb_fail += r["gpu_failed"]
            for f in r["failures"]: say(f)
            summary.append((f"{nb.name} gpu cells", f"{r['gpu_passed']} passed, {r['gpu_failed']} failed, "
                            f"{len(r['skipped'])} other cells skipped", "ok" if not r["gpu_failed"] else "FAILED"))

    # Without a GPU the benches only smoke-test their CPU paths: their tables go to a temporary folder, so the
    # committed CPU tables (measured on an idle machine) are not overwritten by a dry run.
    import tempfile
    results_root = ROOT / "kernels" / "results" if gpu else pathlib.Path(tempfile.mkdtemp(prefix="llmlab-gpu-check-"))
    benches = [] if args.skip_benches else run_benches(device, end, args.per_bench, results_root)
    for b in benches:
        summary.append((b["bench"], b["headline"], b["status"] + (f"; goal: {b['goal']}" if b.get("goal") else "")))

    lines = [f"# gpu_check on {device}", "",
             f"- torch {torch.__version__}, gpu: {gpu}, total {time.time() - t_start:.0f} s", "",
             "| check | result | status |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in summary]
    table = "\n".join(lines) + "\n"
    say("\n" + table)
    out = results_root / device / "gpu_check.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    say(f"gpu_check: wrote {out}")
    failed = bool(imp["failed"]) or not t["ok"] or nb_fail or any(not b["status"].startswith(("ok", "not run")) for b in benches)
    if failed:
        say("gpu_check: some checks FAILED (see the table)"); return 1
    say("gpu_check: all checks passed" + ("" if gpu else " (CPU-side only: no GPU found)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
