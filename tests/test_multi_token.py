"""Multi-token prediction: config checks, the next-token path is an ordinary GPT, per-depth targets shifted by d,
mtp_loss == the explicit loop (n_future=1: the GPT's loss exactly), causality, the memory-efficient backward's gradients,
greedy speculative decoding == plain greedy over random models and prompts, acceptance counts, sampling's distribution,
the widget trace, bad input."""
import pytest, torch
import torch.nn.functional as F
from llmlab import multi_token as M
from llmlab.gpt import GPT, GPTConfig

torch.set_num_threads(1)
V = 11

def make(n=3, kind="parallel", seed=0, n_layer=2, init_std=0.3, ctx_len=20, **kw):
    torch.manual_seed(seed)
    return M.MTPGPT(GPTConfig(vocab_size=V, ctx_len=ctx_len, n_layer=n_layer, n_head=2, d_model=16, init_std=init_std),
                    M.MTPConfig(n, kind, **kw))

def batch(B=2, T=20, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g)

# ---------------------------------------------------------------- config and model
def test_config_defaults_and_errors():
    c = M.MTPConfig()
    assert (c.n_future, c.kind, c.loss_weights) == (4, "parallel", [1.0] * 4)
    for bad, err in [(dict(n_future=0), ValueError), (dict(n_future=2.0), TypeError), (dict(kind="tree"), ValueError),
                     (dict(n_future=2, loss_weights=[1.0]), ValueError), (dict(n_future=1, loss_weights=[-1.0]), ValueError),
                     (dict(n_future=1, loss_weights="1"), TypeError), (dict(n_future=1, loss_weights=[float("nan")]), ValueError)]:
        with pytest.raises(err): M.MTPConfig(**bad)

@pytest.mark.parametrize("kind", M.KINDS)
def test_next_token_path_is_an_ordinary_gpt(kind):
    m = make(3, kind)
    x, _ = batch()
    g = m.next_token_gpt()
    assert type(g) is GPT
    assert torch.equal(g(x)[0], m(x)[0])
    base = GPT(m.config); base.load_state_dict(g.state_dict())
    m2 = M.add_mtp(base, M.MTPConfig(2, kind))
    assert torch.equal(m2(x)[0], base(x)[0]) and isinstance(m2, M.MTPGPT) and len(m2.heads) == 1
    with pytest.raises(TypeError): M.add_mtp("gpt", M.MTPConfig())
    with pytest.raises(TypeError): M.add_mtp(base, {"n_future": 2})
    with pytest.raises(TypeError): M.MTPGPT(m.config, "parallel")

def test_shift_targets():
    t = torch.tensor([[1, 2, 3, 4, 5]])
    assert M.shift_targets(t, 1).tolist() == [[1, 2, 3, 4, 5]]
    assert M.shift_targets(t, 2).tolist() == [[2, 3, 4, 5, -100]]
    assert M.shift_targets(t, 4).tolist() == [[4, 5, -100, -100, -100]]
    assert M.shift_targets(t, 7).tolist() == [[-100] * 5]
    with pytest.raises(ValueError): M.shift_targets(t, 0)

# ---------------------------------------------------------------- loss
@pytest.mark.parametrize("kind", M.KINDS)
@pytest.mark.parametrize("n", [1, 2, 4])
def test_loss_matches_loop_and_n1_is_next_token_loss(kind, n):
    m = make(n, kind)
    x, y = batch()
    y[0, -3:] = -100                                                  # ignored targets
    total, losses = M.mtp_loss(m, x, y)
    assert len(losses) == n
    ref = M.mtp_loss_ref(m, x, y)
    torch.testing.assert_close(torch.stack(losses), torch.stack(ref), rtol=1e-5, atol=1e-5)
    assert torch.equal(losses[0], m(x, y)[1])
    if n == 1: assert torch.equal(total, m(x, y)[1])

