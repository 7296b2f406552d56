"""Benchmark the fused linear distillation loss (llmlab.kernels.distill) against the naive one, forward+backward:
time and peak memory.

Naive: both models' logits materialised, `distill_loss(hs @ Ws.T, ht @ Wt.T)` differentiated by autograd.
Fused: tokens in chunks, the two (chunk x vocab) logits blocks only, the per-row divergence and gradient in Triton
(GPU) or PyTorch ('torch rows', any device); gradients w.r.t. the student's hidden states and head weight.

GPU (default): tokens 8k/16k, d 4096 (student and teacher), vocab 32k and 128k, bf16, forward KL, reverse KL and
JSD(0.5) (--kind tvd too). The row kernel reads each row in 2 sweeps for the KLs (both log-sum-exps and the loss in
the first, the gradient in the second) and 3 for JSD/TVD (statistics, loss and row constant, gradient); see 24a.
Goal (issue 22): peak memory <= 1/4 of naive, time <= 1.2x of naive. Not yet measured on a GPU.
CPU: tokens 256, d 128, vocab 4k, fp32, time only (the CPU allocator reports no peak).

    python kernels/bench_distill.py
    python kernels/bench_distill.py --tokens 8192 --vocab 131072 --d 4096 --dtype bf16 --chunk 1024 --kind jsd
"""
import argparse, sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch
import torch.nn.functional as F
from llmlab.lab import benchmark, peak_bytes, save_result, seed_everything, HAS_TRITON, BenchResult
from llmlab.kernels.distill import fused_linear_distill

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def naive(hs, ws, ht, wt, kind, beta):
    "Both logits materialised; the divergence in float32 (the same formulas as llmlab.distill.distill_loss, kept import-light)."
    lp = (hs @ ws.T).float().log_softmax(-1)
    with torch.no_grad(): lq = (ht @ wt.T).float().log_softmax(-1)
    if kind == "forward_kl": return (lq.exp() * (lq - lp)).sum(-1).mean()
    if kind == "reverse_kl": return (lp.exp() * (lp - lq)).sum(-1).mean()
    if kind == "tvd": return 0.5 * (lp.exp() - lq.exp()).abs().sum(-1).mean()
    lm = torch.logsumexp(torch.stack([lq + torch.log(torch.tensor(beta)), lp + torch.log(torch.tensor(1 - beta))]), 0)
    return (beta * (lq.exp() * (lq - lm)).sum(-1) + (1 - beta) * (lp.exp() * (lp - lm)).sum(-1)).mean()


def fwd_bwd(fn, hs, ws, ht, wt, **kw):
    def go():
        hs.grad = ws.grad = None
        fn(hs, ws, ht, wt, **kw).backward()
    return go


def parse_args(argv=None):
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, nargs="+", default=[8192, 16384] if cuda else [256])
    p.add_argument("--vocab", type=int, nargs="+", default=[32768, 131072] if cuda else [4096])
    p.add_argument("--d", type=int, default=4096 if cuda else 128)
    p.add_argument("--dtype", choices=list(DTYPES), default="bf16" if cuda else "fp32")
    p.add_argument("--chunk", type=int, default=1024 if cuda else 64)
    p.add_argument("--kind", nargs="+", default=["forward_kl", "reverse_kl", "jsd"], choices=["forward_kl", "reverse_kl", "jsd", "tvd"])
    p.add_argument("--rep", type=int, default=10 if cuda else 3)
    p.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results"))
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = DTYPES[a.dtype]
    seed_everything(0)
    rows, res = [], None
    for kind in a.kind:
        for V in a.vocab:
            for N in a.tokens:
                hs = (torch.randn(N, a.d, device=dev)).to(dtype).requires_grad_()
                ws = (torch.randn(V, a.d, device=dev) / a.d ** 0.5).to(dtype).requires_grad_()
                ht, wt = torch.randn(N, a.d, device=dev).to(dtype), (torch.randn(V, a.d, device=dev) / a.d ** 0.5).to(dtype)
                fns = {"naive": fwd_bwd(naive, hs, ws, ht, wt, kind=kind, beta=0.5),
                       "fused (torch rows)": fwd_bwd(fused_linear_distill, hs, ws, ht, wt, kind=kind, beta=0.5, chunk_size=a.chunk, backend="torch")}
                if dev == "cuda" and HAS_TRITON:
                    fns["fused (triton)"] = fwd_bwd(fused_linear_distill, hs, ws, ht, wt, kind=kind, beta=0.5, chunk_size=a.chunk, backend="triton")
                flops = 4 * 2 * N * V * a.d                       # teacher forward + student forward + two backward products
                try:
                    res = benchmark(fns, "naive", rep=a.rep, warmup=1, flops=flops)
                except torch.OutOfMemoryError:
                    print(f"{kind} N={N} V={V}: out of memory for the naive path; fused only")
                    fns.pop("naive"); torch.cuda.empty_cache()
                    res = benchmark(fns, next(iter(fns)), rep=a.rep, warmup=1, flops=flops)
                peaks = {name: peak_bytes(fn) for name, fn in fns.items()}
                for r in res.rows:
                    key = r["name"]
                    r["name"] = f"{kind} N={N} V={V} {key}"
                    if peaks[key] == peaks[key]: r["peak GB"] = peaks[key] / 1e9     # CUDA only (nan on the CPU)
                    rows.append(r)
                del hs, ws, ht, wt
    out = BenchResult(rows, "naive (per kind, N, V)", res.device,
                      {"dtype": a.dtype, "d": a.d, "chunk": a.chunk,
                       "TFLOP/s": "model FLOPs 4 x 2NVd (teacher and student logits, two student backward products)",
                       "peak GB": "CUDA memory allocated at the peak beyond the inputs (none on the CPU)", **res.meta})
    print(out.to_markdown())
    print("wrote", save_result(out, "bench_distill", root=a.out))
    return out


if __name__ == "__main__":
    main()
