"""The shared GPT: shapes and init loss, causality, attention implementations against the reference, KV-cache
generation == uncached, sampling filters, hooks read/replace exactly (and are removed on errors), plug-in registries,
training determinism, save/load bit-exact, concurrent pretrained() from two processes, errors for bad input."""
import contextlib, json, math, os, subprocess, sys, textwrap, pathlib
import pytest, torch
from llmlab import gpt as G

torch.set_num_threads(1)
ROOT = pathlib.Path(__file__).resolve().parents[1]

def tiny(**kw):
    base = dict(vocab_size=50, ctx_len=12, n_layer=2, n_head=4, n_kv_head=2, d_model=32)
    return G.GPTConfig(**(base | kw))

def model(seed=0, dtype=torch.float32, **kw):
    torch.manual_seed(seed)
    return G.GPT(tiny(**kw)).to(dtype).eval()

def randidx(B=3, T=12, V=50, seed=1):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))

# ---------------------------------------------------------------- shapes, init
def test_shapes_and_init_loss_near_log_vocab():
    m = model(vocab_size=500, d_model=64)
    idx, tgt = randidx(8, 12, 500), randidx(8, 12, 500, seed=2)
    logits, loss = m(idx, tgt)
    assert logits.shape == (8, 12, 500)
    assert abs(loss.item() - math.log(500)) < 0.15, f"init loss {loss.item():.3f} should be ~ln(500)={math.log(500):.3f}"
    assert m(idx)[1] is None

def test_ignore_index_and_targets_shape():
    m = model(); idx = randidx()
    tgt = idx.clone(); tgt[:, :6] = -100
    full = torch.nn.functional.cross_entropy(m(idx)[0][:, 6:].reshape(-1, 50), idx[:, 6:].reshape(-1))
    torch.testing.assert_close(m(idx, tgt)[1], full)
    with pytest.raises(ValueError, match="targets must have idx's shape"): m(idx, idx[:, :5])

@pytest.mark.parametrize("attention", ["naive", "sdpa"])
def test_causality(attention):
    m = model(attention=attention); idx = randidx()
    with torch.no_grad():
        for t in range(12):
            idx2 = idx.clone(); idx2[:, t] = (idx2[:, t] + 7) % 50
            a, b = m(idx)[0], m(idx2)[0]
            assert torch.equal(a[:, :t], b[:, :t]), f"changing token {t} changed earlier logits"
            assert not torch.equal(a[:, t:], b[:, t:])

def test_bidirectional_sees_the_future():
    m = model(causal=False); idx = randidx(); idx2 = idx.clone(); idx2[:, -1] = (idx2[:, -1] + 1) % 50
    with torch.no_grad(): assert not torch.allclose(m(idx)[0][:, 0], m(idx2)[0][:, 0])

# ---------------------------------------------------------------- attention
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("H,Hkv,Tq,Tk", [(4, 4, 7, 7), (4, 2, 7, 7), (4, 1, 3, 9), (2, 2, 1, 6), (6, 3, 5, 5)])
def test_sdpa_matches_reference(causal, H, Hkv, Tq, Tk):
    g = torch.Generator().manual_seed(H * 100 + Tk)
    q = torch.randn(2, H, Tq, 8, generator=g, dtype=torch.float64)
    k, v = (torch.randn(2, Hkv, Tk, 8, generator=g, dtype=torch.float64) for _ in range(2))
    torch.testing.assert_close(G.attention_sdpa(q, k, v, causal), G.attention_ref(q, k, v, causal))

def test_reference_bottom_right_mask_by_hand():
    q, k, v = torch.randn(1, 1, 2, 4), torch.randn(1, 1, 5, 4), torch.randn(1, 1, 5, 4)
    out = G.attention_ref(q, k, v, True)
    for i in range(2):                      # query i sees keys 0..i+3
        w = (q[0, 0, i] @ k[0, 0, :i + 4].T / 2).softmax(-1)
        torch.testing.assert_close(out[0, 0, i], w @ v[0, 0, :i + 4])

def test_naive_and_sdpa_models_agree():
    a, b = model(attention="naive", dtype=torch.float64), model(attention="sdpa", dtype=torch.float64)
    idx = randidx()
    torch.testing.assert_close(a(idx)[0], b(idx)[0])

# ---------------------------------------------------------------- generation
@pytest.mark.parametrize("n_kv_head", [4, 1])
def test_kv_cache_greedy_equals_uncached(n_kv_head):
    m = model(n_kv_head=n_kv_head, dtype=torch.float64)
    prompt = randidx(2, 4)
    a = m.generate(prompt, 20, temperature=0, use_cache=True)     # 24 > ctx_len=12: the window slides too
    b = m.generate(prompt, 20, temperature=0, use_cache=False)
    assert torch.equal(a, b) and a.shape == (2, 24) and torch.equal(a[:, :4], prompt)

def test_kv_cache_logits_equal_full_forward():
    m = model(dtype=torch.float64); idx = randidx(2, 10)
    cache = G.KVCache(2)
    with torch.no_grad():
        parts = [m(idx[:, :4], cache=cache)[0]] + [m(idx[:, t:t + 1], cache=cache)[0] for t in range(4, 10)]
        torch.testing.assert_close(torch.cat(parts, 1), m(idx)[0])
    assert cache.pos == 10

def test_qk_norm_bounds_scores_keeps_cache_exact_and_round_trips(tmp_path):
    plain, qk = model(dtype=torch.float64), model(dtype=torch.float64, qk_norm=True)
    c = qk.config
    assert qk.num_params() - plain.num_params() == 2 * c.n_layer * c.head_dim          # one (D,) gain each for q and k
    assert not any("q_norm" in k or "k_norm" in k for k in plain.state_dict())         # default: checkpoints unchanged
    a = qk.blocks[0].attn
    with torch.no_grad():
        for w in (a.wq, a.wk): w.weight.mul_(1000)
        x = torch.randn(2, 7, c.d_model, dtype=torch.float64)
        q = a.q_norm(a.wq(x).view(2, 7, c.n_head, c.head_dim))
        k = a.k_norm(a.wk(x).view(2, 7, c.n_kv_head, c.head_dim))
        assert torch.allclose(q.pow(2).mean(-1), torch.ones(2, 7, c.n_head, dtype=torch.float64), atol=1e-6)
        raw = a.wq(x).view(2, 7, c.n_head, c.head_dim).pow(2).mean(-1)
        assert raw.min() > 100                                                        # the norm did the work
        idx = randidx(2, 10); cache = G.KVCache(c.n_layer)
        parts = [qk(idx[:, :4], cache=cache)[0]] + [qk(idx[:, t:t + 1], cache=cache)[0] for t in range(4, 10)]
        torch.testing.assert_close(torch.cat(parts, 1), qk(idx)[0])                   # k is normalised before caching
    qk32 = model(qk_norm=True)
    m2 = G.load(G.save(qk32, tmp_path / "qk"))
    assert m2.config.qk_norm and torch.equal(m2(idx)[0], qk32(idx)[0])

