"""The shared GPT: shapes and init loss, causality, attention implementations against the reference, KV-cache
generation == uncached, sampling filters, hooks read/replace exactly (and are removed on errors), plug-in registries,
training determinism, save/load bit-exact, concurrent pretrained() from two processes, errors for bad input."""
import contextlib, math, os, subprocess, sys, textwrap, pathlib
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
def test_bad_input_errors():
    m = model()
    with pytest.raises(ValueError, match="T=13 tokens, more than ctx_len=12"): m(randidx(1, 13))
    with pytest.raises(ValueError, match=r"vocab_size=50"): m(torch.full((1, 3), 50))
    with pytest.raises(ValueError, match=r"vocab_size=50"): m(torch.full((1, 3), -1))
    with pytest.raises(ValueError, match="integer tensor"): m(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="integer tensor"): m(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="n_head=3 must divide d_model=32"): tiny(n_head=3, n_kv_head=3)
    with pytest.raises(ValueError, match="n_kv_head=3 must divide n_head=4"): tiny(n_kv_head=3)
    with pytest.raises(ValueError, match="vocab_size must be a positive int"): tiny(vocab_size=0)
    with pytest.raises(TypeError, match="needs a GPTConfig"): G.GPT({"vocab_size": 3})
    cache = G.KVCache(2); m(randidx(1, 10), cache=cache)
    with pytest.raises(ValueError, match="after 10 cached"): m(randidx(1, 3), cache=cache)

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
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    sums = [next(l for l in o[0].splitlines() if l.startswith("SUM")) for o in outs]
    assert sums[0] == sums[1], sums
    assert len((tmp_path / "log").read_text().split()) == 1, "the preset was trained more than once"
    models = tmp_path / "cache" / "models"
    ckpts = [d for d in models.iterdir() if d.is_dir()]
    assert len(ckpts) == 1 and ckpts[0].name.startswith("test-tiny-"), [d.name for d in models.iterdir()]
    assert sorted(f.name for f in ckpts[0].iterdir()) == ["config.json", "model.safetensors"]

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
