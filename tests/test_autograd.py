"""llmlab.autograd: gradients against torch.autograd (hypothesis over random op compositions and broadcastable
shapes, float64, 1e-8 relative), accumulation, zero_grad, scatter-add, the max tie rule, stability, optimisers
against torch, the widget trace, and every error path."""
import os
import numpy as np, pytest, torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st, HealthCheck
from llmlab import autograd as ag
from llmlab.autograd import Tensor, no_grad, concat, softmax, log_softmax, cross_entropy

torch.set_num_threads(1)
SETTINGS = dict(max_examples=int(os.environ.get("LLMLAB_HYPOTHESIS_EXAMPLES", 40)),  # raise it for a deeper search
                deadline=None, suppress_health_check=[HealthCheck.too_slow])

def rel_err(ours, theirs):
    theirs = np.asarray(theirs)
    scale = np.abs(theirs) + 1e-12 + 1e-6 * np.max(np.abs(theirs), initial=0)
    return float(np.max(np.abs(np.asarray(ours) - theirs) / scale, initial=0))

def both(fn, *arrays, seed=0):
    "Gradients of sum(fn(lib, *inputs) * w) from our engine and from torch, for each input."
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(ag, *ours)
    w = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(w)
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    tout = fn(torch, *theirs)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    tout.backward(torch.tensor(w))
    return [t.grad for t in ours], [t.grad.numpy() for t in theirs]

# ---- property tests: random broadcastable shapes and random compositions ----------------------------------------

@st.composite
def broadcast_pair(draw):
    "Two shapes that broadcast: a base shape, and the other with some axes set to 1 and some leading axes dropped."
    base = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    other = [1 if draw(st.booleans()) else n for n in base][draw(st.integers(0, len(base) - 1)):]
    if draw(st.booleans()): base, other = other, base
    seed = draw(st.integers(0, 2**31 - 1))
    r = np.random.default_rng(seed)
    return r.standard_normal(base), r.standard_normal(other)

BINARY = {"add": lambda L, a, b: a + b, "sub": lambda L, a, b: a - b, "mul": lambda L, a, b: a * b,
          "div": lambda L, a, b: a / (b * b + 0.5), "pow": lambda L, a, b: (a * a + 0.5) ** (b * 0.5),
          "rsub_scalar": lambda L, a, b: 2.0 - a * b, "rdiv_scalar": lambda L, a, b: 1.0 / (a * a + 1.0) + b}

@settings(**SETTINGS)
@given(pair=broadcast_pair(), op=st.sampled_from(sorted(BINARY)))
def test_binary_ops_broadcast_like_torch(pair, op):
    ours, theirs = both(BINARY[op], *pair)
    for o, t in zip(ours, theirs):
        assert o.shape == t.shape
        assert rel_err(o, t) < 1e-8

UNARY = {"exp": lambda L, x: (-x * x).exp(),   # ops kept bounded so random chains do not overflow
          "log": lambda L, x: (x * x + 0.1).log(), "tanh": lambda L, x: x.tanh(),
         "relu": lambda L, x: x.relu(), "sigmoid": lambda L, x: x.sigmoid(), "neg": lambda L, x: -x,
         "pow3": lambda L, x: x.tanh() ** 3, "sum0": lambda L, x: x.sum(0, keepdims=True), "mean": lambda L, x: x.mean(-1, keepdims=True),
         "T": lambda L, x: x.T if x.ndim == 2 else (x.transpose() if L is ag else x.permute(*reversed(range(x.ndim)))), "softmax": lambda L, x: L.softmax(x, -1), "log_softmax": lambda L, x: L.log_softmax(x, 0),
         "reshape": lambda L, x: x.reshape(-1).reshape(x.shape), "index": lambda L, x: x[..., ::2] * 1.0 if x.shape[-1] > 1 else x}

@st.composite
def composition(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=2, max_size=3)))
    names = draw(st.lists(st.sampled_from(sorted(UNARY)), min_size=1, max_size=5))
    mixers = draw(st.lists(st.sampled_from(["add", "mul", "sub"]), min_size=len(names), max_size=len(names)))
    seed = draw(st.integers(0, 2**31 - 1))
    return shape, names, mixers, seed

@settings(**SETTINGS)
@given(comp=composition())
def test_random_compositions_match_torch(comp):
    shape, names, mixers, seed = comp
    x0 = np.random.default_rng(seed).standard_normal(shape)
    def fn(L, x):
        h = x
        for n, m in zip(names, mixers):
            y = UNARY[n](L, h)
            if y.shape == h.shape: y = {"add": h + y, "mul": h * y, "sub": y - h}[m]   # keep the graph branching
            h = y if y.ndim else y * x
        return h * 1.0
    ours, theirs = both(fn, x0)
    assert rel_err(ours[0], theirs[0]) < 1e-8, (names, mixers)

