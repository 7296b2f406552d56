"""Run every kernels/bench_*.py that applies to this machine (each bench decides; on CPU most report the
reference path only) and list the result tables written under kernels/results/<device>/."""
import subprocess, sys, pathlib, time

HERE = pathlib.Path(__file__).resolve().parent

def main() -> int:
    benches = sorted(HERE.glob("bench_*.py"))
    if not benches:
        print("make bench: no kernels/bench_*.py yet"); return 0
    failed = []
    for b in benches:
        print(f"== {b.name} ==", flush=True)
        t0 = time.time()
        r = subprocess.run([sys.executable, str(b)], cwd=HERE.parent)
        print(f"== {b.name}: exit {r.returncode} in {time.time() - t0:.0f} s ==", flush=True)
        if r.returncode: failed.append(b.name)
    if failed:
        print(f"make bench: these benches failed: {failed}"); return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