def test_sampling_with_cache_equals_uncached_and_is_seeded():
    m = model(dtype=torch.float64); prompt = randidx(2, 3)
    run = lambda c, s: m.generate(prompt, 9, temperature=0.8, top_k=20, top_p=0.9, use_cache=c, generator=torch.Generator().manual_seed(s))
    assert torch.equal(run(True, 5), run(False, 5))
    assert not torch.equal(run(True, 5), run(True, 6))

def test_complete_batches_cuts_at_stop_and_runs_any_logits_model():
    m = model(dtype=torch.float64)
    prompts = [randidx(1, L, seed=L)[0].tolist() for L in (3, 5, 3, 4, 5)]       # three lengths, two repeated
    full = [m.generate(torch.tensor([p]), 8, temperature=0)[0, len(p):].tolist() for p in prompts]
    stop = sorted({f[2] for f in full})                     # the third generated token of every row is a stop
    got = G.complete(m, prompts, 8, stop=stop, batch_size=2)
    for f, c in zip(full, got):
        cut = next(k for k, t in enumerate(f) if t in stop)
        assert c == f[:cut + 1] and len(c) <= 3
    class LogitsOnly(torch.nn.Module):                    # no generate(), no KV cache, returns logits only
        def __init__(self, gpt): super().__init__(); self.gpt = gpt
        def forward(self, idx): return self.gpt(idx)[0]
    assert G.complete(LogitsOnly(m), prompts, 8) == full
    g = lambda: torch.Generator().manual_seed(3)
    assert G.complete(LogitsOnly(m), prompts, 8, 1.0, generator=g()) == G.complete(m, prompts, 8, 1.0, generator=g())
    seen = []                                             # context(prompt_len) is entered once around each batch
    G.complete(m, prompts, 2, batch_size=2, context=lambda L: seen.append(L) or contextlib.nullcontext())
    assert seen == [3, 5, 4]                              # lengths in first-seen order; no batch needed splitting
    with pytest.raises(ValueError, match="empty"): G.complete(m, [], 4)
    with pytest.raises(ValueError, match="at least one token"): G.complete(m, [[]], 4)

def test_sample_filters():
    logits = torch.tensor([[3.0, 2.0, 1.0, -1.0, -5.0]])
    g = torch.Generator().manual_seed(0)
    assert G.sample_logits(logits, 0).item() == 0
    assert {G.sample_logits(logits, 1.0, top_k=2, generator=g).item() for _ in range(200)} == {0, 1}
    p = logits.softmax(-1)[0]                 # p0 ~ 0.66, p0+p1 ~ 0.90
    assert {G.sample_logits(logits, 1.0, top_p=0.5, generator=g).item() for _ in range(100)} == {0}
    assert {G.sample_logits(logits, 1.0, top_p=float(p[0] + 0.01), generator=g).item() for _ in range(300)} == {0, 1}
    with pytest.raises(ValueError, match="top_p"): G.sample_logits(logits, 1.0, top_p=0)
    with pytest.raises(ValueError, match="temperature"): G.sample_logits(logits, -1.0)

def test_stop_tokens():
    m = model(); prompt = randidx(2, 3)
    free = m.generate(prompt, 8, temperature=0)
    first = int(free[0, 3])
    out = m.generate(prompt, 8, temperature=0, stop=first)
    assert out[0, 3] == first and (out[0, 3:] == first).all()
    if (free[1, 3:] == first).any(): assert out.shape[1] <= free.shape[1]
    else: assert torch.equal(out[1], free[1])

# ---------------------------------------------------------------- hooks
def test_run_with_cache_reads_exact_activations():
    m = model(); idx = randidx()
    with torch.no_grad():
        logits, acts = m.run_with_cache(idx)
        assert sorted(acts) == sorted(m.hook_names) and len(acts) == 8
        torch.testing.assert_close(acts["blocks.0.resid_pre"], m.wte(idx), rtol=0, atol=0)
        for i in range(2):
            torch.testing.assert_close(acts[f"blocks.{i}.resid_post"],
                                       acts[f"blocks.{i}.resid_pre"] + acts[f"blocks.{i}.attn_out"] + acts[f"blocks.{i}.mlp_out"])
        torch.testing.assert_close(acts["blocks.1.resid_pre"], acts["blocks.0.resid_post"], rtol=0, atol=0)
        assert torch.equal(m.norm(acts["blocks.1.resid_post"]) @ m.wte.weight.T, logits)

def test_hook_replaces_exactly_and_is_removed():
    m = model(); idx = randidx()
    with torch.no_grad():
        base = m(idx)[0]
        _, acts = m.run_with_cache(idx, "blocks.1.resid_post")
        delta = torch.randn_like(acts["blocks.1.resid_post"])
        with m.hooks({"blocks.1.resid_post": lambda a: a + delta}):
            steered = m(idx)[0]
        assert torch.equal(steered, m.norm(acts["blocks.1.resid_post"] + delta) @ m.wte.weight.T)
        assert torch.equal(m(idx)[0], base)
        seen = []
        with m.hooks({"blocks.0.mlp_out": lambda a: seen.append(a.shape)}): m(idx)
        assert seen == [(3, 12, 32)] and torch.equal(m(idx)[0], base)

def test_hooks_removed_on_exception_and_bad_names():
    m = model(); idx = randidx()
    with pytest.raises(RuntimeError, match="boom"):
        with m.hooks({"blocks.0.attn_out": torch.zeros_like}):
            raise RuntimeError("boom")
    assert all(not hp._forward_hooks for hp in m.modules() if isinstance(hp, G.HookPoint))
    with pytest.raises(KeyError, match="no hook point 'blocks.5.resid_pre'"):
        with m.hooks({"blocks.5.resid_pre": print}): pass
    assert all(not hp._forward_hooks for hp in m.modules() if isinstance(hp, G.HookPoint))
    with pytest.raises(ValueError, match="must return None or a tensor of shape"):
        with m.hooks({"blocks.0.attn_out": lambda a: a[:, :1]}): m(idx)
    assert all(not hp._forward_hooks for hp in m.modules() if isinstance(hp, G.HookPoint))

