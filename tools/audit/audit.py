#!/usr/bin/env python
"""Independent bad-input audit of llmlab (issue 17), written from the public API without reading tests/. From the
repository root:

    OMP_NUM_THREADS=1 .venv/bin/python tools/audit/audit.py [module ...]     # ~20 min for all 14 modules on 2 cores

Each module's cases run in their own worker subprocess (`--worker MODULE`), so a segfault or a hang costs one case,
not the audit: the driver restarts the worker after the case that killed it (and re-runs a crashed case alone to
confirm it).  Results go to $LLMLAB_AUDIT_OUT (default: <tmp>/llmlab-audit): <module>.md, summary.md, results.json.
"""
import os, sys, json, time, math, signal, subprocess, traceback, tempfile, pathlib, warnings, datetime

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
OUT = pathlib.Path(os.environ.get("LLMLAB_AUDIT_OUT") or pathlib.Path(tempfile.gettempdir()) / "llmlab-audit")
MODULES = ["lab", "autograd", "world", "gpt", "flash_attention", "kernels_flash_attention", "ring_attention", "bitnet",
           "kernels_bitnet", "moe", "kernels_moe", "grpo", "sae", "repe"]
CASE_TIMEOUT = 60          # seconds per case (in-process alarm)
HARD_TIMEOUT = 120         # seconds without progress before the driver kills the worker
ALLOWED = (ValueError, TypeError)


# ----------------------------------------------------------------------------------------------------------------------
# Worker side
class CaseTimeout(BaseException): pass

def _alarm(signum, frame): raise CaseTimeout()

def nonfinite(r, depth=0):
    "Path of a non-finite value inside r (tensors, arrays, numbers, dicts, lists), or None."
    import numpy as np, torch
    if depth > 6: return None
    if isinstance(r, torch.Tensor):
        if r.is_floating_point() and r.numel() and r.device.type != "meta" and not bool(torch.isfinite(r).all()): return "tensor"
        return None
    if isinstance(r, np.ndarray):
        if r.dtype.kind == "f" and r.size and not np.isfinite(r).all(): return "ndarray"
        return None
    if isinstance(r, float): return None if math.isfinite(r) else repr(r)
    if hasattr(r, "data") and type(r).__name__ == "Tensor" and isinstance(getattr(r, "data", None), np.ndarray):
        return nonfinite(r.data, depth + 1)
    if isinstance(r, dict):
        for k, v in r.items():
            p = nonfinite(v, depth + 1)
            if p: return f"{k}:{p}"
    if isinstance(r, (list, tuple)):
        for i, v in enumerate(r[:2000]):
            p = nonfinite(v, depth + 1)
            if p: return f"[{i}]{p}"
    return None

def short(r, n=160):
    try:
        import torch
        if isinstance(r, torch.Tensor): s = f"tensor{tuple(r.shape)} {r.dtype} {r.flatten()[:6].tolist()}"
        else: s = repr(r)
    except Exception as e: s = f"<unrepr {type(e).__name__}>"
    s = s.replace("\n", " ")
    return s if len(s) <= n else s[:n] + "…"

def judge(c, thunk_result=None, exc=None):
    "-> (status, detail).  status in clear/ok/unclear/bad."
    err, ok, extra = c.get("err"), c.get("ok"), tuple(c.get("exc", ()))
    if exc is not None:
        tname, msg = type(exc).__name__, str(exc).replace("\n", " ")[:300]
        if isinstance(exc, CaseTimeout): return "bad", f"hang: no answer in {CASE_TIMEOUT}s"
        if err is None:      # a legitimate input: an answer was expected
            return "unclear", f"raised on a legitimate input: {tname}: {msg}"
        frags = [err] if isinstance(err, str) else list(err)
        if isinstance(exc, ALLOWED + extra):
            if not frags or any(f.lower() in msg.lower() for f in frags): return "clear", f"{tname}: {msg}"
            return "unclear", f"{tname} without naming {frags}: {msg}"
        return "unclear", f"{tname} (not ValueError/TypeError{'/' + '/'.join(e.__name__ for e in extra) if extra else ''}): {msg}"
    r = thunk_result
    if ok is not None:
        try: v = ok(r)
        except Exception as e: v = f"checker failed: {type(e).__name__}: {e}"
        if v is True:
            p = nonfinite(r) if c.get("finite", True) else None
            if p: return "bad", f"non-finite value in result ({p}): {short(r)}"
            return "ok", f"correct: {short(r, 100)}"
        why = v if isinstance(v, str) else "wrong result"
        return "bad", f"{why}: {short(r)}"
    p = nonfinite(r)
    if p: return "bad", f"accepted silently and returned non-finite ({p}): {short(r)}"
    return "bad", f"accepted silently (expected an error naming {c.get('err')}): returned {short(r)}"

