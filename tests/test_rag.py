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


# ---- the held-out world, encoders, reranker, reader (tiny models, seconds) ----
from llmlab.rag import (split_facts, all_facts, fact_passage, fact_answer, fact_tasks, heldout_corpus, rag_tokenizer,
                        mean_pool, gpt_encoder, train_encoder, Reranker, Hybrid, reader_batches, rag_prompt, rag_accuracy,
                        rag_models, RELATIONS)
from llmlab.world import World


@pytest.fixture(scope="module")
def world():
    return World(0)


def _tiny_gpt(vocab, seed=0):
    from llmlab.gpt import GPT, GPTConfig
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, ctx_len=64, n_layer=1, n_head=2, d_model=16)).eval()


def test_split_facts(world):
    a_in, a_out = split_facts(world, 0.2, seed=0)
    b_in, b_out = split_facts(world, 0.2, seed=0)
    assert (a_in, a_out) == (b_in, b_out)                                  # deterministic
    assert len(a_out) == round(0.2 * len(all_facts(world))) and not set(a_in) & set(a_out)
    assert sorted(a_in + a_out) == sorted(all_facts(world))
    assert split_facts(world, 0.2, seed=1)[1] != a_out


def test_heldout_corpus_never_states_held_out(world):
    tok = rag_tokenizer(world)
    held_in, held_out = split_facts(world)
    lm = heldout_corpus(world, tok, held_out, n_docs=400, ctx_len=32)
    stream = " " + " ".join(tok.itos[i] for i in lm.x.flatten().tolist()) + " "
    assert not any(f" {fact_passage(world, *f)[:-2]} " in stream for f in held_out)
    assert sum(f" {fact_passage(world, *f)[:-2]} " in stream for f in held_in) > len(held_in) // 4


def test_fact_tasks(world):
    facts = all_facts(world)[:8]
    for t, f in zip(fact_tasks(world, facts, "exact"), facts):
        assert fact_passage(world, *f) == f"{t.prompt} {t.answer} ." and t.check(t.answer + " .")
    for t in fact_tasks(world, facts, "paraphrase"):
        assert not {"lives", "works", "likes", "parent"} & set(t.prompt.split())   # the passage's relation words are absent
        rag_tokenizer(world).encode(t.prompt)                                        # every word is known to the reader
    assert fact_answer(world, 0, "parent") == world.people[world.people[0]["parent"]]["name"]


def test_mean_pool_padding_equals_per_length(world):
    tok = rag_tokenizer(world); m = _tiny_gpt(tok.vocab_size)
    texts = ["ada ford lives in paris .", "ben", "the town where ada ford stays is"]
    with torch.no_grad():
        assert torch.allclose(mean_pool(m, tok, texts), gpt_encoder(m, tok)(texts), atol=1e-5)


def test_train_encoder_learns(world):
    tok = rag_tokenizer(world); m = _tiny_gpt(tok.vocab_size)
    facts = all_facts(world)[:16]
    qs = [t.prompt for t in fact_tasks(world, facts, "paraphrase")]
    ps = [fact_passage(world, *f) for f in facts]
    enc, losses = train_encoder(m, tok, qs, ps, steps=40, lr=3e-3, batch_size=16, bar=False)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    assert all(not p.requires_grad or p.grad is None for p in m.parameters())      # the original model is untouched
    with pytest.raises(ValueError, match="positives"): train_encoder(m, tok, qs, ps[:3], steps=1)


