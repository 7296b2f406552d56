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
    (lambda: (W * 2).backward(), RuntimeError, "needs a one-element Tensor, but this one has shape (3, 4)"),
    (lambda: (W * 2).backward(np.ones(4)), ValueError, "grad has shape (4,) but the Tensor has shape (3, 4)"),
    (lambda: Tensor([1.0]).backward(), RuntimeError, "does not require grad"),
    (lambda: cross_entropy(W, [0, 1, 4]), IndexError, "targets must lie in [0, 4) for logits of shape (3, 4)"),
    (lambda: cross_entropy(W, [0, -1, 2]), IndexError, "got values from -1 to 2"),
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
    (lambda: ag.Linear(0, 2), ValueError, "in_features must be a positive int, got 0"),
    (lambda: ag.MLP([3]), ValueError, "at least an input and an output"),
    (lambda: ag.MLP([3, 2], "gelu"), ValueError, "activation must be 'relu' or 'tanh', got 'gelu'"),
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
    (lambda: ag.trace_backward(W.sum() * W[0, 0] + W[0].sum()), ValueError, "needs a graph of scalars"),
    (lambda: ag.trace_backward(Tensor(1.0)), ValueError, "does not require grad"),
    (lambda: ag.blas_threads(0), ValueError, "n must be a positive int"),
])
def test_errors_name_what_was_wrong(call, exc, msg):
    with pytest.raises(exc) as info: call()
    assert msg in str(info.value), str(info.value)

def test_blas_threads_roundtrip():
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