def test_depth_d_scores_token_t_plus_d_by_hand():
    m = make(3, "parallel")
    x, y = batch(B=1, T=8)
    hs = M.mtp_hidden(m, x)
    for d in (1, 2, 3):
        logp = F.linear(hs[d - 1], m.head_weight).log_softmax(-1)[0]      # (T, V)
        s = torch.cat([x[0, :1], y[0]])                                   # the sequence
        hand = torch.stack([-logp[t, s[t + d]] for t in range(8 - d + 1)]).mean()
        torch.testing.assert_close(M.mtp_loss(m, x, y)[1][d - 1], hand)

def test_loss_weights():
    m = make(3, "sequential", loss_weights=[1.0, 0.5, 0.0])
    x, y = batch()
    total, losses = M.mtp_loss(m, x, y)
    torch.testing.assert_close(total, losses[0] + 0.5 * losses[1])

@pytest.mark.parametrize("kind", M.KINDS)
def test_causality_no_depth_sees_its_target(kind):
    m = make(4, kind)
    x, _ = batch(B=1, T=16)
    out = lambda xx, d: F.linear(M.mtp_hidden(m, xx)[d - 1], m.head_weight)
    for d in range(1, 5):
        for t in (0, 5, 16 - d - 1):
            x2 = x.clone(); x2[0, t + d:] = (x2[0, t + d:] + 3) % V        # change the target and everything after it
            torch.testing.assert_close(out(x, d)[:, :t + 1], out(x2, d)[:, :t + 1], rtol=0, atol=1e-6)

