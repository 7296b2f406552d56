"""llmlab.synthetic_data: the Gaussian warm-up (deterministic, variance falls under replace), metrics on hand-made
documents, the data each mode trains on, one tiny collapse generation end to end, and bad input."""
import numpy as np, pytest, torch
from llmlab.world import World, Tokenizer
from llmlab.synthetic_data import (gaussian_collapse, tail_mass, vocab_coverage, distinct_n, rank_frequency, token_stream,
                                   generation_data, collapse_loop, sample_docs, trace_collapse)

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
    assert len(r["coverage"]) == len(r["real_loss"]) == 2 and r["n_train_docs"] == [40, 48]
    assert all(np.isfinite(r["real_loss"]))
    t = trace_collapse({"a": r}, W, top=10)
    assert len(t["runs"]["a"]["rank_freq"][1]) == 10 and len(t["zipf"]) == 10
    ids = token_stream(tok, [["a", "saw"]])
    assert ids.tolist() == [tok.bos_id, tok.stoi["a"], tok.stoi["saw"], tok.eos_id]
    with pytest.raises(ValueError, match="vocabulary"): token_stream(tok, [["zzzz"]])

@pytest.mark.parametrize("kw, err, msg", [
    (dict(n_generations=0), ValueError, "n_generations"),
    (dict(n_generations=1, mode="mix", frac_real=1.5), ValueError, "frac_real"),
    (dict(n_generations=1, mode="mix", frac_real=-0.1), ValueError, "frac_real"),
    (dict(n_generations=1, mode="swap"), ValueError, "mode"),
    (dict(n_generations=1, train_kwargs={"epochs": 3}), ValueError, "train_kwargs"),
])
def test_collapse_loop_bad_input(kw, err, msg):
    tok = Tokenizer.from_world(W)
    with pytest.raises(err, match=msg): collapse_loop([["ann"]], world=W, tok=tok, **kw)

def test_bad_input_elsewhere():
    with pytest.raises(ValueError, match="n_generations"): gaussian_collapse(0, 10)
    with pytest.raises(ValueError, match="mode"): gaussian_collapse(3, 10, mode="mix")
    with pytest.raises(TypeError, match="docs"): tail_mass("ann saw", W)
    with pytest.raises(TypeError, match="world"): vocab_coverage([["a"]], "world")
    with pytest.raises(ValueError, match="from_rank"): tail_mass([["a"]], W, from_rank=0)
    with pytest.raises(ValueError, match="frac_real"): generation_data([[["a"]]], [["r"]], "mix", frac_real=2.0)
    with pytest.raises(ValueError, match="real_docs"): collapse_loop([], n_generations=1, world=W, tok=Tokenizer.from_world(W))