def run_worker(module, start, only):
    os.environ["TRITON_INTERPRET"] = "1"
    os.environ.setdefault("LLMLAB_PROGRESS", "0")
    warnings.filterwarnings("ignore")
    import importlib
    import torch
    torch.set_num_threads(1)
    cases_mod = importlib.import_module("cases_" + module)
    cases = []
    def C(call, thunk, err=None, ok=None, exc=(), post=None, finite=True, timeout=None):
        cases.append(dict(call=call, thunk=thunk, err=err, ok=ok, exc=exc, post=post, finite=finite, timeout=timeout))
    cases_mod.build(C)
    print(f"COUNT {len(cases)}", flush=True)
    signal.signal(signal.SIGALRM, _alarm)
    idxs = [int(i) for i in only.split(",")] if only else range(start, len(cases))
    for i in idxs:
        c = cases[i]
        print(f"START {i}", flush=True)
        t0 = time.time()
        signal.alarm(c["timeout"] or CASE_TIMEOUT)
        res, exc = None, None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = c["thunk"]()
        except CaseTimeout as e: exc = e
        except Exception as e: exc = e
        finally: signal.alarm(0)
        try: status, detail = judge(c, res, exc)
        except CaseTimeout: status, detail = "bad", "hang while judging"
        if c["post"] is not None:
            try:
                p = c["post"]()
                if p: status, detail = "bad", f"{p} (after: {detail})"
            except Exception as e:
                status, detail = "bad", f"post-check failed: {type(e).__name__}: {e} (after: {detail})"
        if exc is not None and status == "unclear" and os.environ.get("AUDIT_TB"):
            detail += " | " + " < ".join(f"{f.name}:{f.lineno}" for f in traceback.extract_tb(exc.__traceback__)[-3:])
        import gc; gc.collect(); _ = [bytearray(1 << 16) for _ in range(8)]     # surface heap corruption early
        print("RES " + json.dumps(dict(i=i, call=c["call"], status=status, detail=detail, s=round(time.time() - t0, 2))),
              flush=True)
    print("DONE", flush=True)


# ----------------------------------------------------------------------------------------------------------------------
# Driver side
def _spawn(module, start=0, only=None):
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker", module, "--start", str(start)]
    if only: cmd += ["--only", only]
    env = dict(os.environ, OMP_NUM_THREADS="1", TRITON_INTERPRET="1", PYTHONFAULTHANDLER="0")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: os.nice(5), start_new_session=True)

def _drain(p, results, calls, log):
    "Read a worker until it ends; returns (count, last started index, died?, rc, stderr tail)."
    import selectors
    count, cur, last = None, None, time.time()
    sel = selectors.DefaultSelector(); sel.register(p.stdout, selectors.EVENT_READ)
    buf = ""
    while True:
        ev = sel.select(timeout=5)
        if ev:
            line = p.stdout.readline()
            if not line:
                break
            last = time.time()
            line = line.rstrip("\n")
            if line.startswith("COUNT"): count = int(line.split()[1])
            elif line.startswith("START"): cur = int(line.split()[1])
            elif line.startswith("RES "):
                r = json.loads(line[4:]); results[r["i"]] = r; cur = None
            elif line == "DONE": cur = None
        if time.time() - last > HARD_TIMEOUT:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            return count, cur, "hang", p.returncode, ""
        if p.poll() is not None and not ev:
            break
    rest = p.stdout.read() or ""
    for line in rest.splitlines():
        if line.startswith("RES "):
            r = json.loads(line[4:]); results[r["i"]] = r; cur = None
        elif line.startswith("START"): cur = int(line.split()[1])
        elif line.startswith("COUNT"): count = int(line.split()[1])
    p.wait()
    err = (p.stderr.read() or "")[-600:]
    return count, cur, ("crash" if p.returncode != 0 and cur is not None else None), p.returncode, err

