"Tests for llmlab.mixture_of_agents: the aggregate prompt round trip, majority-vote ties, layer wiring, oracle proposers, Self-MoA, training sets, outcomes, the widget trace, bad input."
import copy
import pytest, torch
from hypothesis import given, settings, strategies as st
from llmlab.mixture_of_agents import (aggregate_prompt, parse_aggregate_prompt, answer_of, kind_of, majority_vote, copy_majority,
                                      Proposer, MoAResult, mixture_of_agents, self_moa, best_single, proposer_accuracy, accuracy,
                                      candidate_scores, says, target_of, finetune, aggregator_examples, outcome,
                                      trace_mixture_of_agents, OPEN, NONE, Picker, pick_completion, copied_slots,
                                      repair_choice, select_margin)
from llmlab.gpt import pretrained, world_of, complete
from llmlab.world import Task

WORLD, TOK = world_of("world-tiny")
PROBE = WORLD.arithmetic_tasks(8, seed=3) + WORLD.fact_queries(8, relation="city", seed=3)

class Echo:
    "Answers 'answer <name><candidates read><sample> .' and records every prompt."
    def __init__(self, name): self.name, self.seen = name, []
    def propose(self, prompts, n=1, seed=0):
        self.seen += list(prompts)
        read = lambda p: len(parse_aggregate_prompt(p)[1]) if OPEN in p else 0
        return [[f"answer {self.name}{read(p)}{j} ." for j in range(n)] for p in prompts]

class Oracle:
    "Knows every answer of `tasks`, whatever the prompt around the question."
    def __init__(self, tasks): self.t = {t.prompt: t for t in tasks}
    def propose(self, prompts, n=1, seed=0):
        out = []
        for p in prompts:
            t = self.t[parse_aggregate_prompt(p)[0] if OPEN in p else p]
            out.append([f"answer {t.answer} ." if t.kind == "arith" else f"{t.answer} ."] * n)
        return out

class Fixed:
    "Always states the same answer."
    def __init__(self, ans): self.ans = ans
    def propose(self, prompts, n=1, seed=0): return [[self.ans] * n for _ in prompts]

word = st.sampled_from(["paris", "ada", "ford", "7", "42", "100"])
answer = st.one_of(st.none(), st.lists(word, min_size=1, max_size=3).map(" ".join))

@settings(max_examples=80, deadline=None)
@given(st.lists(answer, min_size=1, max_size=6), st.sampled_from(["calc 6 * 7 :", "ada ford lives in", "lia reed 's child is"]))
def test_aggregate_prompt_round_trip(cands, q):
    p = aggregate_prompt(q, cands)
    assert parse_aggregate_prompt(p) == (q, cands)
    assert TOK.encode(p).count(TOK.unk_id) == cands.count(None)   # strict: every other piece is in the world's vocabulary

def test_aggregate_prompt_cleans_and_rejects():
    assert parse_aggregate_prompt(aggregate_prompt("q x", ["a ; b", "", ". ,"]))[1] == ["a b", None, None]
    with pytest.raises(ValueError, match="non-empty list"): aggregate_prompt("q", [])
    with pytest.raises(ValueError, match="non-empty str"): aggregate_prompt("  ", ["a"])
    with pytest.raises(ValueError, match="marker"): aggregate_prompt(f"a {OPEN} b", ["a"])
    with pytest.raises(ValueError, match="not an aggregate prompt"): parse_aggregate_prompt("calc 1 + 2 :")
    with pytest.raises(TypeError, match="str or None"): aggregate_prompt("q", [3])

def test_answer_of_and_kind():
    assert answer_of("6 * 7 = 42 . answer 42 .") == "42" and answer_of("1 + 2 = 3 .") is None
    assert answer_of("paris . rome", "fact") == "paris"
    assert kind_of("calc 1 + 2 :") == "arith" and kind_of("ada ford lives in") == "fact" and kind_of(PROBE[-1]) == "fact"
    with pytest.raises(ValueError, match="kind"): answer_of("x", "story")
    with pytest.raises(TypeError): kind_of(3)

