"""Benchmark the ternary matmul: Triton GEMV (M=1) / GEMM (M=16) on 2-bit packed weights vs bf16 torch.matmul.

GPU (default): M = 1 and 16 for (N x K) = 2560x2560, 13824x2560, 20480x3200, 4096x4096, 8192x8192; int8 activations
(what a frozen BitLinear feeds the kernel) against bf16 `x @ W.T` with the same shapes, in the same run. Reports ms,
speed-up over bf16 and achieved GB/s of the bytes each kernel must read (packed weights + activations + outputs for
the ternary kernel; bf16 weights + activations + outputs for the baseline).
CPU: the PyTorch reference path (unpack + matmul) against fp32 torch.matmul at small shapes, so `make bench` is quick.

    python kernels/bench_bitnet.py                         # shapes for this machine
    python kernels/bench_bitnet.py --shapes 4096x4096 --m 1 16
"""
import argparse, sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch
from llmlab.lab import benchmark, save_result, seed_everything, HAS_TRITON, BenchResult
from llmlab.bitnet import quantize_weights_ternary, quantize_activations_int8, pack_ternary, ternary_matmul

GPU_SHAPES = ["2560x2560", "13824x2560", "20480x3200", "4096x4096", "8192x8192"]
CPU_SHAPES = ["256x256", "512x384"]

def parse_args(argv=None):
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=GPU_SHAPES if cuda else CPU_SHAPES, help="NxK weight shapes")
    p.add_argument("--m", nargs="+", type=int, default=[1, 16], help="rows of x (tokens)")
    p.add_argument("--rep", type=int, default=100 if cuda else 5)
    p.add_argument("--check", action="store_true", default=True, help="check the kernel against the reference first")
    return p.parse_args(argv)

def run_one(M: int, N: int, K: int, dev: torch.device, rep: int) -> BenchResult:
    "Time one shape: the ternary path and the dense baseline on `dev`."
    g = torch.Generator().manual_seed(0)
    w = torch.randn(N, K, generator=g)
    w_q, w_s = quantize_weights_ternary(w)
    packed, w_s = pack_ternary(w_q).to(dev), w_s.to(dev)
    x = torch.randn(M, K, generator=g).to(dev)
    x_q, x_s = quantize_activations_int8(x)
    cuda = dev.type == "cuda"
    dense_dtype = torch.bfloat16 if cuda else torch.float32
    wd, xd = w.to(dev, dense_dtype), x.to(dense_dtype)
    backend = "triton" if (cuda and HAS_TRITON) else "torch"
    tern = lambda: ternary_matmul(x_q, packed, w_s, backend=backend, x_scale=x_s)
    base = f"{'bf16' if cuda else 'fp32'} torch.matmul"
    name = f"ternary 2-bit ({backend}{', reference path' if backend == 'torch' else ''})"
    tern_bytes = packed.numel() + x_q.numel() + 4 * M * N
    dense_bytes = wd.numel() * wd.element_size() + xd.numel() * xd.element_size() + M * N * wd.element_size()
    if cuda:   # exactness on this shape before timing: int32 sums through the kernel == the reference
        ref = ternary_matmul(x_q, packed, w_s, backend="torch", x_scale=x_s)
        assert torch.equal(tern(), ref), f"kernel != reference at M={M}, N={N}, K={K}"
    res = benchmark({base: lambda: xd @ wd.T, name: tern}, baseline=base, rep=rep, device=dev,
                    M=M, N=N, K=K, dtype=f"int8 x ternary vs {dense_dtype}")
    # each row's GB/s counts the bytes its own kernel must move
    for r in res.rows: r["GB/s"] = (tern_bytes if r["name"] == name else dense_bytes) / (r["ms"] * 1e-3) / 1e9
    for r in res.rows: r["us"] = 1e3 * r["ms"]
    return res

def main(argv=None) -> int:
    args = parse_args(argv)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    seed_everything(0)
    if dev.type == "cpu": torch.set_num_threads(1)     # a shared CPU: one thread gives steadier timings
    rows, device = [], None
    for shape in args.shapes:
        N, K = (int(v) for v in shape.lower().split("x"))
        for M in args.m:
            res = run_one(M, N, K, dev, args.rep)
            device = res.device
            for r in res.rows: rows.append({**r, "name": f"M={M} N={N} K={K} · {r['name']}"})
    table = BenchResult(rows, baseline="dense matmul of the same shape (per pair of rows)", device=device,
                        meta={"torch": torch.__version__, "note": "speedup is against the dense row just above it",
                              **({"triton": __import__("triton").__version__} if HAS_TRITON else {})})
    us = ["", "| M | N | K | kernel | µs | speedup vs dense | GB/s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        shape, kern = r["name"].split(" · ")
        M, N, K = (v.split("=")[1] for v in shape.split())
        us.append(f"| {M} | {N} | {K} | {kern} | {r['us']:.1f} | {r['speedup']:.2f} | {r['GB/s']:.1f} |")
    print(table.to_markdown()); print("\n".join(us))
    path = save_result(table, "bench_bitnet")
    path.write_text(path.read_text() + "\n".join(us) + "\n")
    print("path:", path)
    return 0

if __name__ == "__main__":
    sys.exit(main())
