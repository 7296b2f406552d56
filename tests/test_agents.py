"Tests for llmlab.agents: schema->regex in both syntaxes (hypothesis), parse_call, FSM index vs brute force and outlines-core, constrained generation (KV cache vs recompute), tools, the agent loop, bad input."
import itertools, json, re
import pytest, torch
from hypothesis import given, settings, strategies as st
from llmlab.agents import (schema_to_regex, parse_call, world_words, RegexFSM, constrained_generate, Tool, Agent, calculator,
                           fact_lookup, compare_outlines, evaluate_agent, evaluate_no_tools, call_example, finetune_calls,
                           trace_agents, ANSWER_REGEX, CALC_SCHEMA, _calc, _words_answer)
from llmlab.world import World, Tokenizer

SCHEMA = {"type": "object", "properties": {"tool": {"enum": ["calc", "lookup"]}, "n": {"type": "integer"},
          "s": {"type": "string"}, "ok": {"type": "boolean"}, "k": {"const": 3},
          "args": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}}}
RX = schema_to_regex(SCHEMA)
dump = lambda o: json.dumps(o, separators=(",", ":"))

@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["calc", "lookup"]), st.integers(-10**6, 10**6), st.text(max_size=8), st.booleans(),
       st.lists(st.integers(-999, 999), min_size=1, max_size=3))
def test_schema_accepts_valid(tool, n, s, ok, args):
    inst = {"tool": tool, "n": n, "s": s, "ok": ok, "k": 3, "args": args}
    assert re.fullmatch(RX, dump(inst))
    assert parse_call(SCHEMA, dump(inst), "json") == inst

@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["calc", "lookup"]), st.integers(), st.text(max_size=4), st.booleans(),
       st.lists(st.integers(-9, 9), min_size=4, max_size=6))
def test_schema_rejects_invalid(tool, n, s, ok, args):
    base = {"tool": tool, "n": n, "s": s, "ok": ok, "k": 3}
    assert not re.fullmatch(RX, dump({**base, "args": args}))                       # too many items
    assert not re.fullmatch(RX, dump({**base, "tool": "other", "args": args[:1]}))   # not in the enum
    assert not re.fullmatch(RX, dump({**base, "n": str(n), "args": args[:1]}))       # wrong type
    assert not re.fullmatch(RX, dump({**base, "k": 4, "args": args[:1]}))            # not the const

ops = st.sampled_from(["+", "-", "*"])
@settings(max_examples=80, deadline=None)
@given(st.integers(0, 10**6), st.lists(st.tuples(ops, st.integers(0, 9999)), min_size=1, max_size=4))
def test_world_syntax_roundtrip(a, rest):
    inst = {"a": a, "rest": [{"op": o, "b": b} for o, b in rest]}
    text = world_words(a) + "".join(world_words(o) + world_words(b) for o, b in rest)
    assert re.fullmatch(schema_to_regex(CALC_SCHEMA, "world"), text)
    assert parse_call(CALC_SCHEMA, text) == inst
    v = a
    for o, b in rest: v = v + b if o == "+" else v - b if o == "-" else v * b      # left to right, as the world does
    if v < 0:
        with pytest.raises(ValueError, match="negative"): calculator(text + " =")
    else: assert calculator(text + " =").replace(" ", "") == str(v)

@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 999), min_size=1, max_size=4), st.integers(0, 999))
def test_numbers_restriction(nums, other):
    rx = schema_to_regex(CALC_SCHEMA, "world", numbers=nums)
    assert re.fullmatch(rx, world_words(nums[0]) + " +" + world_words(nums[-1]))
    if other not in nums: assert not re.fullmatch(rx, world_words(other) + " +" + world_words(nums[0]))

def test_world_syntax_rejects():
    rx = schema_to_regex(CALC_SCHEMA, "world")
    for bad in [" 3 8 8", " 0 3 + 1", " 3 + + 1", " 1" + " + 1" * 5, "3 + 1"]:
        assert not re.fullmatch(rx, bad), bad