@settings(**SETTINGS)
@given(n=st.integers(1, 4), k=st.integers(1, 5), m=st.integers(1, 4), batch=st.sampled_from([(), (2,), (3, 1)]),
       bshared=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_matmul_batched_and_broadcast(n, k, m, batch, bshared, seed):
    r = np.random.default_rng(seed)
    a, b = r.standard_normal(batch + (n, k)), r.standard_normal((k, m) if bshared else batch + (k, m))
    ours, theirs = both(lambda L, a, b: a @ b, a, b)
    for o, t in zip(ours, theirs): assert rel_err(o, t) < 1e-8

@pytest.mark.parametrize("sa,sb", [((3,), (3, 2)), ((2, 3), (3,)), ((4,), (4,)), ((2, 2, 3), (3,)), ((3,), (2, 3, 4))])
def test_matmul_vectors(sa, sb):
    r = np.random.default_rng(0)
    ours, theirs = both(lambda L, a, b: a @ b, r.standard_normal(sa), r.standard_normal(sb))
    for o, t in zip(ours, theirs): assert rel_err(o, t) < 1e-8

@settings(**SETTINGS)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2**31 - 1), data=st.data())
def test_reductions_and_max(shape, seed, data):
    x = np.random.default_rng(seed).standard_normal(shape)
    axis = data.draw(st.sampled_from([None] + list(range(len(shape))) + [tuple(range(len(shape)))]))
    keep = data.draw(st.booleans())
    tdim = axis if axis is not None else tuple(range(len(shape)))
    ours, theirs = both(lambda L, x: (x.max(axis=axis, keepdims=keep) if L is ag else x.amax(dim=tdim, keepdim=keep))
                        + (x.sum(axis=axis, keepdims=keep) if L is ag else x.sum(dim=tdim, keepdim=keep))
                        * (x.mean(axis=axis, keepdims=keep) if L is ag else x.mean(dim=tdim, keepdim=keep)), x)
    assert rel_err(ours[0], theirs[0]) < 1e-8

def test_transpose_concat_cross_entropy():
    r = np.random.default_rng(1)
    x, y = r.standard_normal((2, 3, 4)), r.standard_normal((2, 5, 4))
    ours, theirs = both(lambda L, x, y: (concat([x, y], 1) if L is ag else torch.cat([x, y], 1)).transpose(2, 0, 1)
                        if L is ag else torch.cat([x, y], 1).permute(2, 0, 1), x, y)
    for o, t in zip(ours, theirs): assert rel_err(o, t) < 1e-8
    logits, tg = r.standard_normal((6, 5)), np.array([0, 4, 4, 2, 1, 0])
    ours, theirs = both(lambda L, z: cross_entropy(z, tg) if L is ag else F.cross_entropy(z, torch.tensor(tg)), logits)
    assert rel_err(ours[0], theirs[0]) < 1e-8

# ---- engine semantics ----------------------------------------------------------------------------------------

def test_gradients_accumulate_and_zero_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3)
    x.zero_grad(); assert x.grad is None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)
    lin = ag.Linear(2, 2, rng=np.random.default_rng(0))
    lin(x).sum().backward(); lin.zero_grad()
    assert all(p.grad is None for p in lin.parameters())

def test_shared_node_sums_paths_and_backward_twice_on_same_graph():
    a = Tensor(1.5, requires_grad=True)
    L = (a * -0.5 + 0.25) * a
    L.backward(); g1 = a.grad.copy()
    L.backward()
    np.testing.assert_allclose(g1, -1.25)
    np.testing.assert_allclose(a.grad, 2 * g1)       # same graph, second pass: leaf accumulates, interior does not

def test_repeated_index_scatter_adds():
    w = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    w[np.array([2, 0, 2, 2])].sum().backward()
    np.testing.assert_array_equal(w.grad, [[1, 1], [0, 0], [3, 3]])
    emb = ag.Embedding(4, 3, rng=np.random.default_rng(0))
    emb(np.array([[1, 1], [3, 1]])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad[:, 0], [0, 3, 0, 1])
    w.zero_grad(); w[1:, 1].sum().backward()                      # basic indexing path
    np.testing.assert_array_equal(w.grad, [[0, 0], [0, 1], [0, 1]])

