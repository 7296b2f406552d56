"Tests for llmlab.agents: schema->regex (hypothesis), FSM index vs brute force and outlines-core, constrained generation, the agent loop."
import json, re
import pytest, torch
from hypothesis import given, settings, strategies as st
from llmlab.agents import (schema_to_regex, RegexFSM, constrained_generate, Tool, Agent, CALL_REGEX, calculator,
                           compare_outlines, _calc)
from llmlab.world import World, Tokenizer

SCHEMA = {"type": "object", "properties": {"tool": {"enum": ["calc", "lookup"]}, "n": {"type": "integer"},
          "s": {"type": "string"}, "ok": {"type": "boolean"},
          "args": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}}}
RX = schema_to_regex(SCHEMA)
dump = lambda o: json.dumps(o, separators=(",", ":"))

@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["calc", "lookup"]), st.integers(-10**6, 10**6), st.text(max_size=8), st.booleans(),
       st.lists(st.integers(-999, 999), min_size=1, max_size=3))
def test_schema_accepts_valid(tool, n, s, ok, args):
    assert re.fullmatch(RX, dump({"tool": tool, "n": n, "s": s, "ok": ok, "args": args}))

@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["calc", "lookup"]), st.integers(), st.text(max_size=4), st.booleans(),
       st.lists(st.integers(-9, 9), min_size=4, max_size=6))
def test_schema_rejects_invalid(tool, n, s, ok, args):
    assert not re.fullmatch(RX, dump({"tool": tool, "n": n, "s": s, "ok": ok, "args": args}))   # too many items
    assert not re.fullmatch(RX, dump({"tool": "other", "n": n, "s": s, "ok": ok, "args": args[:1]}))
    assert not re.fullmatch(RX, dump({"tool": tool, "n": str(n), "s": s, "ok": ok, "args": args[:1]}))

def test_unsupported_features_named():
    with pytest.raises(ValueError, match="oneOf"): schema_to_regex({"type": "integer", "oneOf": []})
    with pytest.raises(ValueError, match="maxItems"): schema_to_regex({"type": "array", "items": {"type": "integer"}})
    with pytest.raises(ValueError, match="number"): schema_to_regex({"type": "number"})
    with pytest.raises(TypeError): schema_to_regex("x")

SMALL = {0: "a", 1: "b", 2: "ab", 3: "ba", 4: "c", 5: "{", 6: '"', 7: "1", 8: "12", 9: "}"}

@pytest.mark.parametrize("rx", ["(ab|b)*c", "a{1,3}b?", "[ab]+c", "[^c]{2}", r'\{"1+"\}'])
def test_index_equals_brute_force(rx):
    fsm = RegexFSM(rx, SMALL)
    for q in fsm.index:   # brute force: token t allowed in q iff some continuation of (prefix to q) + t can still match
        for tid, text in SMALL.items():
            s = q
            for ch in text:
                s = fsm.delta[s].get(ch) if s is not None else None
            assert (tid in fsm.index[q]) == (s is not None and s in fsm.index), (rx, q, text)
            if tid in fsm.index[q]: assert fsm.index[q][tid] == s

def test_index_language_by_enumeration():
    fsm = RegexFSM("(ab|b)*c", SMALL)
    import itertools
    for n in range(1, 4):
        for seq in itertools.product(SMALL, repeat=n):
            s, okp = fsm.initial, True
            for t in seq:
                if t not in fsm.index.get(s, {}): okp = False; break
                s = fsm.index[s][t]
            text = "".join(SMALL[t] for t in seq)
            if okp and s in fsm.final: assert re.fullmatch("(ab|b)*c", text)
            if re.fullmatch("(ab|b)*c", text): assert okp and s in fsm.final

@pytest.fixture(scope="module")
def tok(): return Tokenizer.from_world(World())

@pytest.mark.parametrize("rx", [CALL_REGEX, r"( [0-9]){1,3}( ;| \.)", r"( calc)?( [0-9]){2}( \+| \*)"])
def test_equals_outlines_core(tok, rx):
    fsm = RegexFSM(rx, tok)
    assert compare_outlines(fsm) >= len(fsm.index)

class RandomLM(torch.nn.Module):
    def __init__(self, v, seed): super().__init__(); self.g = torch.Generator().manual_seed(seed); self.v = v
    def forward(self, idx): return torch.randn(idx.shape[0], idx.shape[1], self.v, generator=self.g)

@pytest.mark.parametrize("seed", range(8))
def test_constrained_outputs_always_parse(tok, seed):
    fsm = RegexFSM(CALL_REGEX, tok)
    r = constrained_generate(RandomLM(tok.vocab_size, seed), tok.encode("calc 1 + 2 :"), fsm, max_new_tokens=60,
                             temperature=1.0, generator=torch.Generator().manual_seed(seed))
    text = "".join(" " + tok.itos[i] for i in r["ids"])
    assert r["final"] and re.fullmatch(CALL_REGEX, text), text
    assert _calc(text).replace(" ", "").isdigit() or _calc(text).startswith("-")

def test_agent_stops_at_max_turns_and_reports_tool_errors(tok):
    def boom(text): raise RuntimeError("tool broke")
    ag = Agent(RandomLM(tok.vocab_size, 0), [Tool("calc", boom, CALL_REGEX)], tok, max_turns=3)
    out = ag.run("calc 1 + 2")
    assert out["turns"] == 3 and out["answer"] is None and len(out["trace"]) == 3
    assert all("tool broke" in t["error"] for t in out["trace"])

def test_agent_calculator_runs(tok):
    ag = Agent(RandomLM(tok.vocab_size, 1), [calculator], tok, max_turns=2)
    out = ag.run("calc 1 + 2")
    call = out["trace"][0]["call"]
    assert out["answer"] == _calc(call).replace(" ", "")

def test_bad_input(tok):
    with pytest.raises(ValueError, match="non-empty"): Agent(None, [], tok)
    with pytest.raises(TypeError): Agent(None, ["x"], tok)
    with pytest.raises(ValueError): RegexFSM("", tok)
    with pytest.raises(ValueError): Tool("", print, "a")
    fsm = RegexFSM(CALL_REGEX, tok)
    with pytest.raises(ValueError): constrained_generate(RandomLM(tok.vocab_size, 0), [1], fsm, max_new_tokens=0)
    with pytest.raises(ValueError): fsm.next_state(0, tok.stoi["answer"])