def test_reranker_and_hybrid(world):
    tok = rag_tokenizer(world); m = _tiny_gpt(tok.vocab_size)
    facts = all_facts(world)[:12]
    docs = [fact_passage(world, *f) for f in facts]
    rr = Reranker(m, tok)
    qs = [t.prompt for t in fact_tasks(world, facts, "exact")]
    cands = [[docs[i]] + [docs[(i + j) % len(docs)] for j in (1, 2, 3)] for i in range(len(docs))]
    losses = rr.fit(qs, cands, steps=40, lr=3e-3, batch_size=12, bar=False)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    ids, sc = rr.rerank(qs[0], [3, 0, 5], docs)
    assert sorted(ids) == [0, 3, 5] and sc == sorted(sc, reverse=True)
    with torch.no_grad(): s = rr([qs[0]] * 3, [docs[3], docs[0], docs[5]])
    assert ids[0] == [3, 0, 5][int(s.argmax())]
    bm = BM25().fit(docs)
    dn = DenseRetriever(gpt_encoder(m, tok)).fit(docs)
    h = Hybrid([bm, dn], depth=5)
    fused = rrf([bm.search(qs[1], 5)[0].tolist(), dn.search(qs[1], 5)[0].tolist()])[0]
    assert h.search(qs[1], 4)[0].tolist() == fused[:4]
    assert len(Hybrid([bm, dn], reranker=rr, depth=5, rerank_top=3).search(qs[1], 10)[0]) == 3
    with pytest.raises(ValueError, match="candidate"): rr.fit(qs, [c[:1] for c in cands], steps=1)
    with pytest.raises(TypeError): Hybrid([])


def test_reader_batches_supervise_the_stated_value(world):
    tok = rag_tokenizer(world)
    facts = all_facts(world)[:20]
    nb = {f: [g for g in facts if g != f][:3] for f in facts}
    true = {fact_passage(world, *f)[:-2] for f in all_facts(world)}
    for cf in (0.0, 1.0):
        X, Y = reader_batches(world, tok, facts, nb, k_max=3, counterfactual=cf)(32, torch.Generator().manual_seed(0))
        assert X.shape == Y.shape
        false_rows = 0
        for x, y in zip(X.tolist(), Y.tolist()):
            j = next(i for i, v in enumerate(y) if v != -100)                # first supervised position
            ps = tok.decode(x[:j + 1]).split(" . ")[:-1]                   # the passages (the question follows the last)
            ans = tok.decode([v for v in y if v != -100])
            assert ans.endswith(" .") and 1 <= len(ps) <= 3
            assert any(p.endswith(" " + ans[:-2]) for p in ps), (ps, ans)    # the target is a value a passage states
            false_rows += any(p not in true for p in ps)
        assert (false_rows == 0) if cf == 0.0 else (false_rows > 16)


def test_rag_prompt_and_accuracy(world):
    from llmlab.world import Task, Tokenizer
    tok = Tokenizer(["ada", "lives", "in", "paris", "."])
    r = BM25().fit(["ada lives in paris .", "in in"])
    assert rag_prompt(r, "ada lives in", 1) == ("ada lives in paris . ada lives in", ["ada lives in paris ."])
    assert rag_prompt(None, "ada lives in") == ("ada lives in", [])
    class Copy(torch.nn.Module):     # answers 'paris' only when 'paris' is in the prompt
        def __init__(self): super().__init__(); self.p = torch.nn.Parameter(torch.zeros(1))
        def generate(self, idx, n, **kw):
            hit = tok.encode("paris")[0] in idx[0].tolist()
            return torch.cat([idx, torch.tensor([[tok.encode("paris" if hit else "ada")[0], tok.encode(".")[0]]])], 1)
    tasks = [Task("ada lives in", "paris", "fact")]
    assert rag_accuracy(Copy(), tok, r, tasks, k=1)[0] == 1.0
    assert rag_accuracy(Copy(), tok, None, tasks)[0] == 0.0
    with pytest.raises(ValueError): rag_accuracy(Copy(), tok, r, [])


def test_rag_spec_errors(world):
    with pytest.raises(KeyError, match="unknown spec"): rag_models({"nope": 1})
    with pytest.raises(TypeError): rag_models("fast")
    with pytest.raises(ValueError): split_facts(world, 0.0)
    with pytest.raises(ValueError): fact_tasks(world, all_facts(world)[:1], "riddle")
    with pytest.raises(TypeError): fact_passage("world", 0, "city")
    with pytest.raises(ValueError): fact_answer(world, 0, "age")