def test_unsupported_features_named():
    with pytest.raises(ValueError, match="oneOf"): schema_to_regex({"type": "integer", "oneOf": []})
    with pytest.raises(ValueError, match="maxItems"): schema_to_regex({"type": "array", "items": {"type": "integer"}})
    with pytest.raises(ValueError, match="number"): schema_to_regex({"type": "number"})
    with pytest.raises(ValueError, match="boolean"): schema_to_regex({"type": "boolean"}, "world")
    with pytest.raises(ValueError, match="string without enum"): schema_to_regex({"type": "string"}, "world")
    with pytest.raises(ValueError, match="syntax"): schema_to_regex({"type": "integer"}, "xml")
    with pytest.raises(ValueError, match="negative"): world_words(-3)
    with pytest.raises(TypeError): schema_to_regex("x")
    with pytest.raises(ValueError, match="does not match"): parse_call(CALC_SCHEMA, " 1 +")

SMALL = {0: "a", 1: "b", 2: "ab", 3: "ba", 4: "c", 5: "{", 6: '"', 7: "1", 8: "12", 9: "}"}

@pytest.mark.parametrize("rx", ["(ab|b)*c", "a{1,3}b?", "[ab]+c", "[^c]{2}", r'\{"1+"\}', r'\{"(1|12)*"\}'])
def test_index_equals_brute_force(rx):
    fsm = RegexFSM(rx, SMALL)
    for q in fsm.index:   # brute force: token t allowed in q iff walking its characters stays in a live state
        for tid, text in SMALL.items():
            s = q
            for ch in text:
                s = fsm.delta[s].get(ch) if s is not None else None
            assert (tid in fsm.index[q]) == (s is not None and s in fsm.index), (rx, q, text)
            if tid in fsm.index[q]: assert fsm.index[q][tid] == s

@pytest.mark.parametrize("rx", ["(ab|b)*c", r'\{"1+"\}', "a{1,3}b?"])
def test_index_language_by_enumeration(rx):
    fsm = RegexFSM(rx, SMALL)
    for n in range(1, 4):
        for seq in itertools.product(SMALL, repeat=n):
            s, okp = fsm.initial, True
            for t in seq:
                if t not in fsm.index.get(s, {}): okp = False; break
                s = fsm.index[s][t]
            text = "".join(SMALL[t] for t in seq)
            assert (okp and s in fsm.final) == bool(re.fullmatch(rx, text)), (rx, text)

@pytest.fixture(scope="module")
def world(): return World()

@pytest.fixture(scope="module")
def tok(world): return Tokenizer.from_world(world)

@pytest.mark.parametrize("rx", [calculator.regex, schema_to_regex(CALC_SCHEMA, "world", numbers=[388, 7, 8]) + " =",
                                r"( [0-9]){1,3}( ;| \.)", r"( calc)?( [0-9]){2}( \+| \*)"])
def test_equals_outlines_core(tok, rx):
    fsm = RegexFSM(rx, tok)
    assert compare_outlines(fsm) >= len(fsm.index)

def test_outlines_refuses_dead_prefix_tokens_we_prune(tok, world):
    fsm = RegexFSM(fact_lookup(world).regex, tok)
    with pytest.raises(ValueError, match="incompatible"): compare_outlines(fsm)
    q = fsm.next_state(fsm.next_state(0, tok.stoi["child"]), tok.stoi["of"])
    assert tok.stoi["a"] not in fsm.index[q] and tok.stoi["abel"] in fsm.index[q]

class RandomLM(torch.nn.Module):
    def __init__(self, v, seed): super().__init__(); self.g = torch.Generator().manual_seed(seed); self.v = v
    def forward(self, idx): return torch.randn(idx.shape[0], idx.shape[1], self.v, generator=self.g)

@pytest.mark.parametrize("seed", range(8))
def test_constrained_outputs_always_parse(tok, world, seed):
    ag = Agent(RandomLM(tok.vocab_size, seed), [calculator, fact_lookup(world)], tokenizer=tok)
    r = constrained_generate(ag.model, tok.encode("calc 1 + 2 :"), ag.fsm(), max_new_tokens=60,
                             temperature=1.0, generator=torch.Generator().manual_seed(seed))
    text = "".join(" " + tok.itos[i] for i in r["ids"])
    assert r["final"] and re.fullmatch(ag.fsm().regex, text), text
    if text.endswith(" ="):
        tool = next(t for t in ag.tools if re.fullmatch(t.regex, text))
        parse_call(tool.schema, text[:-2])                     # every call parses back into arguments
    else: assert re.fullmatch(ANSWER_REGEX, text)

