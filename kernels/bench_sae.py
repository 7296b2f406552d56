"""Benchmark SAE training throughput: activations per second for one full training step (forward, loss, backward,
decoder-gradient projection, Adam, renormalisation) of each SAE kind, and the TopK forward with a dense decode vs a
sparse (gather) decode of the k active rows.

CPU (default): d_in 128, 1024 latents (the world GPT's SAE in nbs/40_sae.ipynb), batch 4096, float32.
GPU: d_in 768, 24576 latents, batch 4096, float32 (SAE training is usually kept in fp32).

    python kernels/bench_sae.py                        # sizes for this machine
    python kernels/bench_sae.py --d-in 128 --latents 2048 --batch 8192 --k 32
"""
import argparse, os, sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch
import torch.nn.functional as F
from llmlab.lab import benchmark, save_result, seed_everything
from llmlab.sae import SAE, ACTIVATIONS

def parse_args(argv=None):
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d-in", type=int, default=768 if cuda else 128)
    p.add_argument("--latents", type=int, default=24576 if cuda else 1024)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--k", type=int, default=32 if cuda else 8)
    p.add_argument("--rep", type=int, default=100 if cuda else 10)
    p.add_argument("--device", default="cuda" if cuda else "cpu")
    p.add_argument("--out", default="kernels/results", help="results root (a <device>/bench_sae.md goes under it)")
    return p.parse_args(argv)

def train_step_fn(sae: SAE, x: torch.Tensor, aux_k: int):
    "One training step of `sae` on x, as train_sae does it (AuxK on, with every latent counted dead so it always runs)."
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    dead = torch.ones(sae.n_latents, dtype=torch.bool, device=x.device)
    def step():
        recon, z, losses = sae(x)
        aux = sae.auxk_loss(x, recon, sae._last_pre, dead, aux_k)
        opt.zero_grad(set_to_none=True)
        (losses["loss"] + aux / 32).backward()
        sae.remove_parallel_grad(); opt.step(); sae.normalize_decoder()
    return step

def main(argv=None) -> int:
    a = parse_args(argv)
    dev = torch.device(a.device)
    seed_everything(0)
    x = torch.randn(a.batch, a.d_in, device=dev)
    x = x / x.pow(2).sum(-1).mean().sqrt()
    fns = {}
    for kind in ACTIVATIONS:
        sae = SAE(a.d_in, a.latents, kind, k=a.k if "topk" in kind else None).to(dev).train()
        fns[f"train step: {kind}"] = train_step_fn(sae, x, aux_k=min(2 * a.k, a.latents))
    sae_tk = SAE(a.d_in, a.latents, "topk", k=a.k).to(dev).eval()
    def fwd_dense():
        with torch.no_grad(): return sae_tk.decode(sae_tk.encode(x))
    def fwd_sparse():
        with torch.no_grad():
            v, i = sae_tk.pre_acts(x).topk(a.k, -1)                             # (B, k)
            return (F.relu(v)[..., None] * sae_tk.W_dec[i]).sum(1) + sae_tk.b_pre  # gather k rows per token
    assert torch.allclose(fwd_dense(), fwd_sparse(), atol=1e-4), "sparse decode disagrees with the dense decode"
    fns["topk forward, dense decode"] = fwd_dense
    fns["topk forward, sparse (gather) decode"] = fwd_sparse
    B, d, n = a.batch, a.d_in, a.latents
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    res = benchmark(fns, baseline="train step: relu", rep=a.rep, device=dev, batch=B, d_in=d, n_latents=n, k=a.k,
                    dtype="fp32", threads=torch.get_num_threads(), load_avg_1min_at_start=round(load, 2), flops_note="train step ~ 12*B*d*n FLOPs (2 matmuls forward, 4 backward)")
    for r in res.rows:                                   # FLOPs differ per row: train steps ~12 B d n, forwards ~4 B d n
        r["TFLOP/s"] = (12 if r["name"].startswith("train") else 4) * B * d * n / (r["ms"] * 1e-3) / 1e12
    res.meta["activations/s"] = ", ".join(f"{r['name']} {B / (r['ms'] * 1e-3):,.0f}" for r in res.rows)
    print(res.to_markdown(), flush=True)
    print(f"wrote {save_result(res, 'bench_sae', root=a.out)}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
