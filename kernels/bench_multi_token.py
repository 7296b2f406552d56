"""Benchmark multi-token prediction: one training step (next-token only, MTP with every depth's logits alive, MTP with
one depth's logits at a time) and decoding (plain greedy `GPT.generate` with its KV cache vs greedy self-speculative
decoding with the extra heads, k = n_future).

GPU (default sizes): a 12-layer width-768 GPT, vocabulary 32k, batch 16 x 1024, n_future 4, bf16 autocast for the step;
peak memory from `torch.cuda.max_memory_allocated`. CPU: a tiny model (2 layers, width 64, vocabulary 2,000, batch
8 x 64) so it runs in seconds; CPU peak memory is not measured here (see the notebook's fresh-process measurement).
Decoding uses an untrained model unless --train-steps > 0: its heads agree with the next-token head trivially (all
drafts accepted), so the decoding rows are an upper bound of the mechanism's speed, not a trained model's.

    python kernels/bench_multi_token.py                      # sizes for this machine
    python kernels/bench_multi_token.py --n-future 2 --kind sequential --rep 3
"""
import argparse, sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch
from llmlab.lab import benchmark, save_result, seed_everything
from llmlab.gpt import GPTConfig
from llmlab.multi_token import MTPGPT, MTPConfig, mtp_loss, mtp_backward, speculative_generate, train_mtp

def parse_args(argv=None):
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-layer", type=int, default=12 if cuda else 2)
    p.add_argument("--d-model", type=int, default=768 if cuda else 64)
    p.add_argument("--vocab", type=int, default=32768 if cuda else 2000)
    p.add_argument("--batch", type=int, default=16 if cuda else 8)
    p.add_argument("--ctx", type=int, default=1024 if cuda else 64)
    p.add_argument("--n-future", type=int, default=4)
    p.add_argument("--kind", choices=["parallel", "sequential"], default="parallel")
    p.add_argument("--new-tokens", type=int, default=256 if cuda else 32)
    p.add_argument("--train-steps", type=int, default=0, help="train the heads on a periodic stream first (decoding rows)")
    p.add_argument("--rep", type=int, default=20 if cuda else 3)
    return p.parse_args(argv)

def main(argv=None) -> int:
    a = parse_args(argv)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    seed_everything(0)
    cfg = GPTConfig(vocab_size=a.vocab, ctx_len=a.ctx, n_layer=a.n_layer, n_head=max(1, a.d_model // 64) if a.d_model >= 64 else 2,
                    d_model=a.d_model)
    ntp = MTPGPT(cfg, MTPConfig(1)).to(dev)
    mtp = MTPGPT(cfg, MTPConfig(a.n_future, a.kind)).to(dev)
    x = torch.randint(0, a.vocab, (a.batch, a.ctx), device=dev); y = torch.randint(0, a.vocab, (a.batch, a.ctx), device=dev)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
    def step(model, efficient):
        def fn():
            with amp:
                if efficient: mtp_backward(model, x, y)
                else: mtp_loss(model, x, y)[0].backward()
            model.zero_grad(set_to_none=True)
        return fn
    fns = {"next-token only": step(ntp, False), f"MTP n={a.n_future}, all logits alive": step(mtp, False),
           f"MTP n={a.n_future}, one depth at a time": step(mtp, True)}
    peak = {}
    if dev.type == "cuda":
        for name, fn in fns.items():
            torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); fn(); torch.cuda.synchronize()
            peak[name] = round(torch.cuda.max_memory_allocated() / 2**20)
    tokens = a.batch * a.ctx
    res = benchmark(fns, baseline="next-token only", rep=a.rep, device=dev, mode="train step", kind=a.kind, n_future=a.n_future,
                    tokens=tokens, vocab=a.vocab, d_model=a.d_model, n_layer=a.n_layer,
                    dtype="bf16 autocast" if dev.type == "cuda" else "fp32",
                    peak_MiB=peak or "not measured here (CPU)")
    print(res.to_markdown(), flush=True)
    print(f"wrote {save_result(res, f'bench_multi_token_train_{a.kind}_n{a.n_future}')}")

    if a.train_steps: train_mtp(mtp, torch.arange(50_000, device="cpu") % 97 % a.vocab, a.train_steps, batch_size=8, bar=False)
    prompt = torch.randint(0, a.vocab, (8,)).tolist()
    new = min(a.new_tokens, a.ctx - len(prompt))
    stats = {}
    def spec():
        stats["s"] = speculative_generate(mtp, prompt, new)[1]
    dec = {"plain greedy (KV cache)": lambda: mtp.generate(torch.tensor([prompt], device=dev), new, temperature=0.0),
           f"self-speculative k={a.n_future}": spec}
    res = benchmark(dec, baseline="plain greedy (KV cache)", rep=a.rep, device=dev, mode="decode", kind=a.kind,
                    n_future=a.n_future, new_tokens=new, trained_steps=a.train_steps)
    res.meta["tokens_per_forward"] = round(stats["s"]["tokens_per_forward"], 3)
    print(res.to_markdown(), flush=True)
    print(f"wrote {save_result(res, f'bench_multi_token_decode_{a.kind}_n{a.n_future}')}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
