"""The world corpus: determinism, round trip, label alignment, exact checkers, errors."""
import hashlib, subprocess, sys
import pytest, torch
from hypothesis import given, settings, strategies as st
from llmlab.world import (World, Tokenizer, dataset, label_sentiment, detokenize, Task, TAGS, SENTIMENTS, CITIES, JOBS,
                          COLOURS, FIRST, LAST, OPS, HAPPY, SAD)

WORLD = World(0)
TOK = Tokenizer.from_world(WORLD)
# sha256 of World(0).corpus(500, seed=0, error_rate=0.1): the same bytes on every machine and Python process
CORPUS_SHA256 = "6678e590e29b3ed41b432cefb8ac8fd81331e972a0ec225227aa6e2ac2ebb535"

def corpus_hash():
    return hashlib.sha256("\n".join(d.text for d in World(0).corpus(500, seed=0, error_rate=0.1)).encode()).hexdigest()

def test_corpus_is_byte_identical_to_the_snapshot():
    assert corpus_hash() == CORPUS_SHA256

def test_corpus_is_deterministic_across_processes():
    "Python salts str hashes per process (PYTHONHASHSEED); the generator must not depend on them."
    code = "import sys; sys.path.insert(0, '.'); from tests.test_world import corpus_hash; print(corpus_hash())"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONHASHSEED": s, "PATH": ""},
                           cwd=__import__("pathlib").Path(__file__).parents[1]).stdout.strip() for s in ("1", "2")}
    assert outs == {CORPUS_SHA256}

@given(st.integers(0, 10_000), st.floats(0, 1))
@settings(max_examples=25, deadline=None)
def test_round_trip_and_label_alignment(seed, error_rate):
    for d in WORLD.corpus(20, seed=seed, error_rate=error_rate):
        assert TOK.decode(TOK.encode(d.text)) == d.text
        assert len(d.tokens) == len(d.tags) == len(d.sentence)
        assert TOK.split(d.text) == d.tokens
        for t, g in zip(d.tokens, d.tags):
            assert g in TAGS
            if g == "NUMBER": assert t.isdigit()
            if g == "OPERATOR": assert t in OPS or t == "="
            if g == "NAME": assert t in FIRST or t in LAST
            if g == "CITY": assert t in CITIES
            if g == "JOB": assert t in JOBS
            if g == "COLOUR": assert t in COLOURS
            if g == "SENTIMENT": assert t in HAPPY or t in SAD
        for s in d.steps:
            assert (OPS[s["op"]](s["a"], s["b"]) == s["c"]) == s["correct"]
            assert s["c"] >= 0
        if d.kind == "arith":
            assert d.answer == d.steps[-1]["c"]
            if all(s["correct"] for s in d.steps): assert d.answer == d.true_answer
        if d.kind == "story":
            for text, lab in zip(" ".join(d.tokens).split(" . "), d.sentences):
                assert label_sentiment(text) == lab["sentiment"]

def test_facts_are_stated_in_one_direction_only():
    text = " ".join(d.text for d in WORLD.corpus(3000, seed=1))
    assert "'s parent is" in text and "'s child is" not in text

def test_error_rate_controls_wrong_steps():
    steps = [s for d in WORLD.corpus(3000, seed=2, error_rate=0.25, mix={"arith": 1}) for s in d.steps]
    rate = 1 - sum(s["correct"] for s in steps) / len(steps)
    assert 0.2 < rate < 0.3
    assert all(s["correct"] for d in WORLD.corpus(300, seed=2, mix={"arith": 1}) for s in d.steps)

def test_arithmetic_checker_accepts_the_answer_and_rejects_near_misses():
    for t in WORLD.arithmetic_tasks(50, steps=(1, 3), ops=("+", "-", "*"), seed=4):
        sol = t.meta["solution"]
        assert t.check(sol) and t.check(sol + " <eos>")
        assert not t.check(sol.replace(f"answer {t.answer} .", f"answer {int(t.answer) + 1} ."))      # off by one
        assert not t.check(sol.replace(f"answer {t.answer} .", f"answer {int(t.answer) - 1} ."))
        assert not t.check(sol.replace(f"answer {t.answer} .", f"answer {t.answer} 0 ."))            # extra tokens
        assert not t.check(sol.replace(f"answer {t.answer} .", f"answer {t.answer}0 ."))
        assert not t.check(sol.split(" answer")[0])                                                 # no answer
        assert TOK.decode(TOK.encode(t.prompt + " " + sol)) == t.prompt + " " + sol

