"""Test-time search: the shared-prefix cache against recomputation, compute accounting, best-of-N/majority against
notebook 32's selection, beam search/DVTS/lookahead/MCTS invariants with the oracle, the compute-optimal selector, the
widget trace, and the errors of bad input."""
import math
import numpy as np
import pytest, torch
from hypothesis import given, settings, strategies as st
from llmlab.gpt import GPT, GPTConfig, KVCache, pretrained, world_of
from llmlab.process_reward import majority_vote, best_of_n as pr_best_of_n, task_of
from llmlab.test_time_search import (Compute, PrefixKVCache, prefix_logits, sample_continuations, oracle_verifier,
                                     score_partial, sample_solutions, best_of_n, self_consistency, weighted_majority,
                                     beam_search, dvts, lookahead_search, mcts, run_method, measure_curve, compute_optimal,
                                     compute_to_reach, trace_search, Result, METHODS)

WORLD, TOK = world_of("world-tiny")
P = "calc 2 + 6 + 9 :"                                          # answer 17
RIGHT = "2 + 6 = 8 ; 8 + 9 = 17 . answer 17 ."

@pytest.fixture(scope="module")
def tiny():
    return pretrained("world-tiny")

def rand_gpt(seed=0, n_kv_head=None, ctx=64):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=TOK.vocab_size, ctx_len=ctx, n_layer=2, n_head=4, n_kv_head=n_kv_head, d_model=32)).eval()

# ---------------------------------------------------------------- the shared-prefix cache
@given(st.integers(1, 20), st.integers(1, 12), st.integers(1, 6), st.sampled_from([None, 2, 1]), st.integers(0, 999))
@settings(max_examples=25, deadline=None)
def test_shared_prefix_logits_equal_recomputation(P_len, L, n, kv, seed):
    m = rand_gpt(seed % 3, kv)
    g = torch.Generator().manual_seed(seed)
    prefix = torch.randint(0, TOK.vocab_size, (P_len,), generator=g).tolist()
    cont = torch.randint(0, TOK.vocab_size, (n, L), generator=g)
    a, b = prefix_logits(m, prefix, cont), prefix_logits(m, prefix, cont, shared=False)
    assert a.shape == (n, L, TOK.vocab_size)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)

def test_prefix_cache_matches_plain_kv_cache_step_by_step():
    m = rand_gpt(1)
    ids = torch.randint(0, TOK.vocab_size, (1, 12))
    plain, pre = KVCache(2), PrefixKVCache(2, 20)
    with torch.no_grad():
        a, b = m(ids[:, :8], cache=plain)[0], m(ids[:, :8], cache=pre)[0]
        for t in range(8, 12):
            a, b = m(ids[:, t:t + 1], cache=plain)[0], m(ids[:, t:t + 1], cache=pre)[0]
            torch.testing.assert_close(a, b)
    assert pre.pos == plain.pos == 12

def test_expand_and_select_copy_rows():
    m = rand_gpt(2)
    c = PrefixKVCache(2, 16)
    with torch.no_grad(): m(torch.randint(0, TOK.vocab_size, (1, 5)), cache=c)
    e = c.expand(3)
    assert e.pos == 5 and e.k[0].shape[0] == 3 and torch.equal(e.k[1][2], c.k[1][0])
    e.k[0][1, 0, 0, 0] += 1.0                                   # rows are copies, not views of one buffer
    assert not torch.equal(e.k[0][0], e.k[0][1])
    s = e.select([1, 1, 0])
    assert torch.equal(s.k[0][0], e.k[0][1]) and torch.equal(s.k[0][2], e.k[0][0])

def test_prefix_cache_errors():
    c = PrefixKVCache(2, 4)
    with pytest.raises(ValueError, match="the cache is empty"): c.expand(2)
    with pytest.raises(ValueError, match="capacity must be an int >= 1"): PrefixKVCache(2, 0)
    m = rand_gpt(0)
    with torch.no_grad(): m(torch.zeros(1, 4, dtype=torch.long), cache=c)
    with pytest.raises(ValueError, match="PrefixKVCache is full"):
        with torch.no_grad(): m(torch.zeros(1, 1, dtype=torch.long), cache=c)
    with pytest.raises(ValueError, match="continuations must be"): prefix_logits(m, [1, 2], torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="prefix must be a non-empty list"): prefix_logits(m, [], torch.zeros(1, 2, dtype=torch.long))