# ---------------------------------------------------------------- registries
def test_registries_and_plugin_contracts():
    calls = {}
    @G.register_attention("test_counting")
    def att(q, k, v, causal):
        calls["att"] = (q.shape, k.shape, causal); return G.attention_ref(q, k, v, causal)
    @G.register_linear("test_lin")
    def lin(i, o, bias=False, scale=1.0):
        calls.setdefault("lin", []).append((i, o, scale)); return torch.nn.Linear(i, o, bias=bias)
    class StatMLP(torch.nn.Module):
        def __init__(self, c): super().__init__(); self.f = G.SwiGLU(c); self.w = c.mlp_kwargs["w"]
        def forward(self, x):
            y = self.f(x); return y, {"aux_loss": self.w * y.pow(2).mean(), "note": 1}
    G.register_mlp("test_stat")(StatMLP)
    try:
        m = model(attention="test_counting", linear="test_lin", linear_kwargs={"scale": 2.0}, mlp="test_stat", mlp_kwargs={"w": 10.0})
        idx = randidx()
        _, loss = m(idx, idx)
        assert calls["att"] == ((3, 4, 12, 8), (3, 2, 12, 8), True)
        assert len(calls["lin"]) == 2 * 7 and all(s == 2.0 for *_, s in calls["lin"])
        assert len(m.last_stats) == 2 and all(s["note"] == 1 for s in m.last_stats)
        plain = torch.nn.functional.cross_entropy(m(idx)[0].reshape(-1, 50), idx.reshape(-1))
        torch.testing.assert_close(loss, plain + sum(s["aux_loss"] for s in m.last_stats))
    finally:
        for reg, n in ((G.ATTENTION, "test_counting"), (G.LINEAR, "test_lin"), (G.MLP, "test_stat")): reg.pop(n, None)

def test_unknown_plugin_names_fail_clearly():
    with pytest.raises(ValueError, match="unknown attention='nope'"): G.GPT(tiny(attention="nope"))
    with pytest.raises(ValueError, match="unknown mlp='nope'"): G.GPT(tiny(mlp="nope"))
    assert set(G.PLUGINS) >= {"flash", "ring", "bitlinear", "lora", "moe"}

# ---------------------------------------------------------------- bad input
# Every public function of llmlab.gpt, given a wrong kind (TypeError) or a wrong value (ValueError): the message names the
# argument. Each row: (call, expected error, fragment of the message).
class _Win:
    def __init__(self, x, y): self.x, self.y = x, y

