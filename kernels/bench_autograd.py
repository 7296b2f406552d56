"""Bench for 01_autograd: one training step (forward + backward + Adam) of an MLP, llmlab.autograd vs PyTorch on the
CPU with the same thread count for numpy's BLAS and torch. Default: MLP 784-512-512-10, batch 256, float32, 1 thread.
Both start from the same weights and batch; the first step's losses are checked to agree before anything is timed.

    python kernels/bench_autograd.py [--threads 1] [--batch 256] [--sizes 784 512 512 10] [--rep 20]
"""
import argparse, os, sys

def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="threads for torch and for numpy's OpenBLAS (default 1)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--sizes", type=int, nargs="+", default=[784, 512, 512, 10], help="layer sizes: in hidden... out")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--rep", type=int, default=20, help="timed repeats (median reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-save", action="store_true", help="print the table only")
    return p.parse_args()

def main() -> int:
    args = parse()
    if args.threads < 1: sys.exit(f"--threads must be >= 1, got {args.threads}")
    if len(args.sizes) < 2: sys.exit(f"--sizes needs at least an input and an output size, got {args.sizes}")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):   # before numpy/torch load their BLAS
        os.environ[var] = str(args.threads)
    import numpy as np, torch
    import torch.nn.functional as F
    from llmlab.autograd import MLP, Adam, cross_entropy
    from llmlab.lab import benchmark, save_result, blas_threads
    torch.set_num_threads(args.threads)
    blas = blas_threads(args.threads)

    npdt, tdt = np.dtype(args.dtype), getattr(torch, args.dtype)
    r = np.random.default_rng(0)
    X, y = r.standard_normal((args.batch, args.sizes[0])).astype(npdt), r.integers(0, args.sizes[-1], args.batch)
    net = MLP(args.sizes, "relu", dtype=npdt, rng=r)
    layers = []
    for l in net.layers:
        lin = torch.nn.Linear(l.in_features, l.out_features, dtype=tdt)
        with torch.no_grad(): lin.weight.copy_(torch.tensor(l.weight.data.T)); lin.bias.copy_(torch.tensor(l.bias.data))
        layers += [lin, torch.nn.ReLU()]
    tnet = torch.nn.Sequential(*layers[:-1])
    opt, topt = Adam(net.parameters(), lr=1e-3), torch.optim.Adam(tnet.parameters(), lr=1e-3)
    tX, ty = torch.tensor(X), torch.tensor(y)

    def ours():
        loss = cross_entropy(net(X), y); opt.zero_grad(); loss.backward(); opt.step(); return loss.item()
    def theirs():
        loss = F.cross_entropy(tnet(tX), ty); topt.zero_grad(); loss.backward(); topt.step(); return loss.item()

    a, b = ours(), theirs()                                   # same weights, same batch: same first loss
    tol = 1e-4 if npdt == np.float32 else 1e-10
    if abs(a - b) > tol * max(1.0, abs(b)):
        print(f"bench_autograd: first-step losses differ: llmlab {a!r} vs torch {b!r}"); return 1
    res = benchmark({"torch": theirs, "llmlab": ours}, baseline="torch", warmup=args.warmup, rep=args.rep, device="cpu",
                    dtype=args.dtype, shapes=f"MLP {'-'.join(map(str, args.sizes))}, batch {args.batch}",
                    step="forward + backward + Adam", threads=f"torch {torch.get_num_threads()}, OpenBLAS {blas}",
                    numpy=np.__version__, first_step_loss=f"{a:.6f} (torch {b:.6f})",
                    repeats=f"median of {args.rep} steps after {args.warmup} warm-up steps",
                    load=f"{os.getloadavg()[0]:.2f} (1-minute load average at the start, {os.cpu_count()} CPUs)")
    ratio = res["llmlab"]["ms"] / res["torch"]["ms"]
    res.meta["llmlab/torch time ratio"] = f"{ratio:.2f}x (goal: within 2x)"
    print(res.to_markdown())
    if not args.no_save: print(f"saved {save_result(res, 'bench_autograd')}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
