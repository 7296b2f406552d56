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
# Each case: (call, expected error type, fragment of its message). Every public function and class of llmlab.moe and
# llmlab.kernels.moe checks its arguments at the boundary and names the argument.
_m = lambda **kw: M.MoE(**(dict(d_model=8, d_ff=4, n_experts=5, top_k=2) | kw))
_mm = lambda: M.MoE(8, 4, 4, 2)
_i = lambda *rows: torch.tensor(rows)
BAD_MOE = [
    (lambda: _m(top_k=6), ValueError, "top_k must be <= n_experts"),
    (lambda: _m(top_k=0), ValueError, "top_k must be an int >= 1"),
    (lambda: _m(top_k=2.0), TypeError, "top_k must be an int"),
    (lambda: _m(d_model=0), ValueError, "d_model must be an int >= 1"),
    (lambda: _m(d_ff=True), TypeError, "d_ff must be an int"),
    (lambda: _m(capacity_factor=0), ValueError, "capacity_factor must be > 0"),
    (lambda: _m(capacity_factor=-1.5), ValueError, "capacity_factor must be > 0"),
    (lambda: _m(capacity_factor=float("inf")), ValueError, "capacity_factor must be a finite number"),
    (lambda: _m(capacity_factor="1"), TypeError, "capacity_factor must be a number"),
    (lambda: _m(gating="relu"), ValueError, "gating must be one of 'softmax', 'sigmoid'"),
    (lambda: _m(n_shared=-1), ValueError, "n_shared must be an int >= 0"),
    (lambda: _m(backend="cuda"), ValueError, "backend must be one of"),
    (lambda: _m(bias_rate=float("nan")), ValueError, "bias_rate must be a finite number"),
    (lambda: _m(bias_rate=-1e-3), ValueError, "bias_rate must be >= 0"),
    (lambda: _m(bias_balancing=1), TypeError, "bias_balancing must be a bool"),
    (lambda: _m(balance_coef=float("nan")), ValueError, "balance_coef must be a finite number"),
    (lambda: _m(balance_coef=-0.01), ValueError, "balance_coef must be >= 0"),
    (lambda: _m(z_coef=-1), ValueError, "z_coef must be >= 0"),
    (lambda: M.Experts(0, 4, 4), ValueError, "n_experts must be an int >= 1"),
    (lambda: M.SwiGLU(8, 0), ValueError, "d_ff must be an int >= 1"),
    (lambda: M.Experts(3, 4, 4)[3], IndexError, "expert index must be in [0, 3)"),
    (lambda: M.Experts(3, 4, 4)["a"], TypeError, "e must be an int"),
    (lambda: _mm()(torch.randn(3, 7)), ValueError, "d_model=8"),
    (lambda: _mm()(torch.ones(3, 8, dtype=torch.long)), TypeError, "x must have dtype float"),
    (lambda: _mm()([[0.0] * 8]), TypeError, "x must be a torch.Tensor"),
    (lambda: _mm().capacity(-1), ValueError, "n_tokens must be an int >= 0"),
    (lambda: _mm().router.update_bias(torch.ones(3)), ValueError, "load must have shape (4)"),
    (lambda: _mm().router.update_bias(torch.tensor([1.0, float("nan"), 1.0, 1.0])), ValueError, "load has 1 non-finite"),
    (lambda: M.moe_ref(torch.randn(3, 8), _mm().router, M.Experts(3, 8, 4)), ValueError, "experts has 3 experts"),
    (lambda: M.moe_ref(torch.randn(3, 8), _mm().router, _mm().experts, capacity=-1), ValueError, "capacity must be an int >= 0"),
    (lambda: M.load_balance_loss(torch.rand(4, 3), torch.zeros(4, 1, dtype=torch.long), 5), ValueError, "router_probs must be"),
    (lambda: M.load_balance_loss(torch.rand(2, 3), _i([5], [0]), 3), ValueError, "expert_indices must hold expert indices in [0, 3)"),
    (lambda: M.load_balance_loss(torch.rand(2, 3), _i([-1], [0]), 3), ValueError, "got values in [-1, 0]"),
    (lambda: M.load_balance_loss(torch.rand(2, 3), torch.zeros(2, 1), 3), TypeError, "expert_indices must have dtype"),
    (lambda: M.load_balance_loss(torch.rand(2, 3), _i([1], [0]), 3, alpha=float("nan")), ValueError, "alpha must be a finite"),
    (lambda: M.load_balance_loss(torch.rand(2, 3), _i([1], [0]), 3, alpha=-1), ValueError, "alpha must be >= 0"),
    (lambda: M.load_balance_loss(torch.rand(2, 3), _i([1], [0]), 0), ValueError, "n_experts must be an int >= 1"),
    (lambda: M.z_loss(torch.ones(3, 2, dtype=torch.long)), TypeError, "router_logits must have dtype float"),
    (lambda: M.z_loss(None), TypeError, "router_logits must be a torch.Tensor"),
    (lambda: M.load_balance_loss(None, _i([0]), 2), TypeError, "router_probs must be a torch.Tensor"),
    (lambda: M.z_loss(torch.ones(3, 0)), ValueError, "router_logits must be (..., n_experts)"),
    (lambda: M.z_loss(torch.tensor([[float("nan"), 1.0]])), ValueError, "router_logits has 1 non-finite"),
    (lambda: M.load_balance_loss(torch.tensor([[float("inf"), 0.0]]), _i([0]), 2), ValueError, "router_probs has 1 non-finite"),
    (lambda: M.dispatch(_i([5]), 3), ValueError, "indices must hold expert indices in [0, 3)"),
    (lambda: M.dispatch(_i([-1]), 3), ValueError, "indices must hold expert indices"),
    (lambda: M.dispatch(torch.tensor([[0.0]]), 3), TypeError, "indices must have dtype"),
    (lambda: M.dispatch(_i(0, 1), 3), ValueError, "indices must be 2-D"),
    (lambda: M.dispatch(_i([0]), 3, capacity=-1), ValueError, "capacity must be an int >= 0"),
    (lambda: M.dispatch(_i([0]), 3, capacity=1.5), TypeError, "capacity must be an int"),
    (lambda: M.dispatch(_i([0]), 0), ValueError, "n_experts must be an int >= 1"),
    (lambda: M.expert_loop(torch.randn(3, 8), _mm().experts, _i(0, 2, 40, 40, 40)), ValueError, "offsets must rise from 0 to the 3 rows"),
    (lambda: M.expert_loop(torch.randn(3, 8), _mm().experts, _i(0, 2, 1, 3, 3)), ValueError, "without decreasing"),
    (lambda: M.expert_loop(torch.randn(3, 8), _mm().experts, _i(0, 3)), ValueError, "offsets must have shape (5)"),
    (lambda: M.expert_loop(torch.randn(3, 7), _mm().experts, _i(0, 1, 2, 3, 3)), ValueError, "xs must have d_model=8"),
    (lambda: M.route_snapshot(_mm(), torch.randn(3, 8), capacity_factor=-1), ValueError, "capacity_factor must be > 0"),
    (lambda: M.route_snapshot(_mm(), torch.randn(3, 8), digits=-1), ValueError, "digits must be an int in [0, 12]"),
    (lambda: M.route_snapshot(_mm(), torch.randn(2, 3, 8)), ValueError, "x must be (tokens, d_model=8)"),
    (lambda: M.route_snapshot("moe", torch.randn(3, 8)), TypeError, "moe must be an MoE layer"),
    (lambda: M.trace_moe("ab", [{"experts": [[0], [1]]}], [0], [[1, 1, 1, 1]], 4, 1), TypeError, "tokens must be a list of str"),
    (lambda: M.trace_moe(["a"], [{"experts": [[0]]}], [0], [[1, 1, 1, 1]], 4, 5), ValueError, "top_k must be an int in [1, 4]"),
    (lambda: M.trace_moe(["a"], [{"experts": [[0]]}], [0], [[1, float("nan"), 1, 1]], 4, 1), ValueError, "finite loads"),
    (lambda: M.moe_mlp(type("C", (), {"d_model": 8, "mlp_kwargs": {"top_k": 0}})()), ValueError, "mlp_kwargs['top_k'] must be an int >= 1"),
    (lambda: M.SwiGLU(8, 4)(torch.randn(3, 7)), ValueError, "x must have last dim 8"),
    (lambda: M.Experts(2, 8, 4)[0](torch.randn(3, 7)), ValueError, "x must have last dim 8"),
    (lambda: M.swiglu(torch.randn(3, 8), torch.randn(8, 4), torch.randn(8, 5), torch.randn(4, 8)), ValueError, "w_up must have shape (8 4)"),
    (lambda: M.swiglu(torch.randn(3, 8), torch.randn(8, 4), torch.randn(8, 4), torch.randn(8, 4)), ValueError, "w_down must have shape (4 8)"),
    (lambda: M.expert_loop(torch.randn(3, 8), [1, 2], _i(0, 3)), TypeError, "experts must be an Experts module"),
    (lambda: _mm().router.scores([1.0]), TypeError, "logits must be a torch.Tensor"),
]