def test_max_ties_split_equally_like_torch_amax():
    x = np.array([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]])
    t = Tensor(x, requires_grad=True); t.max(axis=1).sum().backward()
    np.testing.assert_allclose(t.grad, [[0.5, 0, 0.5], [1 / 3] * 3])
    tt = torch.tensor(x, requires_grad=True); tt.amax(dim=1).sum().backward()
    np.testing.assert_allclose(t.grad, tt.grad.numpy())
    t.zero_grad(); t.max().backward()
    np.testing.assert_allclose(t.grad, [[0.5, 0, 0.5], [0, 0, 0]])

def test_no_grad_and_detach():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    z = (x * 2).detach()
    assert not z.requires_grad and np.shares_memory(z.data, (z * 1).data) is False
    assert (x * 2).requires_grad                                   # re-enabled after the block

def test_stability_at_large_logits():
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, 1e4], [5e3, 5e3, -1e4]])
    t = Tensor(z, requires_grad=True)
    loss = cross_entropy(t, [1, 2, 0]); loss.backward()
    tt = torch.tensor(z, requires_grad=True); tl = F.cross_entropy(tt, torch.tensor([1, 2, 0])); tl.backward()
    assert np.isfinite(loss.item()) and abs(loss.item() - tl.item()) < 1e-9 * abs(tl.item())
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), atol=1e-15)
    for f, tf in ((softmax, torch.softmax), (log_softmax, torch.log_softmax)):
        s = Tensor(z, requires_grad=True); o = f(s, -1); o.backward(np.ones_like(z))
        ts = torch.tensor(z, requires_grad=True); to = tf(ts, -1); to.backward(torch.ones_like(ts))
        assert np.isfinite(o.data).all() and np.isfinite(s.grad).all()
        np.testing.assert_allclose(o.data, to.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(s.grad, ts.grad.numpy(), atol=1e-9)

def test_float32_stays_float32():
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    y = ((x * 2.0 + 1) @ Tensor(np.ones((3, 2), np.float32))).relu().sum() / 3
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    assert Tensor([1, 2]).dtype == np.float64

def test_optimisers_match_torch():
    r = np.random.default_rng(0)
    X, y = r.standard_normal((8, 3)), r.integers(0, 4, 8)
    for make, tmake in ((lambda p: ag.SGD(p, lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
                        (lambda p: ag.Adam(p, lr=0.05, betas=(0.8, 0.99), weight_decay=0.1),
                         lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.99), weight_decay=0.1))):
        net = ag.MLP([3, 5, 4], "tanh", rng=np.random.default_rng(1))
        tnet = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4)).double()
        with torch.no_grad():
            for l, tl in zip(net.layers, (tnet[0], tnet[2])):
                tl.weight.copy_(torch.tensor(l.weight.data.T)); tl.bias.copy_(torch.tensor(l.bias.data))
        opt, topt = make(net.parameters()), tmake(tnet.parameters())
        for _ in range(5):
            opt.zero_grad(); cross_entropy(net(X), y).backward(); opt.step()
            topt.zero_grad(); F.cross_entropy(tnet(torch.tensor(X)), torch.tensor(y)).backward(); topt.step()
        np.testing.assert_allclose(net.layers[0].weight.data, tnet[0].weight.detach().numpy().T, rtol=1e-10, atol=1e-12)

def test_parameters_found_once():
    net = ag.MLP([2, 3, 4])
    assert len(net.parameters()) == 4
    class Tied(ag.Module):
        def __init__(self): self.a = ag.Linear(2, 2); self.b = self.a
    assert len(Tied().parameters()) == 2

def test_widget_trace_matches_engine_and_by_hand():
    tr = ag.trace_backward()
    final = tr["steps"][-1]["grads"]
    leaves = {n["label"]: final[n["id"]] for n in tr["nodes"] if not n["op"]}
    assert leaves == pytest.approx({"a": -1.25, "b": 2.25, "c": 1.5})
    assert tr["steps"][0]["grads"][tr["root"]] == 1.0 and len(tr["steps"]) == 4
    assert sum(p["to"] == next(n["id"] for n in tr["nodes"] if n["label"] == "a") for s in tr["steps"] for p in s["pushes"]) == 2
    x = Tensor(0.3, requires_grad=True); x.name = "x"
    tr2 = ag.trace_backward(((x * 2).exp() / (x.sigmoid() + 1)).tanh() - x ** 2)
    y = ((x * 2).exp() / (x.sigmoid() + 1)).tanh() - x ** 2; y.backward()
    xid = next(n["id"] for n in tr2["nodes"] if n["label"] == "x")
    assert tr2["steps"][-1]["grads"][xid] == pytest.approx(x.grad.item(), rel=1e-12)

