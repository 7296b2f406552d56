"""`make test` step 2: nbdev_test over every notebook, each in its own process, `--workers` at a time.

Why a scheduler: with two workers the wall time is set by how the long notebooks are spread, so they start longest
first (the LPT rule: each free worker takes the longest notebook left), using the times measured in an earlier run and
kept in tools/nbtest_times.json; a notebook with no recorded time counts as long (new notebooks tend to be). The shared
presets ship with the package (llmlab/weights), so no notebook waits for one to train -- unless a preset changed and
was not re-shipped, in which case 03_gpt, the notebook that trains them, also starts first.
Prints each notebook's wall time as it finishes, then a table sorted by time and the total.

    python tools/run_nbtests.py [--workers 2] [--save-times] [nbs/NN_slug.ipynb ...]
"""
from __future__ import annotations
import argparse, concurrent.futures as cf, json, os, pathlib, subprocess, sys, time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TRAINS_PRESETS = "03_gpt"
TIMES = ROOT / "tools" / "nbtest_times.json"
UNKNOWN_S = 240.0            # a notebook never timed: assume a long one, so it is not left for the end


def recorded_times() -> dict[str, float]:
    try: return {k: float(v) for k, v in json.loads(TIMES.read_text()).items()}
    except (OSError, ValueError, AttributeError): return {}


def order(paths: list[pathlib.Path], times: dict[str, float] | None = None) -> list[pathlib.Path]:
    "Longest recorded time first (03_gpt always first: it trains any preset that is not shipped); ties in name order."
    times = recorded_times() if times is None else times
    first = [p for p in paths if p.stem == TRAINS_PRESETS]
    rest = sorted((p for p in paths if p.stem != TRAINS_PRESETS), key=lambda p: (-times.get(p.stem, UNKNOWN_S), p.name))
    return first + rest


def run_one(nb: pathlib.Path, nbdev_test: str, t_start: float) -> tuple[str, float, int, str]:
    t0 = time.time()
    r = subprocess.run([nbdev_test, "--path", str(nb)], cwd=ROOT, capture_output=True, text=True)
    dt = time.time() - t0
    status = "ok" if r.returncode == 0 else "FAILED"
    print(f"[{time.time() - t_start:6.0f} s] {nb.name}: {status} in {dt:.0f} s", flush=True)
    return nb.name, dt, r.returncode, (r.stdout + r.stderr)[-4000:]


def cpu_line() -> str:
    "Which CPU and which torch kernels ran: a saved notebook's numbers can move on another CPU's float rounding."
    model = next((l.split(":", 1)[1].strip() for l in pathlib.Path("/proc/cpuinfo").read_text().splitlines()
                  if l.startswith("model name")), "unknown") if pathlib.Path("/proc/cpuinfo").exists() else "unknown"
    try:
        cap = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                             capture_output=True, text=True, timeout=120).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError): cap = "unknown"
    return f"CPU: {model}; torch CPU kernels: {cap}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=int(os.environ.get("NBDEV_WORKERS", 2)))
    ap.add_argument("--save-times", action="store_true", help=f"write the measured times to {TIMES.relative_to(ROOT)}")
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
    cpu = cpu_line()                                     # printed twice below on a failure; torch is imported once
    print("\n| notebook | seconds | status |\n|---|---|---|")
    for name, dt, rc, _ in sorted(results, key=lambda r: -r[1]):
        print(f"| {name} | {dt:.0f} | {'ok' if rc == 0 else 'FAILED'} |")
    print(f"\nnbdev_test: {len(results)} notebooks, {a.workers} at a time, wall {total:.0f} s "
          f"(sum of notebook times {sum(r[1] for r in results):.0f} s)\n{cpu}")
    if a.save_times:
        TIMES.write_text(json.dumps({**recorded_times(), **{pathlib.Path(n).stem: round(dt) for n, dt, _, _ in results}},
                                    indent=1, sort_keys=True) + "\n")
        print(f"times written to {TIMES.relative_to(ROOT)}")
    failed = [r for r in results if r[2]]
    for name, _, _, out in failed:
        print(f"\n===== {name} failed; the end of its output: =====\n{out}")
    if failed:
        print(f"nbdev_test: {len(failed)} notebook(s) failed: {', '.join(r[0] for r in failed)}\n{cpu}; an assert that "
              "held in the saved run may hold only on its CPU: `python tools/fragility.py --rounding avx2 NB` lists every one that fails")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
