"""Mixture of experts: router, losses, dispatch, MoE == moe_ref (forward and every gradient), Triton grouped GEMMs
through the interpreter, bias balancing, bad input."""
import math, subprocess, sys
import pytest, torch
import torch.nn.functional as F
from llmlab import moe as M
from llmlab.lab import HAS_TRITON, interpreting

torch.set_num_threads(1)
needs_triton = pytest.mark.skipif(not (HAS_TRITON and (interpreting() or torch.cuda.is_available())),
                                  reason="needs Triton with a GPU or TRITON_INTERPRET=1 (conftest sets it without a GPU)")

def make(d_model=13, d_ff=7, E=5, k=2, dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    return M.MoE(d_model, d_ff, E, k, **kw).to(dtype)

# ---------------------------------------------------------------- router
@pytest.mark.parametrize("gating", ["softmax", "sigmoid"])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_router_topk_and_normalised_gates(gating, k):
    torch.manual_seed(k)
    r = M.Router(11, 6, k, gating=gating).double()
    x = torch.randn(9, 11, dtype=torch.float64)
    idx, g, logits = r(x)
    assert idx.shape == (9, k) and g.shape == (9, k) and logits.shape == (9, 6)
    torch.testing.assert_close(g.sum(-1), torch.ones(9, dtype=torch.float64))
    s = logits.softmax(-1) if gating == "softmax" else torch.sigmoid(logits)
    top = s.topk(k, -1)
    assert torch.equal(idx, top.indices), "router must pick the k highest scores"
    torch.testing.assert_close(g, top.values / top.values.sum(-1, keepdim=True))

def test_router_bias_changes_choice_not_gate_values():
    torch.manual_seed(0)
    r = M.Router(8, 4, 1, gating="sigmoid", bias_balancing=True)
    x = torch.randn(5, 8)
    r.bias[:] = torch.tensor([0., 0., 0., 10.])            # a big bias wins every choice
    idx, g, logits = r(x)
    assert (idx == 3).all() and torch.allclose(g, torch.ones_like(g))
    r2 = M.Router(8, 4, 2, gating="sigmoid", bias_balancing=True); r2.load_state_dict(r.state_dict())
    idx2, g2, logits2 = r2(x)
    s = torch.sigmoid(logits2).gather(-1, idx2)
    torch.testing.assert_close(g2, s / s.sum(-1, keepdim=True))    # gate values come from the unbiased scores

# ---------------------------------------------------------------- losses
def test_load_balance_loss_by_hand():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.5, 0.25, 0.25], [0.2, 0.2, 0.6]])
    idx = torch.tensor([[0], [1], [0], [2]])
    # f = (2/4, 1/4, 1/4), P = mean rows = (0.375, 0.3125, 0.3125)
    want = 0.01 * 3 * (0.5 * 0.375 + 0.25 * 0.3125 + 0.25 * 0.3125)
    torch.testing.assert_close(M.load_balance_loss(probs, idx, 3), torch.tensor(want))
    # perfectly uniform routing and probabilities give exactly alpha
    u = torch.full((6, 3), 1 / 3); ui = torch.tensor([[0, 1], [2, 0], [1, 2], [0, 1], [2, 0], [1, 2]])
    torch.testing.assert_close(M.load_balance_loss(u, ui, 3, alpha=1.0), torch.tensor(1.0))
    p = probs.clone().requires_grad_()
    M.load_balance_loss(p, idx, 3, alpha=1.0).backward()
    torch.testing.assert_close(p.grad, torch.tensor([0.5, 0.25, 0.25]).expand(4, 3) * 3 / 4)

def test_z_loss_by_hand():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    want = (math.log(2.0) ** 2 + math.log(4.0) ** 2) / 2
    torch.testing.assert_close(M.z_loss(logits), torch.tensor(want))

# ---------------------------------------------------------------- dispatch
def test_dispatch_sorts_and_drops_in_token_order():
    idx = torch.tensor([[0, 1], [0, 2], [0, 1], [2, 0]])
    d = M.dispatch(idx, 3)
    assert d.offsets.tolist() == [0, 4, 6, 8] and d.load.tolist() == [4, 2, 2] and int(d.dropped) == 0
    assert d.token[:4].tolist() == [0, 1, 2, 3]
    d = M.dispatch(idx, 3, capacity=2)                      # expert 0 keeps tokens 0 and 1 only
    assert d.load.tolist() == [2, 2, 2] and int(d.dropped) == 2 and d.token[:2].tolist() == [0, 1]

# ---------------------------------------------------------------- MoE == moe_ref
CASES = [dict(k=1), dict(k=2), dict(k=4), dict(k=2, n_shared=1), dict(k=2, capacity_factor=0.75),
         dict(k=4, n_shared=2, capacity_factor=1.0), dict(k=2, gating="sigmoid", capacity_factor=1.25)]