class NoCache(torch.nn.Module):
    "The same GPT seen as a plain module: generation re-runs the whole window every step (the reference path)."
    def __init__(self, m): super().__init__(); self.m = m
    def forward(self, idx): return self.m(idx)

def test_kv_cache_path_equals_recompute(tok):
    from llmlab import gpt
    m = gpt.pretrained("world-tiny").eval()
    fsm = RegexFSM(calculator.regex, tok)
    for p in ["calc 12 + 35 :", "calc 388 * 7 * 8 :", "ada ford lives in"]:
        a = constrained_generate(m, tok.encode(p), fsm, max_new_tokens=20)
        b = constrained_generate(NoCache(m), tok.encode(p), fsm, max_new_tokens=20)
        assert a["ids"] == b["ids"] and a["fed"] < b["fed"]

def test_agent_stops_at_max_turns_and_reports_tool_errors(tok):
    def boom(a, rest): raise RuntimeError("tool broke")
    ag = Agent(RandomLM(tok.vocab_size, 0), [Tool("calc", boom, CALC_SCHEMA)], tokenizer=tok, max_turns=3)
    out = ag.run("calc 1 + 2 :")
    calls = [t for t in out["trace"] if t["kind"] == "calc"]
    assert out["turns"] <= 3 and len(out["trace"]) <= 3
    assert calls and all("tool broke" in t["error"] for t in calls)
    assert out["text"].count(" ;") >= len(calls)              # each failure is reported to the model as ' ;'

def test_agent_max_turns_exact(tok):
    ag = Agent(RandomLM(tok.vocab_size, 3), [calculator], tokenizer=tok, max_turns=2, constrained=False, max_new_tokens=5)
    out = ag.run("calc 1 + 2 :")
    assert out["turns"] == 2 and out["answer"] is None and [t["kind"] for t in out["trace"]] == ["malformed"] * 2

def test_agent_calculator_runs(tok):
    ag = Agent(RandomLM(tok.vocab_size, 1), [calculator], tokenizer=tok, max_turns=2)
    out = ag.run("calc 1 + 2 :")
    for t in out["trace"]:
        if t["kind"] == "calc" and t["error"] is None:
            assert t["result"] == world_words(_calc(**parse_call(CALC_SCHEMA, t["call"][:-2])))

def test_restrict_numbers_only_copies(tok):
    for seed in range(4):
        ag = Agent(RandomLM(tok.vocab_size, seed), [calculator], tokenizer=tok, max_turns=1, restrict_to_context=True)
        out = ag.run("calc 388 * 7 * 8 :")
        call = out["trace"][0]["call"]
        if out["trace"][0]["kind"] == "calc":
            nums = set(re.findall(r"\d+", "".join(call.split()).replace("+", " ").replace("*", " ").replace("-", " ")))
            assert nums <= {"388", "7", "8"}, call

def test_restricted_answer_copies_a_value(tok, world):
    from llmlab.agents import answer_regex
    assert answer_regex([], []) is None and answer_regex() == ANSWER_REGEX
    rx = answer_regex([12], [" jade york"])
    assert re.fullmatch(rx, " . answer 1 2 .") and re.fullmatch(rx, " . answer jade york .")
    assert not re.fullmatch(rx, " . answer max gray .") and not re.fullmatch(rx, " . answer 1 3 .")
    for seed in range(6):
        ag = Agent(RandomLM(tok.vocab_size, seed), [fact_lookup(world)], tokenizer=tok, max_turns=3, restrict_to_context=True)
        out = ag.run("lia reed 's child is :")
        assert out["trace"][0]["kind"] == "lookup"                 # no number, no value yet: it cannot answer first
        values = [u["result"].strip() for u in out["trace"] if u["kind"] == "lookup" and u["error"] is None]
        if out["answer"] is not None: assert out["answer"] in values