def test_majority_vote_ties_go_to_first_stated():
    assert majority_vote(["7", "9", "9", None]) == "9"
    assert majority_vote(["7", "9", "9", "7"]) == "7"
    assert majority_vote(["9", "7", "7", "9"]) == "9"
    assert majority_vote([None, "3"]) == "3" and majority_vote([None]) is None and majority_vote([]) is None
    with pytest.raises(TypeError): majority_vote("abc")
    with pytest.raises(TypeError, match=r"candidates\[1\]"): majority_vote(["a", 3])
    assert copy_majority("calc 1 + 2 :", ["3", "4", "3"]) == "answer 3 ." and copy_majority("ada ford lives in", [None]) == ""

@pytest.mark.parametrize("n_layers", [1, 2, 3])
@pytest.mark.parametrize("n_samples", [1, 2])
def test_layer_wiring(n_layers, n_samples):
    a, b = Echo("a"), Echo("b")
    r = mixture_of_agents([a, b], copy_majority, "calc 1 + 2 :", n_layers=n_layers, n_samples=n_samples)
    assert len(r.layers) == len(r.prompts) == n_layers and all(len(l) == 2 * n_samples for l in r.layers)
    assert r.prompts[0] == "calc 1 + 2 :"
    for l in range(1, n_layers):                                 # layer l reads exactly layer l-1's answers, in order
        assert parse_aggregate_prompt(r.prompts[l]) == ("calc 1 + 2 :", [answer_of(c) for c in r.layers[l - 1]])
    assert parse_aggregate_prompt(r.aggregate)[1] == [answer_of(c) for c in r.layers[-1]]
    assert a.seen == r.prompts and b.seen == r.prompts
    assert r.layers[0][:n_samples] == [f"answer a0{j} ." for j in range(n_samples)]   # proposer-major order

def test_batch_equals_one_by_one():
    tasks = PROBE[:4]
    batch = mixture_of_agents([Echo("a"), Oracle(tasks)], copy_majority, tasks, n_layers=2)
    one = [mixture_of_agents([Echo("a"), Oracle(tasks)], copy_majority, t, n_layers=2) for t in tasks]
    assert [r.completion for r in batch] == [r.completion for r in one] and isinstance(one[0], MoAResult)

@pytest.mark.parametrize("n_layers", [1, 2])
def test_oracle_proposers_with_copy_majority_are_perfect(n_layers):
    res = mixture_of_agents([Oracle(PROBE)] * 3, copy_majority, PROBE, n_layers=n_layers)
    assert accuracy(res, PROBE) == 1.0
    assert candidate_scores(res, PROBE) == {"majority": 1.0, "oracle": 1.0}
    assert {outcome(t, r) for t, r in zip(PROBE, res)} == {"picked"}

def test_majority_can_lose_where_the_oracle_wins():
    t = PROBE[0]
    wrong = Fixed(f"answer {int(t.answer) + 1} .")
    res = mixture_of_agents([Oracle([t]), wrong, wrong], copy_majority, [t])
    assert candidate_scores(res, [t]) == {"majority": 0.0, "oracle": 1.0}
    assert outcome(t, res[0]) == "broke"
    rep = mixture_of_agents([wrong], lambda q, a: target_of(t), [t])
    assert outcome(t, rep[0]) == "repaired"
    assert outcome(t, mixture_of_agents([wrong], copy_majority, [t])[0]) == "missed"