def run_module(module, log):
    results, start, total, deaths = {}, 0, None, 0
    while True:
        p = _spawn(module, start)
        count, cur, died, rc, err = _drain(p, results, None, log)
        total = count if count is not None else total
        if total is None:
            results[-1] = dict(i=-1, call=f"import/build cases of {module}", status="bad",
                               detail=f"worker died before listing its cases (rc={rc}): {err}")
            return results, 0
        if not died and (cur is None) and len([k for k in results if k >= 0]) >= total - 0:
            break
        if cur is None:
            # worker ended without a current case but not all results: treat the next missing one
            missing = [i for i in range(total) if i not in results]
            if not missing: break
            cur = missing[0]; died = died or "crash"
        deaths += 1
        # confirm: run the case alone in a fresh worker
        solo = {}
        p2 = _spawn(module, only=str(cur))
        c2, cur2, died2, rc2, err2 = _drain(p2, solo, None, log)
        if cur in solo and not died2:
            # it passes alone: the culprit is an earlier case of this run whose damage surfaced late
            results[cur] = dict(solo[cur], detail=solo[cur]["detail"] + " [re-run alone: the shared worker died here "
                                f"(rc={rc}) after an earlier case]")
            log.append(f"{module}: worker died at case {cur} (rc={rc}) but it passes alone")
        else:
            kind = died2 or died
            results[cur] = dict(i=cur, call=results.get(cur, {}).get("call") or f"case #{cur}", status="bad",
                                detail=f"{'process crashed' if kind == 'crash' else 'hang'} (rc={rc2 if rc2 is not None else rc}; "
                                       f"confirmed alone) {err2[-300:]}")
        start = cur + 1
        if start >= total or deaths > 25: break
    # fill the calls of crash cases from a listing
    if any(r.get("call", "").startswith("case #") for r in results.values()):
        lst = subprocess.run([sys.executable, str(pathlib.Path(__file__).resolve()), "--list", module],
                             capture_output=True, text=True, env=dict(os.environ, TRITON_INTERPRET="1"))
        try:
            calls = json.loads(lst.stdout.strip().splitlines()[-1])
            for r in results.values():
                if r.get("call", "").startswith("case #"): r["call"] = calls[r["i"]]
        except Exception: pass
    return results, total

POLICY = {
    "clear": "clear", "ok": "ok",
}

def write_reports(all_res, log, stamp, stamps=None):
    stamps = stamps or {}
    tally = {}
    for m, res in all_res.items():
        rs = [res[k] for k in sorted(res)]
        t = {s: sum(r["status"] == s for r in rs) for s in ("clear", "ok", "unclear", "bad")}
        t["cases"] = len(rs); tally[m] = t
        lines = [f"# Audit findings: llmlab.{m.replace('kernels_', 'kernels.')}", "",
                 f"_Updated {stamp}; this module's cases last run {stamps.get(m, stamp)} (independent bad-input audit, issue 17; "
                 "written from the public API, not from tests/)_", "",
                 f"Cases: {t['cases']}; clear {t['clear']}, ok {t['ok']}, **unclear {t['unclear']}**, **bad {t['bad']}**.", "",
                 "Policy (nbs/00_lab 'Bad input: the policy'): ValueError/TypeError naming the argument at the boundary; "
                 "hyper-parameters validated at construction; non-finite data refused where it enters; all-masked rows -> 0 "
                 "and lse -inf; zero-token loss = 0; nothing-to-measure statistics -> ValueError; kernels validate before "
                 "launching; checkpoints atomic + checksummed; names stay in their folder.", ""]
        for st, title in (("bad", "Bad outcomes"), ("unclear", "Unclear errors")):
            sel = [r for r in rs if r["status"] == st]
            lines += [f"## {title} ({len(sel)})", ""]
            if not sel: lines += ["None.", ""]
            for r in sel:
                lines += [f"- `{r['call']}`", f"  - got: {r['detail']}",
                          f"  - policy expects: {expectation(r)}", ""]
        lines += ["## All cases", "", "| # | call | outcome | detail |", "|---|---|---|---|"]
        for r in rs:
            d = r["detail"].replace("|", "\\|")[:140]
            lines.append(f"| {r['i']} | `{r['call'].replace('|', chr(92) + '|')}` | {r['status']} | {d} |")
        (OUT / f"{m}.md").write_text("\n".join(lines) + "\n")
    tot = {s: sum(t[s] for t in tally.values()) for s in ("cases", "clear", "ok", "unclear", "bad")}
    sm = [f"# Audit summary (issue 17: goal 0 bad, <= 3% unclear)", "", f"_Updated {stamp}_", "",
          "| module | cases | clear | ok | unclear | bad | run at |", "|---|---|---|---|---|---|---|"]
    for m in MODULES:
        if m in tally:
            t = tally[m]; sm.append(f"| {m} | {t['cases']} | {t['clear']} | {t['ok']} | {t['unclear']} | {t['bad']} | {stamps.get(m, '')} |")
    pct = 100 * tot["unclear"] / max(tot["cases"], 1)
    sm += [f"| **all** | {tot['cases']} | {tot['clear']} | {tot['ok']} | {tot['unclear']} ({pct:.1f}%) | {tot['bad']} | |", ""]
    sm += ["Re-run: `OMP_NUM_THREADS=1 .venv/bin/python tools/audit/audit.py` from the repository root "
           "(or name modules to re-run only those).", ""]
    if log: sm += ["Driver notes:", ""] + [f"- {l}" for l in log] + [""]
    (OUT / "summary.md").write_text("\n".join(sm))
    return tally, tot, pct