def test_widget_builds_and_is_small():
    pytest.importorskip("anywidget")
    w = ag.GraphWidget()
    assert "export default" in w._esm and ".llm-next" not in w._esm.split("CSS")[0]
    assert "llm-prev" in w._esm and "llm-next" in w._esm
    assert ag.trace_backward() == w.trace

# ---- every error path ----------------------------------------------------------------------------------------

W = Tensor(np.ones((3, 4)), requires_grad=True)

@pytest.mark.parametrize("call,exc,msg", [
    (lambda: W @ Tensor(np.ones((5, 2))), ValueError, "shapes (3, 4) and (5, 2) do not fit"),
    (lambda: W @ np.ones(5), ValueError, "shapes (3, 4) and (5,) do not fit"),
    (lambda: Tensor(np.ones((2, 3, 4))) @ Tensor(np.ones((3, 4, 2))), ValueError, "batch dimensions of shapes (2, 3, 4) and (3, 4, 2)"),
    (lambda: W @ Tensor(2.0), ValueError, "at least 1 dimension"),
    (lambda: W + np.ones(3), ValueError, "shapes (3, 4) and (3,) do not broadcast"),
    (lambda: W * Tensor(np.ones((2, 4))), ValueError, "mul: shapes (3, 4) and (2, 4)"),
    (lambda: (W * 2).backward(), ValueError, "needs a one-element Tensor, but this one has shape (3, 4)"),
    (lambda: (W * 2).backward(np.ones(4)), ValueError, "grad has shape (4,) but the Tensor has shape (3, 4)"),
    (lambda: Tensor([1.0]).backward(), RuntimeError, "does not require grad"),
    (lambda: cross_entropy(W, [0, 1, 4]), ValueError, "targets must lie in [0, 4) for logits of shape (3, 4)"),
    (lambda: cross_entropy(W, [0, -1, 2]), ValueError, "got values from -1 to 2"),
    (lambda: cross_entropy(W, [0, 1]), ValueError, "targets must have shape (3,) for logits of shape (3, 4), got (2,)"),
    (lambda: cross_entropy(W, [0.0, 1.0, 2.0]), TypeError, "integer class indices"),
    (lambda: cross_entropy(Tensor(np.ones(4)), [0]), ValueError, "logits must be a Tensor of shape (N, C), got shape (4,)"),
    (lambda: W.reshape(5, 2), ValueError, "cannot reshape a Tensor of shape (3, 4) (12 elements) into (5, 2)"),
    (lambda: W.transpose(0, 0), ValueError, "not a permutation"),
    (lambda: W.sum(axis=2), ValueError, "sum: axis 2 is out of range"),
    (lambda: W.max(axis=(1, 1)), ValueError, "repeats an axis"),
    (lambda: softmax(W, 2), ValueError, "softmax: axis 2 is out of range for a Tensor of shape (3, 4)"),
    (lambda: W[5], IndexError, "does not fit a Tensor of shape (3, 4)"),
    (lambda: W[np.array([0.5])], IndexError, "index arrays must hold integers"),
    (lambda: concat([]), ValueError, "tensors is empty"),
    (lambda: concat([W, Tensor(np.ones((2, 3)))], 0), ValueError, "shapes [(3, 4), (2, 3)] cannot be joined along axis 0"),
    (lambda: Tensor(["a"]), TypeError, "got dtype <U1"),
    (lambda: Tensor([1.0], dtype=np.int32), TypeError, "dtype must be float64 or float32"),
    (lambda: Tensor([1.0, 2.0]).item(), ValueError, "one-element Tensor, got shape (2,)"),
    (lambda: ag.Linear(3, 2)(np.ones((4, 5))), ValueError, "Linear(3, 2) expects x of shape (..., 3), got x of shape (4, 5)"),
    (lambda: ag.Linear(0, 2), ValueError, "Linear: in_features must be an int >= 1, got 0"),
    (lambda: ag.MLP([3]), ValueError, "at least an input and an output"),
    (lambda: ag.MLP([3, 2], "gelu"), ValueError, "MLP: activation must be one of 'relu', 'tanh'; got 'gelu'"),
    (lambda: ag.Embedding(4, 2)(np.array([[0, 4]])), IndexError, "idx of shape (1, 2) must lie in [0, 4), got values from 0 to 4"),
    (lambda: ag.Embedding(4, 2)(np.array([0.5])), TypeError, "idx must hold integers"),
    (lambda: ag.SGD([], lr=0.1), ValueError, "params is empty"),
    (lambda: ag.SGD([W], lr=-1), ValueError, "lr must be > 0, got -1"),
    (lambda: ag.SGD([W], lr=0.1, momentum=1.5), ValueError, "momentum must be in [0, 1)"),
    (lambda: ag.SGD([Tensor([1.0])], lr=0.1), ValueError, "params[0] must be a Tensor with requires_grad=True"),
    (lambda: ag.Adam([W], betas=(0.9,)), ValueError, "betas must be two numbers"),
    (lambda: ag.Adam([W], eps=0), ValueError, "eps must be > 0"),
    (lambda: ag.Adam([W], weight_decay=-1), ValueError, "weight_decay must be >= 0"),
    (lambda: ag.unbroadcast(np.ones((2, 3)), (4,)), ValueError, "not a broadcast of shape (4,)"),
    (lambda: ag.trace_backward(W.sum() * W[0, 0] + W[0].sum()), ValueError, "root must be computed from scalars only"),
    (lambda: ag.trace_backward(Tensor(1.0)), ValueError, "does not require grad"),
    (lambda: ag.blas_threads(0), ValueError, "n must be an int >= 1, got 0"),
])
def test_errors_name_what_was_wrong(call, exc, msg):
    with pytest.raises(exc) as info: call()
    assert msg in str(info.value), str(info.value)