def _bad_cases(tmp):
    m = model(); idx = randidx(1, 5)
    cache = G.KVCache(2); m(randidx(1, 10), cache=cache)
    q4, k4 = torch.randn(1, 2, 3, 4), torch.randn(1, 1, 3, 4)
    return [
        # GPTConfig: every field at construction
        (lambda: tiny(vocab_size=0), ValueError, "GPTConfig.vocab_size must be an int >= 1"),
        (lambda: tiny(vocab_size=2.5), TypeError, "GPTConfig.vocab_size must be an int"),
        (lambda: tiny(ctx_len=True), TypeError, "GPTConfig.ctx_len must be an int"),
        (lambda: tiny(n_layer=0), ValueError, "GPTConfig.n_layer"),
        (lambda: tiny(d_ff=-1), ValueError, "GPTConfig.d_ff"),
        (lambda: tiny(n_head=3, n_kv_head=3), ValueError, "n_head=3 must divide d_model=32"),
        (lambda: tiny(n_kv_head=3), ValueError, "n_kv_head=3 must divide n_head=4"),
        (lambda: tiny(n_head=32, n_kv_head=32), ValueError, "must be even for RoPE"),
        (lambda: tiny(rope_base=float("nan")), ValueError, "GPTConfig.rope_base must be a finite number"),
        (lambda: tiny(rope_base=-10.0), ValueError, "GPTConfig.rope_base must be"),
        (lambda: tiny(rope_base=1.0), ValueError, "GPTConfig.rope_base must be"),
        (lambda: tiny(rope_base="big"), TypeError, "GPTConfig.rope_base must be a number"),
        (lambda: tiny(norm_eps=float("nan")), ValueError, "GPTConfig.norm_eps must be a finite number"),
        (lambda: tiny(norm_eps=-1e-5), ValueError, "GPTConfig.norm_eps must be"),
        (lambda: tiny(norm_eps=0.0), ValueError, "GPTConfig.norm_eps must be"),
        (lambda: tiny(init_std=float("inf")), ValueError, "GPTConfig.init_std"),
        (lambda: tiny(causal=1), TypeError, "GPTConfig.causal must be a bool"),
        (lambda: tiny(qk_norm="yes"), TypeError, "GPTConfig.qk_norm must be a bool"),
        (lambda: tiny(attention=3), TypeError, "GPTConfig.attention must be a registry name"),
        (lambda: tiny(mlp_kwargs=[1]), TypeError, "GPTConfig.mlp_kwargs must be a dict"),
        (lambda: G.GPTConfig.from_dict({"vocab": 3}), ValueError, "unknown fields ['vocab']"),
        (lambda: G.GPT({"vocab_size": 3}), TypeError, "needs a GPTConfig"),
        # building blocks
        (lambda: G.RMSNorm(8, eps=float("nan")), ValueError, "eps must be a finite number"),
        (lambda: G.RMSNorm(0), ValueError, "dim must be an int >= 1"),
        (lambda: G.rope_tables(8, 7), ValueError, "head_dim must be even"),
        (lambda: G.rope_tables(8, 8, base=0.5), ValueError, "base must be"),
        (lambda: G.apply_rope(torch.randn(1, 1, 4, 8), *G.rope_tables(3, 8)), ValueError, "apply_rope needs x (B, H, T, D)"),
        (lambda: G.causal_mask(-1, 3), ValueError, "Tq must be an int >= 0"),
        (lambda: G.attention_ref(torch.randn(2, 3, 4), k4, k4, True), ValueError, "q must be 4-D"),
        (lambda: G.attention_sdpa(q4, torch.randn(1, 1, 3, 4), torch.randn(1, 1, 5, 4), True), ValueError, "k and v must have one shape"),
        (lambda: G.attention_sdpa(torch.randn(1, 3, 3, 4), torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4), True), ValueError, "multiple of KV heads"),
        (lambda: G.attention_ref(q4, k4[:, :, :0], k4[:, :, :0], False), ValueError, "no keys (Tk=0)"),
        (lambda: G.attention_ref(q4.long(), k4, k4, True), TypeError, "q must have dtype float"),
        (lambda: G.attention_probs(q4, torch.randn(1, 1, 3, 5), True), ValueError, "must agree in B and D"),
        (lambda: G.KVCache(0), ValueError, "n_layer must be an int >= 1"),
        (lambda: cache.update(5, torch.zeros(1, 2, 1, 8), torch.zeros(1, 2, 1, 8)), ValueError, "layer must be an int"),
        (lambda: cache.update(0, torch.zeros(2, 2, 1, 8), torch.zeros(2, 2, 1, 8)), ValueError, "KVCache layer 0 holds"),
        # forward
        (lambda: m(randidx(1, 13)), ValueError, "T=13 tokens, more than ctx_len=12"),
        (lambda: m(torch.full((1, 3), 50)), ValueError, "vocab_size=50"),
        (lambda: m(torch.full((1, 3), -1)), ValueError, "vocab_size=50"),
        (lambda: m(torch.zeros(1, 3)), ValueError, "integer tensor"),
        (lambda: m(torch.zeros(3, dtype=torch.long)), ValueError, "integer tensor"),
        (lambda: m(torch.zeros(0, 3, dtype=torch.long)), ValueError, "at least one row and one token"),
        (lambda: m(randidx(1, 3), cache=cache), ValueError, "after 10 cached"),
        (lambda: m(idx, cache={}), TypeError, "cache must be a KVCache(2)"),
        (lambda: m(idx, idx.float()), TypeError, "targets must be an integer tensor"),
        (lambda: m(idx, idx[:, :3]), ValueError, "targets must have idx's shape"),
        (lambda: m(idx, torch.full_like(idx, 50)), ValueError, "targets hold 50"),
        (lambda: m(idx, torch.full_like(idx, -5)), ValueError, "or -100 (ignore)"),
        (lambda: m.run_with_cache(idx, ["blocks.9.attn_out"]), KeyError, "no hook point"),
        (lambda: m.hooks([("x", print)]).__enter__(), TypeError, "hooks takes a dict"),
        (lambda: G.flops_per_token({"d_model": 3}), TypeError, "config must be a GPTConfig"),
        (lambda: G.flops_per_token(m.config, seq_len=0), ValueError, "seq_len must be an int >= 1"),
        # sampling and generation
        (lambda: G.sample_logits(torch.zeros(1, 5), float("nan")), ValueError, "temperature must be a finite number"),
        (lambda: G.sample_logits(torch.zeros(1, 5), -1.0), ValueError, "temperature must be"),
        (lambda: G.sample_logits(torch.zeros(1, 5), 1.0, top_k=0), ValueError, "top_k must be an int >= 1"),
        (lambda: G.sample_logits(torch.zeros(1, 5), 1.0, top_p=0), ValueError, "top_p must be"),
        (lambda: G.sample_logits(torch.zeros(1, 5), 1.0, top_p=1.5), ValueError, "top_p must be"),
        (lambda: G.sample_logits(torch.full((1, 5), float("nan")), 1.0), ValueError, "logits contain NaN"),
        (lambda: G.sample_logits(torch.zeros(5), 1.0), ValueError, "logits must be 2-D"),
        (lambda: m.generate(idx.float(), 3), TypeError, "idx must have dtype"),
        (lambda: m.generate(idx, -1), ValueError, "max_new_tokens must be an int >= 0"),
        (lambda: m.generate(idx, 2.0), TypeError, "max_new_tokens must be an int"),
        (lambda: m.generate(idx, 0, temperature=-1.0), ValueError, "temperature must be"),
        (lambda: m.generate(idx, 3, stop="a"), TypeError, "stop ids must be ints"),
        (lambda: m.generate(idx[:, :0], 3), ValueError, "at least one row and one token"),
        (lambda: G.generate("model", idx, 3), TypeError, "model must be a torch module"),
        (lambda: G.complete(m, [], 4), ValueError, "prompts is empty"),
        (lambda: G.complete(m, [[]], 4), ValueError, "at least one token"),
        (lambda: G.complete(m, "abc", 4), TypeError, "prompts must be a list of token-id lists"),
        (lambda: G.complete(m, [[1.5, 2.0]], 4), TypeError, "prompts[0] must be a list of int token ids"),
        (lambda: G.complete(m, [[1, 2]], 4, batch_size=0), ValueError, "batch_size must be an int >= 1"),
        (lambda: G.complete(m, [[1, 2]], -2), ValueError, "max_new_tokens must be an int >= 0"),
        (lambda: G.complete(m, [[1, 2]], 2, stop=[1.5]), TypeError, "stop ids must be ints"),
        (lambda: G.complete(m, [[1, 2]], 2, context=3), TypeError, "context must be callable"),
        (lambda: G._pad_ids([]), ValueError, "ids must be a non-empty list"),
        # training
        (lambda: G.lr_schedule(0, 0, 1e-3, 1), ValueError, "steps must be an int >= 1"),
        (lambda: G.lr_schedule(0, 10, float("nan"), 1), ValueError, "lr must be a finite number"),
        (lambda: G.lr_schedule(0, 10, 1e-3, 1, min_frac=2.0), ValueError, "min_frac must be"),
        (lambda: G.get_batch(torch.rand(100), 2, 8), TypeError, "data must hold integer token ids"),
        (lambda: G.get_batch(torch.rand(10, 9), 2, 8), TypeError, "data must hold integer token ids"),
        (lambda: G.get_batch(lambda b, g: (torch.rand(b, 8), torch.rand(b, 8)), 2, 8), TypeError, "the batch's x must hold integer"),
        (lambda: G.get_batch(lambda b, g: (torch.zeros(b, 8, dtype=torch.long), torch.zeros(b, 7, dtype=torch.long)), 2, 8), ValueError, "one shape"),
        (lambda: G.get_batch("text", 2, 8), TypeError, "data must be a 1-D/2-D LongTensor"),
        (lambda: G.get_batch(torch.arange(5), 2, 8), ValueError, "data has 5 tokens"),
        (lambda: G.get_batch(torch.zeros(0, 9, dtype=torch.long), 2, 8), ValueError, "data rows must hold"),
        (lambda: G.get_batch(torch.arange(100), 0, 8), ValueError, "batch_size must be an int >= 1"),
        (lambda: G.evaluate(m, counting(300), batches=0), ValueError, "batches must be an int >= 1"),
        (lambda: G.evaluate(m, counting(300), batch_size=0), ValueError, "batch_size must be an int >= 1"),
        (lambda: G.train(m, counting(300).float(), 2, bar=False, plot=False), TypeError, "data must hold integer token ids"),
        (lambda: G.train(m, counting(300), 0), ValueError, "steps must be an int >= 1"),
        (lambda: G.train(m, counting(300), 2, lr=float("nan")), ValueError, "lr must be a finite number"),
        (lambda: G.train(m, counting(300), 2, lr=0.0), ValueError, "lr must be"),
        (lambda: G.train(m, counting(300), 2, betas=(0.9, 1.0)), ValueError, "betas[i] must be"),
        (lambda: G.train(m, counting(300), 2, betas=0.9), TypeError, "betas must be a pair"),
        (lambda: G.train(m, counting(300), 2, grad_clip=-1.0), ValueError, "grad_clip must be"),
        (lambda: G.train(m, counting(300), 2, accum=0), ValueError, "accum must be an int >= 1"),
        (lambda: G.train(m, counting(300), 2, weight_decay=float("inf")), ValueError, "weight_decay must be a finite"),
        (lambda: G.train(m, counting(300), 2, eval_every=0), ValueError, "eval_every must be an int >= 1"),
        (lambda: G.train(torch.nn.Linear(2, 2), counting(300), 2), TypeError, "model must be a GPT"),
        (lambda: G.train(m, counting(300), 2, ddp=True), RuntimeError, "needs torch.distributed initialised"),
        # checkpoints
        (lambda: G.save(torch.nn.Linear(2, 2), tmp / "x"), TypeError, "model must be a GPT"),
        (lambda: G.save(m, tmp / "x", meta={"f": print}), ValueError, "meta must be JSON-serialisable"),
        (lambda: G.save(m, tmp / "x", meta={"f": float("nan")}), ValueError, "meta must be JSON-serialisable"),
        (lambda: G.save(m, tmp / "x", meta=[1]), TypeError, "meta must be a dict"),
        (lambda: G.save(m, tmp / "afile"), FileExistsError, "is not a checkpoint directory"),
        (lambda: G.save(m, None), TypeError, "path must be"),
        (lambda: G.load(tmp), FileNotFoundError, "not a GPT checkpoint"),
        (lambda: G.load(3), TypeError, "path must be a str or path"),
        (lambda: G.load(G.save(m, tmp / "dev"), device="bogus"), ValueError, "device must be a torch device"),
        # presets and measurements
        (lambda: G.pretrained("nope"), KeyError, "unknown preset 'nope'"),
        (lambda: G.pretrained(3), TypeError, "preset name must be a str"),
        (lambda: G.pretrained("world-tiny", seed="1"), TypeError, "seed must be an int"),
        (lambda: G.pretrained("world-tiny", retrain="yes"), TypeError, "retrain must be a bool"),
        (lambda: G.train_preset("nope"), KeyError, "unknown preset"),
        (lambda: G.train_preset("world-tiny", steps=0), ValueError, "steps must be an int >= 1"),
        (lambda: G.world_of(3), TypeError, "model_or_name must be a preset name"),
        (lambda: G.RMSNorm(4)(torch.zeros(2, 5)), ValueError, "RMSNorm(4) needs x (..., 4)"),
        (lambda: G.sample_logits(torch.full((1, 5), float("-inf")), 1.0), ValueError, "no finite entry"),
        (lambda: G.world_of("nope"), KeyError, "not a world preset"),
        (lambda: G.world_data(n_docs=0), ValueError, "n_docs must be an int >= 1"),
        (lambda: G.world_data(error_rate=float("nan")), ValueError, "error_rate must be a finite number"),
        (lambda: G.ngram_baselines(_Win(idx, idx), _Win(idx, idx), 50, alpha=0.0), ValueError, "alpha must be"),
        (lambda: G.ngram_baselines(_Win(idx, idx), _Win(idx[:0], idx[:0]), 50), ValueError, "val holds no tokens"),
        (lambda: G.ngram_baselines(_Win(idx, idx), _Win(idx, idx), 5), ValueError, "outside [0, vocab_size=5)"),
        (lambda: G.ngram_baselines(idx, idx, 50), TypeError, "train must have token tensors .x and .y"),
        (lambda: G.dataset_loss(m, (idx[:0], idx[:0])), ValueError, "nothing to measure"),
        (lambda: G.dataset_loss(m, (idx, torch.full_like(idx, -100))), ValueError, "nothing to measure"),
        (lambda: G.dataset_loss(m, "xy"), TypeError, "data must be an LMData or a pair"),
        (lambda: G.dataset_loss(m, (idx, idx), batch_size=0), ValueError, "batch_size must be an int >= 1"),
        (lambda: G.task_accuracy(m, None, []), ValueError, "tasks is empty"),
        (lambda: G.task_accuracy(m, None, "calc"), TypeError, "tasks must be a list of Task"),
        (lambda: G.world_eval(m, object(), object(), n_arith=0), ValueError, "n_arith must be an int >= 1"),
        (lambda: G.sentiment_consistency(m, None, None, n_samples=0), ValueError, "n_samples must be an int >= 1"),
    ]