def test_addition_tasks_are_correct():
    for t in WORLD.arithmetic_tasks(100, digits=2, seed=0):
        a, b = (int(x) for x in t.prompt.split()[1::2][:2])
        assert int(t.answer) == a + b

def test_fact_queries():
    people = {p["name"]: p for p in WORLD.people}
    for q in WORLD.fact_queries(50, "forward", "city", seed=0):
        assert people[q.prompt.rsplit(" lives in", 1)[0]]["city"] == q.answer and q.check(q.answer + " .")
        assert not q.check(q.answer + " " + q.answer + " .")
    for q in WORLD.fact_queries(50, "reverse", "parent", seed=0):
        child = people[q.answer]
        assert WORLD.people[child["parent"]]["name"] == q.prompt.rsplit(" 's child is", 1)[0]

def test_sentiment_pairs_differ_only_in_sentiment():
    for h, s in WORLD.sentiment_pairs(100, seed=3):
        assert label_sentiment(h) == "happy" and label_sentiment(s) == "sad"
        diff = [(a, b) for a, b in zip(h.split(), s.split()) if a != b]
        assert len(diff) == 1 and len(h.split()) == len(s.split())

def test_tokenizer_specials_and_unknown_words():
    assert TOK.vocab_size <= 1024 and TOK.itos[:5] == ["<pad>", "<bos>", "<eos>", "<mask>", "<unk>"]
    assert TOK.encode("ada", bos=True, eos=True)[0] == TOK.bos_id and TOK.encode("ada", eos=True)[-1] == TOK.eos_id
    assert TOK.decode([TOK.bos_id, *TOK.encode("ada ford"), TOK.eos_id], skip_special=True) == "ada ford"
    with pytest.raises(ValueError, match="unknown word 'dragon'"): TOK.encode("ada saw a dragon")
    assert Tokenizer.from_world(WORLD, strict=False).encode("dragon") == [TOK.unk_id]
    with pytest.raises(ValueError, match="out of range"): TOK.decode([TOK.vocab_size])
    assert detokenize(["calc", "1", "2", "+", "3"]) == "calc 12 + 3"

def test_dataset_windows_and_labels():
    docs = WORLD.corpus(300, seed=0)
    data = dataset(TOK, docs, 32)
    assert data.x.shape == data.y.shape == data.tags.shape == data.sentiment.shape
    assert torch.equal(data.x[:, 1:], data.y[:, :-1])
    stream = [TOK.bos_id] + TOK.encode(docs[0].text) + [TOK.eos_id]
    assert data.x[0, :len(stream)].tolist() == stream[:32]
    for y, g in zip(data.y.flatten().tolist(), data.tags.flatten().tolist()):
        if TAGS[g] == "NUMBER": assert TOK.itos[y].isdigit()
        if TAGS[g] == "CITY": assert TOK.itos[y] in CITIES
    assert set(data.sentiment.unique().tolist()) <= set(range(len(SENTIMENTS)))
    x, y = data.batch(4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 32)

@pytest.mark.parametrize("call, msg", [
    (lambda: World(n_entities=1), "n_entities"),
    (lambda: WORLD.corpus(-1), "n_docs must be"),
    (lambda: WORLD.corpus(5, error_rate=2), "error_rate"),
    (lambda: WORLD.corpus(5, mix={"poems": 1}), "unknown document kinds"),
    (lambda: WORLD.fact_queries(3, direction="sideways"), "direction must be"),
    (lambda: WORLD.fact_queries(3, "reverse", "city"), "reverse queries"),
    (lambda: WORLD.fact_queries(-2), "n must be"),
    (lambda: WORLD.arithmetic_tasks(3, ops=("/",)), "ops must be"),
    (lambda: WORLD.arithmetic_tasks(3, steps=0), "steps must be"),
    (lambda: WORLD.sentiment_pairs(-1), "n must be"),
    (lambda: dataset(TOK, WORLD.corpus(2), 1), "ctx_len"),
    (lambda: dataset(TOK, [], 8), "docs is empty"),
])
def test_errors_name_the_argument(call, msg):
    with pytest.raises(ValueError, match=msg): call()

