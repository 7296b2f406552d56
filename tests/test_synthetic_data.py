"""llmlab.synthetic_data: the Gaussian warm-up (deterministic, variance falls under replace), metrics on hand-made
documents, the world's fact and arithmetic questions, the data each mode trains on, one tiny collapse loop end to end,
and bad input."""
import numpy as np, pytest, torch
from llmlab.world import World, Tokenizer, Task
from llmlab.gpt import GPT, GPTConfig
from llmlab.synthetic_data import (gaussian_collapse, tail_mass, vocab_coverage, distinct_n, rank_frequency, token_stream,
                                   generation_data, collapse_loop, sample_docs, trace_collapse, zipf_distance, fact_tasks,
                                   arith_tasks, majority_baseline, fact_accuracy, arith_accuracy, FACT_RELATIONS)

W = World(0, n_entities=8, n_rare=20)

def test_gaussian_deterministic_and_variance_falls_under_replace():
    assert gaussian_collapse(10, 10, seed=4) == gaussian_collapse(10, 10, seed=4)
    assert gaussian_collapse(10, 10, seed=4) != gaussian_collapse(10, 10, seed=5)
    rep = np.mean([gaussian_collapse(100, 10, mode="replace", seed=s)["var"][-1] for s in range(50)])
    acc = np.mean([gaussian_collapse(100, 10, mode="accumulate", seed=s)["var"][-1] for s in range(50)])
    assert rep < 0.2 < 0.5 < acc

def test_gaussian_first_generation_is_the_sample_fit():
    r = gaussian_collapse(1, 1000, seed=0)
    assert abs(r["mean"][0]) < 0.15 and abs(r["var"][0] - 1) < 0.15

def test_metrics_on_hand_made_docs():
    docs = [["ann", "saw", "a", W.rare[0], "."], ["ann", "saw", "a", W.rare[5], "."]]
    assert tail_mass(docs, W) == pytest.approx(0.2)
    assert tail_mass(docs, W, from_rank=2) == pytest.approx(0.1)
    assert tail_mass(docs, W, from_rank=7) == 0.0
    assert vocab_coverage(docs, W) == pytest.approx(2 / 20)
    assert distinct_n([["a", "b", "a", "b"]], 2) == pytest.approx(2 / 3)
    assert distinct_n([["a", "a", "a"]], 1) == pytest.approx(1 / 3)
    rf = rank_frequency(docs, W)
    assert rf[0] == rf[5] == 0.5 and sum(rf) == pytest.approx(1.0)
    assert tail_mass([[]], W) == 0.0 and sum(rank_frequency([["x"]], W)) == 0.0

def test_zipf_distance():
    assert zipf_distance([["ann", "saw", "a", W.rare[0], "."]], W) == pytest.approx(1 - W.rare_p[0])
    assert zipf_distance([["ann"]], W) == 1.0
    # counts proportional to the Zipf law (rounded to a big total) are close to distance 0
    docs = [[w] for w, p in zip(W.rare, W.rare_p) for _ in range(round(p * 20000))]
    assert zipf_distance(docs, W) < 1e-3

def test_fact_and_arith_tasks_are_the_worlds_questions():
    ft = fact_tasks(W)
    assert len(ft) == 3 * W.n_entities and len({t.prompt for t in ft}) == len(ft)
    mine = {t.prompt: t.answer for t in ft}
    for r in FACT_RELATIONS:
        for t in W.fact_queries(30, relation=r, seed=2): assert mine[t.prompt] == t.answer
    assert all(mine[f"{p['name']} lives in"] == p["city"] for p in W.people)
    at = arith_tasks(1)
    assert len(at) == 100 and all(int(t.answer) == eval(t.prompt[5:-2]) for t in at)
    sums = {t.prompt: t.answer for t in at}
    for t in W.arithmetic_tasks(30, steps=1, digits=1, seed=3): assert sums[t.prompt] == t.answer
    assert len(arith_tasks(2)) == 90 * 90
    assert majority_baseline(at) == pytest.approx(0.10)                       # 9 = 0+9 = ... = 9+0: 10 of 100
    assert majority_baseline([Task("a", "x"), Task("b", "x"), Task("c", "y")]) == pytest.approx(2 / 3)

def test_accuracies_of_a_model_are_shares():
    tok = Tokenizer.from_world(W); torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=tok.vocab_size, ctx_len=32, n_layer=1, n_head=2, d_model=16)).eval()
    for a in (fact_accuracy(m, W, tok), fact_accuracy(m, W, tok, relations=("city",)), arith_accuracy(m, tok)):
        assert 0.0 <= a <= 1.0
    with pytest.raises(TypeError, match="model"): fact_accuracy("m", W, tok)
    with pytest.raises(TypeError, match="model"): arith_accuracy(None, tok)
    with pytest.raises(ValueError, match="relations"): fact_tasks(W, relations=("age",))
    with pytest.raises(TypeError, match="relations"): fact_tasks(W, relations="city")
    with pytest.raises(ValueError, match="digits"): arith_tasks(3)
    with pytest.raises(ValueError, match="tasks"): majority_baseline([])