def test_sampling_shared_equals_recompute_and_counts_prefill():
    m = rand_gpt(3)
    prefix = list(range(5, 15))
    for temp in (0.0, 1.0):
        a, ca = sample_continuations(m, prefix, 5, max_new_tokens=8, temperature=temp, generator=torch.Generator().manual_seed(4))
        b, cb = sample_continuations(m, prefix, 5, max_new_tokens=8, temperature=temp, generator=torch.Generator().manual_seed(4), shared=False)
        assert a == b
        assert (ca.prefill, cb.prefill, ca.tokens) == (10, 50, 40) and ca.flops < cb.flops

def test_sampling_stops_and_accounts():
    m = rand_gpt(4)
    rows, c = sample_continuations(m, [1, 7, 8], 6, max_new_tokens=10, stop=list(range(TOK.vocab_size)), generator=torch.Generator().manual_seed(0))
    assert all(len(r) == 1 for r in rows) and c.tokens == 6 and c.forwards == 1      # every token is a stop: one each
    with pytest.raises(ValueError, match="no room left"): sample_continuations(m, list(range(64)), 1, max_new_tokens=1)
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 1"): sample_continuations(m, [1], 1, max_new_tokens=0)
    with pytest.raises(TypeError, match="model must be a llmlab GPT"): sample_continuations(torch.nn.Linear(2, 2), [1], 1, max_new_tokens=1)

# ---------------------------------------------------------------- compute accounting and verifiers
def test_compute_adds_up():
    a, b = Compute(1, 2, 3, 4, 5, 6.0), Compute(10, 20, 30, 40, 50, 60.0)
    assert (a + b) == Compute(11, 22, 33, 44, 55, 66.0) and (a + b).as_dict()["flops"] == 66.0

def test_oracle_verifier_and_score_partial():
    assert oracle_verifier(P, RIGHT) == 1.0 and oracle_verifier(P, "2 + 6 = 9 ; 9 + 9 = 17 . answer 17 .") == 1.0   # outcome when finished
    assert oracle_verifier(P, "2 + 6 = 8 ;") == 1.0 and oracle_verifier(P, "2 + 6 = 9 ;") == 0.0                     # steps when partial
    s, c = score_partial(oracle_verifier, P, [RIGHT, "", "2 + 6 = 9 ;"])
    assert s.tolist() == [1.0, -math.inf, 0.0] and c.verifier_calls == 2 and c.flops == 0.0
    with pytest.raises(TypeError, match="verifier must be"): score_partial(42, P, [RIGHT])

def test_score_partial_counts_a_model_verifiers_tokens():
    from llmlab.process_reward import PRM
    prm = PRM(rand_gpt(5), tokenizer=TOK)
    s, c = score_partial(prm, P, [RIGHT, "2 + 6 = 8 ;"])
    assert np.allclose(s, 0.5) and c.verifier_tokens == sum(len(prm.encode(P, x)[0]) for x in (RIGHT, "2 + 6 = 8 ;")) and c.flops > 0

# ---------------------------------------------------------------- whole-solution methods
def test_best_of_n_with_the_oracle_is_pass_at_n(tiny):
    for i, t in enumerate(WORLD.arithmetic_tasks(8, steps=1, digits=1, ops=("+", "-"), seed=3)):
        smp = sample_solutions(tiny, t.prompt, 8, seed=i)
        for n in (1, 4, 8):
            r = best_of_n(tiny, oracle_verifier, t.prompt, n, samples=smp)
            assert r.correct == any(t.check(c) for c in smp.completions[:n])
            assert r.compute == smp.compute(n) + score_partial(oracle_verifier, t.prompt, smp.completions[:n])[1]