def test_wrong_steps_carried_on_never_go_negative():
    # regression (found by hypothesis): a step written too low, carried into a later subtraction, gave
    # "calc 86 - 25 - 60 : 86 - 25 = 58 ; 58 - 60 = - 2 . answer - 2 ." (seed 252, error_rate 0.5)
    bad = next(d for d in WORLD.corpus(20, seed=252, error_rate=0.5) if d.text.startswith("calc 86 - 25 - 60"))
    assert [s["c"] for s in bad.steps] == [64, 4] and bad.answer == 4 and bad.true_answer == 1   # now errs upwards (61 + 3)
    for seed in range(20):
        for d in WORLD.corpus(100, seed=seed, mix={"arith": 1}, error_rate=0.6, arith_steps=(2, 3), arith_digits=1):
            assert all(s["c"] >= 0 and s["a"] >= 0 for s in d.steps) and d.answer >= 0, d.text
            assert d.steps[-1]["c"] == d.answer
            assert all(s["correct"] == (s["c"] == {"+": s["a"] + s["b"], "-": s["a"] - s["b"], "*": s["a"] * s["b"]}[s["op"]])
                       for s in d.steps)

# ---- bad input: every public function, wrong types, NaN/inf, empty, zero, huge ---------------------------------------
import math
import numpy as np
from llmlab.world import Doc, LMData, MAX_RARE, MAX_DIGITS

NAN, INF = float("nan"), float("inf")
TASK = Task("calc 1 + 1 :", "2")
DOCS = WORLD.corpus(30, seed=0)
DATA = dataset(TOK, DOCS, 16)
L2 = torch.zeros(2, 4, dtype=torch.long)