def test_blas_threads_roundtrip():
    from llmlab import lab
    assert ag.blas_threads is lab.blas_threads            # the thread set-up lives in 00_lab; still importable from here
    n = ag.blas_threads()
    if n is None: pytest.skip("numpy's BLAS is not OpenBLAS here")
    assert ag.blas_threads(1) == 1
    ag.blas_threads(n)

@settings(**SETTINGS)
@given(rows=st.integers(1, 5), cols=st.integers(1, 4), picks=st.lists(st.integers(0, 4), min_size=1, max_size=8),
       seed=st.integers(0, 2**31 - 1))
def test_integer_array_indexing_scatter_adds_like_torch(rows, cols, picks, seed):
    x = np.random.default_rng(seed).standard_normal((rows, cols))
    idx = np.array([p % rows for p in picks])
    ours, theirs = both(lambda L, x: x[idx] * x[idx, cols - 1:] + x[:, idx % cols].sum(), x)
    assert rel_err(ours[0], theirs[0]) < 1e-8

@settings(**SETTINGS)
@given(n=st.integers(1, 6), c=st.integers(1, 6), scale=st.sampled_from([1.0, 30.0, 1e4]), seed=st.integers(0, 2**31 - 1),
       axis=st.integers(0, 2))
def test_concat_and_cross_entropy_random(n, c, scale, seed, axis):
    r = np.random.default_rng(seed)
    logits, tg = scale * r.standard_normal((n, c)), r.integers(0, c, n)
    ours, theirs = both(lambda L, z: cross_entropy(z, tg) if L is ag else F.cross_entropy(z, torch.tensor(tg)), logits)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-8, atol=1e-12)
    shapes = [[2, 3, 2] for _ in range(3)]
    for k, s in enumerate(shapes): s[axis] = k + 1
    parts = [r.standard_normal(s) for s in shapes]
    ours, theirs = both(lambda L, *ps: concat(list(ps), axis) if L is ag else torch.cat(list(ps), axis), *parts)
    for o, t in zip(ours, theirs): assert rel_err(o, t) < 1e-8

# ---- bad input: every public function, wrong types, NaN/inf, empty, zero, wrong shapes -------------------------------

P = Tensor([1.0, 2.0], requires_grad=True)
NAN, INF = float("nan"), float("inf")

def _nan_in_backward():
    x = Tensor([0.0], requires_grad=True)
    y = (x ** 0.5) * 0.0                               # forward 0; backward 0 * inf in the pow rule
    try: y.sum().backward()
    finally: assert x.grad is None                     # nothing was accumulated before the error
    
def _step_with(grad, opt):
    p = Tensor([1.0, 2.0], requires_grad=True); p.grad = np.array(grad)
    try: opt([p]).step()
    finally: np.testing.assert_array_equal(p.data, [1.0, 2.0])     # refused before any update