@pytest.mark.parametrize("call, exc, fragment", BAD_MOE, ids=[f"moe-{i}" for i in range(len(BAD_MOE))])
def test_bad_input_moe(call, exc, fragment):
    with pytest.raises(exc) as e: call()
    assert fragment in str(e.value), f"message {str(e.value)!r} does not contain {fragment!r}"

_x, _w = (lambda: torch.randn(3, 4)), (lambda: torch.randn(2, 4, 5))
BAD_KERNELS = [      # the launchers of llmlab.kernels.moe: checked before anything is launched
    ("grouped_mm", lambda K: K.grouped_mm(_x(), _w(), _i(0, 2, 40)), ValueError, "offsets must start at 0 and end at the number of rows, 3"),
    ("grouped_mm", lambda K: K.grouped_mm(_x(), torch.randn(3, 4, 5), _i(0, 3, 1, 3)), ValueError, "offsets must be non-decreasing"),
    ("grouped_mm", lambda K: K.grouped_mm(_x(), _w(), _i(1, 2, 3)), ValueError, "offsets must start at 0"),
    ("grouped_mm", lambda K: K.grouped_mm(_x(), _w(), _i(0, 3)), ValueError, "offsets must have n_experts + 1 = 3 entries"),
    ("grouped_mm", lambda K: K.grouped_mm(_x(), _w(), torch.tensor([0.0, 2, 3])), TypeError, "offsets must have dtype torch.int32 or torch.int64"),
    ("grouped_mm", lambda K: K.grouped_mm(_x(), _w(), [0, 2, 3]), TypeError, "offsets must be a torch.Tensor"),
    ("grouped_mm", lambda K: K.grouped_mm(_x(), _w(), _i([0, 2, 3])), ValueError, "offsets must be 1-D"),
    ("grouped_mm", lambda K: K.grouped_mm(_x().double(), _w().double(), _i(0, 2, 3)), TypeError, "x has dtype torch.float64"),
    ("grouped_mm", lambda K: K.grouped_mm(_x(), _w().half(), _i(0, 2, 3)), TypeError, "w has dtype torch.float16 but x has torch.float32"),
    ("grouped_mm", lambda K: K.grouped_mm(_x(), torch.randn(2, 5, 5), _i(0, 2, 3)), ValueError, "x has 4 columns but w has shape (2, 5, 5)"),
    ("grouped_mm", lambda K: K.grouped_mm(_x(), torch.randn(2, 4, 5), _i(0, 2, 3), transpose_w=True), ValueError, "axis 2 must match"),
    ("grouped_mm", lambda K: K.grouped_mm(_x(), torch.randn(0, 4, 5), _i(3)), ValueError, "at least one non-empty matrix"),
    ("grouped_mm", lambda K: K.grouped_mm(torch.randn(3), _w(), _i(0, 2, 3)), ValueError, "x must be 2-D"),
    ("grouped_mm", lambda K: K.grouped_mm(_x(), torch.randn(4, 5), _i(0, 2, 3)), ValueError, "w must be 3-D"),
    ("grouped_mm", lambda K: K.grouped_mm(_x(), _w(), _i(0, 2, 3), transpose_w=1), TypeError, "transpose_w must be a bool"),
    ("grouped_swiglu_up", lambda K: K.grouped_swiglu_up(_x(), _w(), _w(), _i(0, 2, 40)), ValueError, "end at the number of rows, 3"),
    ("grouped_swiglu_up", lambda K: K.grouped_swiglu_up(_x(), _w(), torch.randn(2, 4, 6), _i(0, 2, 3)), ValueError, "w_up has shape (2, 4, 6)"),
    ("grouped_wgrad", lambda K: K.grouped_wgrad(_x(), torch.randn(3, 5), _i(0, 2, 40)), ValueError, "end at the number of rows, 3"),
    ("grouped_wgrad", lambda K: K.grouped_wgrad(_x(), torch.randn(2, 5), _i(0, 2, 3)), ValueError, "dy must have x's 3 rows"),
    ("grouped_wgrad", lambda K: K.grouped_wgrad(_x(), torch.randn(3, 5), _i(3)), ValueError, "offsets needs at least 2 entries"),
    ("grouped_swiglu", lambda K: K.grouped_swiglu(_x(), _w(), _w(), torch.randn(2, 5, 4), _i(0, 2, 4)), ValueError, "end at the number of rows, 3"),
    ("grouped_swiglu", lambda K: K.grouped_swiglu(_x(), _w(), _w(), torch.randn(2, 4, 5), _i(0, 2, 3)), ValueError, "w_down has shape (2, 4, 5)"),
    ("GroupedSwiGLU", lambda K: K.GroupedSwiGLU.apply(_x(), _w(), _w(), torch.randn(2, 5, 4), _i(0, 2, 40)), ValueError, "end at the number of rows"),
    ("tile_schedule", lambda K: K.tile_schedule(_i(0, 2, 40), 32, 3), ValueError, "end at the number of rows, 3"),
    ("tile_schedule", lambda K: K.tile_schedule(_i(0, 2, 3), 0, 3), ValueError, "block_m must be an int >= 1"),
    ("tile_schedule", lambda K: K.tile_schedule(_i(0, 2, 3), 32, -1), ValueError, "total_rows must be an int >= 0"),
]