@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_moe_equals_ref_forward_and_grads(case):
    case = dict(case); k = case.pop("k")
    m = make(d_model=13, d_ff=7, E=5 if k < 5 else k, k=k, **case)
    x = torch.randn(3, 7, 13, dtype=torch.float64, requires_grad=True)
    ref = M.moe_ref(x, m.router, m.experts, capacity=m.capacity(21), shared=m.shared)
    out, st = m(x)
    torch.testing.assert_close(out, ref)
    assert int(st["load"].sum()) + int(st["dropped"]) == 21 * k, "load + dropped must count every assignment"
    if m.capacity_factor is None: assert int(st["dropped"]) == 0
    params = [x, m.router.proj.weight, m.experts.w_gate, m.experts.w_up, m.experts.w_down]
    w = torch.randn_like(out)                               # a random cotangent so no gradient cancels by symmetry
    g_ref = torch.autograd.grad((ref * w).sum(), params)
    g_out = torch.autograd.grad((out * w).sum(), params)
    for name, a, b in zip(["x", "router", "w_gate", "w_up", "w_down"], g_out, g_ref):
        torch.testing.assert_close(a, b, msg=lambda m, n=name: f"gradient w.r.t. {n} differs from moe_ref: {m}")
    if k > 1: assert g_ref[1].abs().sum() > 0, "with k > 1 the gate weights must receive a gradient"

def test_moe_dense_limit_equals_softmax_mixture():
    "k = E with softmax gating: the MoE is the probability-weighted sum of all experts."
    m = make(E=3, k=3)
    x = torch.randn(10, 13, dtype=torch.float64)
    p = m.router.proj(x).softmax(-1)
    want = sum(p[:, e:e + 1] * m.experts[e](x) for e in range(3))
    torch.testing.assert_close(m(x)[0], want)

def test_stats_and_aux_loss_backprop():
    m = make(k=2, z_coef=1e-3)
    out, st = m(torch.randn(40, 13, dtype=torch.float64))
    assert set(st) >= {"load", "dropped", "balance_loss", "z_loss", "aux_loss", "load_cv"}
    torch.testing.assert_close(st["aux_loss"], st["balance_loss"] + 1e-3 * st["z_loss"])
    st["aux_loss"].backward()
    assert m.router.proj.weight.grad.abs().sum() > 0

# ---------------------------------------------------------------- Triton, through the interpreter
@needs_triton
def test_grouped_mm_kernels_match_loop():
    from llmlab.kernels import moe as K
    torch.manual_seed(0)
    E, Kd, N = 3, 37, 45
    offsets = torch.tensor([0, 33, 33, 50])                 # an empty expert and segments that cross tile borders
    x, w = torch.randn(50, Kd), torch.randn(E, Kd, N)
    want = torch.cat([x[offsets[e]:offsets[e + 1]] @ w[e] for e in range(E)])
    torch.testing.assert_close(K.grouped_mm(x, w, offsets), want, atol=1e-4, rtol=1e-4)
    wt = torch.randn(E, N, Kd)
    want_t = torch.cat([x[offsets[e]:offsets[e + 1]] @ wt[e].T for e in range(E)])
    torch.testing.assert_close(K.grouped_mm(x, wt, offsets, transpose_w=True), want_t, atol=1e-4, rtol=1e-4)
    dy = torch.randn(50, N)
    dw = K.grouped_wgrad(x, dy, offsets)
    want_dw = torch.stack([x[offsets[e]:offsets[e + 1]].T @ dy[offsets[e]:offsets[e + 1]] for e in range(E)])
    torch.testing.assert_close(dw, want_dw, atol=1e-4, rtol=1e-4)

@needs_triton
@pytest.mark.parametrize("case", [dict(k=1), dict(k=2, n_shared=1), dict(k=4, capacity_factor=1.0)],
                         ids=["k1", "k2-shared", "k4-capacity"])
def test_triton_moe_equals_ref(case):
    case = dict(case); k = case.pop("k")
    m = make(d_model=19, d_ff=11, E=5, k=k, dtype=torch.float32, backend="triton", **case)
    x = torch.randn(2, 11, 19, requires_grad=True)
    ref = M.moe_ref(x, m.router, m.experts, capacity=m.capacity(22), shared=m.shared)
    out, _ = m(x)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    params = [x, m.router.proj.weight, m.experts.w_gate, m.experts.w_up, m.experts.w_down]
    w = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad((out * w).sum(), params), torch.autograd.grad((ref * w).sum(), params)):
        torch.testing.assert_close(a, b, atol=2e-4, rtol=2e-4)