def expectation(r):
    d = r["detail"]
    if "config.json is not covered" in d:
        return ("policy 6 promises a SHA-256 of the weights; a corrupted checkpoint should never load silently as a different "
                "model: cover config.json by the digest too (or store the config inside the hashed blob) and refuse on mismatch")
    if "non-finite" in d: return "no NaN/inf: refuse the input with ValueError naming it, or return the documented finite value"
    if "accepted silently" in d: return "a ValueError/TypeError naming the argument, what it got and what it expects"
    if "crash" in d or "hang" in d: return "validate before launching/working; never kill or hang the process"
    if "legitimate input" in d: return "the documented result for this legitimate edge input"
    if d.startswith("checkpoint") or "mixed" in d: return "atomic save; load never returns mixed/corrupt weights silently"
    if r["status"] == "bad": return "the documented correct result (or a clear refusal)"
    return "ValueError/TypeError at the boundary whose message names the argument, what it got and what it expected"

def main():
    OUT.mkdir(parents=True, exist_ok=True)
    args = sys.argv[1:]
    if args and args[0] == "--worker":
        module = args[1]; start = int(args[args.index("--start") + 1]) if "--start" in args else 0
        only = args[args.index("--only") + 1] if "--only" in args else None
        return run_worker(module, start, only)
    if args and args[0] == "--list":
        os.environ["TRITON_INTERPRET"] = "1"
        import importlib
        cm = importlib.import_module("cases_" + args[1]); calls = []
        cm.build(lambda call, *a, **k: calls.append(call)); print(json.dumps(calls)); return
    mods = [a for a in args if a in MODULES] or MODULES
    prev = {}
    rj = OUT / "results.json"
    if rj.exists() and len(mods) < len(MODULES):
        prev = {m: {int(k): v for k, v in d.items()} for m, d in json.loads(rj.read_text()).items()}
    t0 = time.time(); log = []
    from concurrent.futures import ThreadPoolExecutor
    jobs = int(os.environ.get("AUDIT_JOBS", "2"))
    if rj.exists() and not prev:
        prev = {m: {int(k): v for k, v in d.items()} for m, d in json.loads(rj.read_text()).items()}
    from concurrent.futures import as_completed
    sp = OUT / "stamps.json"
    stamps = json.loads(sp.read_text()) if sp.exists() else {}
    with ThreadPoolExecutor(jobs) as ex:
        futs = {ex.submit(run_module, m, log): m for m in mods}
        for fu in as_completed(futs):
            m = futs[fu]
            res, total = fu.result()
            prev[m] = res
            stamps[m] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            (OUT / "stamps.json").write_text(json.dumps(stamps))
            t = {s: sum(r["status"] == s for r in res.values()) for s in ("clear", "ok", "unclear", "bad")}
            print(f"{m:26s} {len(res):4d} cases  {t}  ({time.time() - t0:.0f}s)", flush=True)
            rj.write_text(json.dumps(prev, indent=0))        # reports after every module: owners read them while it runs
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            tally, tot, pct = write_reports({m: prev[m] for m in MODULES if m in prev}, log, stamp, stamps)
    print(f"TOTAL {tot['cases']} cases: clear {tot['clear']}, ok {tot['ok']}, unclear {tot['unclear']} ({pct:.1f}%), "
          f"bad {tot['bad']}  [{time.time() - t0:.0f}s]")

if __name__ == "__main__":
    main()
