"""llmlab.rag: BM25 on a hand-computed corpus and against bm25s, RRF on hand-made rankings, dense search against brute
force, ranking metrics on toy rankings, chunking, rag_answer's prompt, and bad input."""
import math, pytest, torch, numpy as np
from llmlab.rag import BM25, DenseRetriever, rrf, recall_at_k, mrr, ndcg_at_k, chunk, rag_answer, tokenize


def test_bm25_hand():
    bm = BM25().fit(["a b c", "a a d", "e b"])
    avgdl, idf = 8 / 3, math.log(1 + 1.5 / 2.5)
    f = lambda tf, dl: idf * tf / (tf + 1.5 * (0.25 + 0.75 * dl / avgdl))
    assert torch.allclose(bm.get_scores("a"), torch.tensor([f(1, 3), f(2, 3), 0.0]), atol=1e-6)
    assert torch.allclose(bm.get_scores("a a"), 2 * bm.get_scores("a"))          # repeated query terms count each time
    ids, s = bm.search("a", 3)
    assert ids.tolist() == [1, 0] and (s > 0).all()


@pytest.mark.parametrize("variant", ["lucene", "atire"])
def test_bm25_parity_bm25s(variant):
    bm25s = pytest.importorskip("bm25s")
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    docs = [list(rng.choice(words, rng.integers(1, 12))) for _ in range(60)]
    ref = bm25s.BM25(method=variant, k1=1.2, b=0.6); ref.index(docs, show_progress=False)
    ours = BM25(k1=1.2, b=0.6, variant=variant).fit(docs)
    for _ in range(20):
        q = list(rng.choice(words, 3))
        assert np.allclose(ours.get_scores(q).numpy(), ref.get_scores(q), atol=1e-5)


def test_search_many_matches_search():
    bm = BM25().fit(["x y", "y z", "z z x"])
    ids, s = bm.search_many(["x", "z"], 2)
    for j, q in enumerate(["x", "z"]):
        assert torch.allclose(s[j], bm.get_scores(q).topk(2).values)


def test_rrf():
    ids, sc = rrf([[1, 2, 3], [3, 1]], k=60)
    assert ids == [1, 3, 2]
    assert math.isclose(sc[0], 1 / 61 + 1 / 62) and math.isclose(sc[1], 1 / 63 + 1 / 61) and math.isclose(sc[2], 1 / 62)


def test_dense_brute_force():
    g = torch.Generator().manual_seed(0)
    table = {}
    def enc(texts):
        return torch.stack([table.setdefault(t, torch.randn(8, generator=g)) for t in texts])
    docs = [f"d{i}" for i in range(30)]
    r = DenseRetriever(enc).fit(docs)
    ids, s = r.search("q", 5)
    E = torch.nn.functional.normalize(enc(docs), dim=-1); q = torch.nn.functional.normalize(enc(["q"]), dim=-1)[0]
    assert ids.tolist() == (E @ q).argsort(descending=True)[:5].tolist()


def test_metrics():
    ranked = [[5, 2, 3], [1, 9, 4]]
    assert mrr(ranked, [2, 7]) == 0.25
    assert recall_at_k(ranked, [{2, 3}, {1}], 2) == 0.75
    assert math.isclose(ndcg_at_k([[0, 1]], [{1}], 2), (1 / math.log2(3)) / 1.0)
    assert ndcg_at_k([[1, 0]], [{1}], 2) == 1.0


def test_chunk():
    assert chunk(["a b c d e", "f"], 3, 1) == (["a b c", "c d e", "f"], [0, 0, 1])
    assert chunk(["a b c d"], 2) == (["a b", "c d"], [0, 0])


def test_rag_answer_puts_passages_in_prompt():
    from llmlab.world import Tokenizer
    tok = Tokenizer(["ada", "lives", "in", "paris", "."])
    seen = {}
    class Echo(torch.nn.Module):
        def __init__(self): super().__init__(); self.p = torch.nn.Parameter(torch.zeros(1))
        def generate(self, idx, n, **kw):
            seen["prompt"] = idx[0].tolist()
            return torch.cat([idx, torch.tensor([[tok.encode("paris")[0], tok.encode(".")[0]]])], 1)
    r = BM25().fit(["ada lives in paris .", "in in"])
    ans, used = rag_answer(Echo(), r, "ada lives in", k=1, tokenizer=tok)
    assert used == ["ada lives in paris ."]
    assert seen["prompt"] == tok.encode("ada lives in paris . ada lives in")
    assert ans.startswith("paris")


def test_errors():
    with pytest.raises(ValueError, match="empty"): BM25().fit([])
    with pytest.raises(ValueError, match="empty"): DenseRetriever(lambda t: torch.zeros(len(t), 2)).fit([])
    bm = BM25().fit(["a b"])
    with pytest.raises(ValueError, match="k"): bm.search("a", 0)
    with pytest.raises(RuntimeError, match="fit"): BM25().search("a", 1)
    ids, s = bm.search("nothing known here", 3)                     # a clear, empty result
    assert ids.numel() == 0 and s.numel() == 0
    with pytest.raises(ValueError): BM25(b=2.0)
    with pytest.raises(ValueError): BM25(variant="bm42")
    with pytest.raises(TypeError): BM25().fit("a string")
    with pytest.raises(ValueError): chunk(["a"], 2, 2)
    with pytest.raises(TypeError): tokenize(3)
