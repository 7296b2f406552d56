"""Process reward models: step splitting, oracle and Monte Carlo labels, aggregation, the PRM/ORM heads, best-of-N and
majority vote, step metrics, the widget trace, and the errors of bad input."""
import itertools, math, random
import numpy as np
import pytest, torch
from hypothesis import given, settings, strategies as st
from llmlab.gpt import GPT, GPTConfig, world_of
from llmlab.world import World, detokenize
from llmlab.process_reward import (split_steps, parse_problem, task_of, oracle_steps, process_oracle, outcome_oracle,
                                   mc_rollouts, step_labels, aggregate, PRM, ORM, train_prm, sample_candidates,
                                   score_candidates, best_of_n, majority_vote, accuracy_vs_n, final_answer, first_error,
                                   roc_auc, step_metrics, trace_process_reward)

WORLD, TOK = world_of("world-tiny")
P = "calc 2 + 6 + 9 :"                                          # answer 17
RIGHT = "2 + 6 = 8 ; 8 + 9 = 17 . answer 17 ."
WRONG2 = "2 + 6 = 8 ; 8 + 9 = 18 . answer 18 ."
LUCKY = "2 + 6 = 9 ; 9 + 9 = 17 . answer 17 ."

def tiny_gpt(seed=0, layers=1):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=TOK.vocab_size, ctx_len=64, n_layer=layers, n_head=2, d_model=32))

def arith_docs(n, error_rate, seed=0):
    return WORLD.corpus(n, seed=seed, mix={"arith": 1}, error_rate=error_rate, arith_steps=(1, 4), arith_digits=1, arith_ops=("+", "-"))

def prompt_and_solution(doc):
    i = doc.tokens.index(":")
    return detokenize(doc.tokens[:i + 1]), detokenize(doc.tokens[i + 1:])