def test_fact_lookup(world):
    lk = fact_lookup(world)
    for t in world.fact_queries(20, direction="reverse", relation="parent", seed=3):
        assert lk(" child of " + t.prompt[:-len(" 's child is")] + " =").strip() in t.meta["all_answers"]
    p = world.people[5]
    assert lk(f" parent of {p['name']} =").strip() == world.people[p["parent"]]["name"]
    with pytest.raises(LookupError, match="nobody"):
        lk(" child of " + next(f"{f} {l}" for f in ("abel", "ada") for l in ("adams", "zane") if f"{f} {l}" not in
                                {q["name"] for q in world.people}) + " =")

def test_answer_and_examples(tok):
    assert _words_answer("2 1 7 2 8") == "21728" and _words_answer("jade york") == "jade york"
    assert re.fullmatch(ANSWER_REGEX, " . answer 2 1 7 2 8 .") and not re.fullmatch(ANSWER_REGEX, " . answer .")
    ids, mask = call_example(tok, "calc 1 + 2 :", "1 + 2 =", "3", "3")
    assert tok.decode(ids) == "calc 1 + 2 : 1 + 2 = 3 . answer 3 ."
    assert tok.decode([i for i, k in zip(ids, mask) if k]) == "1 + 2 = . answer 3 ."

def test_evaluate_and_trace(tok, world):
    tasks = world.arithmetic_tasks(3, steps=1, digits=1, ops=("+",), seed=0)
    ag = Agent(RandomLM(tok.vocab_size, 0), [calculator], tokenizer=tok, max_turns=2)
    r = evaluate_agent(ag, tasks)
    assert 0 <= r["acc"] <= 1 and r["malformed"] == 0.0 and len(r["runs"]) == 3
    gen = constrained_generate(ag.model, tok.encode(tasks[0].prompt), ag.fsm(), max_new_tokens=10)
    tr = trace_agents(tok, gen, r["runs"][0])
    assert len(tr["steps"]) == len(gen["steps"]) and len(tr["turns"]) == len(r["runs"][0]["trace"])
    json.dumps(tr)                                            # the widget's state is plain JSON

def test_bad_input(tok):
    with pytest.raises(ValueError, match="non-empty"): Agent(RandomLM(3, 0), [], tokenizer=tok)
    with pytest.raises(TypeError, match="Tool objects"): Agent(RandomLM(3, 0), ["x"], tokenizer=tok)
    with pytest.raises(TypeError, match="model"): Agent(None, [calculator], tokenizer=tok)
    with pytest.raises(TypeError, match="restrict_to_context"): Agent(RandomLM(3, 0), [calculator], restrict_to_context=1)
    with pytest.raises(ValueError, match="unique"): Agent(RandomLM(3, 0), [calculator, calculator], tokenizer=tok)
    with pytest.raises(ValueError, match="max_turns"): Agent(RandomLM(3, 0), [calculator], tokenizer=tok, max_turns=0)
    with pytest.raises(ValueError): RegexFSM("", tok)
    with pytest.raises(ValueError): Tool("", print, CALC_SCHEMA)
    with pytest.raises(TypeError, match="JSON-schema"): Tool("calc", print, " 1 =")
    fsm = RegexFSM(calculator.regex, tok)
    with pytest.raises(ValueError, match="max_new_tokens"): constrained_generate(RandomLM(tok.vocab_size, 0), [1], fsm, max_new_tokens=0)
    with pytest.raises(TypeError, match="fsm"): constrained_generate(RandomLM(tok.vocab_size, 0), [1], "x", max_new_tokens=3)
    with pytest.raises(ValueError): fsm.next_state(0, tok.stoi["answer"])
    with pytest.raises(ValueError, match="empty"): evaluate_no_tools(RandomLM(3, 0), [])
    with pytest.raises(ValueError, match="empty"): finetune_calls(None, [])
    with pytest.raises(ValueError, match="prompt"): Agent(RandomLM(3, 0), [calculator], tokenizer=tok).run("")