BAD_INPUT = [
    # World: every knob validated at construction
    (lambda: World(seed=1.5), TypeError, "seed must be an int, got 1.5"),
    (lambda: World(seed="0"), TypeError, "seed must be an int, got '0'"),
    (lambda: World(seed=None), TypeError, "seed must be an int, got None"),
    (lambda: World(seed=NAN), TypeError, "seed must be an int"),
    (lambda: World(n_entities=1), ValueError, "n_entities must be an int in [2, 1170], got 1"),
    (lambda: World(n_entities=2.5), TypeError, "n_entities must be an int, got 2.5"),
    (lambda: World(n_entities=True), TypeError, "n_entities must be an int, got True"),
    (lambda: World(n_rare=0), ValueError, "n_rare must be an int in [1, 100000], got 0"),
    (lambda: World(n_rare=2.5), TypeError, "n_rare must be an int, got 2.5"),
    (lambda: World(n_rare="3"), TypeError, "n_rare must be an int, got '3'"),
    (lambda: World(n_rare=NAN), TypeError, "n_rare must be an int, got nan"),
    (lambda: World(n_rare=10**9), ValueError, f"n_rare must be an int in [1, {MAX_RARE}]"),
    (lambda: World(zipf_a=NAN), ValueError, "zipf_a must be a finite number, got nan"),
    (lambda: World(zipf_a=INF), ValueError, "zipf_a must be a finite number, got inf"),
    (lambda: World(zipf_a=-1.0), ValueError, "zipf_a must be > 0, got -1.0"),
    (lambda: World(zipf_a=0.0), ValueError, "zipf_a must be > 0, got 0.0"),
    (lambda: World(zipf_a="x"), TypeError, "zipf_a must be a number, got 'x'"),
    (lambda: World(zipf_a=None), TypeError, "zipf_a must be a number, got None"),
    # corpus
    (lambda: WORLD.corpus(2.5), TypeError, "n_docs must be an int, got 2.5"),
    (lambda: WORLD.corpus("3"), TypeError, "n_docs must be an int"),
    (lambda: WORLD.corpus(5, seed=None), TypeError, "seed must be an int, got None"),
    (lambda: WORLD.corpus(5, error_rate=NAN), ValueError, "error_rate must be a finite number, got nan"),
    (lambda: WORLD.corpus(5, error_rate="x"), TypeError, "error_rate must be a number, got 'x'"),
    (lambda: WORLD.corpus(5, mix="story"), TypeError, "mix must be a dict of kind -> weight, got str"),
    (lambda: WORLD.corpus(5, mix={}), ValueError, "mix must name at least one kind"),
    (lambda: WORLD.corpus(5, mix={"bogus": 1}), ValueError, "mix has unknown document kinds ['bogus']"),
    (lambda: WORLD.corpus(5, mix={"story": NAN}), ValueError, "mix['story'] must be a finite number, got nan"),
    (lambda: WORLD.corpus(5, mix={"story": 1, "facts": NAN}), ValueError, "mix['facts'] must be a finite number"),
    (lambda: WORLD.corpus(5, mix={"story": INF}), ValueError, "mix['story'] must be a finite number, got inf"),
    (lambda: WORLD.corpus(5, mix={"story": -1, "facts": 2}), ValueError, "mix['story'] must be >= 0, got -1.0"),
    (lambda: WORLD.corpus(5, mix={"story": 0, "facts": 0}), ValueError, "mix weights must not all be 0"),
    (lambda: WORLD.corpus(5, mix={"story": "1"}), TypeError, "mix['story'] must be a number, got '1'"),
    (lambda: WORLD.corpus(5, arith_steps=(0, 0)), ValueError, "arith_steps[0] must be an int >= 1, got 0"),
    (lambda: WORLD.corpus(5, arith_steps=(-1, 2)), ValueError, "arith_steps[0] must be an int >= 1, got -1"),
    (lambda: WORLD.corpus(5, arith_steps=(2, 1)), ValueError, "arith_steps must have min <= max, got (2, 1)"),
    (lambda: WORLD.corpus(5, arith_steps=(1,)), TypeError, "arith_steps must be a (min, max) pair of ints, got (1,)"),
    (lambda: WORLD.corpus(5, arith_steps=(1.5, 2)), TypeError, "arith_steps[0] must be an int, got 1.5"),
    (lambda: WORLD.corpus(5, arith_steps=None), TypeError, "arith_steps must be a (min, max) pair"),
    (lambda: WORLD.corpus(5, arith_digits=0), ValueError, f"arith_digits must be an int in [1, {MAX_DIGITS}], got 0"),
    (lambda: WORLD.corpus(5, arith_digits=2.5), TypeError, "arith_digits must be an int, got 2.5"),
    (lambda: WORLD.corpus(5, arith_digits=None), TypeError, "arith_digits must be an int, got None"),
    (lambda: WORLD.corpus(5, arith_digits=10_000), ValueError, "arith_digits must be an int in [1, 100]"),
    (lambda: WORLD.corpus(5, arith_ops=()), ValueError, "arith_ops must be a non-empty subset of ['+', '-', '*'], got ()"),
    (lambda: WORLD.corpus(5, arith_ops=("^",)), ValueError, "arith_ops must be a non-empty subset"),
    (lambda: WORLD.corpus(5, arith_ops=("+", 3)), ValueError, "arith_ops must be a non-empty subset"),
    (lambda: WORLD.corpus(5, arith_ops=None), TypeError, "arith_ops must be a tuple of operators"),
    (lambda: WORLD.corpus(5, story_len=(0, 0)), ValueError, "story_len[0] must be an int >= 1, got 0"),
    (lambda: WORLD.corpus(5, story_len=(-1, 2)), ValueError, "story_len[0] must be an int >= 1"),
    (lambda: WORLD.corpus(5, story_len=(3, 1)), ValueError, "story_len must have min <= max"),
    (lambda: WORLD.corpus(5, story_len=(2,)), TypeError, "story_len must be a (min, max) pair"),
    (lambda: WORLD.corpus(5, facts_per_doc=(-1, 2)), ValueError, "facts_per_doc[0] must be an int in [1, 4], got -1"),
    (lambda: WORLD.corpus(5, facts_per_doc=(2, 5)), ValueError, "facts_per_doc[1] must be an int in [1, 4], got 5"),
    (lambda: WORLD.corpus(5, facts_per_doc=(3, 1)), ValueError, "facts_per_doc must have min <= max"),
    (lambda: WORLD.corpus(5, facts_per_doc=None), TypeError, "facts_per_doc must be a (min, max) pair"),
    # probes
    (lambda: WORLD.sentiment_pairs("a"), TypeError, "n must be an int, got 'a'"),
    (lambda: WORLD.sentiment_pairs(3, seed=1.5), TypeError, "seed must be an int"),
    (lambda: WORLD.fact_queries(2.5), TypeError, "n must be an int, got 2.5"),
    (lambda: WORLD.fact_queries(3, relation="bogus"), ValueError, "relation must be one of 'city', 'job', 'colour', 'parent'"),
    (lambda: WORLD.arithmetic_tasks(3, digits=2.5), TypeError, "digits must be an int, got 2.5"),
    (lambda: WORLD.arithmetic_tasks(3, digits=0), ValueError, "digits must be an int in [1, 100], got 0"),
    (lambda: WORLD.arithmetic_tasks(3, steps=(3, 1)), ValueError, "steps must have min <= max, got (3, 1)"),
    (lambda: WORLD.arithmetic_tasks(3, steps=1.5), TypeError, "steps must be a (min, max) pair of ints, got 1.5"),
    (lambda: WORLD.arithmetic_tasks(3, ops=()), ValueError, "ops must be a non-empty subset"),
    (lambda: WORLD.arithmetic_tasks(3, ops=("%",)), ValueError, "ops must be a non-empty subset"),
    # text helpers and the tokenizer
    (lambda: label_sentiment(None), TypeError, "sentence must be a str, got NoneType"),
    (lambda: label_sentiment(123), TypeError, "sentence must be a str, got int"),
    (lambda: detokenize(None), TypeError, "tokens must be a list of token strings, got NoneType"),
    (lambda: detokenize("abc"), TypeError, "tokens must be a list of token strings, got str"),
    (lambda: detokenize([1, 2]), TypeError, "tokens[0] must be a str, got 1 (int)"),
    (lambda: Tokenizer([]), ValueError, "vocab is empty"),
    (lambda: Tokenizer(None), TypeError, "vocab must be a list of words, got NoneType"),
    (lambda: Tokenizer("abc"), TypeError, "vocab must be a list of words, got str"),
    (lambda: Tokenizer(["a", 3]), TypeError, "vocab[1] must be a str, got 3 (int)"),
    (lambda: Tokenizer(["a", "b c"]), ValueError, "vocab[1] must be one word without spaces, got 'b c'"),
    (lambda: Tokenizer(["a", ""]), ValueError, "vocab[1] must be one word without spaces"),
    (lambda: Tokenizer(["a", "a"]), ValueError, "vocab has duplicate entries"),
    (lambda: Tokenizer(["a"], strict="yes"), TypeError, "strict must be a bool"),
    (lambda: Tokenizer.from_world("x"), TypeError, "world must be a World, got str"),
    (lambda: TOK.encode(123), TypeError, "text must be a str, got int"),
    (lambda: TOK.encode(None), TypeError, "text must be a str, got NoneType"),
    (lambda: TOK.encode("ada", bos="yes"), TypeError, "bos must be True or False, got 'yes'"),
    (lambda: TOK.encode("ada", eos=1), TypeError, "eos must be True or False, got 1"),
    (lambda: TOK.encode(["ada"]), TypeError, "text must be a str, got list"),
    (lambda: Tokenizer.split(b"ada"), TypeError, "text must be a str, got bytes"),
    (lambda: TOK.decode([10**6]), ValueError, "ids[0] = 1000000: token id out of range for vocab_size"),
    (lambda: TOK.decode([5, -1]), ValueError, "ids[1] = -1: token id out of range"),
    (lambda: TOK.decode(None), TypeError, "ids must be a list of integer token ids, got NoneType"),
    (lambda: TOK.decode("abc"), TypeError, "ids must be a list of integer token ids, got str"),
    (lambda: TOK.decode([1.5]), TypeError, "ids[0] must be an integer token id, got 1.5 (float)"),
    (lambda: TOK.decode([True]), TypeError, "ids[0] must be an integer token id, got True"),
    (lambda: TOK.decode(torch.tensor([1.0, 2.0])), TypeError, "ids must hold integer token ids, got dtype torch.float32"),
    (lambda: TOK.decode(np.array([1.0])), TypeError, "ids must hold integer token ids, got dtype float64"),
    (lambda: TOK.decode(torch.zeros(2, 3, dtype=torch.long)), ValueError, "ids must be 1-D (one sequence), got shape (2, 3)"),
    # tasks
    (lambda: TASK.check(None), TypeError, "completion must be a str (decode token ids first), got NoneType"),
    (lambda: TASK.check(123), TypeError, "completion must be a str"),
    (lambda: TASK.check([5, 6]), TypeError, "completion must be a str"),
    (lambda: Task(None, "2"), TypeError, "Task: prompt must be a str, got None"),
    (lambda: Task("p", 2), TypeError, "Task: answer must be a str, got 2 (int)"),
    (lambda: Task("p", "2", meta=[]), TypeError, "Task: meta must be a dict"),
    # language-model data
    (lambda: dataset(None, DOCS, 16), TypeError, "tokenizer must be a Tokenizer, got NoneType"),
    (lambda: dataset(TOK, ["a", "b"], 16), TypeError, "docs[0] must be a Doc, got str"),
    (lambda: dataset(TOK, "abc", 16), TypeError, "docs must be a list of Doc, got str"),
    (lambda: dataset(TOK, DOCS, 2.5), TypeError, "ctx_len must be an int, got 2.5"),
    (lambda: dataset(TOK, DOCS, None), TypeError, "ctx_len must be an int, got None"),
    (lambda: dataset(TOK, DOCS, 0), ValueError, "ctx_len must be an int >= 2, got 0"),
    (lambda: dataset(TOK, DOCS, 10**6), ValueError, "not enough for one window of ctx_len=1000000"),
    (lambda: dataset(TOK, [Doc("story", ["ada"], [], [0], [{}])], 4), ValueError, "docs[0]: tokens, tags and sentence must have one entry per token"),
    (lambda: dataset(TOK, [Doc("poem", ["ada"], ["NAME"], [0], [{}])], 4), ValueError, "docs[0].kind must be one of"),
    (lambda: DATA.batch(0), ValueError, "batch_size must be an int >= 1, got 0"),
    (lambda: DATA.batch(-1), ValueError, "batch_size must be an int >= 1, got -1"),
    (lambda: DATA.batch(2.5), TypeError, "batch_size must be an int, got 2.5"),
    (lambda: DATA.batch(None), TypeError, "batch_size must be an int, got None"),
    (lambda: DATA.batch(2, generator=0), TypeError, "generator must be a torch.Generator or None, got int"),
    (lambda: LMData(L2, torch.zeros(3, 4, dtype=torch.long), L2, L2, L2), ValueError, "LMData: y has shape (3, 4) but x has (2, 4)"),
    (lambda: LMData(L2.float(), L2, L2, L2, L2), TypeError, "LMData: x must be a 2-D torch.long tensor (N, ctx_len), got torch.float32"),
    (lambda: LMData(L2, L2, L2, L2, None), TypeError, "LMData: kind must be a 2-D torch.long tensor (N, ctx_len), got NoneType"),
]

