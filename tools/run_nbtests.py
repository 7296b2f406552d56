"""`make test` step 2: nbdev_test over every notebook, each in its own process, `--workers` at a time.

Why a scheduler: the notebook that trains the shared presets (03_gpt) takes the longest, and the notebooks that load
a preset (`pretrained(...)`) wait on its training lock. So 03_gpt starts first, the notebooks that need no preset run
beside it, and the ones that load a preset come last -- no worker sits idle on the lock while others could run.
Prints each notebook's wall time as it finishes, then a table sorted by time and the total.

    python tools/run_nbtests.py [--workers 2] [nbs/NN_slug.ipynb ...]
"""
from __future__ import annotations
import argparse, concurrent.futures as cf, os, pathlib, subprocess, sys, time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TRAINS_PRESETS = "03_gpt"


def order(paths: list[pathlib.Path]) -> list[pathlib.Path]:
    "03_gpt first, then notebooks that load no preset, then those that do (each group in name order)."
    first = [p for p in paths if p.stem == TRAINS_PRESETS]
    rest = [p for p in paths if p.stem != TRAINS_PRESETS]
    loads = lambda p: "pretrained(" in p.read_text()
    return first + [p for p in rest if not loads(p)] + [p for p in rest if loads(p)]


def run_one(nb: pathlib.Path, nbdev_test: str, t_start: float) -> tuple[str, float, int, str]:
    t0 = time.time()
    r = subprocess.run([nbdev_test, "--path", str(nb)], cwd=ROOT, capture_output=True, text=True)
    dt = time.time() - t0
    status = "ok" if r.returncode == 0 else "FAILED"
    print(f"[{time.time() - t_start:6.0f} s] {nb.name}: {status} in {dt:.0f} s", flush=True)
    return nb.name, dt, r.returncode, (r.stdout + r.stderr)[-4000:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=int(os.environ.get("NBDEV_WORKERS", 2)))
    ap.add_argument("paths", nargs="*")
    a = ap.parse_args(argv)
    if a.workers < 1: ap.error(f"--workers must be >= 1, got {a.workers}")
    paths = [pathlib.Path(p).resolve() for p in a.paths] or sorted(p for p in (ROOT / "nbs").glob("*.ipynb")
                                                                   if not p.name.startswith(("_", ".")))
    os.environ.setdefault("OMP_NUM_THREADS", "1")       # one thread per notebook: two 2-thread jobs on 2 cores spin
    nbdev_test = str(pathlib.Path(sys.executable).parent / "nbdev_test")
    t_start = time.time()
    with cf.ThreadPoolExecutor(a.workers) as ex:
        results = list(ex.map(lambda p: run_one(p, nbdev_test, t_start), order(paths)))
    total = time.time() - t_start
    print("\n| notebook | seconds | status |\n|---|---|---|")
    for name, dt, rc, _ in sorted(results, key=lambda r: -r[1]):
        print(f"| {name} | {dt:.0f} | {'ok' if rc == 0 else 'FAILED'} |")
    print(f"\nnbdev_test: {len(results)} notebooks, {a.workers} at a time, wall {total:.0f} s "
          f"(sum of notebook times {sum(r[1] for r in results):.0f} s)")
    failed = [r for r in results if r[2]]
    for name, _, _, out in failed:
        print(f"\n===== {name} failed; the end of its output: =====\n{out}")
    if failed:
        print(f"nbdev_test: {len(failed)} notebook(s) failed: {', '.join(r[0] for r in failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