@needs_triton
@pytest.mark.parametrize("name, call, exc, fragment", BAD_KERNELS, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_KERNELS)])
def test_bad_input_kernels(name, call, exc, fragment):
    from llmlab.kernels import moe as K
    with pytest.raises(exc) as e: call(K)
    assert fragment in str(e.value), f"{name}: message {str(e.value)!r} does not contain {fragment!r}"

@needs_triton
def test_bad_offsets_cannot_crash_the_process():
    "The original bug: grouped_mm with offsets past the rows returned, then the process died (heap corruption). Run it in a"
    "child process, so a regression shows as a failed test instead of killing pytest."
    code = ("import os; os.environ.setdefault('TRITON_INTERPRET', '1')\nimport torch, gc\nfrom llmlab.kernels.moe import grouped_mm\n"
            "x, w = torch.randn(3, 4), torch.randn(2, 4, 5)\n"
            "for offs in ([0, 2, 40], [0, 40, 3], [0, 2, -5], [-8, 2, 3]):\n"
            "    try: grouped_mm(x, w, torch.tensor(offs)); print('NO ERROR', offs)\n"
            "    except ValueError as e: print('refused', offs)\n"
            "    gc.collect(); _ = [torch.randn(64, 64) for _ in range(200)]\n"
            "print('alive')\n")
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and "alive" in r.stdout, f"child died (rc={r.returncode}): {r.stdout[-500:]} {r.stderr[-1500:]}"
    assert r.stdout.count("refused") == 4 and "NO ERROR" not in r.stdout, r.stdout