# ---------------------------------------------------------------- balancing
def test_bias_balancing_lowers_load_cv_on_a_skewed_router():
    torch.manual_seed(0)
    m = M.MoE(16, 8, 8, 2, gating="sigmoid", bias_balancing=True, bias_rate=0.02)
    with torch.no_grad(): m.router.proj.weight[:2] += 0.6   # experts 0 and 1 attract every token
    x = torch.randn(256, 16) + 1.0
    m.eval(); cv0 = float(m(x)[1]["load_cv"])
    m.train()
    for _ in range(60): m(x)                                # forward passes in training mode nudge the bias
    m.eval(); cv1 = float(m(x)[1]["load_cv"])
    assert cv0 > 0.5 and cv1 < 0.5 * cv0, f"bias balancing should cut the load CV: {cv0:.3f} -> {cv1:.3f}"
    assert m.router.bias[:2].max() < 0 < m.router.bias[2:].max()

def test_eval_does_not_move_the_bias():
    m = make(k=2, bias_balancing=True).eval()
    m(torch.randn(20, 13, dtype=torch.float64))
    assert m.router.bias.abs().sum() == 0

# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, match", [
    (dict(top_k=6), "top_k must be <= n_experts"),
    (dict(top_k=0), "top_k must be a positive int"),
    (dict(capacity_factor=0), "capacity_factor must be None"),
    (dict(capacity_factor=-1.5), "capacity_factor must be None"),
    (dict(capacity_factor="1"), "capacity_factor must be None"),
    (dict(gating="relu"), "gating must be 'softmax' or 'sigmoid'"),
    (dict(n_shared=-1), "n_shared must be"),
    (dict(backend="cuda"), "backend must be"),
])
def test_clear_errors(kwargs, match):
    args = dict(d_model=8, d_ff=4, n_experts=5, top_k=2) | kwargs
    with pytest.raises(ValueError, match=match): M.MoE(**args)

def test_wrong_width_and_triton_on_cpu():
    m = make(dtype=torch.float32)
    with pytest.raises(ValueError, match="d_model=13"): m(torch.randn(4, 12))
    with pytest.raises(ValueError, match="router_probs must be"): M.load_balance_loss(torch.rand(4, 3), torch.zeros(4, 1, dtype=torch.long), 5)
    if not interpreting() and not torch.cuda.is_available():
        m.backend = "triton"
        with pytest.raises(RuntimeError, match="backend='triton' cannot run here"): m(torch.randn(4, 13))

def test_import_without_triton():
    code = "import sys; sys.modules['triton'] = None\nimport llmlab.kernels.moe, llmlab.moe as M, torch\nm = M.MoE(8, 4, 4, 2)\nprint(m(torch.randn(3, 8))[0].shape)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "torch.Size([3, 8])" in out.stdout, out.stderr

# ---------------------------------------------------------------- widget trace and GPT plug-in
def test_route_snapshot_and_trace_match_the_router():
    m = make(d_model=13, d_ff=7, E=5, k=2, dtype=torch.float32)
    x = torch.randn(12, 13)
    snap = M.route_snapshot(m, x, capacity_factor=1.0)
    idx, gates, logits = m.router(x)
    assert snap["experts"] == idx.tolist() and snap["capacity"] == math.ceil(12 * 2 / 5)
    torch.testing.assert_close(torch.tensor(snap["gates"]), gates.detach(), atol=1e-3, rtol=0)
    torch.testing.assert_close(torch.tensor(snap["probs"]), logits.softmax(-1).detach(), atol=1e-3, rtol=0)
    d = M.dispatch(idx, 5, math.ceil(12 * 2 / 5))
    assert sum(map(sum, snap["dropped"])) == int(d.dropped) and snap["load"] == d.load.tolist()
    hist = torch.rand(7, 5).tolist()
    tr = M.trace_moe([f"t{i}" for i in range(12)], [snap, snap], [0, 6], hist, 5, 2)
    assert len(tr["history"]) == 7 and abs(sum(tr["history"][3]) - 1) < 0.01
    with pytest.raises(ValueError, match="equal length"): M.trace_moe(["a"] * 12, [snap], [0, 1], hist, 5, 2)
    with pytest.raises(ValueError, match="route the 3 tokens"): M.trace_moe(["a"] * 3, [snap], [0], hist, 5, 2)
    with pytest.raises(ValueError, match="load_history must be"): M.trace_moe(["a"] * 12, [snap], [0], [[1, 2]], 5, 2)
    with pytest.raises(ValueError, match="x must be"): M.route_snapshot(m, torch.randn(2, 3, 13))
    if M.HAS_WIDGETS:
        w = M.MoEWidget(tr)
        assert "export default" in w._esm and w.step == 1

def test_gpt_factory_reads_config():
    from types import SimpleNamespace
    m = M.moe_mlp(SimpleNamespace(n_embd=16, mlp_kwargs={"n_experts": 4, "top_k": 2, "n_shared": 1}))
    assert (m.n_experts, m.top_k, m.experts.d_ff, m.shared is not None) == (4, 2, 32, True)
    with pytest.raises(ValueError, match="model width"): M.moe_mlp(SimpleNamespace(mlp_kwargs={}))