def test_bad_input():
    with pytest.raises(ValueError, match="proposers is empty"): mixture_of_agents([], copy_majority, "calc 1 + 2 :")
    with pytest.raises(ValueError, match="n_layers"): mixture_of_agents([Echo("a")], copy_majority, "calc 1 + 2 :", n_layers=0)
    with pytest.raises(ValueError, match="n_samples"): mixture_of_agents([Echo("a")], copy_majority, "calc 1 + 2 :", n_samples=0)
    with pytest.raises(TypeError, match="proposers must be a list"): mixture_of_agents(Echo("a"), copy_majority, "calc 1 + 2 :")
    with pytest.raises(TypeError, match=r"proposers\[0\]"): mixture_of_agents(["x"], copy_majority, "calc 1 + 2 :")
    with pytest.raises(TypeError, match="aggregator"): mixture_of_agents([Echo("a")], 3, "calc 1 + 2 :")
    with pytest.raises(ValueError, match="empty list"): mixture_of_agents([Echo("a")], copy_majority, [])
    with pytest.raises(ValueError, match=r"prompt\[0\]"): mixture_of_agents([Echo("a")], copy_majority, [" "])
    with pytest.raises(TypeError, match="must return a str"): mixture_of_agents([Echo("a")], lambda q, a: 3, "calc 1 + 2 :")
    with pytest.raises(ValueError, match="tasks is empty"): best_single([Echo("a")], [])
    with pytest.raises(ValueError, match="non-empty list"): best_single([], PROBE)
    with pytest.raises(ValueError, match="results for"): accuracy([], PROBE)
    with pytest.raises(TypeError, match="MoAResult"): outcome(PROBE[0], "x")

@pytest.fixture(scope="module")
def tiny():
    return pretrained("world-tiny").eval()

def test_proposer_decodes_like_complete_and_counts_flops(tiny):
    p = Proposer(tiny, "base")
    prompts = [t.prompt for t in PROBE[:6]]
    out = p.propose(prompts)
    ref = complete(tiny, [TOK.encode(q, bos=True) for q in prompts], 16, 0.0, (TOK.eos_id,))
    assert [o[0] for o in out] == [TOK.decode(r, skip_special=True) for r in ref]
    assert p.flops > 0 and len(out) == 6
    f = p.flops; p.propose(prompts); assert p.flops == pytest.approx(2 * f)
    s = p.with_temperature(1.0).propose(prompts[:2], n=4, seed=1)
    assert len(s) == 2 and all(len(x) == 4 for x in s)
    assert s == p.with_temperature(1.0).propose(prompts[:2], n=4, seed=1)     # seeded
    with pytest.raises(ValueError, match="temperature"): Proposer(tiny, temperature=-1)
    with pytest.raises(TypeError, match="torch module"): Proposer("model")
    with pytest.raises(ValueError, match="name"): Proposer(tiny, "")
    i, acc = best_single([p, Fixed("nothing")], PROBE)
    assert i == 0 and acc[1] == 0.0 and acc[0] == proposer_accuracy(p, PROBE)

def test_self_moa(tiny):
    r = self_moa(Proposer(tiny, "base"), copy_majority, PROBE[:3], k=3, temperature=1.0)
    assert all(len(x.layers[0]) == 3 for x in r)
    with pytest.raises(ValueError, match="temperature > 0"): self_moa(tiny, copy_majority, "calc 1 + 2 :", k=2, temperature=0)

def test_finetune_copies_and_learns(tiny):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    m, losses = finetune(tiny, [("calc 6 * 7 :", "6 * 7 = 42 . answer 42 .")], steps=8, lr=3e-3)
    assert all(torch.equal(v, tiny.state_dict()[k]) for k, v in before.items())       # the base is untouched
    assert losses[-1] < losses[0]
    a, _ = finetune(tiny, [("calc 6 * 7 :", "6 * 7 = 42 . answer 42 .")], steps=3, lr=3e-3, train="attention")
    moved = {k for k, v in a.state_dict().items() if not torch.equal(v, tiny.state_dict()[k])}
    assert moved and all(".attn." in k for k in moved)                                 # the MLPs and embeddings stay frozen
    assert all(p.requires_grad for p in a.parameters())
    with pytest.raises(ValueError, match="train"): finetune(tiny, [("calc 1 + 2 :", "answer 3 .")], train="mlp")
    with pytest.raises(ValueError, match="pairs is empty"): finetune(tiny, [])
    with pytest.raises(TypeError, match=r"pairs\[0\]"): finetune(tiny, [("a",)])
    with pytest.raises(TypeError, match="GPT"): finetune(torch.nn.Linear(2, 2), [("a", "b")])

