"""Benchmark the MoE layer: Triton grouped-GEMM path vs the per-expert loop vs a dense SwiGLU MLP with the same ACTIVE
FLOPs per token (k * d_ff hidden units), forward and forward+backward.

GPU (default sizes): 16k tokens, d_model 2048, bf16, (E=8, k=2, d_ff=4096) and fine-grained (E=64, k=8, d_ff=1024);
both have 8192 active hidden units per token, like the dense 2048x8192 MLP they are compared with.
CPU: the PyTorch paths only (per-expert loop and dense MLP) at small sizes, so `make bench` stays quick.

    python kernels/bench_moe.py                      # sizes for this machine
    python kernels/bench_moe.py --tokens 4096 --configs 8,2,4096 64,8,1024 --dtype bf16
"""
import argparse, sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch
from llmlab.lab import benchmark, save_result, seed_everything, HAS_TRITON, device_name
from llmlab.moe import MoE, SwiGLU

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}

def parse_args(argv=None):
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=16384 if cuda else 512, help="tokens per batch")
    p.add_argument("--d-model", type=int, default=2048 if cuda else 128)
    p.add_argument("--configs", nargs="+", default=["8,2,4096", "64,8,1024"] if cuda else ["8,2,64", "64,8,16"],
                   help="E,k,d_ff triples")
    p.add_argument("--dtype", choices=list(DTYPES), default="bf16" if cuda else "fp32")
    p.add_argument("--rep", type=int, default=100 if cuda else 5)
    p.add_argument("--no-backward", action="store_true", help="time the forward pass only")
    return p.parse_args(argv)

def timed_fns(layers: dict, x: torch.Tensor, backward: bool) -> dict:
    "No-argument callables running each layer forward (and backward with a fixed cotangent)."
    def run(layer):
        def fwd():
            out = layer(x)
            return out[0] if isinstance(out, tuple) else out
        if not backward: return lambda: fwd()
        dy = torch.randn_like(x)
        def fwd_bwd():
            xg = x.detach().requires_grad_()
            out = layer(xg)
            (out[0] if isinstance(out, tuple) else out).backward(dy)
        return fwd_bwd
    return {name: run(layer) for name, layer in layers.items()}

def main(argv=None) -> int:
    args = parse_args(argv)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = DTYPES[args.dtype]
    T, C = args.tokens, args.d_model
    gpu = dev.type == "cuda" and HAS_TRITON
    for cfg in args.configs:
        E, k, F = (int(v) for v in cfg.split(","))
        seed_everything(0)
        moe = MoE(C, F, E, k).to(dev, dtype)
        dense = SwiGLU(C, k * F).to(dev, dtype)
        x = torch.randn(T, C, device=dev, dtype=dtype)
        loop = lambda xx: (setattr(moe, "backend", "torch"), moe(xx))[1]
        layers = {"per-expert loop": loop}
        if gpu: layers["grouped GEMM (Triton)"] = lambda xx: (setattr(moe, "backend", "triton"), moe(xx))[1]
        layers["dense MLP, same active FLOPs"] = dense
        with torch.no_grad():
            load = moe(x)[1]["load"]
        flops = 2 * 3 * T * C * k * F                      # three projections of k*F active hidden units per token
        for backward in ([False] if args.no_backward else [False, True]):
            mode = "fwd+bwd" if backward else "fwd"
            ctx = torch.enable_grad() if backward else torch.no_grad()
            with ctx:
                res = benchmark(timed_fns(layers, x, backward), baseline="per-expert loop", flops=flops * (3 if backward else 1),
                                rep=args.rep, device=dev, mode=mode, tokens=T, d_model=C, experts=E, top_k=k, d_ff=F,
                                dtype=args.dtype, load_cv=round(float(load.std(unbiased=False) / load.mean()), 3),
                                note="" if gpu else "CPU: PyTorch paths only (Triton needs CUDA)")
            print(res.to_markdown(), flush=True)
            path = save_result(res, f"bench_moe_E{E}_k{k}_{mode}")
            print(f"wrote {path}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
