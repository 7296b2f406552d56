"""Benchmark the token index of llmlab.agents.RegexFSM against outlines-core: index build time and per-step mask cost.

Regexes: the world-words tool call (CALL_REGEX) and a digits-and-punctuation answer, over the world vocabulary (528
tokens with a leading space + <eos>). Masking: build the boolean/additive mask of the allowed ids for one state, averaged
over every reachable state. CPU only (this is host-side work), float32 masks, one thread.

    python kernels/bench_agents.py
"""
import argparse, sys, pathlib, time
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch
from llmlab.agents import RegexFSM, CALL_REGEX
from llmlab.world import World, Tokenizer

REGEXES = {"call": CALL_REGEX, "answer": r"( [0-9]){1,6}( ;| \.)"}


def best(fn, rep):
    ts = []
    for _ in range(rep):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return min(ts)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rep", type=int, default=5)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    from outlines_core import Index, Vocabulary
    tok = Tokenizer.from_world(World())
    for name, rx in REGEXES.items():
        fsm = RegexFSM(rx, tok)
        vocab = {}
        for i, t in fsm.tokens.items(): vocab.setdefault(t, []).append(i)
        ov = Vocabulary(fsm.eos_id, vocab)
        t_ours = best(lambda: RegexFSM(rx, tok), a.rep)
        t_theirs = best(lambda: Index(rx, ov), a.rep)
        ix = Index(rx, ov)
        states, todo = [], [(fsm.initial, ix.get_initial_state())]
        seen = set()
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
        m_ours, m_theirs = best(mask_ours, a.rep) / len(states), best(mask_theirs, a.rep) / len(states)
        print(f"{name}: states {len(states)} | build llmlab {t_ours*1e3:.2f} ms, outlines-core {t_theirs*1e3:.2f} ms "
              f"(llmlab/outlines {t_ours/t_theirs:.2f}x) | mask/step llmlab {m_ours*1e6:.1f} us, outlines-core "
              f"{m_theirs*1e6:.1f} us ({m_ours/m_theirs:.2f}x)")


if __name__ == "__main__":
    main()