@pytest.mark.parametrize("kind", M.KINDS)
def test_memory_efficient_backward_same_gradients(kind):
    m = make(3, kind)
    x, y = batch()
    M.mtp_loss(m, x, y)[0].backward()
    g1 = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad(set_to_none=True)
    total, losses = M.mtp_backward(m, x, y)
    for n, p in m.named_parameters(): torch.testing.assert_close(p.grad, g1[n], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(torch.tensor(losses), torch.stack(M.mtp_loss(m, x, y)[1]).detach())

def test_loss_bad_input():
    m = make(2)
    x, y = batch()
    with pytest.raises(TypeError): M.mtp_loss(GPT(m.config), x, y)
    with pytest.raises(ValueError): M.mtp_loss(m, x, y[:, :5])
    with pytest.raises(TypeError): M.mtp_loss(m, x.float(), y)
    with pytest.raises(ValueError): M.mtp_loss(m, x, y + V)
    with pytest.raises(ValueError): M.mtp_loss(m, torch.full_like(x, V), y)
    with pytest.raises(ValueError): M.mtp_loss(m, torch.zeros(1, 30, dtype=torch.long), torch.zeros(1, 30, dtype=torch.long))

def test_train_mtp_reduces_loss_and_checks_args():
    m = make(2, "parallel", init_std=0.02, ctx_len=8)
    data = torch.arange(400) % 7                                          # a periodic stream: easy to learn
    h = M.train_mtp(m, data, 40, lr=1e-2, batch_size=8, bar=False)
    assert h["loss"][-1] < 0.5 * h["loss"][0] and h["tokens"] == 40 * 8 * 8 and len(h["depth_losses"][0]) == 2
    with pytest.raises(ValueError): M.train_mtp(m, data, 0)
    with pytest.raises(TypeError): M.train_mtp(GPT(m.config), data, 1)
    with pytest.raises(TypeError): M.train_mtp(m, data, 1, memory_efficient=1)

# ---------------------------------------------------------------- speculative decoding
@pytest.mark.parametrize("kind", M.KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_speculative_equals_greedy(kind, seed):
    m = make(4, kind, seed=seed)
    g = torch.Generator().manual_seed(seed + 10)
    for k in (None, 1, 2, 3):
        L = int(torch.randint(1, 6, (), generator=g))
        p = torch.randint(0, V, (L,), generator=g).tolist()
        N = int(torch.randint(0, 20 - L + 1, (), generator=g))
        ref = m.generate(torch.tensor([p]), N, temperature=0.0)[0, L:].tolist()
        out, st = M.speculative_generate(m, p, N, k=k)
        assert out == ref
        assert st["tokens"] == len(out) == N
        assert st["forwards"] == 1 + len(st["steps"])
        assert len(out) == min(N, 1 + sum(1 + s["accepted"] for s in st["steps"]))
        assert sum(st["accepted"]) == sum(s["accepted"] for s in st["steps"])
        assert all(a <= p_ for a, p_ in zip(st["accepted"], st["proposed"]))
        for s in st["steps"]:                                            # accepted drafts are the output's tokens
            assert s["verified"][:s["accepted"]] == s["drafts"][:s["accepted"]]

def test_trained_drafts_are_accepted():
    m = make(3, "parallel", init_std=0.02, ctx_len=32)
    M.train_mtp(m, torch.arange(600) % 5, 80, lr=1e-2, batch_size=8, bar=False)
    out, st = M.speculative_generate(m, [0, 1, 2], 24)
    assert out == m.generate(torch.tensor([[0, 1, 2]]), 24, temperature=0.0)[0, 3:].tolist()
    assert st["tokens_per_forward"] > 2.0 and st["acceptance"][0] > 0.9
    _, st1 = M.speculative_generate(m, [0, 1, 2], 24, draft="none")
    assert st1["tokens_per_forward"] == 1.0 and st1["proposed"] == []

def test_sampling_keeps_the_distribution():
    m = make(3, "sequential", seed=3, init_std=0.5)
    p0 = [2, 5]
    with torch.no_grad():
        p1 = m(torch.tensor([p0]))[0][0, -1].softmax(-1)
        p2 = torch.stack([m(torch.tensor([p0 + [a]]))[0][0, -1].softmax(-1) for a in range(V)])
    exact = (p1[:, None] * p2).flatten()
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(V * V)
    for _ in range(1500):
        out, _ = M.speculative_generate(m, p0, 2, temperature=1.0, generator=g)
        counts[out[0] * V + out[1]] += 1
    tv = 0.5 * (counts / counts.sum() - exact).abs().sum().item()
    assert tv < 0.15, tv

def test_speculative_bad_input():
    m = make(3)
    with pytest.raises(ValueError, match="k=4"): M.speculative_generate(m, [1], 3, k=4)
    with pytest.raises(ValueError): M.speculative_generate(m, [1], 3, k=0)
    with pytest.raises(ValueError, match="ctx_len"): M.speculative_generate(m, [1] * 15, 6)
    with pytest.raises(ValueError, match="ctx_len"): M.speculative_generate(m, [1] * 21, 0)
    with pytest.raises(ValueError): M.speculative_generate(m, [], 3)
    with pytest.raises(ValueError): M.speculative_generate(m, [V], 3)
    with pytest.raises(ValueError): M.speculative_generate(m, [1], 3, draft="medusa")
    with pytest.raises(ValueError): M.speculative_generate(m, [1], 3, temperature=-1.0)
    with pytest.raises(TypeError): M.speculative_generate(GPT(m.config), [1], 3)
    with pytest.raises(TypeError): M.speculative_generate(m, [1], 2.5)
    with pytest.raises(ValueError, match="n_future"): M.MTPConfig(0)

# ---------------------------------------------------------------- widget trace
def test_trace_speculative():
    class Tok: itos = [f"w{i}" for i in range(V)]
    models = {"parallel": make(3, "parallel"), "sequential": make(3, "sequential")}
    tr = M.trace_speculative(models, Tok(), [1, 2, 3], 10)
    assert tr["prompt"] == ["w1", "w2", "w3"] and set(tr["runs"]) == {"parallel", "sequential"}
    for name, r in tr["runs"].items():
        out, st = M.speculative_generate(models[name], [1, 2, 3], 10)
        assert r["output"] == [f"w{t}" for t in out] and r["forwards"] == st["forwards"]
        assert r["steps"][-1]["tokens"] == 10 and len(r["steps"]) == st["forwards"] - 1
    with pytest.raises(TypeError): M.trace_speculative({}, Tok(), [1], 3)

def test_an_moe_gpt_is_refused_rather_than_losing_its_balancing_loss():
    from llmlab.gpt import GPTConfig
    from llmlab.multi_token import MTPGPT, MTPConfig
    with pytest.raises(ValueError, match="mlp='dense' only"):
        MTPGPT(GPTConfig(vocab_size=50, ctx_len=16, n_layer=2, n_head=2, d_model=16, mlp="moe"), MTPConfig(2))
