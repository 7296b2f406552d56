"""Benchmark BM25 search: queries/s of llmlab.rag.BM25 (one sparse product per batch of queries) against bm25s and
rank_bm25 on world fact passages (10k-100k passages, repeated from the world's facts with random extra rare words so
documents differ). Ratios against the strongest baseline (bm25s) in the same run.

    python kernels/bench_rag.py                    # CPU: 10k passages, 200 queries
    python kernels/bench_rag.py --docs 10000 100000
"""
import argparse, sys, pathlib, random
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch
from llmlab.lab import benchmark, save_result, seed_everything, BenchResult
from llmlab.rag import BM25, tokenize
from llmlab.world import World


def corpus(n, seed=0):
    w, rng = World(), random.Random(seed)
    out = []
    for _ in range(n):
        p = rng.choice(w.people)
        rel = rng.choice(["city", "job", "colour"])
        out.append(tokenize(f"{p['name']} " + {"city": "lives in", "job": "works as a", "colour": "likes"}[rel]
                            + f" {p[rel]} " + " ".join(rng.choices(w.rare, k=rng.randrange(4)))))
    return out, [tokenize(t.prompt) for t in w.fact_queries(200, relation="job", seed=seed)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, nargs="+", default=[10000])
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--rep", type=int, default=3)
    p.add_argument("--rank-bm25-queries", type=int, default=10, help="rank_bm25 scores in Python: time fewer queries")
    p.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results"))
    a = p.parse_args(argv)
    torch.set_num_threads(1); seed_everything(0)
    import bm25s, rank_bm25
    rows = []
    for N in a.docs:
        docs, qs = corpus(N)
        ours = BM25().fit(docs)
        ref = bm25s.BM25(method="lucene"); ref.index(docs, show_progress=False)
        rb = rank_bm25.BM25Okapi(docs)
        nq, nr = len(qs), a.rank_bm25_queries
        fns = {"bm25s": lambda: [ref.get_scores(q) for q in qs],
               "llmlab (batched sparse product)": lambda: ours.search_many(qs, a.k),
               "llmlab (one query at a time)": lambda: [ours.search(q, a.k) for q in qs],
               "rank_bm25": lambda: [rb.get_scores(q) for q in qs[:nr]]}
        res = benchmark(fns, "bm25s", rep=a.rep, warmup=1, device="cpu")
        for r in res.rows:
            n = nr if r["name"] == "rank_bm25" else nq
            r["queries/s"] = n / (r["ms"] * 1e-3)
            r["name"] = f"N={N} {r['name']}"
        base = next(r["queries/s"] for r in res.rows if r["name"].endswith(" bm25s"))
        for r in res.rows: r["speedup"] = r["queries/s"] / base          # per query, so rank_bm25's fewer queries compare
        rows += res.rows
    out = BenchResult(rows, "bm25s (per N)", res.device, {"k": a.k, "queries": 200, "threads": 1,
                      "speedup": "queries/s over bm25s's get_scores in the same run", **res.meta})
    print(out.to_markdown())
    print("wrote", save_result(out, "bench_rag", root=a.out))
    return out


if __name__ == "__main__":
    main()