def test_bad_input_table(tmp_path):
    (tmp_path / "afile").write_text("x")
    cases = _bad_cases(tmp_path)
    assert len(cases) >= 120
    wrong = []
    for i, (call, exc, frag) in enumerate(cases):
        try: call(); wrong.append(f"case {i} ({frag!r}): no error")
        except Exception as e:
            if not isinstance(e, exc) or frag not in str(e): wrong.append(f"case {i}: {type(e).__name__}: {str(e)[:200]!r}, expected {exc.__name__} with {frag!r}")
    assert not wrong, "\n".join(wrong)

def test_bad_input_documented_results():
    "Edge inputs with a defined result instead of an error."
    m = model(); idx = randidx(2, 6)
    # a loss over zero tokens (every target ignored) is 0 with a zero gradient, never NaN
    m.zero_grad(); _, loss = m(idx, torch.full_like(idx, -100)); loss.backward()
    assert loss.item() == 0.0 and all(p.grad is None or not p.grad.any() for p in m.parameters())
    # attention rows with no visible key (causal, Tq > Tk) give 0 on both paths; the probabilities are 0 too
    q, k, v = torch.randn(1, 2, 5, 4), torch.randn(1, 1, 3, 4), torch.randn(1, 1, 3, 4)
    for f in (G.attention_ref, G.attention_sdpa):
        out = f(q, k, v, True)
        assert torch.isfinite(out).all() and not out[:, :, :2].any() and out[:, :, 2:].abs().sum() > 0, f.__name__
    torch.testing.assert_close(G.attention_ref(q, k, v, True), G.attention_sdpa(q, k, v, True))
    p = G.attention_probs(q, k, True)
    assert not p[:, :, :2].any() and torch.allclose(p[:, :, 2:].sum(-1), torch.ones(1, 2, 3))
    # max_new_tokens=0 returns the prompt unchanged; complete() with it gives empty completions
    assert torch.equal(m.generate(idx, 0), idx) and G.complete(m, [[1, 2]], 0) == [[]]
    # a 1-D prompt is one row; stop=None/[] means no stop
    assert m.generate(idx[0], 2, temperature=0).shape == (1, 8)
    assert torch.equal(m.generate(idx, 3, temperature=0, stop=[]), m.generate(idx, 3, temperature=0))
    # complete() takes prompts as lists, tuples or 1-D id tensors alike
    assert G.complete(m, [idx[0]], 3) == G.complete(m, [tuple(idx[0].tolist())], 3) == G.complete(m, [idx[0].tolist()], 3)
    # train on data that would be truncated is refused above; train with grad_clip=0 measures without clipping
    h = G.train(model(), counting(300), 2, grad_clip=0, bar=False, plot=False)
    assert len(h["grad_norm"]) == 2 and all(math.isfinite(g) for g in h["grad_norm"])

