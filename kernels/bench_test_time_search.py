"""Benchmark the shared-prefix KV cache (llmlab.test_time_search): sampling N continuations of one long prompt with the
prompt encoded once and its keys/values expanded to N rows, against recomputing the prompt for every sample.

Rows per N:
- `generate (N copies)`: llmlab.gpt.generate on N copies of the prompt (its KVCache appends with torch.cat);
- `recompute (N copies)`: sample_continuations(shared=False): N copies prefilled, then the preallocated cache;
- `shared prefix`: sample_continuations(shared=True): the prompt prefilled once, its cache expanded to N rows.
Speed-ups are against the faster of the two recompute rows (the strongest baseline in the run); tokens/s counts the
N x L sampled tokens. Random weights (the speed does not depend on them), no stop token: every row samples L tokens.

CPU (always runs): world-tiny's shapes (4 layers, d 128, 4 heads), prompt 128, 32 new tokens, fp32.
GPU (when CUDA is present): 8 layers, d 512, 8 heads, prompt 1024, 256 new tokens, bf16.
Goal (issue 26): >= 3x at N = 16 with a prompt four times longer than the continuations.

    python kernels/bench_test_time_search.py
    python kernels/bench_test_time_search.py --n 4 16 64 --prompt 512 --new 128 --layers 4 --d 128
"""
import argparse, os, sys, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch
from llmlab.lab import benchmark, save_result, seed_everything, BenchResult
from llmlab.gpt import GPT, GPTConfig, generate
from llmlab.test_time_search import sample_continuations

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def parse_args(argv=None):
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[4, 16, 64])
    p.add_argument("--prompt", type=int, default=1024 if cuda else 128, help="prompt tokens (4x --new by default)")
    p.add_argument("--new", type=int, default=256 if cuda else 32, help="tokens sampled per continuation")
    p.add_argument("--layers", type=int, default=8 if cuda else 4)
    p.add_argument("--d", type=int, default=512 if cuda else 128)
    p.add_argument("--heads", type=int, default=8 if cuda else 4)
    p.add_argument("--vocab", type=int, default=533)
    p.add_argument("--dtype", choices=list(DTYPES), default="bf16" if cuda else "fp32")
    p.add_argument("--rep", type=int, default=5 if cuda else 2)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the lab states CPU timings for one)")
    p.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results"))
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cpu": torch.set_num_threads(a.threads)
    seed_everything(0)
    model = GPT(GPTConfig(vocab_size=a.vocab, ctx_len=a.prompt + a.new, n_layer=a.layers, n_head=a.heads, d_model=a.d))
    model = model.to(dev, DTYPES[a.dtype]).eval()
    prompt = torch.randint(5, a.vocab, (a.prompt,)).tolist()
    rows = []
    for n in a.n:
        idx = torch.tensor([prompt], device=dev).expand(n, -1).contiguous()
        gen = lambda: torch.Generator(device="cpu").manual_seed(0)
        fns = {"generate (N copies)": lambda: generate(model, idx, a.new, temperature=1.0, generator=gen()),
               "recompute (N copies)": lambda: sample_continuations(model, prompt, n, max_new_tokens=a.new, generator=gen(), shared=False),
               "shared prefix": lambda: sample_continuations(model, prompt, n, max_new_tokens=a.new, generator=gen(), shared=True)}
        with torch.no_grad():
            res = benchmark(fns, "generate (N copies)", rep=a.rep, warmup=1)
        base = min(res["generate (N copies)"]["ms"], res["recompute (N copies)"]["ms"])
        for r in res.rows:
            r["speedup"] = base / r["ms"]
            r["tokens/s"] = n * a.new / (r["ms"] * 1e-3)
            r["name"] = f"N={n} {r['name']}"
            rows.append(r)
    out = BenchResult(rows, "the faster recompute row (per N)", res.device,
                      {"dtype": a.dtype, "layers": a.layers, "d": a.d, "heads": a.heads, "prompt": a.prompt, "new tokens": a.new,
                       "threads": torch.get_num_threads() if dev == "cpu" else "-",
                       "load (1 min)": f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "-", **res.meta})
    print(out.to_markdown())
    print("wrote", save_result(out, "bench_test_time_search", root=a.out))
    return out


if __name__ == "__main__":
    main()