BAD_INPUT = [
    # data entering the engine
    (lambda: Tensor([1.0, NAN]), ValueError, "1 NaN value(s) out of 2"),
    (lambda: Tensor([1.0], requires_grad="yes"), TypeError, "requires_grad must be a bool, got 'yes'"),
    (lambda: Tensor(None), TypeError, "got dtype object"),
    (lambda: Tensor([[1, 2], [3]]), ValueError, "data must be a number or a rectangular (non-ragged) array"),
    (lambda: ag.SGD(None, lr=0.1), TypeError, "SGD: params must be a list of Tensors (model.parameters()), got NoneType"),
    (lambda: ag.MLP(None), TypeError, "MLP: sizes must be a list"),
    (lambda: ag.Linear(3, 3, dtype="bogus"), TypeError, "dtype must be float64 or float32, got 'bogus'"),
    (lambda: ag.gradcheck(lambda T, x: x, np.ones(2), h=NAN), ValueError, "h must be a finite number, got nan"),
    (lambda: ag.trace_backward(Tensor([1.0, 2.0], requires_grad=True) * 2), ValueError, "root must be computed from scalars only"),
    (lambda: Tensor([1 + 2j]), TypeError, "got dtype complex128"),
    (lambda: Tensor([1.0], dtype="bogus"), TypeError, "dtype must be float64 or float32"),
    (lambda: Tensor([1.0], dtype=np.float16), TypeError, "dtype must be float64 or float32, got dtype('float16')"),
    (lambda: len(Tensor(1.0)), TypeError, "len() of a 0-d Tensor"),
    (lambda: (P * 2).backward(np.full(2, NAN)), ValueError, "grad has 2 NaN value(s)"),
    (lambda: (P * 2).backward("ab"), TypeError, "grad must hold"),
    # operands of the wrong kind
    (lambda: P + None, TypeError, "add: cannot combine a Tensor with NoneType"),
    (lambda: P * "a", TypeError, "mul: cannot combine a Tensor with str"),
    (lambda: "a" - P, TypeError, "sub: cannot combine a Tensor with str"),
    (lambda: P @ {"a": 1}, TypeError, "matmul: cannot combine a Tensor with dict"),
    (lambda: P ** None, TypeError, "pow: cannot combine a Tensor with NoneType"),
    (lambda: ag.add(None, None), TypeError, "add: expected a Tensor (or a number or array), got NoneType"),
    (lambda: ag.neg("x"), TypeError, "neg: expected a Tensor"),
    (lambda: ag.tsum(object()), TypeError, "sum: expected a Tensor"),
    (lambda: softmax("abc"), TypeError, "softmax: expected a Tensor"),
    (lambda: cross_entropy(None, [0]), TypeError, "cross_entropy: expected a Tensor"),
    # operations that would make NaN out of numbers without NaN
    (lambda: Tensor([-1.0, 1.0]).log(), FloatingPointError, "log: produced 1 NaN value(s)"),
    (lambda: Tensor([-8.0]) ** 0.5, FloatingPointError, "pow: produced 1 NaN"),
    (lambda: Tensor([INF]) - Tensor([INF]), FloatingPointError, "sub: produced 1 NaN"),
    (lambda: Tensor([0.0]) / Tensor([0.0]), FloatingPointError, "div: produced 1 NaN"),
    (lambda: Tensor([0.0]) * INF, FloatingPointError, "mul: produced 1 NaN"),
    (lambda: Tensor([[INF, -INF]]).sum(), FloatingPointError, "sum: produced 1 NaN"),
    (_nan_in_backward, FloatingPointError, "backward through pow"),
    # axes, shapes and indices of the wrong kind
    (lambda: W.sum(axis=1.5), TypeError, "sum: axis must be None, an int or a tuple of ints, got 1.5"),
    (lambda: W.mean(axis="0"), TypeError, "mean: axis must be None"),
    (lambda: W.max(axis=True), TypeError, "max: axis must be None"),
    (lambda: W.reshape(2.0, 6), TypeError, "reshape: shape entries must be ints, got (2.0, 6)"),
    (lambda: W.reshape(-1, -1), ValueError, "cannot reshape a Tensor of shape (3, 4)"),
    (lambda: W.transpose("a", 0), TypeError, "transpose: axes must be ints"),
    (lambda: W.transpose(0, 5), ValueError, "not a permutation"),
    (lambda: W.transpose(0, 1, 2), ValueError, "not a permutation"),
    (lambda: W["a"], IndexError, "does not fit a Tensor of shape (3, 4)"),
    (lambda: softmax(W, 1.0), TypeError, "softmax: axis must be an int, got 1.0"),
    (lambda: log_softmax(W, -3), ValueError, "log_softmax: axis -3 is out of range"),
    (lambda: softmax(Tensor([[INF, 0.0]])), ValueError, "softmax: the input has +inf values"),
    (lambda: log_softmax(Tensor([[INF, 0.0]])), ValueError, "log_softmax: the input has +inf"),
    (lambda: cross_entropy(Tensor([[INF, 0.0]]), [0]), ValueError, "cross_entropy: the input has +inf"),
    (lambda: concat(W), TypeError, "concat: tensors must be a list or tuple of Tensors, got Tensor"),
    (lambda: concat([W, W], axis="0"), TypeError, "concat: axis must be an int"),
    (lambda: concat([W, None]), TypeError, "concat: expected a Tensor"),
    (lambda: cross_entropy(W, ["a", "b", "c"]), TypeError, "integer class indices, got dtype <U1"),
    (lambda: cross_entropy(W, [[0, 1, 2]]), ValueError, "targets must have shape (3,)"),
    (lambda: cross_entropy(Tensor(np.ones((2, 0))), [0, 0]), ValueError, "targets must lie in [0, 0)"),
    (lambda: ag.unbroadcast(np.ones(3), 3), TypeError, "shape must be a tuple of non-negative ints, got 3"),
    (lambda: ag.unbroadcast(np.ones(3), (-1,)), TypeError, "shape must be a tuple of non-negative ints"),
    # layers
    (lambda: ag.Linear(2.0, 3), TypeError, "Linear: in_features must be an int, got 2.0"),
    (lambda: ag.Linear(3, -2), ValueError, "Linear: out_features must be an int >= 1, got -2"),
    (lambda: ag.Linear(3, 2, rng="x"), TypeError, "Linear: rng must be a numpy Generator"),
    (lambda: ag.Linear(3, 2, dtype=np.int32), TypeError, "dtype must be float64 or float32"),
    (lambda: ag.Linear(3, 2)(np.array([[NAN, 0, 0]])), ValueError, "NaN"),
    (lambda: ag.Linear(3, 2)("abc"), TypeError, "Linear: expected a Tensor"),
    (lambda: ag.Linear(3, 2)(np.ones(())), ValueError, "expects x of shape (..., 3), got x of shape ()"),
    (lambda: ag.MLP(5), TypeError, "MLP: sizes must be a list"),
    (lambda: ag.MLP([3, 0, 2]), ValueError, "Linear: out_features must be an int >= 1, got 0"),
    (lambda: ag.MLP([3, 2.5]), TypeError, "out_features must be an int, got 2.5"),
    (lambda: ag.MLP([3, 2], None), ValueError, "MLP: activation must be one of 'relu', 'tanh'"),
    (lambda: ag.Embedding(0, 2), ValueError, "Embedding: num_embeddings must be an int >= 1, got 0"),
    (lambda: ag.Embedding(4, 2, rng=0), TypeError, "Embedding: rng must be a numpy Generator"),
    (lambda: ag.Embedding(4, 2)(np.array([True])), TypeError, "idx must hold integers"),
    # optimisers
    (lambda: ag.SGD([P], lr=NAN), ValueError, "SGD: lr must be a finite number, got nan"),
    (lambda: ag.SGD([P], lr=INF), ValueError, "SGD: lr must be a finite number, got inf"),
    (lambda: ag.SGD([P], lr="0.1"), TypeError, "SGD: lr must be a number, got '0.1'"),
    (lambda: ag.SGD([P], lr=0.1, momentum=NAN), ValueError, "SGD: momentum must be a finite number"),
    (lambda: ag.SGD(P, lr=0.1), TypeError, "params must be a list of Tensors (model.parameters()), got one Tensor"),
    (lambda: ag.SGD([P, P], lr=0.1), ValueError, "lists a Tensor more than once"),
    (lambda: ag.SGD(ag.Module().parameters(), lr=0.1), ValueError, "params is empty"),
    (lambda: ag.Adam([P], weight_decay=NAN), ValueError, "Adam: weight_decay must be a finite number, got nan"),
    (lambda: ag.Adam([P], betas=(0.9, NAN)), ValueError, "Adam: betas[1] must be a finite number"),
    (lambda: ag.Adam([P], betas=0.9), ValueError, "betas must be two numbers in [0, 1), got 0.9"),
    (lambda: ag.Adam([P], eps=INF), ValueError, "Adam: eps must be a finite number"),
    (lambda: ag.Adam([P], lr=-1e-3), ValueError, "Adam: lr must be > 0"),
    (lambda: _step_with([INF, 0.0], lambda p: ag.Adam(p)), FloatingPointError, "Adam.step: params[0] (shape (2,)) has a non-finite gradient"),
    (lambda: _step_with([0.0, -INF], lambda p: ag.SGD(p, lr=0.1)), FloatingPointError, "no parameter was updated"),
    # the checker and the widget trace
    (lambda: ag.gradcheck(5, np.ones(2)), TypeError, "gradcheck: fn must be a function"),
    (lambda: ag.gradcheck(lambda T, x: x), ValueError, "give at least one input array"),
    (lambda: ag.gradcheck(lambda T, x: x, np.ones(2), h=0), ValueError, "h must be > 0"),
    (lambda: ag.gradcheck(lambda T, x: x, np.ones(2), seed=-1), ValueError, "seed must be an int >= 0"),
    (lambda: ag.gradcheck(lambda T, x: 3.0, np.ones(2)), TypeError, "must return a Tensor, got float"),
    (lambda: ag.gradcheck(lambda T, x: x, np.array([NAN])), ValueError, "arrays[0] has 1 NaN"),
    (lambda: ag.gradcheck(lambda T, x: x, np.array(["a"])), TypeError, "arrays[0] must hold"),
    (lambda: ag.trace_backward("x"), TypeError, "trace_backward: root must be a Tensor"),
]