def test_votes_are_notebook_32s(tiny):
    t = WORLD.arithmetic_tasks(1, steps=1, digits=1, ops=("+",), seed=9)[0]
    smp = sample_solutions(tiny, t.prompt, 8, seed=0)
    sc = self_consistency(tiny, t.prompt, 8, samples=smp)
    assert sc.completion == majority_vote(None, [t], 8, candidates=[smp.completions]).chosen[0] and sc.compute.verifier_calls == 0
    w = weighted_majority(tiny, oracle_verifier, t.prompt, 8, samples=smp)
    scores = score_partial(oracle_verifier, t.prompt, smp.completions)[0][None]
    assert w.completion == majority_vote(None, [t], 8, candidates=[smp.completions], scores=scores).chosen[0]
    b = best_of_n(tiny, oracle_verifier, t.prompt, 8, samples=smp)
    assert b.completion == pr_best_of_n(None, None, [t], 8, candidates=[smp.completions], scores=scores).chosen[0]

def test_samples_compute_charges_the_prompt_once(tiny):
    smp = sample_solutions(tiny, P, 6, seed=1)
    c = smp.compute(6)
    assert c.prefill == len(TOK.encode(P, bos=True)) and c.tokens == sum(smp.lengths) and c.forwards == max(smp.lengths)
    assert smp.compute(2).tokens == sum(smp.lengths[:2])

# ---------------------------------------------------------------- tree search
@pytest.mark.parametrize("seed", range(4))
def test_beam_search_never_returns_wrong_when_right_was_in_the_beam(tiny, seed):
    t = WORLD.arithmetic_tasks(1, steps=1, digits=1, ops=("+", "-"), seed=seed)[0]
    r = beam_search(tiny, oracle_verifier, t.prompt, n_beams=8, beam_width=2, seed=seed)
    fin = [r.trace["nodes"][j] for j in r.trace["leaves"] if r.trace["nodes"][j]["finished"]]
    assert r.correct or not any(t.check(n["text"]) for n in fin)
    assert r.trace["path"][0] == 0 and r.trace["path"][-1] == r.trace["chosen"]
    # every kept node at depth d had its children sampled at depth d + 1; at most n_beams // beam_width kept per depth
    nodes = r.trace["nodes"]
    for d in range(1, max(n["depth"] for n in nodes)):
        assert sum(n["kept"] for n in nodes if n["depth"] == d) <= 8 // 2

@pytest.mark.parametrize("mode", ["beam", "dvts"])
def test_kept_prefixes_are_the_best_scored(tiny, mode):
    "Beam search keeps the top-scored unfinished prefixes of each round; DVTS the top one of each subtree."
    fn = beam_search if mode == "beam" else dvts
    r = fn(tiny, oracle_verifier, P, n_beams=8, beam_width=2, seed=1)
    nodes = r.trace["nodes"]
    for d in range(1, max(n["depth"] for n in nodes)):
        kept = [n["score"] for n in nodes if n["depth"] == d and n["kept"]]
        rest = [n["score"] for n in nodes if n["depth"] == d and not n["kept"] and not n["finished"]]
        if mode == "beam" and kept and rest: assert min(kept) >= max(rest)
        if mode == "dvts": assert len(kept) <= 4

def test_dvts_keeps_one_per_subtree(tiny):
    r = dvts(tiny, oracle_verifier, "calc 3 + 4 :", n_beams=8, beam_width=2, seed=0)
    nodes = r.trace["nodes"]
    for d in range(1, max(n["depth"] for n in nodes)):
        assert sum(n["kept"] for n in nodes if n["depth"] == d) <= 4

def test_lookahead_costs_more_than_beam(tiny):
    a = beam_search(tiny, oracle_verifier, "calc 3 + 4 :", n_beams=4, beam_width=2, seed=0)
    b = lookahead_search(tiny, oracle_verifier, "calc 3 + 4 :", n_beams=4, beam_width=2, lookahead=1, seed=0)
    assert b.compute.tokens >= a.compute.tokens and b.compute.forwards >= a.compute.forwards

@pytest.mark.parametrize("sims", [1, 5, 12])
def test_mcts_visits_sum_to_simulations(tiny, sims):
    r = mcts(tiny, oracle_verifier, "calc 5 - 2 :", n_simulations=sims, c_puct=1.5, seed=sims)
    assert r.trace["root_visits"] == sims and sum(r.trace["child_visits"]) == sims
    nodes = r.trace["nodes"]
    for j, n in enumerate(nodes):                                # a node's visits: its own expansions plus its children's
        kids = [k for k, m in enumerate(nodes) if m["parent"] == j and m["N"] is not None]
        if j and kids and n["N"]: assert n["N"] >= sum(nodes[k]["N"] for k in kids)
    assert isinstance(r, Result) and r.compute.tokens > 0