def test_metrics_accept_world_docs():
    docs = W.corpus(30, seed=0, mix={"rare": 1.0})
    n_rare = sum(t == "RARE" for d in docs for t in d.tags); n = sum(len(d.tokens) for d in docs)
    assert tail_mass(docs, W) == pytest.approx(n_rare / n)

def test_modes_use_the_documented_data():
    s = [[["a"]], [["b"]], [["c"]]]; real = [["r"]]
    assert generation_data(s, real, "replace") == [["c"]]
    assert generation_data(s, real, "accumulate") == [["r"], ["a"], ["b"], ["c"]]
    mixed = generation_data([[["c"]] * 10], [["r"]] * 10, "mix", frac_real=0.3)
    assert len(mixed) == 10 and mixed.count(["r"]) == 3
    assert generation_data([[["c"]] * 4], [["r"]] * 4, "mix", frac_real=0.0) == [["c"]] * 4

def test_one_tiny_loop_end_to_end():
    tok = Tokenizer.from_world(W); real = W.corpus(40, seed=0, mix={"rare": 0.5, "facts": 0.5})
    r = collapse_loop(real, n_generations=2, mode="accumulate", world=W, tok=tok, val_docs=real, n_samples=8,
                      train_kwargs=dict(steps=5, d_model=16, ctx_len=16), bar=False)
    assert len(r["coverage"]) == len(r["real_loss"]) == len(r["fact_acc"]) == len(r["arith_acc"]) == 2
    assert r["n_train_docs"] == [40, 48] and r["steps"] == [5, 5] and [len(s) for s in r["samples"]] == [8, 8]
    assert all(np.isfinite(r["real_loss"])) and all(0 <= a <= 1 for a in r["fact_acc"] + r["arith_acc"])
    assert r["coverage"][1] == vocab_coverage(r["samples"][1], W)             # metrics are of that generation's samples
    t = trace_collapse({"a": r}, W, top=10, tail_from=3)
    assert len(t["runs"]["a"]["rank_freq"][1]) == 10 and len(t["zipf"]) == 10
    assert t["runs"]["a"]["tail_share"][1] == pytest.approx(sum(r["rank_freq"][1][2:]), abs=1e-4)
    assert set(t["metrics"]) <= set(t["runs"]["a"])
    # replace trains on the last generation's samples only; scale_steps gives the same steps per document
    rr = collapse_loop(real, n_generations=2, mode="replace", world=W, n_samples=8, train_kwargs=dict(steps=5, d_model=16, ctx_len=16), bar=False)
    assert rr["n_train_docs"] == [40, 8] and np.isnan(rr["real_loss"]).all()      # no val_docs: NaN; tok defaults to the world's
    ra = collapse_loop(real, n_generations=2, mode="accumulate", world=W, n_samples=8, scale_steps=True,
                       train_kwargs=dict(steps=5, d_model=16, ctx_len=16), bar=False)
    assert ra["steps"] == [5, 6]                                                 # round(5 * 48 / 40)
    ids = token_stream(tok, [["a", "saw"]])
    assert ids.tolist() == [tok.bos_id, tok.stoi["a"], tok.stoi["saw"], tok.eos_id]
    with pytest.raises(ValueError, match="vocabulary"): token_stream(tok, [["zzzz"]])

@pytest.mark.parametrize("kw, err, msg", [
    (dict(n_generations=0), ValueError, "n_generations"),
    (dict(n_generations=1, mode="mix", frac_real=1.5), ValueError, "frac_real"),
    (dict(n_generations=1, mode="mix", frac_real=-0.1), ValueError, "frac_real"),
    (dict(n_generations=1, mode="swap"), ValueError, "mode"),
    (dict(n_generations=1, train_kwargs={"epochs": 3}), ValueError, "train_kwargs"),
    (dict(n_generations=1, scale_steps=1), TypeError, "scale_steps"),
    (dict(n_generations=1, world=None), TypeError, "world"),
    (dict(n_generations=1, tok="tok"), TypeError, "tok"),
])
def test_collapse_loop_bad_input(kw, err, msg):
    tok = Tokenizer.from_world(W)
    with pytest.raises(err, match=msg): collapse_loop([["ann"]], **{"world": W, "tok": tok, **kw})

def test_bad_input_elsewhere():
    with pytest.raises(ValueError, match="n_generations"): gaussian_collapse(0, 10)
    with pytest.raises(ValueError, match="mode"): gaussian_collapse(3, 10, mode="mix")
    with pytest.raises(TypeError, match="docs"): tail_mass("ann saw", W)
    with pytest.raises(TypeError, match="world"): vocab_coverage([["a"]], "world")
    with pytest.raises(ValueError, match="from_rank"): tail_mass([["a"]], W, from_rank=0)
    with pytest.raises(ValueError, match="frac_real"): generation_data([[["a"]]], [["r"]], "mix", frac_real=2.0)
    with pytest.raises(ValueError, match="real_docs"): collapse_loop([], n_generations=1, world=W, tok=Tokenizer.from_world(W))
