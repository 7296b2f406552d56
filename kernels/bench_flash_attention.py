"""Benchmark flash attention: the Triton kernels against torch SDPA's fastest backend, forward and backward, in TFLOP/s.

GPU (default): bf16, head dim d in {64, 128}, N in {1k, 2k, 4k, 8k, 16k} with B*N = 16k tokens and H = 2048/d heads
(the FlashAttention-2 paper's setting), causal and not. FLOPs: 4*B*H*N^2*d forward, halved when causal; backward
2.5x the forward (the papers' convention: 2 N^2 d matmuls forward, 5 backward including one recomputation of S).
The two backward kernels execute 7 such matmuls (S and dP are each computed in both), 3.5x the forward: TFLOP/s
here use the convention, so they compare with the papers' numbers, and understate the work the GPU does.
SDPA is timed with each backend PyTorch offers here (flash, cuDNN, memory-efficient) and the fastest is the baseline.
CPU: the reference (naive) and the tiled PyTorch path against SDPA's CPU kernel at small sizes, float32, so
`make bench` stays quick; the Triton kernels are not timed without a GPU (the interpreter says nothing about speed).

    python kernels/bench_flash_attention.py                        # sizes for this machine
    python kernels/bench_flash_attention.py --dims 128 --seqlens 16384 --causal false --modes fwd bwd
"""
import argparse, sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch
import torch.nn.functional as F
from llmlab.lab import benchmark, save_result, seed_everything, HAS_TRITON, BenchResult, device_name
from llmlab.flash_attention import flash_attention, attention_ref

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def attn_flops(B: int, H: int, N: int, d: int, causal: bool, mode: str) -> float:
    "FlashAttention's FLOP convention: 4*B*H*N^2*d forward (halved when causal), backward 2.5x forward (executed: 3.5x)."
    f = 4 * B * H * N * N * d / (2 if causal else 1)
    return f * (2.5 if mode == "bwd" else 1.0)


def sdpa_backends():
    "(name, context manager factory) for each SDPA backend to try on this machine."
    try:
        from torch.nn.attention import sdpa_kernel, SDPBackend
    except ImportError:
        return [("sdpa", None)]
    names = [("sdpa-flash", "FLASH_ATTENTION"), ("sdpa-cudnn", "CUDNN_ATTENTION"), ("sdpa-efficient", "EFFICIENT_ATTENTION")]
    out = [(n, (lambda b=getattr(SDPBackend, attr): sdpa_kernel(b))) for n, attr in names if hasattr(SDPBackend, attr)]
    return out or [("sdpa", None)]


def _timed(fn, mode, q, k, v, causal):
    "A no-argument callable timing `fn` forward, or its backward alone (forward done once, graph retained)."
    if mode == "fwd":
        return lambda: fn(q, k, v, causal)
    qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))
    out = fn(qg, kg, vg, causal)
    dout = torch.randn_like(out)
    return lambda: torch.autograd.grad(out, (qg, kg, vg), dout, retain_graph=True)


def bench_one(impls: dict, mode: str, B: int, H: int, N: int, d: int, causal: bool, dtype, device, rep: int):
    "Time every implementation in `impls` (name -> fn(q, k, v, causal)) at one shape; rows carry the shape."
    g = torch.Generator(device="cpu").manual_seed(0)
    q, k, v = (torch.randn(B, H, N, d, generator=g).to(device, dtype) for _ in range(3))
    fns = {}
    for name, fn in impls.items():
        try:
            fns[name] = _timed(fn, mode, q, k, v, causal)
            fns[name]()                                  # compile / tune / check it runs before timing
        except Exception as e:                           # an SDPA backend unavailable for this shape or GPU
            fns.pop(name, None)
            print(f"  skipped {name} at N={N} d={d} causal={causal} {mode}: {type(e).__name__}: {str(e)[:120]}")
    base = next(iter(fns))
    res = benchmark(fns, baseline=base, flops=attn_flops(B, H, N, d, causal, mode), rep=rep, device=device)
    for r in res.rows: r.update(mode=mode, impl=r["name"], B=B, H=H, N=N, d=d, causal=causal)
    return res.rows


def _sdpa_with(ctx):
    def run(q, k, v, causal):
        if ctx is None: return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        with ctx(): return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return run