def test_target_of():
    t = Task("calc 6 * 7 :", "42", "arith", {"solution": "6 * 7 = 42 . answer 42 ."})
    assert target_of(t) == "6 * 7 = 42 . answer 42 ." and target_of(t, "13") == "6 * 7 = 13 . answer 13 ."
    assert t.check(target_of(t)) and not t.check(target_of(t, "13"))
    assert target_of(Task("ada ford lives in", "paris", "fact"), "lima") == "lima ."
    assert target_of(Task("calc 1 + 2 :", "3", "arith")) == "answer 3 ."
    assert target_of(t, "13", worked=False) == "answer 13 ." == pick_completion(t.prompt, "13")
    assert pick_completion("ada ford lives in", "lima") == "lima ." and t.check(target_of(t, worked=False))
    with pytest.raises(TypeError, match="worked"): target_of(t, worked=1)
    with pytest.raises(ValueError, match="answer"): pick_completion("calc 1 + 2 :", " ")

def test_aggregator_examples_pick_repair_counterfactual():
    tasks = PROBE
    wrong = Fixed("answer 1000 .")
    ex, st_ = aggregator_examples(tasks, [wrong, Oracle(tasks)], k=2, rounds=1, swaps=2, seed=0)
    assert st_["right, not first"] == len(tasks) and st_["first right"] == 0      # the right one is second, every time
    assert st_["counterfactual"] == 2 * len(tasks) and len(ex) == 3 * len(tasks)
    for p, tgt in ex:                                             # the target states the answer in the right slot
        q, answers = parse_aggregate_prompt(p)
        t = next(x for x in tasks if x.prompt == q)
        assert answer_of(tgt, kind_of(t)) == answers[1]
    ex2, st2 = aggregator_examples(tasks, [Oracle(tasks)], k=1, rounds=1, p_repair=1.0, solver=Oracle(tasks))
    assert st2["repair"] == len(tasks) and st2["none right"] == len(tasks) and st2["counterfactual"] == 0
    assert all(parse_aggregate_prompt(p)[1][0] != answer_of(tgt, kind_of(p)) for p, tgt in ex2)   # candidates wrong, target right
    _, st3 = aggregator_examples(tasks, [wrong], k=1, rounds=1)
    assert st3["left out"] == len(tasks) and st3["sets"] == 0
    with pytest.raises(ValueError, match="multiple"): aggregator_examples(tasks, [wrong, wrong], k=3)
    with pytest.raises(ValueError, match="proposers is empty"): aggregator_examples(tasks, [], k=1)
    with pytest.raises(ValueError, match="p_repair"): aggregator_examples(tasks, [wrong], k=1, p_repair=2)

def test_trace_matches_outcomes():
    t = PROBE[0]
    wrong = Fixed(f"answer {int(t.answer) + 1} .")
    res = mixture_of_agents([Oracle(PROBE), wrong], copy_majority, PROBE, n_layers=2)
    tr = trace_mixture_of_agents(PROBE, res, ["oracle", "wrong"], summary={"MoA": accuracy(res, PROBE)})
    assert len(tr["questions"]) == len(PROBE)
    for q, r, task in zip(tr["questions"], res, PROBE):
        assert [c["correct"] for c in q["layers"][0]] == [says(task, answer_of(c, kind_of(task))) for c in r.layers[0]]
        assert q["final"]["outcome"] == outcome(task, r) and q["final"]["correct"] == task.check(r.completion)
    assert tr["summary"][0]["accuracy"] == round(accuracy(res, PROBE), 4)
    with pytest.raises(ValueError, match="names"): trace_mixture_of_agents(PROBE, res, ["one"])
    with pytest.raises(ValueError, match="results for"): trace_mixture_of_agents(PROBE, res[:2], ["a", "b"])

