"""Benchmark the token index of llmlab.agents.RegexFSM against outlines-core: index build time and per-step mask cost.

Regexes over the world vocabulary (528 tokens with a leading space + <eos>): the calculator's call (derived from its JSON
schema), the same call with integers restricted to three context numbers (what `restrict_numbers` builds per turn), and
a digits-and-punctuation answer. Build: construct the index from the regex. Mask: look up the allowed ids of one state
and build the additive -inf mask over the vocabulary, averaged over every state reachable in both automata.
Ratios are against outlines-core (Rust) for the same regex and measure (speedup < 1: llmlab is slower). Host-side
work: CPU only, float32 masks, one thread. Also times the agent's whole turn FSM (calls + lookup + answer), which
outlines-core refuses (a token that is a strict prefix of a required word leads into a dead character state; RegexFSM
prunes it), so that row has no baseline.

    python kernels/bench_agents.py            # writes kernels/results/<device>/bench_agents.md
"""
import argparse, os, sys, pathlib, time
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch
from llmlab.agents import RegexFSM, Agent, calculator, fact_lookup, schema_to_regex, CALC_SCHEMA
from llmlab.lab import BenchResult, save_result, device_name
from llmlab.world import World, Tokenizer

REGEXES = {"calc call": calculator.regex,
           "calc call, numbers {388, 7, 8}": schema_to_regex(CALC_SCHEMA, "world", numbers=[388, 7, 8]) + " =",
           "answer digits": r"( [0-9]){1,6}( ;| \.)"}


def best_ms(fn, rep):
    "Minimum wall time of `rep` calls, in ms."
    ts = []
    for _ in range(rep):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return 1e3 * min(ts)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rep", type=int, default=5)
    p.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results"))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    from outlines_core import Index, Vocabulary
    from importlib.metadata import version
    load = round(os.getloadavg()[0], 2)                      # the machine is shared: say how busy it was
    world = World(); tok = Tokenizer.from_world(world)
    rows = []
    for name, rx in REGEXES.items():
        fsm = RegexFSM(rx, tok)
        vocab = {}
        for i, t in fsm.tokens.items(): vocab.setdefault(t, []).append(i)
        ov = Vocabulary(fsm.eos_id, vocab)
        ours, theirs = best_ms(lambda: RegexFSM(rx, tok), a.rep), best_ms(lambda: Index(rx, ov), a.rep)
        ix = Index(rx, ov)
        states, todo, seen = [], [(fsm.initial, ix.get_initial_state())], set()
        while todo:
            s = todo.pop()
            if s in seen: continue
            seen.add(s); states.append(s)
            for t in fsm.allowed(s[0]):
                if t != fsm.eos_id: todo.append((fsm.next_state(s[0], t), ix.get_next_state(s[1], t)))
        logits = torch.randn(tok.vocab_size)
        def mask_ours():
            for q, _ in states:
                m = torch.full_like(logits, float("-inf")); m[fsm.allowed(q)] = 0.0
        def mask_theirs():
            for _, q in states:
                m = torch.full_like(logits, float("-inf")); m[ix.get_allowed_tokens(q)] = 0.0
        m_ours, m_theirs = best_ms(mask_ours, a.rep) / len(states), best_ms(mask_theirs, a.rep) / len(states)
        rows += [{"name": f"{name}: build, outlines-core", "ms": theirs, "speedup": 1.0, "states": len(states)},
                 {"name": f"{name}: build, llmlab", "ms": ours, "speedup": theirs / ours, "states": len(states)},
                 {"name": f"{name}: mask/step, outlines-core", "ms": m_theirs, "speedup": 1.0, "states": len(states)},
                 {"name": f"{name}: mask/step, llmlab", "ms": m_ours, "speedup": m_theirs / m_ours, "states": len(states)}]
    class _Stub(torch.nn.Module):
        def forward(self, idx): return torch.zeros(idx.shape[0], idx.shape[1], tok.vocab_size)
    agent = Agent(_Stub(), [calculator, fact_lookup(world)], tokenizer=tok)
    turn = agent.fsm()
    rows.append({"name": "agent turn FSM (calc + lookup + answer): build, llmlab (outlines-core refuses this regex)",
                 "ms": best_ms(lambda: RegexFSM(turn.regex, tok), a.rep), "speedup": float("nan"), "states": len(turn.index)})
    out = BenchResult(rows, "outlines-core (per regex and measure)", device_name("cpu"),
                      {"vocabulary": f"world, {tok.vocab_size} ids", "threads": 1, "rep": f"best of {a.rep}",
                       "mask": "allowed-id lookup + full_like(-inf) + scatter 0, per state, averaged over reachable states",
                       "load_avg_1min_at_start": load, "outlines-core": version("outlines-core"), "torch": torch.__version__})
    print(out.to_markdown())
    print("wrote", save_result(out, "bench_agents", root=a.out))
    return out


if __name__ == "__main__":
    main()