# documented results for degenerate input
def test_zero_tokens_give_zero_losses_with_zero_gradient():
    "Policy: a loss over zero tokens is 0 with a zero gradient; the load CV of an empty batch is 0 (nothing is unbalanced)."
    m = make(k=2, dtype=torch.float32)
    x = torch.randn(0, 13, requires_grad=True)
    out, st = m(x)
    assert out.shape == (0, 13)
    for key in ("balance_loss", "z_loss", "aux_loss", "load_cv"):
        assert float(st[key].detach()) == 0.0, f"{key} over zero tokens must be 0, got {float(st[key].detach())}"
    st["aux_loss"].backward()
    assert m.router.proj.weight.grad is not None and m.router.proj.weight.grad.abs().sum() == 0
    p = torch.rand(0, 5, requires_grad=True)
    lb = M.load_balance_loss(p, torch.zeros(0, 2, dtype=torch.long), 5); lb.backward()
    assert float(lb.detach()) == 0.0 and p.grad is not None
    assert float(M.z_loss(torch.zeros(0, 5))) == 0.0
    d = M.dispatch(torch.zeros(0, 2, dtype=torch.long), 5, capacity=3)
    assert d.offsets.tolist() == [0] * 6 and int(d.dropped) == 0

def test_capacity_zero_drops_everything():
    d = M.dispatch(torch.tensor([[0, 1], [1, 2]]), 3, capacity=0)
    assert d.load.tolist() == [0, 0, 0] and int(d.dropped) == 4 and d.offsets.tolist() == [0, 0, 0, 0]

def test_triton_refuses_float64_and_auto_falls_back():
    "The kernels compute in float32 at most: float64 is refused by the explicit backend, not silently rounded."
    if not (HAS_TRITON and (interpreting() or torch.cuda.is_available())): pytest.skip("needs Triton")
    m = make(k=2, dtype=torch.float64, backend="triton")
    with pytest.raises(TypeError, match="float64"): m(torch.randn(4, 13, dtype=torch.float64))
    m.backend = "auto"                                       # auto: the loop (on CPU always; on CUDA because of the dtype)
    x = torch.randn(4, 13, dtype=torch.float64)
    torch.testing.assert_close(m(x)[0], M.moe_ref(x, m.router, m.experts))

def test_nan_input_is_refused_on_cpu():
    "Non-finite activations are refused where the check is free (CPU tensors); on CUDA the layer does not scan them (a host "
    "sync per step), and the trainer's non-finite-loss check stops the NaN instead."
    with pytest.raises(ValueError, match="x has 39 non-finite"): make(k=2, dtype=torch.float32)(torch.full((3, 13), float("nan")))

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

def test_moe_ref_with_no_tokens():
    m = make(k=2, dtype=torch.float32)
    assert M.moe_ref(torch.randn(0, 13), m.router, m.experts).shape == (0, 13)