def test_aggregator_examples_pick_format_and_swap_known():
    tasks = PROBE
    wrong = Fixed("answer 1000 .")
    ex, st_ = aggregator_examples(tasks, [wrong, Oracle(tasks)], k=2, rounds=1, swaps=2, fmt="pick", seed=0)
    for p, tgt in ex:                                             # picks are the short format, stating the right slot
        q, answers = parse_aggregate_prompt(p)
        assert tgt == pick_completion(q, answers[1])
    _, known = aggregator_examples(tasks, [wrong, Oracle(tasks)], k=2, rounds=1, swaps=2, solver=Oracle(tasks), p_repair=0.0)
    assert known["counterfactual"] == 0                           # the solver knows every answer: no copies by default
    exk, known2 = aggregator_examples(tasks, [wrong, Oracle(tasks)], k=2, rounds=1, swaps=2, solver=Oracle(tasks), p_repair=0.0,
                                      swap_known=True, fmt="pick")
    assert known2["counterfactual"] == 2 * len(tasks) and len(exk) == 3 * len(tasks)
    ex_rep, _ = aggregator_examples(tasks, [wrong], k=1, rounds=1, solver=Oracle(tasks), p_repair=1.0, fmt="pick")
    assert [tgt for _, tgt in ex_rep] == [target_of(t) for t in tasks]      # repair targets keep the worked format
    with pytest.raises(ValueError, match="fmt"): aggregator_examples(tasks, [wrong], k=1, fmt="short")
    with pytest.raises(TypeError, match="swap_known"): aggregator_examples(tasks, [wrong], k=1, swap_known=1)

def test_picker_scores_are_the_models_log_probs_and_it_only_picks(tiny):
    pk = Picker(tiny)
    q = "calc 3 + 4 :"
    prompts = [aggregate_prompt(q, ["9", "7", None, "9"]), aggregate_prompt("ada ford lives in", ["lima", "paris"]),
               aggregate_prompt(q, [None, None])]
    sc = pk.scores(prompts)
    assert set(sc[0]) == {"9", "7"} and set(sc[1]) == {"lima", "paris"} and sc[2] == {}
    for (p, s) in zip(prompts[:2], sc[:2]):                     # each score = the unpadded log-prob of its completion + <eos>
        qq = parse_aggregate_prompt(p)[0]
        for a, v in s.items():
            x, y = TOK.encode(p, bos=True), TOK.encode(pick_completion(qq, a), eos=True)
            logp = torch.log_softmax(tiny(torch.tensor([x + y[:-1]]))[0][0], -1)
            assert v == pytest.approx(sum(logp[len(x) - 1 + j, t].item() for j, t in enumerate(y)), abs=1e-4)
    out = pk.propose(prompts, n=2)
    assert out[0] == [pick_completion(q, max(sc[0], key=sc[0].get))] * 2 and out[1][0] in ("lima .", "paris .")
    assert isinstance(out[2][0], str) and pk.flops > 0            # nothing stated: the model's own greedy completion
    res = mixture_of_agents([Fixed("answer 7 ."), Fixed("answer 9 .")], pk, [q, q])
    assert {r.answer for r in res} <= {"7", "9"}
    with pytest.raises(ValueError, match="not an aggregate prompt"): pk.propose([q])
    with pytest.raises(TypeError, match="list of aggregate prompts"): pk.scores(q)
    with pytest.raises(TypeError, match="torch module"): Picker("model")

def test_copied_slots():
    t = PROBE[0]
    wrong = Fixed(f"answer {int(t.answer) + 1} .")
    res = mixture_of_agents([wrong, Oracle([t]), Oracle([t])], copy_majority, [t])
    assert copied_slots(res, [t]) == {"slot 1+2": 1}
    res2 = mixture_of_agents([wrong], lambda q, a: "answer 5000 .", [t])
    assert copied_slots(res2, [t]) == {"none": 1}
    with pytest.raises(ValueError, match="results for"): copied_slots(res, PROBE[:2])