def test_train_stops_before_the_step_on_a_non_finite_loss():
    "A NaN loss at step 2 raises FloatingPointError and leaves the weights exactly as they were when that step began."
    torch.manual_seed(0); m = G.GPT(tiny(n_layer=1)); calls, snap = [0], []
    def poison(a):
        calls[0] += 1
        if calls[0] == 3:                             # the forward of step 2: snapshot the weights it starts from
            snap.extend(p.detach().clone() for p in m.parameters()); return a * float("nan")
    with m.hooks({"blocks.0.mlp_out": poison}):
        with pytest.raises(FloatingPointError, match="non-finite loss at step 2.*before the optimizer step"):
            G.train(m, counting(2000), 4, lr=1e-2, batch_size=4, seed=1, bar=False, plot=False)
    assert len(snap) == len(list(m.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(snap, m.parameters())), "the optimizer stepped on a NaN loss"

def test_param_count_and_flops():
    m = model(); c = m.config
    per_layer = 2 * c.d_model + c.d_model * c.head_dim * (2 * c.n_head + 2 * c.n_kv_head) + 3 * c.d_model * c.d_ff
    assert m.num_params() == c.vocab_size * c.d_model + c.n_layer * per_layer + c.d_model
    assert m.num_params(embedding=False) == m.num_params() - c.vocab_size * c.d_model
    mat = m.num_params(embedding=False) - c.n_layer * 2 * c.d_model - c.d_model + c.vocab_size * c.d_model
    assert m.flops_per_token(training=False, seq_len=1) == 2 * mat + 4 * c.n_layer * c.d_model
    assert m.flops_per_token() == 3 * m.flops_per_token(training=False)

# ---------------------------------------------------------------- training, save/load
def counting(n, V=50): return torch.arange(n) % V

def test_train_learns_and_is_deterministic():
    def run():
        torch.manual_seed(0); m = G.GPT(tiny(n_layer=1))
        return m, G.train(m, counting(3000), 40, lr=1e-2, batch_size=8, val_data=counting(400), accum=2, eval_every=20, seed=3, bar=False, plot=False)
    (m1, h1), (m2, h2) = run(), run()
    assert len(h1["loss"]) == 40 and h1["val_step"] == [19, 39] and h1["tokens"] == 40 * 2 * 8 * 12
    assert h1["val_loss"][-1] < 0.5 * math.log(50), h1["val_loss"]
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert h1["loss"] == h2["loss"]

def test_lr_schedule():
    lrs = [G.lr_schedule(s, 100, 1.0, 10) for s in range(100)]
    assert lrs[9] == 1.0 and lrs[0] == 0.1 and abs(lrs[-1] - 0.1) < 1e-3 and all(a >= b for a, b in zip(lrs[9:], lrs[10:]))

def test_save_load_bit_exact(tmp_path):
    m = model(mlp="dense", n_kv_head=1)
    p = G.save(m, tmp_path / "ck", meta={"note": "x"})
    m2 = G.load(p)
    assert m2.config == m.config and m2.meta == {"note": "x"}
    sd1, sd2 = m.state_dict(), m2.state_dict()
    assert sd1.keys() == sd2.keys() and all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    idx = randidx()
    assert torch.equal(m(idx)[0], m2(idx)[0])
    assert not any(f.suffix in (".pt", ".pkl", ".bin") for f in p.iterdir())
    with pytest.raises(FileNotFoundError, match="not a GPT checkpoint"): G.load(tmp_path)

# ---------------------------------------------------------------- checkpoints: atomic, checksummed
def _same(a, b): return a.config == b.config and all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

def test_load_refuses_a_damaged_or_mixed_checkpoint(tmp_path):
    a, b = model(seed=0), model(seed=1, n_layer=1)
    pa, pb = G.save(a, tmp_path / "a"), G.save(b, tmp_path / "b")
    info = json.loads((pa / "config.json").read_text())
    assert len(info["sha256"]) == 64 and info["format"] == G.CKPT_FORMAT
    w = pa / "model.safetensors"; raw = w.read_bytes()
    w.write_bytes(raw[:-8] + bytes(8))                                       # last bytes overwritten
    with pytest.raises(ValueError, match=r"a/model.safetensors does not match the SHA-256"): G.load(pa)
    w.write_bytes(raw[:len(raw) // 2])                                       # truncated
    with pytest.raises(ValueError, match="does not match the SHA-256"): G.load(pa)
    w.write_bytes(raw); (pa / "config.json").write_text((pb / "config.json").read_text())   # one writer's config, other's weights
    with pytest.raises(ValueError, match="does not match the SHA-256"): G.load(pa)
    info["config"]["rope_base"] = 10001.0; (pa / "config.json").write_text(json.dumps(info))   # an edited config
    with pytest.raises(ValueError, match="its config does not match the SHA-256"): G.load(pa)
    (pa / "config.json").write_text('{"config": {"vocab_')                  # a half-written config
    with pytest.raises(ValueError, match="config.json is not valid JSON"): G.load(pa)
    G.save(a, pa); assert _same(G.load(pa), a)                              # saving again over a damaged one repairs it
    assert sorted(f.name for f in tmp_path.iterdir() if not f.name.startswith(".")) == ["a", "b"]
    assert not [f for f in tmp_path.iterdir() if ".tmp-" in f.name or ".old-" in f.name]    # no temporary left behind

def test_old_checkpoint_without_checksum(tmp_path):
    "Policy: a checkpoint written before checksums loads, after checking every tensor is finite and fits the config."
    m = model(); p = G.save(m, tmp_path / "old")
    info = json.loads((p / "config.json").read_text()); del info["sha256"], info["config_sha256"], info["format"]
    (p / "config.json").write_text(json.dumps(info))
    assert _same(G.load(p), m)
    from safetensors.torch import save_file
    sd = {k: v.clone() for k, v in m.state_dict().items()}; sd["norm.weight"][0] = float("nan")
    save_file(sd, str(p / "model.safetensors"))
    with pytest.raises(ValueError, match="non-finite weights in \\['norm.weight'\\]"): G.load(p)
    save_file({k: v for k, v in m.state_dict().items() if k != "norm.weight"}, str(p / "model.safetensors"))
    with pytest.raises(ValueError, match="the weights do not fit the config"): G.load(p)
    (p / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable safetensors file"): G.load(p)
    bad = model(); 
    with torch.no_grad(): bad.wte.weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match="non-finite weights"): G.save(bad, tmp_path / "inf")
    assert not (tmp_path / "inf").exists()

from hypothesis import given, settings, strategies as st, HealthCheck

_MODELS = [model(seed=s, n_layer=1 + s % 2) for s in range(3)]

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(["save", "load", "tail", "flip", "truncate", "swapcfg", "rmcfg"]),
                              st.integers(0, 2), st.integers(0, 10 ** 6)), min_size=1, max_size=12))