def test_search_errors(tiny):
    with pytest.raises(ValueError, match="beam_width=8 is more than n_beams=4"): beam_search(tiny, oracle_verifier, P, n_beams=4, beam_width=8)
    with pytest.raises(ValueError, match="n_beams must be an int >= 1"): dvts(tiny, oracle_verifier, P, n_beams=0, beam_width=1)
    with pytest.raises(ValueError, match="n_simulations must be an int >= 1"): mcts(tiny, oracle_verifier, P, n_simulations=0)
    with pytest.raises(ValueError, match="n must be an int >= 1"): self_consistency(tiny, P, 0)
    with pytest.raises(ValueError, match="budget must be an int >= 1"): run_method("beam", tiny, oracle_verifier, P, 0)
    with pytest.raises(ValueError, match="method must be one of"): run_method("greedy", tiny, oracle_verifier, P, 4)
    with pytest.raises(ValueError, match="world arithmetic prompt"): best_of_n(tiny, oracle_verifier, "ada lives in", 2)
    with pytest.raises(TypeError, match="policy must be a llmlab GPT"): beam_search("gpt", oracle_verifier, P, n_beams=2, beam_width=1)
    with pytest.raises(ValueError, match="samples holds only"): best_of_n(tiny, oracle_verifier, P, 4, samples=sample_solutions(tiny, P, 2))

# ---------------------------------------------------------------- curves, the selector, the widget trace
def test_measure_curve_and_compute_optimal(tiny):
    tasks = WORLD.arithmetic_tasks(3, steps=1, digits=1, ops=("+",), seed=11)
    smp = {t.prompt: sample_solutions(tiny, t.prompt, 4, seed=i) for i, t in enumerate(tasks)}
    c = {"easy": {"best_of_n": measure_curve("best_of_n", tiny, oracle_verifier, tasks, (1, 4), samples=smp),
                  "beam": measure_curve("beam", tiny, oracle_verifier, tasks, (2,))}}
    assert [q["budget"] for q in c["easy"]["best_of_n"]] == [1, 4]
    assert c["easy"]["best_of_n"][1]["accuracy"] == np.mean([any(t.check(x) for x in smp[t.prompt].completions) for t in tasks])
    big = max(q["tokens"] for pts in c["easy"].values() for q in pts)
    pick = compute_optimal("easy", big, c)
    assert pick["accuracy"] == max(q["accuracy"] for pts in c["easy"].values() for q in pts)
    assert compute_to_reach(c["easy"]["best_of_n"], 2.0) is None
    with pytest.raises(ValueError, match="below every measured point"): compute_optimal("easy", 1e-3, c)
    with pytest.raises(KeyError, match="no measured curves"): compute_optimal("hard", 10, c)
    with pytest.raises(ValueError, match="unit must be one of"): compute_optimal("easy", 10, c, unit="seconds")

def test_trace_search_matches_results(tiny):
    rs = [beam_search(tiny, oracle_verifier, "calc 4 + 1 :", n_beams=n, beam_width=2, seed=0) for n in (2, 4)]
    tr = trace_search(rs, (2, 4), prompt="calc 4 + 1 :")
    assert [b["correct"] for b in tr["budgets"]] == [r.correct for r in rs] and tr["answer"] == "5"
    for b, r in zip(tr["budgets"], rs):
        assert len(b["nodes"]) == len(r.trace["nodes"]) and sum(n["path"] for n in b["nodes"]) == len(r.trace["path"])
        assert all((n["correct"] is None) != n["finished"] for n in b["nodes"])
    with pytest.raises(ValueError, match="one Result per budget"): trace_search(rs, (2,), prompt="calc 4 + 1 :")
    with pytest.raises(TypeError, match="tree-search Results"): trace_search([self_consistency(tiny, "calc 4 + 1 :", 2)], (2,), prompt="calc 4 + 1 :")

def test_every_method_runs_and_reports_compute(tiny):
    for m in METHODS:
        r = run_method(m, tiny, oracle_verifier, "calc 2 + 3 :", 2, seed=0)
        assert isinstance(r, Result) and r.compute.tokens > 0 and r.correct == task_of("calc 2 + 3 :").check(r.completion)