@pytest.mark.parametrize("call,exc,msg", BAD_INPUT, ids=[m[:40] for _, _, m in BAD_INPUT])
def test_bad_input_is_refused_with_a_clear_message(call, exc, msg):
    with pytest.raises(exc) as info: call()
    assert msg in str(info.value), str(info.value)

def test_edge_inputs_have_documented_results():
    assert WORLD.corpus(0) == [] and WORLD.sentiment_pairs(0) == [] and WORLD.arithmetic_tasks(0) == []
    assert label_sentiment("") == "neutral" and detokenize([]) == "" and TOK.encode("") == [] and TOK.decode([]) == ""
    assert TOK.decode(torch.tensor([5, 6])) == TOK.decode([5, 6]) == TOK.decode(np.array([5, 6]))
    assert TOK.decode([torch.tensor(5), np.int64(6)]) == TOK.decode([5, 6])        # 0-d integer tensors are ids too
    assert not TASK.check("") and not TASK.check("2 .")         # an arithmetic completion must say 'answer N'
    assert TASK.check("1 + 1 = 2 . answer 2 .")
    assert World(seed=-1).people != World(seed=0).people          # any int seed, negative included
    w = World(n_rare=1, n_entities=2, zipf_a=50.0)                 # the smallest world and a very steep tail
    assert len(w.rare) == 1 and math.isclose(sum(w.rare_p), 1.0)
    assert all(d.kind == "arith" for d in WORLD.corpus(5, mix={"arith": 1, "story": 0}))

def test_arithmetic_applies_left_to_right():
    "No operator precedence: 'calc a - b * c' means (a - b) * c, step by step, as the solution shows."
    for t in WORLD.arithmetic_tasks(40, steps=2, digits=3, ops=("+", "-", "*"), seed=0):
        a, op1, b, op2, c = t.prompt.split()[1:6]
        OPS_ = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}
        assert int(t.answer) == OPS_[op2](OPS_[op1](int(a), int(b)), int(c)), t.prompt

def test_valid_knobs_keep_their_bytes():
    "Validation must not change generation: integer-valued floats in mix and numpy ints give the same corpus."
    ref = [d.text for d in WORLD.corpus(50, seed=3, mix={"story": 1, "arith": 2})]
    assert [d.text for d in WORLD.corpus(np.int64(50), seed=np.int64(3), mix={"story": 1.0, "arith": 2.0})] == ref
    assert World(seed=np.int64(0), zipf_a=1.1).rare_p == WORLD.rare_p
