"""Bench for 03_gpt: training throughput of the world-tiny model (one AdamW step: forward + backward + update) with
the reference attention ('naive': explicit mask and softmax) against PyTorch's fused scaled_dot_product_attention
('sdpa', the baseline), on the default device (CUDA when there is one, else the CPU). Reported in ms per step and
training tokens per second. Both variants start from the same weights and batch; their first losses must agree.

    python kernels/bench_gpt.py [--batch 32] [--rep 10] [--threads 2] [--device cpu|cuda] [--dtype float32|bfloat16]
"""
import argparse, sys

def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rep", type=int, default=10, help="timed repeats (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (ignored on CUDA)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="autocast dtype on CUDA")
    p.add_argument("--preset", default="world-tiny")
    p.add_argument("--no-save", action="store_true", help="print the table only")
    return p.parse_args()

def main() -> int:
    args = parse()
    if args.batch < 1 or args.rep < 1: sys.exit("--batch and --rep must be >= 1")
    import torch
    from llmlab import gpt
    from llmlab.lab import benchmark, save_result, get_device
    dev = get_device(args.device)
    if dev.type == "cpu": torch.set_num_threads(args.threads)
    if args.preset not in gpt.PRESETS: sys.exit(f"unknown preset {args.preset!r}; presets: {sorted(gpt.PRESETS)}")
    cfg = gpt.PRESETS[args.preset]["config"]
    models = {}
    for att in ("sdpa", "naive"):
        torch.manual_seed(0)
        models[att] = gpt.GPT(gpt.GPTConfig(**{**cfg, "attention": att})).to(dev)
    g = torch.Generator().manual_seed(0)
    T, V = cfg["ctx_len"], cfg["vocab_size"]
    x = torch.randint(0, V, (args.batch, T), generator=g).to(dev)
    y = torch.randint(0, V, (args.batch, T), generator=g).to(dev)
    amp = dev.type == "cuda" and args.dtype == "bfloat16"
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}

    def step(name):
        m, opt = models[name], opts[name]
        with torch.autocast("cuda", torch.bfloat16, enabled=amp):
            _, loss = m(x, y)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        return loss

    with torch.no_grad():
        a, b = models["sdpa"](x, y)[1].item(), models["naive"](x, y)[1].item()
    if abs(a - b) > 1e-4 * max(1.0, abs(a)):
        print(f"bench_gpt: first losses differ: sdpa {a!r} vs naive {b!r}"); return 1
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    fns = {name: (lambda name=name: (step(name), sync())) for name in ("sdpa", "naive")}
    n_params = models["sdpa"].num_params()
    res = benchmark(fns, baseline="sdpa", warmup=args.warmup, rep=args.rep, device=dev,
                    dtype=("bfloat16 autocast" if amp else "float32"), shapes=f"{args.preset}: batch {args.batch} x {T} tokens",
                    parameters=f"{n_params:,}", step="forward + backward + AdamW",
                    threads=(torch.get_num_threads() if dev.type == "cpu" else "n/a"), torch=torch.__version__)
    res.meta["training tokens/s"] = ", ".join(f"{r['name']} {args.batch * T / (r['ms'] / 1e3):,.0f}" for r in res.rows)
    print(res.to_markdown())
    if not args.no_save: print(f"saved {save_result(res, 'bench_gpt')}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