@pytest.mark.parametrize("call,exc,msg", BAD_INPUT, ids=[m[:40] for _, _, m in BAD_INPUT])
def test_bad_input_is_refused_with_a_clear_message(call, exc, msg):
    with pytest.raises(exc) as info: call()
    assert msg in str(info.value), str(info.value)

def test_fully_masked_rows_give_zeros_not_nan():
    "The lab's rule for a row with every entry masked (-inf): softmax 0 with zero gradient, log_softmax -inf."
    x = Tensor([[0.5, -INF, 1.0], [-INF, -INF, -INF]], requires_grad=True)
    s = softmax(x); s.backward(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(s.data[1], 0)
    np.testing.assert_allclose(s.data[0], torch.softmax(torch.tensor([[0.5, -INF, 1.0]], dtype=torch.float64), -1)[0].numpy(), rtol=1e-15)
    assert np.isfinite(x.grad).all() and not x.grad[1].any()
    np.testing.assert_array_equal(log_softmax(x).data[1], -INF)
    assert np.isfinite(log_softmax(x).data[0, [0, 2]]).all()

def test_empty_batch_loss_is_zero_with_zero_gradient():
    z = Tensor(np.zeros((0, 5)), requires_grad=True)
    loss = cross_entropy(z, np.zeros(0, dtype=int)); loss.backward()
    assert loss.item() == 0.0 and z.grad.shape == (0, 5)
    assert cross_entropy(Tensor(np.zeros((0, 3))), []).item() == 0.0

def test_target_with_probability_zero_gives_inf_not_nan():
    "A target whose logit is -inf has probability 0: the loss is +inf (as in torch), its gradient finite."
    z = Tensor([[0.0, -INF], [1.0, 2.0]], requires_grad=True)
    loss = cross_entropy(z, [1, 0]); loss.backward()
    assert loss.item() == INF and np.isfinite(z.grad).all()
    assert torch.nn.functional.cross_entropy(torch.tensor(z.data), torch.tensor([1, 0])).item() == INF

def test_inf_is_allowed_and_huge_values_stay_finite_where_math_allows():
    assert Tensor([-INF, 1e308]).shape == (2,)
    assert (Tensor([1e308]) * 10).data[0] == INF               # overflow is inf, as in numpy and torch
    z = Tensor([[1e300, -1e300, 0.0]]); assert np.isfinite(log_softmax(z).data[0, [0, 2]]).all()
    assert ag.Embedding(4, 2)(np.array([], dtype=int)).shape == (0, 2)
    assert ag.Linear(3, 2)(np.ones((0, 3))).shape == (0, 2)

@settings(**SETTINGS)
@given(rows=st.integers(1, 5), cols=st.integers(1, 6), seed=st.integers(0, 2**31 - 1), p=st.floats(0, 1))
def test_random_masks_softmax_matches_torch_and_dead_rows_are_zero(rows, cols, seed, p):
    r = np.random.default_rng(seed)
    z = r.standard_normal((rows, cols)); z[r.random((rows, cols)) < p] = -INF
    g = r.standard_normal((rows, cols))
    t = Tensor(z, requires_grad=True); s = softmax(t); s.backward(g)
    dead = np.isneginf(z).all(1)
    assert np.isfinite(s.data).all() and np.isfinite(t.grad).all()
    assert not s.data[dead].any() and not t.grad[dead].any()
    if (~dead).any():
        tz = torch.tensor(z[~dead], requires_grad=True); ts = torch.softmax(tz, -1); ts.backward(torch.tensor(g[~dead]))
        np.testing.assert_allclose(s.data[~dead], ts.detach().numpy(), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(t.grad[~dead], tz.grad.numpy(), rtol=1e-10, atol=1e-12)