# ---------------------------------------------------------------- steps and the oracle
@given(st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_split_steps_round_trip_on_world_solutions(seed):
    (doc,) = arith_docs(1, 0.3, seed)
    _, sol = prompt_and_solution(doc)
    steps = split_steps(sol)
    assert " ".join(steps) == sol
    assert len(steps) == len(doc.steps) + 1                      # every operation, then the answer
    assert all(s.split()[-1] in (";", ".") for s in steps)

@given(st.lists(st.sampled_from(["1", "23", "+", "-", "=", ";", ".", "answer", "ada"]), max_size=20))
def test_split_steps_round_trip_on_any_words(words):
    text = " ".join(words)
    assert " ".join(split_steps(text)) == text

@given(st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_oracle_matches_the_worlds_own_step_labels(seed):
    "The world's corpus knows which steps it made wrong: the oracle must find exactly those."
    (doc,) = arith_docs(1, 0.4, seed)
    prompt, sol = prompt_and_solution(doc)
    assert task_of(prompt).answer == str(doc.true_answer)
    flags = [s["correct"] for s in doc.steps]
    assert oracle_steps(prompt, sol)[0] == flags[0]
    assert process_oracle(prompt, sol) == [float(all(flags[:i + 1])) for i in range(len(flags))] + [float(all(flags))]
    assert outcome_oracle(prompt, sol) == float(doc.answer == doc.true_answer)

def test_oracle_on_hand_made_chains():
    assert process_oracle(P, RIGHT) == [1.0, 1.0, 1.0]
    assert process_oracle(P, WRONG2) == [1.0, 0.0, 0.0]
    assert process_oracle(P, LUCKY) == [0.0, 0.0, 0.0] and outcome_oracle(P, LUCKY) == 1.0
    assert oracle_steps(P, LUCKY) == [False, False, True]      # judged against the world's steps: only the answer matches
    assert process_oracle(P, "2 + 6 = 8 . answer 8 .") == [1.0, 0.0]                    # skipped an operation
    assert process_oracle(P, RIGHT + " 1 + 1 = 2 .") == [1.0, 1.0, 1.0, 0.0]           # nothing after the answer
    assert process_oracle(P, "2 + 6 = 8 ; 8 +") == [1.0, 0.0]                           # a cut-off step
    assert process_oracle(P, "2 - 6 = 8 ; 8 + 9 = 17 . answer 17 .")[0] == 0.0         # the wrong operation
    assert process_oracle(P, "") == []

def test_parse_problem_and_its_errors():
    assert parse_problem("calc 12 - 3 + 40 :") == (12, [("-", 3), ("+", 40)])
    for bad in ("calc 2 + :", "calc 2 + 6", "ada lives in", "calc 2 ^ 6 :", "calc two + 6 :"):
        with pytest.raises(ValueError, match="prompt must"): parse_problem(bad)
    with pytest.raises(TypeError, match="prompt must be a str"): parse_problem(3)
    with pytest.raises(TypeError, match="completion must be a str"): process_oracle(P, None)

# ---------------------------------------------------------------- Monte Carlo labels
class AnswerWriter(torch.nn.Module):
    "From any prefix: 'answer N .' then <eos>."
    def __init__(self, n):
        super().__init__(); self.dummy = torch.nn.Parameter(torch.zeros(1)); self.script = TOK.encode(f"answer {n} .") + [TOK.eos_id]
        self.calls = 0
    def forward(self, idx):
        self.calls += 1
        logits = torch.full((*idx.shape, TOK.vocab_size), -1e9)
        a = TOK.stoi["answer"]
        for b, row in enumerate(idx.tolist()):
            done = len(row) - max(i for i, t in enumerate(row) if t == a) if a in row[-4:] else 0
            logits[b, -1, self.script[min(done, len(self.script) - 1)]] = 0.0
        return logits

@pytest.mark.parametrize("completion", [RIGHT, WRONG2, LUCKY, "2 + 6 = 8 ; 8 +"])
def test_mc_labels_with_a_policy_that_always_answers_right_or_wrong(completion):
    n = len(split_steps(completion))
    decided = [i for i in range(n) if "answer" in " ".join(split_steps(completion)[:i + 1]).split()]
    for method in ("mc_hard", "mc_soft"):
        good = step_labels(P, completion, method=method, policy=AnswerWriter(17), k=3, tokenizer=TOK)
        bad = step_labels(P, completion, method=method, policy=AnswerWriter(16), k=3, tokenizer=TOK)
        for i in range(n):
            if i in decided:                                     # the answer is already stated: the checker's verdict
                assert good[i] == bad[i] == outcome_oracle(P, completion)
            else: assert (good[i], bad[i]) == (1.0, 0.0)

def test_mc_rollouts_counts_and_skips_decided_prefixes():
    arrs, n = mc_rollouts([P, P], [RIGHT, "2 + 6 = 8 ;"], AnswerWriter(17), 5, tokenizer=TOK)
    assert n == (2 + 1) * 5                                      # RIGHT: 2 undecided steps; the second: 1
    assert [a.shape for a in arrs] == [(3, 5), (1, 5)] and arrs[0].tolist()[2] == [1] * 5

def test_mc_soft_is_the_fraction_and_hard_is_any():
    torch.manual_seed(0)
    m = tiny_gpt()
    arr, _ = mc_rollouts([P], [WRONG2], m, 6, tokenizer=TOK, seed=1)
    hard = step_labels(P, WRONG2, method="mc_hard", policy=m, k=6, tokenizer=TOK, seed=1)
    soft = step_labels(P, WRONG2, method="mc_soft", policy=m, k=6, tokenizer=TOK, seed=1)
    assert hard == arr[0].max(1).tolist() and soft == pytest.approx(arr[0].mean(1).tolist())

def test_step_labels_errors():
    with pytest.raises(ValueError, match="k must be an int >= 1"): step_labels(P, RIGHT, method="mc_hard", policy=AnswerWriter(17), k=0)
    with pytest.raises(ValueError, match="completion is empty"): step_labels(P, "  ", method="oracle")
    with pytest.raises(ValueError, match="method must be one of"): step_labels(P, RIGHT, method="human")
    with pytest.raises(ValueError, match="give policy="): step_labels(P, RIGHT, method="mc_soft")
    with pytest.raises(ValueError, match=r"completions\[0\] is empty"): mc_rollouts([P], [""], AnswerWriter(17), 2, tokenizer=TOK)
    with pytest.raises(TypeError, match="a task must be a world Task"): step_labels(3, RIGHT)

# ---------------------------------------------------------------- aggregation
@given(st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_aggregate_properties(s):
    assert aggregate(s, "min") == min(s) and aggregate(s, "last") == s[-1]
    assert aggregate(s, "prod") <= aggregate(s, "min") + 1e-12
    assert min(s) - 1e-12 <= aggregate(s, "mean") <= max(s) + 1e-12
    assert aggregate(s, "prod") == pytest.approx(float(np.prod(s)))

def test_aggregate_errors():
    with pytest.raises(ValueError, match="how must be one of"): aggregate([0.5], "max")
    with pytest.raises(ValueError, match="step_scores is empty"): aggregate([])
    with pytest.raises(ValueError, match="must be a finite number"): aggregate([0.5, float("nan")])
    with pytest.raises(TypeError, match="step_scores must be a sequence"): aggregate(0.5)
    assert aggregate(torch.tensor([0.2, 0.4]), "mean") == pytest.approx(0.3)

# ---------------------------------------------------------------- the PRM and ORM
def test_prm_head_reads_only_separator_positions():
    prm = PRM(tiny_gpt(), tokenizer=TOK)
    torch.nn.init.normal_(prm.head.weight, std=0.5)
    ids, reads = prm.encode(P, RIGHT)
    assert [TOK.itos[ids[i]] for i in reads] == [";", ".", "."] and len(reads) == len(split_steps(RIGHT))
    clean = prm.score_steps(P, RIGHT)
    seen = {}
    def poison(mod, inp, out):
        keep = torch.zeros(out.shape[:2], dtype=torch.bool); keep[0, reads] = True
        return torch.where(keep[..., None], out, torch.full_like(out, float("nan")))
    def record(mod, inp, out): seen["rows"] = inp[0].shape[0]
    with prm.backbone.norm.register_forward_hook(poison), prm.head.register_forward_hook(record):
        assert prm.score_steps(P, RIGHT) == clean
    assert seen["rows"] == 3                                     # the head saw three rows: the three step ends

def test_prm_scores_are_causal_batched_and_start_at_one_half():
    prm = PRM(tiny_gpt(), tokenizer=TOK)
    assert prm.score_steps(P, RIGHT) == [0.5, 0.5, 0.5]
    torch.nn.init.normal_(prm.head.weight, std=0.5)
    full = prm.score_steps(P, RIGHT)
    assert prm.score_steps(P, "2 + 6 = 8 ;") == pytest.approx(full[:1], abs=1e-6)        # later steps cannot change step 1
    assert prm.score_steps(P, "2 + 6 = 8 ; 8 +") == pytest.approx(full[:1] + [prm.score_steps(P, "2 + 6 = 8 ; 8 +")[1]])
    batch = prm.score_batch([P, P, "calc 1 + 1 :"], [RIGHT, "2 + 6 = 8 ;", "1 + 1 = 2 . answer 2 ."], batch_size=2)
    assert batch[0] == pytest.approx(full, abs=1e-6) and len(batch[2]) == 2

def test_orm_reads_the_last_position_only():
    orm = ORM(tiny_gpt(), tokenizer=TOK)
    torch.nn.init.normal_(orm.head.weight, std=0.5)
    prm = PRM(tiny_gpt(), tokenizer=TOK); prm.load_state_dict(orm.state_dict())
    assert orm.encode(P, RIGHT)[1] == prm.encode(P, RIGHT)[1][-1:]
    assert orm.score(P, RIGHT) == pytest.approx(prm.score_steps(P, RIGHT)[-1], abs=1e-6)
    assert isinstance(orm.score_batch([P], [RIGHT])[0], float)
    with pytest.raises(TypeError, match="an ORM has no per-step scores"): orm.score_steps(P, RIGHT)

def test_prm_errors():
    with pytest.raises(TypeError, match="model must be a llmlab GPT"): PRM(torch.nn.Linear(2, 2), tokenizer=TOK)
    prm = PRM(tiny_gpt(), tokenizer=TOK)
    with pytest.raises(ValueError, match="completion is empty"): prm.score_steps(P, "")
    with pytest.raises(ValueError, match="more than ctx_len"): prm.score_steps(P, " ".join(["1 + 1 = 2 ;"] * 12))
    with pytest.raises(ValueError, match="2 prompts but 1"): prm.score_batch([P, P], [RIGHT])
    with pytest.raises(ValueError, match="unknown word"): prm.score_steps(P, "2 + 6 = eight .")

def test_train_prm_fits_labels_and_refuses_bad_examples():
    ex = [(P, RIGHT, [1, 1, 1]), (P, WRONG2, [1, 0, 0]), (P, LUCKY, [0, 0, 0])]
    prm = PRM(tiny_gpt(), tokenizer=TOK)
    losses = train_prm(prm, ex, steps=60, lr=3e-3, batch_size=6, plot=False)
    assert losses[-1] < losses[0] / 5
    s = prm.score_steps(P, WRONG2); assert s[0] > 0.5 > s[1]
    soft = train_prm(PRM(tiny_gpt(), tokenizer=TOK), [(P, RIGHT, [0.25, 0.5, 1.0])], steps=3, plot=False)   # soft labels are fine
    assert all(math.isfinite(x) for x in soft)
    with pytest.raises(ValueError, match="2 labels for the 3 steps"): train_prm(prm, [(P, RIGHT, [1, 1])], steps=1)
    with pytest.raises(ValueError, match="must be in"): train_prm(prm, [(P, RIGHT, [1, 2, 1])], steps=1)
    with pytest.raises(ValueError, match="examples is empty"): train_prm(prm, [], steps=1)
    with pytest.raises(TypeError, match=r"examples\[0\] must be"): train_prm(prm, [(P, RIGHT)], steps=1)
    with pytest.raises(ValueError, match="steps must be an int >= 1"): train_prm(prm, ex, steps=0)
    with pytest.raises(TypeError, match="prm must be a PRM or ORM"): train_prm(tiny_gpt(), ex)
    orm = ORM(tiny_gpt(), tokenizer=TOK)
    train_prm(orm, [(P, c, outcome_oracle(P, c)) for c in (RIGHT, WRONG2, LUCKY)], steps=60, lr=3e-3, batch_size=6, plot=False)
    assert orm.score(P, LUCKY) > 0.5 > orm.score(P, WRONG2)

# ---------------------------------------------------------------- choosing
ANSWERS = ["17", "18", "16", None]
def chain(ans):
    return "" if ans is None else f"2 + 6 = 8 ; 8 + 9 = {ans} . answer {ans} ."

@given(st.lists(st.lists(st.sampled_from(ANSWERS), min_size=8, max_size=8), min_size=1, max_size=5))
@settings(max_examples=40, deadline=None)
def test_best_of_n_with_the_oracle_equals_pass_at_n(answer_lists):
    cands = [[chain(a) for a in row] for row in answer_lists]
    tasks = [P] * len(cands)
    for n in (1, 2, 4, 8):
        pass_at = np.mean([any(outcome_oracle(P, c) for c in cs[:n]) for cs in cands])
        assert best_of_n(None, outcome_oracle, tasks, n, candidates=cands).accuracy == pytest.approx(pass_at)
        grouped = np.mean([[any(outcome_oracle(P, c) for c in cs[g * n:(g + 1) * n]) for g in range(8 // n)] for cs in cands])
        sc = score_candidates(outcome_oracle, tasks, cands)
        assert accuracy_vs_n(tasks, cands, [n], scores=sc) == pytest.approx([grouped])
    assert best_of_n(None, lambda p, c: process_oracle(p, c), tasks, 8, candidates=cands, aggregate="min").accuracy <= \
        best_of_n(None, outcome_oracle, tasks, 8, candidates=cands).accuracy

def test_majority_vote_ties_weights_and_empty_candidates():
    cands = [[chain("18"), chain("17"), chain("17"), chain("18"), ""]]
    mv = majority_vote(None, [P], 5, candidates=cands)
    assert mv.index == [0] and mv.accuracy == 0.0               # 2 votes each: the answer reached first wins
    assert majority_vote(None, [P], 3, candidates=cands).index == [1]
    w = majority_vote(None, [P], 5, candidates=cands, verifier=outcome_oracle)
    assert w.accuracy == 1.0 and w.chosen == [chain("17")]
    assert majority_vote(None, [P], 1, candidates=[[""]]).index == [0]
    assert final_answer(LUCKY) == "17" and final_answer("2 + 6 = 8 ;") is None
    sc = score_candidates(lambda p, c: [0.3, 0.9], [P], cands, aggregate="mean")
    assert sc[0, -1] == -np.inf and sc[0, 0] == pytest.approx(0.6)

class ObjVerifier:
    def score(self, prompt, completion): return [0.1, 0.9] if "17" in completion else [0.5]

def test_verifier_interfaces_and_errors():
    cands = [[chain("18"), chain("17")]]
    assert best_of_n(None, ObjVerifier(), [P], 2, candidates=cands, aggregate="last").index == [1]
    assert best_of_n(None, ObjVerifier(), [P], 2, candidates=cands, aggregate="min").index == [0]
    with pytest.raises(ValueError, match="aggregate must be one of"): best_of_n(None, ObjVerifier(), [P], 2, candidates=cands, aggregate="max")
    with pytest.raises(ValueError, match="n must be an int >= 1"): best_of_n(None, ObjVerifier(), [P], 0, candidates=cands)
    with pytest.raises(ValueError, match="only 2 candidates"): best_of_n(None, ObjVerifier(), [P], 3, candidates=cands)
    with pytest.raises(ValueError, match="same number"): best_of_n(None, ObjVerifier(), [P, P], 1, candidates=[[RIGHT], [RIGHT, RIGHT]])
    with pytest.raises(TypeError, match="verifier must be callable"): best_of_n(None, 3, [P], 2, candidates=cands)
    with pytest.raises(TypeError, match="policy must be a world GPT"): best_of_n(None, ObjVerifier(), [P], 2)
    with pytest.raises(ValueError, match="tasks is empty"): majority_vote(None, [], 1, candidates=[])
    with pytest.raises(ValueError, match="rule='best' needs scores"): accuracy_vs_n([P], cands, [1])
    with pytest.raises(ValueError, match="verifier score must be a finite number"): best_of_n(None, lambda p, c: float("nan"), [P], 2, candidates=cands)

def test_sample_candidates_from_a_gpt():
    m = tiny_gpt()
    cands = sample_candidates(m, [P, "calc 1 + 1 :"], 3, tokenizer=TOK, max_new_tokens=6, seed=0)
    assert [len(c) for c in cands] == [3, 3] and all(isinstance(c, str) for cs in cands for c in cs)
    assert cands == sample_candidates(m, [P, "calc 1 + 1 :"], 3, tokenizer=TOK, max_new_tokens=6, seed=0)   # seeded
    ch = best_of_n(m, outcome_oracle, [P], 3, tokenizer=TOK, max_new_tokens=6)
    assert len(ch.chosen) == 1 and ch.accuracy in (0.0, 1.0)

# ---------------------------------------------------------------- step metrics
@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), min_size=2, max_size=30))
def test_roc_auc_equals_the_pairwise_definition(pairs):
    y = [a for a, _ in pairs]; s = [b for _, b in pairs]
    pos = [b for a, b in pairs if a]; neg = [b for a, b in pairs if not a]
    if not pos or not neg: assert math.isnan(roc_auc(y, s)); return
    ref = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)])
    assert roc_auc(y, s) == pytest.approx(ref)

def test_first_error_and_step_metrics():
    assert first_error([0.9, 0.4, 0.1]) == 1 and first_error([0.9, 0.6]) is None and first_error([0.9, 0.6], 0.7) == 1
    m = step_metrics([[0.9, 0.2, 0.1], [0.8, 0.7]], [[1, 0, 0], [1, 0]])
    assert m["first-error accuracy"] == 0.5 and m["step accuracy"] == pytest.approx(0.8) and m["step AUC"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="1 has 1 scores for 2 labels"): step_metrics([[0.5], [0.5]], [[1], [1, 0]])

# ---------------------------------------------------------------- the widget trace
def test_trace_matches_the_verifiers():
    prm, orm = PRM(tiny_gpt(1), tokenizer=TOK), ORM(tiny_gpt(2), tokenizer=TOK)
    torch.nn.init.normal_(prm.head.weight, std=0.5); torch.nn.init.normal_(orm.head.weight, std=0.5)
    tasks = [P, "calc 3 + 4 :"]
    cands = [[RIGHT, WRONG2, LUCKY, ""], [chain("8"), "3 + 4 = 7 . answer 7 .", chain("8"), "3 + 4 = 6 . answer 6 ."]]
    tr = trace_process_reward(tasks, cands, prm, orm, ns=(1, 2, 4), curves={"ORM": [0.5, 0.5, 0.5], "other": [0]})
    assert tr["ns"] == [1, 2, 4] and set(tr["curves"]) == {"ORM"}
    for t, cs, pb in zip(tasks, cands, tr["problems"]):
        for c, row in zip(cs, pb["candidates"]):
            assert row["oracle"] == process_oracle(t, c) and row["steps"] == split_steps(c)
            if c: assert row["prm"] == pytest.approx(prm.score_steps(t, c), abs=1e-3) and row["orm"] == pytest.approx(orm.score(t, c), abs=1e-3)
        for k, n in enumerate(tr["ns"]):
            sub = [cs[:n]]
            assert pb["picks"]["PRM (min)"][k] == best_of_n(None, prm, [t], n, candidates=sub).index[0]
            assert pb["picks"]["ORM"][k] == best_of_n(None, orm, [t], n, candidates=sub).index[0]
            assert pb["picks"]["majority"][k] == majority_vote(None, [t], n, candidates=sub).index[0]
            assert pb["picks"]["oracle"][k] == best_of_n(None, outcome_oracle, [t], n, candidates=sub).index[0]
    with pytest.raises(ValueError, match="ns must be an int"): trace_process_reward(tasks, cands, prm, orm, ns=(8,))
