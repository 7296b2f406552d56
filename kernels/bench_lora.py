"""Benchmark the 4-bit NF4 matmul (llmlab.lora.nf4_matmul) against bf16 `torch.matmul` and against
dequantise-then-matmul: y = x @ W^T with W (N, K) stored as NF4 codes (0.5 byte per weight + 4 bytes per block).

GPU (default): M in {1, 16, 256} rows, K = N in {4096, 8192}, bf16 activations, block 64. Goal (issue 20): at M=1
(decoding, memory-bound) >= 2.5x faster than bf16 torch.matmul (the byte limit is 2 / (0.5 + 4/64) = 3.6x), and at
M=256 within 1.3x of it. GB/s counts the weight bytes each path reads (bf16: 2 per weight; NF4: 0.5 + 4/block).
CPU: M in {1, 16}, K = N = 512, fp32, the PyTorch paths only (the Triton path needs CUDA), a smoke test of the table.

    python kernels/bench_lora.py
    python kernels/bench_lora.py --m 1 16 256 --k 4096 8192 --dtype bf16
"""
import argparse, sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch
from llmlab.lab import benchmark, save_result, seed_everything, HAS_TRITON, BenchResult
from llmlab.lora import nf4_quantize, nf4_dequantize, nf4_matmul

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def parse_args(argv=None):
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--m", type=int, nargs="+", default=[1, 16, 256] if cuda else [1, 16])
    p.add_argument("--k", type=int, nargs="+", default=[4096, 8192] if cuda else [512], help="K = N")
    p.add_argument("--dtype", choices=list(DTYPES), default="bf16" if cuda else "fp32")
    p.add_argument("--block", type=int, default=64)
    p.add_argument("--rep", type=int, default=50 if cuda else 5)
    p.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results"))
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = DTYPES[a.dtype]
    seed_everything(0)
    rows, res = [], None
    for K in a.k:
        N = K
        w = torch.randn(N, K, device=dev) / K ** 0.5
        packed, absmax = nf4_quantize(w, a.block)
        w16 = w.to(dtype)
        nf4_bytes = packed.numel() + 4 * absmax.numel()
        for M in a.m:
            x = torch.randn(M, K, device=dev).to(dtype)
            fns = {f"{a.dtype} torch.matmul": lambda: x @ w16.T,
                   "dequantise-then-matmul": lambda: x @ nf4_dequantize(packed, absmax, (N, K), a.block).to(dtype).T}
            if dev == "cuda" and HAS_TRITON:
                fns["nf4_matmul (triton)"] = lambda: nf4_matmul(x, packed, absmax, N, a.block, backend="triton")
            res = benchmark(fns, f"{a.dtype} torch.matmul", rep=a.rep, warmup=2, flops=2 * M * N * K)
            for r in res.rows:
                weight_bytes = w16.numel() * w16.element_size() if "torch.matmul" in r["name"] else nf4_bytes
                r["µs"] = r["ms"] * 1e3
                r["GB/s (weights)"] = weight_bytes / (r["ms"] * 1e-3) / 1e9 if r.get("ms") else float("nan")
                r["name"] = f"M={M} K=N={K} {r['name']}"
                rows.append(r)
    out = BenchResult(rows, f"{a.dtype} torch.matmul (per M, K)", res.device,
                      {"dtype": a.dtype, "block": a.block, "GB/s (weights)": "weight bytes read / time (bf16: 2 B per weight; "
                       "NF4: 0.5 B + 4 B per block)", "nf4_matmul (triton)": "timed on CUDA only" if dev != "cuda" else "timed", **res.meta})
    print(out.to_markdown())
    print("wrote", save_result(out, "bench_lora", root=a.out))
    return out


if __name__ == "__main__":
    main()