def test_picker_repair_writes_its_own_answer_where_no_candidate_is_right(tiny):
    base = Proposer(tiny, "base")
    outs = base.propose([t.prompt for t in PROBE])
    t = next(t for t, o in zip(PROBE, outs) if t.check(o[0]) and t.kind == "arith")      # a question tiny computes alone
    wrong = [str(int(t.answer) + 1), str(int(t.answer) + 2)]
    z = aggregate_prompt(t.prompt, wrong)
    o = Picker(tiny, repair=True).options([z])[0]
    assert o["own"] == outs[PROBE.index(t)][0] and o["own answer"] == t.answer        # the same greedy completion, from z
    own, best = o["own score"], max(o["candidates"].values())
    x, y = TOK.encode(z, bos=True), TOK.encode(pick_completion(t.prompt, t.answer), eos=True)   # scored as the candidates are
    logp = torch.log_softmax(tiny(torch.tensor([x + y[:-1]]))[0][0], -1)
    assert own == pytest.approx(sum(logp[len(x) - 1 + j, v].item() for j, v in enumerate(y)), abs=1e-4)
    cands = [Fixed(f"answer {w} .") for w in wrong]
    wins = mixture_of_agents(cands, Picker(tiny, repair=True, margin=own - best - 1.0), [t])[0]
    assert wins.completion == o["own"] and outcome(t, wins) == "repaired"
    loses = mixture_of_agents(cands, Picker(tiny, repair=True, margin=own - best + 1.0), [t])[0]
    pure = mixture_of_agents(cands, Picker(tiny), [t])[0]
    assert loses.completion == pure.completion and loses.answer in wrong and outcome(t, pure) == "missed"   # a pure picker cannot repair
    assert repair_choice(o, own - best - 1.0) is None and repair_choice(o, own - best + 1.0) in wrong
    pk = Picker(tiny, repair=True); pk.options([z]); assert pk.flops > 0

def test_picker_repair_keeps_a_stated_own_answer_as_a_pick(tiny):
    t = Task("calc 3 + 4 :", "7", "arith")
    o = Picker(tiny, repair=True).options([aggregate_prompt(t.prompt, ["9", "7"]), aggregate_prompt(t.prompt, [None])])
    if o[0]["own answer"] in ("9", "7"): assert o[0]["own score"] is None          # already a candidate: no extra option
    assert o[1]["candidates"] == {} and repair_choice(o[1], 5.0) is None           # nothing stated: its own completion

def test_select_margin_and_repair_choice():
    tasks = [Task("calc 1 + 2 :", "3", "arith"), Task("calc 2 + 2 :", "4", "arith")]
    opts = [{"candidates": {"5": -3.0}, "own": "answer 3 .", "own answer": "3", "own score": -4.0},        # own right, 1 nat below
            {"candidates": {"4": -1.0, "6": -2.0}, "own": "answer 9 .", "own answer": "9", "own score": -4.5}]  # pick right
    assert repair_choice(opts[0], 0.0) == "5" and repair_choice(opts[0], -2.0) is None
    assert repair_choice({"candidates": {"a": -1.0, "b": -1.0}, "own score": None}) == "a"             # ties: stated first
    m, acc = select_margin(opts, tasks, [2.0, 0.0, -1.2, -5.0])
    assert acc == {2.0: 0.5, 0.0: 0.5, -1.2: 1.0, -5.0: 0.5} and m == -1.2
    m2, _ = select_margin(opts, tasks, [3.0, 1.0])
    assert m2 == 3.0                                                                # ties: the largest margin
    with pytest.raises(ValueError, match="one Picker.options entry per task"): select_margin(opts[:1], tasks, [0.0])
    with pytest.raises(ValueError, match="margins"): select_margin(opts, tasks, [])
    with pytest.raises(ValueError, match="finite"): select_margin(opts, tasks, [float("nan")])
    with pytest.raises(TypeError, match="option"): repair_choice("x")

def test_picker_repair_arguments(tiny):
    assert Picker(tiny).repair is False and Picker(tiny).margin == 0.0                 # the default stays the pure picker
    with pytest.raises(TypeError, match="repair"): Picker(tiny, repair=1)
    with pytest.raises(ValueError, match="only applies with repair=True"): Picker(tiny, margin=1.0)
    with pytest.raises(ValueError, match="margin"): Picker(tiny, repair=True, margin=float("inf"))
    with pytest.raises(TypeError, match="margin"): Picker(tiny, repair=True, margin="0")