def test_random_save_load_corrupt_never_loads_wrong_weights(tmp_path_factory, ops):
    "Random save/load/corrupt sequences: load returns exactly the last saved model, or raises; never other weights."
    d = tmp_path_factory.mktemp("ck"); p = d / "ck"; other = d / "other"
    G.save(_MODELS[2], other)
    last, intact = None, False
    for op, i, r in ops:
        w, c = p / "model.safetensors", p / "config.json"
        if op == "save": G.save(_MODELS[i], p); last, intact = _MODELS[i], True
        elif last is None: continue
        elif op == "tail": raw = w.read_bytes(); w.write_bytes(raw[:-4] + bytes(4)); intact = intact and raw[-4:] == bytes(4)
        elif op == "flip":                                       # (an earlier truncate may have left an empty file)
            raw = bytearray(w.read_bytes()) or bytearray(1); raw[r % len(raw)] ^= 1 + r % 255; w.write_bytes(bytes(raw)); intact = False
        elif op == "truncate": raw = w.read_bytes(); w.write_bytes(raw[:r % max(1, len(raw))]); intact = False
        elif op == "swapcfg": c.write_text((other / "config.json").read_text()); intact = intact and last is _MODELS[2]
        elif op == "rmcfg": c.unlink(missing_ok=True); intact = False
        if op == "load" or op != "save":
            try: got = G.load(p)
            except (ValueError, FileNotFoundError):
                assert not intact, "an intact checkpoint failed to load"; continue
            assert _same(got, last), f"loaded weights that are not the last saved model after {op}"

WRITER = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from llmlab import gpt as G
    torch.manual_seed(int(sys.argv[2]))
    m = G.GPT(G.GPTConfig(vocab_size=50, ctx_len=12, n_layer=1 + int(sys.argv[2]), n_head=2, d_model=16))
    for _ in range(int(sys.argv[3])): G.save(m, sys.argv[1], meta={"writer": int(sys.argv[2])})
""")
READER = textwrap.dedent("""
    import os, sys, time, torch
    torch.set_num_threads(1)
    from llmlab import gpt as G
    sums = {0: float(sys.argv[2]), 1: float(sys.argv[3])}
    n = bad = err = 0
    stop, t0 = sys.argv[4], time.time()
    while not os.path.exists(stop) and time.time() - t0 < 600:   # until the writers are done
        try: m = G.load(sys.argv[1])
        except Exception as e: err += 1; print("ERR", type(e).__name__, e); continue
        n += 1
        w = m.meta["writer"]
        if m.config.n_layer != 1 + w or sum(float(p.double().sum()) for p in m.parameters()) != sums[w]: bad += 1
    print("READS", n, "BAD", bad, "ERRORS", err)
""")

def test_two_writers_and_a_reader_never_mix(tmp_path):
    "Two processes save different models to one path while a third loads: no error, no mixed or wrong checkpoint."
    sums = []
    for w in (0, 1):
        torch.manual_seed(w); m = G.GPT(G.GPTConfig(vocab_size=50, ctx_len=12, n_layer=1 + w, n_head=2, d_model=16))
        sums.append(repr(sum(float(p.detach().double().sum()) for p in m.parameters())))
        if w == 0: G.save(m, tmp_path / "ck", meta={"writer": 0})
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = lambda code, *a: subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "ck"), *map(str, a)], env=env,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader = run(READER, *sums, tmp_path / "stop")
    writers = [run(WRITER, 0, 30), run(WRITER, 1, 30)]
    outs = [p.communicate(timeout=300) for p in writers]
    (tmp_path / "stop").touch()
    outs.append(reader.communicate(timeout=300)); procs = writers + [reader]
    assert all(p.returncode == 0 for p in procs), [o[1][-1500:] for o in outs]
    last = outs[2][0].strip().splitlines()[-1].split()
    assert last[0] == "READS" and int(last[1]) > 0 and last[3] == "0" and last[5] == "0", outs[2][0][-2000:]
    assert _same(G.load(tmp_path / "ck"), G.load(tmp_path / "ck"))
    assert not [f for f in tmp_path.iterdir() if ".tmp-" in f.name or ".old-" in f.name]

# ---------------------------------------------------------------- pretrained, two processes
SCRIPT = textwrap.dedent("""
    import sys, os, torch
    torch.set_num_threads(1)
    from llmlab import gpt as G
    def data():
        with open(os.environ["TRAIN_LOG"], "a") as f: f.write(f"{os.getpid()}\\n")
        return torch.arange(5000) % 50, torch.arange(600) % 50
    G.PRESETS["test-tiny"] = dict(config=dict(vocab_size=50, ctx_len=12, n_layer=1, n_head=2, d_model=16),
                                  data=data, steps=30, lr=1e-2, batch_size=8, seed=0)
    m = G.pretrained("test-tiny")
    print("SUM", sum(float(p.double().sum()) for p in m.parameters()))