def sweep(dtype: str = "bf16", dims=(64, 128), seqlens=(1024, 2048, 4096, 8192, 16384), tokens: int = 16384,
          hidden: int = 2048, causal_modes=(False, True), modes=("fwd", "bwd"), rep: int = 100, device: str = "cuda",
          backend: str = "triton") -> list[dict]:
    "The GPU sweep: rows with mode, impl ('flash' or the fastest 'sdpa-*'), N, d, causal, ms, TFLOP/s, speedup vs SDPA."
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("sweep() times the Triton kernels and needs CUDA; run main() for the CPU table")
    dt, rows = DTYPES[dtype], []
    flash = lambda q, k, v, causal: flash_attention(q, k, v, causal=causal, backend=backend)
    for mode in modes:
        for d in dims:
            for N in seqlens:
                for causal in causal_modes:
                    B, H = max(1, tokens // N), hidden // d
                    impls = {n: _sdpa_with(ctx) for n, ctx in sdpa_backends()}
                    impls["flash"] = flash
                    got = bench_one(impls, mode, B, H, N, d, causal, dt, device, rep)
                    sdpa = min((r for r in got if r["impl"].startswith("sdpa")), key=lambda r: r["ms"], default=None)
                    fl = next(r for r in got if r["impl"] == "flash")
                    for r in (sdpa, fl):
                        if r is None: continue
                        r["speedup"] = (sdpa["ms"] / r["ms"]) if sdpa else float("nan")
                        r["name"] = f"{r['impl']} {mode} d={d} N={N} B={B} H={H}{' causal' if causal else ''}"
                        rows.append(r)
                    print(f"{mode} d={d} N={N} causal={causal}: flash {fl['TFLOP/s']:.0f} TFLOP/s"
                          + (f", {sdpa['impl']} {sdpa['TFLOP/s']:.0f} ({fl['speedup']:.2f}x)" if sdpa else ""), flush=True)
    return rows


def cpu_table(seqlens=(256, 512, 1024), d: int = 64, tokens: int = 1024, heads: int = 2, rep: int = 3) -> list[dict]:
    "The CPU table: naive reference, tiled PyTorch path and SDPA's CPU kernel, float32, forward and backward."
    impls = {"sdpa-cpu": _sdpa_with(None),
             "reference": lambda q, k, v, causal: attention_ref(q, k, v, causal),
             "flash-torch": lambda q, k, v, causal: flash_attention(q, k, v, causal=causal, backend="torch")}
    rows = []
    for mode in ("fwd", "bwd"):
        for N in seqlens:
            for causal in (False, True):
                got = bench_one(impls, mode, max(1, tokens // N), heads, N, d, causal, torch.float32, "cpu", rep)
                for r in got: r["name"] = f"{r['impl']} {mode} d={d} N={N} B={r['B']} H={heads}{' causal' if causal else ''}"
                rows += got
    return rows


def parse_args(argv=None):
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dtype", choices=list(DTYPES), default="bf16")
    p.add_argument("--dims", type=int, nargs="+", default=[64, 128] if cuda else [64])
    p.add_argument("--seqlens", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384] if cuda else [256, 512, 1024])
    p.add_argument("--tokens", type=int, default=16384 if cuda else 1024, help="B*N, tokens per batch")
    p.add_argument("--hidden", type=int, default=2048, help="H*d on the GPU (heads = hidden // d)")
    p.add_argument("--causal", choices=["both", "true", "false"], default="both")
    p.add_argument("--modes", nargs="+", choices=["fwd", "bwd"], default=["fwd", "bwd"])
    p.add_argument("--rep", type=int, default=100 if cuda else 3)
    p.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results"))
    return p.parse_args(argv)


def main(argv=None) -> BenchResult:
    args = parse_args(argv)
    seed_everything(0)
    causal_modes = {"both": (False, True), "true": (True,), "false": (False,)}[args.causal]
    if torch.cuda.is_available() and HAS_TRITON:
        rows = sweep(args.dtype, args.dims, args.seqlens, args.tokens, args.hidden, causal_modes, args.modes, args.rep)
        meta = {"dtype": args.dtype, "tokens (B*N)": args.tokens, "heads": f"{args.hidden}/d",
                "FLOPs": "4*B*H*N^2*d fwd (/2 causal), bwd 2.5x fwd", "speedup": "SDPA's fastest backend ms / ms"}
        base = "fastest SDPA backend at each shape"
    else:
        rows = cpu_table(tuple(args.seqlens), args.dims[0], args.tokens, rep=args.rep)
        meta = {"dtype": "fp32", "tokens (B*N)": args.tokens, "heads": 2, "note": "CPU: PyTorch paths only, no Triton timing"}
        base = "sdpa-cpu at each shape"
    meta.update(torch=torch.__version__)
    if HAS_TRITON:
        import triton
        meta["triton"] = triton.__version__
    res = BenchResult(rows, base, device_name(), meta)
    print(res.to_markdown())
    print("wrote", save_result(res, "bench_flash_attention", root=args.out))
    return res


if __name__ == "__main__":
    main()
