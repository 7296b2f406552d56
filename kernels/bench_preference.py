"""Benchmark fused linear log-probabilities (llmlab.kernels.preference) against materialised logits, forward+backward:
time and peak memory.

Baseline: `(hidden @ weight.T).float().log_softmax(-1).gather(...)` -- the (tokens x vocab) logits in memory.
Fused: the vocabulary streamed in chunks (online log-sum-exp, per-chunk recompute in the backward), with the
per-chunk passes in Triton (GPU) or in PyTorch ('torch chunks', any device).

GPU (default): tokens 8k/16k/32k, d 4096, vocab 32k and 128k, bf16. Goal (issue 19): peak memory <= 1/8 of the
materialised path at vocab 128k and time <= 1.1x of it.
CPU: tokens 512, d 256, vocab 8k, fp32, time only (the CPU allocator reports no peak).

    python kernels/bench_preference.py
    python kernels/bench_preference.py --tokens 8192 --vocab 131072 --d 4096 --dtype bf16 --chunk 8192
"""
import argparse, sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch
from llmlab.lab import benchmark, peak_bytes, save_result, seed_everything, HAS_TRITON
from llmlab.kernels.preference import fused_linear_logprobs

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def materialised(h, w, t):
    return (h @ w.T).float().log_softmax(-1).gather(1, t[:, None]).squeeze(1)


def fwd_bwd(fn, h, w, t, **kw):
    def go():
        h.grad = w.grad = None
        fn(h, w, t, **kw).sum().backward()
    return go


def parse_args(argv=None):
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, nargs="+", default=[8192, 16384, 32768] if cuda else [512])
    p.add_argument("--vocab", type=int, nargs="+", default=[32768, 131072] if cuda else [8192])
    p.add_argument("--d", type=int, default=4096 if cuda else 256)
    p.add_argument("--dtype", choices=list(DTYPES), default="bf16" if cuda else "fp32")
    p.add_argument("--chunk", type=int, default=8192 if cuda else 2048)
    p.add_argument("--rep", type=int, default=20 if cuda else 3)
    p.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results"))
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = DTYPES[a.dtype]
    seed_everything(0)
    rows = []
    for V in a.vocab:
        for N in a.tokens:
            h = (torch.randn(N, a.d, device=dev) / a.d ** 0.5).to(dtype).requires_grad_()
            w = (torch.randn(V, a.d, device=dev) / 4).to(dtype).requires_grad_()
            t = torch.randint(0, V, (N,), device=dev)
            fns = {"materialised": fwd_bwd(materialised, h, w, t),
                   "fused (torch chunks)": fwd_bwd(fused_linear_logprobs, h, w, t, chunk_size=a.chunk, backend="torch")}
            if dev == "cuda" and HAS_TRITON:
                fns["fused (triton)"] = fwd_bwd(fused_linear_logprobs, h, w, t, chunk_size=a.chunk, backend="triton")
            try:
                res = benchmark(fns, "materialised", rep=a.rep, warmup=1, flops=3 * 2 * N * V * a.d)
            except torch.OutOfMemoryError:
                print(f"N={N} V={V}: out of memory for the materialised path; fused only")
                fns.pop("materialised")
                res = benchmark(fns, next(iter(fns)), rep=a.rep, warmup=1, flops=3 * 2 * N * V * a.d)
            peaks = {name: peak_bytes(fn) for name, fn in fns.items()}
            for r in res.rows:
                r["name"] = f"N={N} V={V} {r['name']}"
                key = r["name"].split(f"V={V} ", 1)[1]
                if peaks[key] == peaks[key]: r["peak GB"] = peaks[key] / 1e9     # CUDA only (nan on the CPU)
                rows.append(r)
            del h, w, t
    from llmlab.lab import BenchResult
    out = BenchResult(rows, "materialised (per N, V)", res.device,
                      {"dtype": a.dtype, "d": a.d, "chunk": a.chunk,
                       "TFLOP/s": "model FLOPs 3 x 2NVd (forward + two backward products; the fused recompute not counted)",
                       "peak GB": "CUDA memory allocated at the peak beyond the inputs (none on the CPU)", **res.meta})
    print(out.to_markdown())
    print("wrote", save_result(out, "bench_preference", root=a.out))
    return out


if __name__ == "__main__":
    main()