""")

def test_concurrent_pretrained_gives_one_checkpoint(tmp_path):
    env = os.environ | {"LLMLAB_CACHE": str(tmp_path / "cache"), "TRAIN_LOG": str(tmp_path / "log"), "LLMLAB_PROGRESS": "0",
                        "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]        # generous: a loaded CI machine starts Python slowly
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    sums = [next(l for l in o[0].splitlines() if l.startswith("SUM")) for o in outs]
    assert sums[0] == sums[1], sums
    assert len((tmp_path / "log").read_text().split()) == 1, "the preset was trained more than once"
    models = tmp_path / "cache" / "models"
    ckpts = [d for d in models.iterdir() if d.is_dir()]
    assert len(ckpts) == 1 and ckpts[0].name.startswith("test-tiny-"), [d.name for d in models.iterdir()]
    assert sorted(f.name for f in ckpts[0].iterdir()) == ["config.json", "model.safetensors"]

def test_preset_trains_on_one_thread_and_a_seed_has_its_own_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path)); monkeypatch.setenv("LLMLAB_PROGRESS", "0")
    seen = []
    def data():
        tr = torch.arange(3000) % 50
        def batches(b, g): seen.append(torch.get_num_threads()); return G.get_batch(tr, b, 12, g)
        return batches, torch.arange(600) % 50
    G.PRESETS["test-threads"] = dict(config=dict(vocab_size=50, ctx_len=12, n_layer=1, n_head=2, d_model=16), data=data,
                                     steps=5, lr=1e-2, batch_size=4, seed=0)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = G.pretrained("test-threads")
        assert seen and set(seen) == {1}, seen                   # trained on one thread whatever the caller's setting
        assert torch.get_num_threads() == 2                      # and the caller's setting is given back
        key = G._preset_key("test-threads", G.PRESETS["test-threads"])
        assert G._preset_key("test-threads", G._preset_spec("test-threads", 0)) == key   # the preset's own seed: same entry
        b, c = G.pretrained("test-threads", seed=1), G.pretrained("test-threads", seed=0)
        assert _same(a, c) and not _same(a, b) and b.meta["seed"] == 1 and a.meta["threads"] == 1
        dirs = sorted(d.name for d in (tmp_path / "models").iterdir() if d.is_dir())
        assert len(dirs) == 2 and key in dirs, dirs
    finally:
        G.PRESETS.pop("test-threads"); torch.set_num_threads(old)

def test_world_tiny_cache_key_is_unchanged():
    "The default world-tiny is the model everyone has cached: its key (and so its weights' recipe) must not drift."
    assert G._preset_key("world-tiny", G.PRESETS["world-tiny"]) == "world-tiny-42cbeab1a0"
    assert G._preset_key("world-tiny", G._preset_spec("world-tiny")) == "world-tiny-42cbeab1a0"

def test_pretrained_unknown_name():
    with pytest.raises(KeyError, match="unknown preset 'nope'"): G.pretrained("nope")

# ---------------------------------------------------------------- world presets and measurements
def test_world_presets_match_their_world():
    assert {"world-tiny", "world-small"} <= set(G.PRESETS)
    for name in ("world-tiny", "world-small"):
        w, tok = G.world_of(name)
        assert G.PRESETS[name]["config"]["vocab_size"] == tok.vocab_size
        G.GPTConfig(**G.PRESETS[name]["config"])                    # a valid config
    assert G._preset_key("world-tiny", G.PRESETS["world-tiny"]) != G._preset_key("world-small", G.PRESETS["world-small"])
    with pytest.raises(KeyError, match="not a world preset"): G.world_of("nope")

class _Windows:
    def __init__(self, x, y): self.x, self.y = torch.tensor(x), torch.tensor(y)

def test_ngram_baselines_by_hand():
    tr, va = _Windows([[0, 1, 0, 1]], [[1, 0, 1, 2]]), _Windows([[0, 1]], [[1, 2]])
    b = G.ngram_baselines(tr, va, vocab_size=3, alpha=1.0)
    # unigram counts of targets 1,0,1,2 -> (1+1, 2+1, 1+1)/7; bigram rows: 0->1 twice, 1->0 once, 1->2 once
    uni = -(math.log(3 / 7) + math.log(2 / 7)) / 2
    bi = -(math.log(3 / 5) + math.log(2 / 5)) / 2                  # P(1|0) = (2+1)/(2+3), P(2|1) = (1+1)/(2+3)
    assert b["unigram"] == pytest.approx(uni) and b["bigram"] == pytest.approx(bi)

def test_dataset_loss_is_the_mean_over_every_window():
    m = model()
    x, y = randidx(B=5, seed=3), randidx(B=5, seed=4)
    with torch.no_grad(): ref = m(x, y)[1].item()
    assert G.dataset_loss(m, (x, y), batch_size=2) == pytest.approx(ref, rel=1e-5)

def test_task_accuracy_uses_the_exact_checker():
    from llmlab.world import World, Tokenizer
    w = World(0); tok = Tokenizer.from_world(w)
    tasks = w.fact_queries(4, relation="city", seed=2)
    class Oracle(torch.nn.Module):            # answers the first two tasks right, the others wrong
        def __init__(self): super().__init__(); self.p = torch.nn.Parameter(torch.zeros(1)); self.calls = 0
        def generate(self, idx, n, temperature=1.0, stop=None, **kw):
            rows = []
            for r in idx.tolist():
                ans = tasks[self.calls].answer if self.calls < 2 else "nowhere"
                self.calls += 1
                rows.append(r + [tok.stoi.get(t, tok.unk_id) for t in f"{ans} .".split()] + [tok.eos_id])
            width = max(map(len, rows))
            return torch.tensor([r + [tok.eos_id] * (width - len(r)) for r in rows])
    assert G.task_accuracy(Oracle(), tok, tasks) == 0.5
    with pytest.raises(ValueError, match="empty"): G.task_accuracy(Oracle(), tok, [])

def test_return_hidden_gives_the_states_before_the_tied_head():
    torch.manual_seed(0)
    m = G.GPT(G.GPTConfig(vocab_size=50, ctx_len=12, n_layer=2, n_head=2, d_model=16)).eval()
    idx = torch.randint(0, 50, (3, 12))
    logits, _ = m(idx)
    h, none = m(idx, return_hidden=True)
    assert none is None and h.shape == (3, 12, 16)
    assert m.head_weight is m.wte.weight
    torch.testing.assert_close(h @ m.head_weight.T, logits, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="returns no loss"): m(idx, idx, return_hidden=True)
    with pytest.raises(TypeError, match="return_hidden must be a bool"): m(idx, return_hidden=1)

def test_shipped_checkpoints_match_the_presets():
    "llmlab/weights holds exactly one checkpoint per shipped preset, under the preset's current key (else: tools/ship_presets.py)."
    root = G.shipped_dir()
    want = {G._preset_key(n, G._preset_spec(n)): n for n in G.SHIPPED_PRESETS}
    have = {d.name for d in root.iterdir() if d.is_dir()} if root.exists() else set()
    assert have == set(want), (f"llmlab/weights holds {sorted(have)} but the shipped presets' keys are {sorted(want)}: "
                               "a preset changed; run `python tools/ship_presets.py` and commit llmlab/weights")
    for key, name in want.items():
        m = G.load(root / key)                                   # verifies the SHA-256 of weights and config
        assert m.meta["preset"] == name and m.meta["seed"] == G.PRESETS[name].get("seed", 0)
        assert m.config.to_dict() == G.GPTConfig(**G.PRESETS[name]["config"]).to_dict()
        assert "world_eval" in m.meta["shipped"] and len(m.meta["curve"]["loss"]) >= 50

def test_pretrained_loads_the_shipped_checkpoint_without_training(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    def no_training(*a, **k): raise AssertionError("pretrained trained although a shipped checkpoint exists")
    monkeypatch.setattr(G, "train_preset", no_training)
    name = G.SHIPPED_PRESETS[0]
    m = G.pretrained(name)
    shipped = G.load(G.shipped_dir() / G._preset_key(name, G._preset_spec(name)))
    for (k, a), (_, b) in zip(m.state_dict().items(), shipped.state_dict().items()): assert torch.equal(a, b), k
    with pytest.raises(AssertionError, match="trained although"): G.pretrained(name, seed=12345)   # no shipped seed 12345
    assert not any(tmp_path.rglob("model.safetensors"))          # the shipped copy is read in place, never copied
