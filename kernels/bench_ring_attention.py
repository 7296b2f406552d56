"""Benchmark ring attention on real processes: per-rank peak memory and time against P at a fixed total length,
the balance of the causal layouts, and the gain from sending the next K/V block before computing the current one.

CPU (default without CUDA): gloo on 127.0.0.1, one thread per rank, float32, forward ring. For each P (default 1, 2, 4)
one spawned run measures every layout with and without overlap. Reported per configuration: the slowest rank's wall
time, the per-rank peak resident memory above the baseline (glibc's mmap threshold pinned so RSS follows the live
tensors), and the measured balance = mean / max of the ranks' compute CPU time (thread time, least over reps) (1.0 = equal split; the ideal for
causal attention is that every rank computes the same share). On a 2-core machine P=4 ranks share 2 cores:
wall times then include the ranks waiting for a core; the balance and memory columns do not depend on that.

GPU: the per-block kernel path (`local_attention` = flash attention's Triton kernel, on one rank's n x n block, in the
three shapes the plans use) against torch SDPA on the same block, bf16; with two or more GPUs the ring itself runs on
NCCL through `launch(..., backend="nccl")`.

    python kernels/bench_ring_attention.py                       # sizes for this machine
    python kernels/bench_ring_attention.py --length 4096 --worlds 1 2 4 --reps 5
"""
import argparse, sys, pathlib, statistics
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch
import torch.nn.functional as F
from llmlab.lab import benchmark, save_result, BenchResult, device_name
from llmlab.ring_attention import LAYOUTS, profile_ring, launch, ring_profile_worker, local_attention, layout_efficiency, ring_work


def attn_flops(B, H, N, D, causal):
    "Forward FLOPs of attention over the whole sequence: 4*B*H*N^2*D, halved when causal."
    return 4 * B * H * N * N * D / (2 if causal else 1)


def summarise(rows, world, layout, overlap):
    rs = [r for r in rows if r["world"] == world and r["layout"] == layout and r["overlap"] == overlap]
    # a rank's compute CPU time: the least over reps (done by the worker) and over both overlap settings (same blocks)
    comp = [min(x["compute_cpu_ms"] for x in rows if (x["world"], x["layout"], x["rank"]) == (world, layout, r["rank"])) for r in rs]
    return {"ms": max(r["wall_ms"] for r in rs), "peak_mb": max(r["peak_mb"] for r in rs),
            "balance": statistics.mean(comp) / max(comp), "wait_ms": max(r["wait_ms"] for r in rs)}


def cpu_bench(a):
    cfgs = [dict(N=a.length, B=1, H=a.heads, D=a.dim, layout=l, causal=True, overlap=o) for l in LAYOUTS for o in (True, False)]
    rows = profile_ring(tuple(a.worlds), cfgs, reps=a.reps, timeout=300)
    flops = attn_flops(1, a.heads, a.length, a.dim, True)
    out, base = [], None
    for P in a.worlds:
        for layout in LAYOUTS:
            on, off = summarise(rows, P, layout, True), summarise(rows, P, layout, False)
            counted = layout_efficiency(ring_work(P, layout, True, a.length // P))["lockstep"]
            out.append({"name": f"P={P} {layout}: peak {on['peak_mb']:.1f} MiB/rank, balance {on['balance']:.2f} "
                                f"(counted {counted:.2f}), overlap gain {off['ms'] / on['ms']:.2f}x",
                        "ms": on["ms"], "TFLOP/s": flops / (on["ms"] * 1e-3) / 1e12})
    base = out[0]["ms"]
    for r in out: r["speedup"] = base / r["ms"]
    res = BenchResult(out, out[0]["name"], device_name("cpu"),
                      {"what": "forward ring, causal, gloo on 127.0.0.1, 1 thread/rank, float32", "N": a.length,
                       "B": 1, "H": a.heads, "D": a.dim, "reps": a.reps, "torch": torch.__version__,
                       "note": "ms = slowest rank's median wall time; speedup vs the first row"})
    print(res.to_markdown())
    zz = [summarise(rows, P, "zigzag", True)["balance"] for P in a.worlds if P > 1]
    if zz: print(f"zigzag measured balance {min(zz):.2f} (target >= 0.85 of ideal): {'met' if min(zz) >= 0.85 else 'NOT met'}")
    mem = [summarise(rows, P, "zigzag", True)["peak_mb"] for P in a.worlds]
    print("zigzag peak MiB/rank vs P:", dict(zip(a.worlds, [round(m, 2) for m in mem])))
    print("written to", save_result(res, f"bench_ring_attention_N{a.length}", root=a.out))


def gpu_bench(a):
    dev = torch.device("cuda")
    rows_all = []
    for P in a.worlds:
        n = a.length // P
        g = torch.Generator(device=dev).manual_seed(0)
        q, k, v = (torch.randn(1, a.heads, n, a.dim, device=dev, dtype=torch.bfloat16, generator=g) for _ in range(3))
        h = n // 2
        shapes = {"full": (q, k, v, False), "causal": (q, k, v, True), "half": (q, k[:, :, :h], v[:, :, :h], False)}
        for name, (qq, kk, vv, causal) in shapes.items():
            fl = 4 * qq.shape[0] * qq.shape[1] * qq.shape[2] * kk.shape[2] * a.dim / (2 if causal else 1)
            res = benchmark({"sdpa": lambda: F.scaled_dot_product_attention(qq, kk, vv, is_causal=causal),
                             "local_attention": lambda: local_attention(qq, kk, vv, causal)}, flops=fl, device=dev,
                            block=f"{name} n={n}", dtype="bf16", H=a.heads, D=a.dim)
            print(res.to_markdown()); save_result(res, f"bench_ring_attention_block_{name}_n{n}", root=a.out)
    if torch.cuda.device_count() >= 2:
        worlds = [P for P in a.worlds if P <= torch.cuda.device_count()]
        cfgs = [dict(N=a.length, B=1, H=a.heads, D=a.dim, layout=l, causal=True, overlap=o) for l in LAYOUTS for o in (True, False)]
        for P in worlds:
            for rank_rows in launch(ring_profile_worker, P, backend="nccl", args=(cfgs, a.reps), timeout=300):
                for r in rank_rows: print(r)
    else:
        print("one GPU: the multi-GPU ring is planned on paper in nbs/11_ring_attention.ipynb (overlap_block_length)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    gpu = torch.cuda.is_available()
    p.add_argument("--length", type=int, default=32768 if gpu else 1024, help="total sequence length N")
    p.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 4], help="numbers of ranks P (N must split into 2P chunks)")
    p.add_argument("--heads", type=int, default=16 if gpu else 2)
    p.add_argument("--dim", type=int, default=128 if gpu else 32)
    p.add_argument("--reps", type=int, default=10 if gpu else 5)
    p.add_argument("--cpu", action="store_true", help="run the CPU/gloo bench even when a GPU is present")
    p.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results"))
    a = p.parse_args(argv)
    for P in a.worlds:
        if P < 1 or a.length % (2 * P): p.error(f"--length {a.length} must be a multiple of 2*P for every P in --worlds, got P={P}")
    torch.set_num_threads(1)
    if gpu and not a.cpu: gpu_bench(a)
    else: cpu_bench(a)


if __name__ == "__main__":
    main()
