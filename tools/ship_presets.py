#!/usr/bin/env python
"""Train the presets the package ships (llmlab.gpt.SHIPPED_PRESETS) and commit their checkpoints under llmlab/weights/.

    python tools/ship_presets.py            # ship every preset whose key has no shipped checkpoint yet (from the cache
                                            # when `pretrained` already trained it here, else trained now)
    python tools/ship_presets.py --retrain  # train them all again

Each preset trains exactly as `pretrained(name)` does (one thread, deterministic), is evaluated with
`world_eval`, and is written with `llmlab.gpt.save` (checksummed) into llmlab/weights/<preset key>/, with metadata that
says where, when and from which commit it was trained, and what it scored. Checkpoints of stale keys are removed, so the
folder always matches the presets (tests/test_gpt.py checks that)."""
import argparse, datetime, pathlib, platform, shutil, subprocess, sys, time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"): return line.split(":", 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--retrain", action="store_true", help="train even when a checkpoint with the current key is shipped")
    a = ap.parse_args(argv)
    from llmlab import gpt as G
    out = G.shipped_dir(); out.mkdir(parents=True, exist_ok=True)
    keep = set()
    for name in G.SHIPPED_PRESETS:
        key = G._preset_key(name, G._preset_spec(name)); keep.add(key)
        dest = out / key
        if dest.exists() and not a.retrain:
            G.load(dest); print(f"{name}: {dest.relative_to(ROOT)} is current (checksum verified)"); continue
        t0 = time.time()
        model = G.pretrained(name, retrain=a.retrain)             # this machine's cached entry of the same key, else trains it
                                                                  # (one thread, deterministic) and writes the cache entry
        ev = G.world_eval(model) if G.PRESETS[name].get("data") is G.world_data else {}
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        meta = {**model.meta, "shipped": {"cpu": cpu_name(), "machine": platform.machine(), "python": platform.python_version(),
                                          "date": datetime.date.today().isoformat(), "commit": commit or None,
                                          "world_eval": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in ev.items()}}}
        G.save(model, dest, meta=meta)
        print(f"{name}: trained in {model.meta.get('seconds')} s (this call {time.time() - t0:.0f} s), shipped to {dest.relative_to(ROOT)}; world_eval {meta['shipped']['world_eval']}")
    for d in out.iterdir():
        if d.is_dir() and d.name not in keep:
            shutil.rmtree(d); print(f"removed stale {d.relative_to(ROOT)}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
