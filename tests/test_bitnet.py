"""BitNet b1.58: quantisers (values, scales, zero rows, groups), STE gradients, pack/unpack round trips (2-bit and
base 3), ternary_matmul (reference and Triton kernels through the interpreter) against the exact int32 reference,
BitLinear (training, freeze), the widget trace, and bad input."""
import math
import pytest, torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from llmlab import bitnet as B
from llmlab.lab import HAS_TRITON, interpreting

torch.set_num_threads(1)
needs_triton = pytest.mark.skipif(not (HAS_TRITON and (interpreting() or torch.cuda.is_available())),
                                  reason="needs Triton with a GPU or TRITON_INTERPRET=1 (conftest sets it without a GPU)")

def ternary(N, K, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-1, 2, (N, K), generator=g, dtype=torch.int8)

# ---------------------------------------------------------------- quantisers
def test_weights_ternary_values_and_scale():
    w = torch.tensor([[0.9, -0.05, 0.3, -1.2], [0.02, 0.5, -0.4, 0.1]])
    q, s = B.quantize_weights_ternary(w)
    assert q.dtype == torch.int8 and s.shape == ()
    torch.testing.assert_close(s, w.abs().mean())
    assert torch.equal(q, torch.where(w.abs() < s / 2, 0, torch.sign(w)).to(torch.int8)), "zero below gamma/2, else the sign"

@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 9), groups=st.integers(1, 4), gs=st.sampled_from([1, 2, 4, 8]), seed=st.integers(0, 1000))
def test_weights_per_group(n, groups, gs, seed):
    w = torch.randn(n, groups * gs, generator=torch.Generator().manual_seed(seed))
    q, s = B.quantize_weights_ternary(w, group_size=gs)
    assert s.shape == (n, groups) and set(q.unique().tolist()) <= {-1, 0, 1}
    torch.testing.assert_close(s, w.abs().reshape(n, groups, gs).mean(-1).clamp_min(1e-5))
    ref = (w.reshape(n, groups, gs) / s[..., None]).round().clamp(-1, 1).reshape(n, -1)
    assert torch.equal(q.float(), ref)
    torch.testing.assert_close(B.dequantize_ternary(q, s), (ref.reshape(n, groups, gs) * s[..., None]).reshape(n, -1))

def test_zero_weights_and_zero_activation_rows():
    q, s = B.quantize_weights_ternary(torch.zeros(3, 4))
    assert (q == 0).all() and s > 0
    x = torch.zeros(2, 5); x[1] = torch.tensor([1.0, -2.0, 0.5, 0.0, 2.0])
    xq, xs = B.quantize_activations_int8(x)
    assert torch.isfinite(xs).all() and (xq[0] == 0).all()
    assert xq[1].tolist() == [64, -127, 32, 0, 127] and xs.shape == (2, 1)   # 63.5 -> 64 (round half to even), 31.75 -> 32

@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 40)), seed=st.integers(0, 1000))
def test_activations_int8_range_and_error(shape, seed):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 3
    xq, xs = B.quantize_activations_int8(x)
    assert xq.dtype == torch.int8 and xq.abs().max() <= 127 and xs.shape == (*shape[:-1], 1)
    assert (xq.abs().amax(-1) == 127).all(), "the largest entry of each token must map to +-127"
    assert ((xq.float() * xs - x).abs() <= xs / 2 + 1e-6).all(), "error is at most half a step"

# ---------------------------------------------------------------- STE
def test_ste_weights_and_activations_pass_gradients_through():
    g = torch.Generator().manual_seed(1)
    for fq, q in ((B.fake_quant_weights, B.quantize_weights_ternary), (B.fake_quant_activations, B.quantize_activations_int8)):
        w = torch.randn(5, 7, generator=g, requires_grad=True)
        out = fq(w)
        wq, s = q(w.detach())
        torch.testing.assert_close(out, wq.float() * s)
        up = torch.randn(5, 7, generator=g)
        (out * up).sum().backward()
        assert torch.equal(w.grad, up), "STE: d out / d w must be the identity"

# ---------------------------------------------------------------- packing
@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 9), K=st.integers(1, 41), seed=st.integers(0, 10_000))
def test_pack_roundtrip(N, K, seed):
    w = ternary(N, K, seed)
    p = B.pack_ternary(w)
    assert p.dtype == torch.uint8 and p.shape == (N, math.ceil(K / 4))
    assert torch.equal(B.unpack_ternary(p, (N, K)), w)
    p3 = B.pack_ternary_base3(w)
    assert p3.shape == (N, math.ceil(K / 5)) and int(p3.max()) <= 242
    assert torch.equal(B.unpack_ternary_base3(p3, (N, K)), w)

def test_pack_layout():
    p = B.pack_ternary(torch.tensor([[-1, 0, 1, 1, 0]], dtype=torch.int8))
    assert p.tolist() == [[0 | 1 << 2 | 2 << 4 | 2 << 6, 0b01010101]], "code w+1 in bits 2*(k%4), padding = weight 0"

def test_pack_errors():
    with pytest.raises(ValueError, match="only -1, 0, 1"): B.pack_ternary(torch.tensor([[2, 0]], dtype=torch.int8))
    with pytest.raises(TypeError, match="integer"): B.pack_ternary(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="2-D"): B.pack_ternary(torch.zeros(4, dtype=torch.int8))
    p = B.pack_ternary(ternary(3, 10))
    with pytest.raises(ValueError, match="packs to"): B.unpack_ternary(p, (3, 13))
    with pytest.raises(TypeError, match="uint8"): B.unpack_ternary(p.to(torch.int32), (3, 10))
    with pytest.raises(ValueError, match="code 3"): B.unpack_ternary(torch.full((1, 1), 255, dtype=torch.uint8), (1, 4))
    with pytest.raises(ValueError, match="242"): B.unpack_ternary_base3(torch.full((1, 1), 250, dtype=torch.uint8), (1, 5))

# ---------------------------------------------------------------- matmul
def test_reference_matmul_exact_and_float():
    w = ternary(13, 37, 3); p = B.pack_ternary(w)
    x = torch.randint(-127, 128, (6, 37), dtype=torch.int8)
    y = B.ternary_matmul(x, p, torch.tensor(1.0), backend="torch")
    assert y.dtype == torch.float32 and torch.equal(y, (x.long() @ w.long().T).float())
    xf = torch.randn(2, 3, 37, dtype=torch.float64)
    ws = torch.rand(13) + 0.5
    yf = B.ternary_matmul(xf, p, ws, backend="torch")
    assert yf.shape == (2, 3, 13) and yf.dtype == torch.float64
    torch.testing.assert_close(yf, xf @ (w.double() * ws.double()[:, None]).T)

@needs_triton
@pytest.mark.parametrize("M,N,K", [(1, 5, 7), (1, 45, 150), (1, 64, 128), (3, 33, 61), (17, 37, 97), (16, 32, 128)])
def test_triton_kernels_exact_vs_int32_reference(M, N, K):
    g = torch.Generator().manual_seed(M * 1000 + N + K)
    w = torch.randn(N, K, generator=g)
    wq, ws = B.quantize_weights_ternary(w)
    p = B.pack_ternary(wq)
    xq, xs = B.quantize_activations_int8(torch.randn(M, K, generator=g))
    blocks = dict(BLOCK_N=32, BLOCK_KP=8) if M == 1 else dict(BLOCK_M=16, BLOCK_N=32, BLOCK_KP=8)
    y_int = B.ternary_matmul_triton(xq, p, torch.tensor(1.0), blocks=blocks)
    assert torch.equal(y_int, (xq.long() @ wq.long().T).float()), "int8 activations: the kernel must equal the int32 sums"
    y = B.ternary_matmul_triton(xq, p, ws, xs, blocks=blocks)
    assert torch.equal(y, B.ternary_matmul_ref(xq, p, ws, xs)), "scaled: bit-exact against the reference"
    xf = torch.randn(M, K, generator=g)
    wsr = torch.rand(N, generator=g) + 0.5                      # per-row scales
    torch.testing.assert_close(B.ternary_matmul_triton(xf, p, wsr, blocks=blocks), B.ternary_matmul_ref(xf, p, wsr),
                               rtol=1e-5, atol=1e-4)

@needs_triton
def test_triton_autotuned_entry_and_backend_switch():
    wq = ternary(40, 70); p = B.pack_ternary(wq)
    x = torch.randint(-127, 128, (2, 70), dtype=torch.int8)
    y = B.ternary_matmul(x, p, torch.tensor(0.5), backend="triton")
    assert torch.equal(y, B.ternary_matmul(x, p, torch.tensor(0.5), backend="torch"))

def test_matmul_errors():
    p = B.pack_ternary(ternary(4, 10))
    x = torch.randn(3, 10)
    with pytest.raises(ValueError, match="ceil"): B.ternary_matmul(torch.randn(3, 13), p, torch.tensor(1.0))
    with pytest.raises(TypeError, match="dtype"): B.ternary_matmul(x.to(torch.int32), p, torch.tensor(1.0))
    with pytest.raises(TypeError, match="uint8"): B.ternary_matmul(x, p.to(torch.int16), torch.tensor(1.0))
    with pytest.raises(ValueError, match="w_scale"): B.ternary_matmul(x, p, torch.ones(3))
    with pytest.raises(ValueError, match="x_scale"): B.ternary_matmul(x, p, torch.tensor(1.0), x_scale=torch.ones(2))
    with pytest.raises(ValueError, match="backend"): B.ternary_matmul(x, p, torch.tensor(1.0), backend="cuda")

# ---------------------------------------------------------------- BitLinear
def test_bitlinear_forward_backward_and_freeze():
    torch.manual_seed(0)
    layer = B.BitLinear(24, 10, bias=True)
    x = torch.randn(2, 5, 24)
    y = layer(x)
    assert y.shape == (2, 5, 10)
    xn = layer.norm(x)
    wq, ws = B.quantize_weights_ternary(layer.weight.detach())
    xq, xs = B.quantize_activations_int8(xn.detach())
    torch.testing.assert_close(y, (xq.float() * xs) @ (wq.float() * ws).T + layer.bias)
    y.square().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0 and layer.norm.weight.grad is not None
    with torch.no_grad(): before = layer(x)
    layer.freeze()
    assert layer.frozen and not hasattr(layer, "weight") or layer.__dict__.get("weight") is None
    assert layer.packed.dtype == torch.uint8 and layer.packed.shape == (10, 6)
    with torch.no_grad(): after = layer(x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="in_features"): layer(torch.randn(3, 7))
    with pytest.raises(ValueError, match="out_features"): B.BitLinear(4, 0)

def test_bitlinear_trains_in_a_small_lm():
    "A 1-layer char model with BitLinear projections: the loss must fall well below its start."
    torch.manual_seed(0)
    text = "abcabdabeabf" * 40
    vocab = sorted(set(text)); ids = torch.tensor([vocab.index(c) for c in text])
    emb, l1, l2, head = nn.Embedding(len(vocab), 32), B.BitLinear(64, 64), B.BitLinear(64, 32), nn.Linear(32, len(vocab))
    params = [*emb.parameters(), *l1.parameters(), *l2.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-2)
    ctx = torch.stack([ids[:-2], ids[1:-1]], 1); tgt = ids[2:]
    losses = []
    for _ in range(60):
        h = emb(ctx).flatten(1)                                           # (T, 64): two previous characters
        loss = F.cross_entropy(head(l2(F.gelu(l1(h)))), tgt)
        opt.zero_grad(); loss.backward(); opt.step(); losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], f"loss did not fall enough: {losses[0]:.3f} -> {losses[-1]:.3f}"

def test_registered_in_gpt_and_trains_there():
    "GPTConfig(linear='bitlinear') builds every block projection as a BitLinear; the loss falls; freeze() keeps outputs."
    gpt = pytest.importorskip("llmlab.gpt", reason="llmlab.gpt (03_gpt) is not in this checkout yet")
    assert gpt.get_linear("bitlinear") is B.BitLinear
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=12, ctx_len=16, n_layer=1, n_head=2, d_model=32, linear="bitlinear"))
    bits = [m for m in model.modules() if isinstance(m, B.BitLinear)]
    assert len(bits) == 7, f"expected wq, wk, wv, wo and the 3 SwiGLU projections as BitLinear, got {len(bits)}"
    data = torch.arange(12).repeat(60)                                     # a cycle: next token is predictable
    hist = gpt.train(model, data, steps=40, lr=1e-2, batch_size=8, bar=False, plot=False)
    assert hist["loss"][-1] < 0.5 * hist["loss"][0], f"loss did not fall: {hist['loss'][0]:.3f} -> {hist['loss'][-1]:.3f}"
    x = data[:16][None]
    with torch.no_grad(): before = model(x)[0] if isinstance(model(x), tuple) else model(x)
    for m in bits: m.freeze()
    with torch.no_grad(): after = model(x)[0] if isinstance(model(x), tuple) else model(x)
    assert (before.argmax(-1) == after.argmax(-1)).float().mean() > 0.9

# ---------------------------------------------------------------- widget trace and bad input
def test_trace_matches_quantisers():
    g = torch.Generator().manual_seed(0)
    w, x = torch.randn(8, 16, generator=g), torch.randn(4, 12, generator=g)
    t = B.trace_bitnet(w, x, group_size=4)
    q, s = B.quantize_weights_ternary(w, group_size=4)
    assert t["modes"]["group"]["q"] == q.flatten().tolist() and t["modes"]["group"]["n_scales"] == 32
    assert t["modes"]["tensor"]["zero_frac"] == round(float((B.quantize_weights_ternary(w)[0] == 0).float().mean()), 4)
    assert t["x_q"] == B.quantize_activations_int8(x)[0].flatten().tolist()
    assert sum(t["modes"]["tensor"]["hist"]) == w.numel()
    with pytest.raises(ValueError, match="small"): B.trace_bitnet(torch.randn(100, 100), x)

def test_quantiser_errors():
    with pytest.raises(TypeError, match="floating"): B.quantize_weights_ternary(torch.ones(3, dtype=torch.int32))
    with pytest.raises(ValueError, match="group_size"): B.quantize_weights_ternary(torch.randn(2, 6), group_size=4)
    with pytest.raises(ValueError, match="eps"): B.quantize_weights_ternary(torch.randn(2, 6), eps=0)
    with pytest.raises(TypeError, match="torch.Tensor"): B.quantize_activations_int8([1.0, 2.0])
    with pytest.raises(ValueError, match="last dim"): B.quantize_activations_int8(torch.randn(3, 0))

# ---------------------------------------------------------------- bad input: one table for the whole module
_p8 = lambda: B.pack_ternary(torch.ones(2, 8, dtype=torch.int8))          # (2, 8) all +1: every column is a real weight
_one = lambda: torch.tensor(1.0)
BAD = [
    (lambda: B.quantize_weights_ternary(torch.tensor([float("nan"), 1.0])), ValueError, "w has 1 non-finite"),
    (lambda: B.quantize_weights_ternary(torch.randn(2, 4), eps=float("nan")), ValueError, "eps must be a finite number"),
    (lambda: B.quantize_weights_ternary(torch.randn(2, 4), eps=-1), ValueError, "eps must be > 0"),
    (lambda: B.quantize_weights_ternary(torch.randn(2, 4), group_size=True), TypeError, "group_size must be an int"),
    (lambda: B.quantize_weights_ternary(torch.randn(2, 4), group_size=0), ValueError, "group_size must be an int >= 1"),
    (lambda: B.quantize_weights_ternary(torch.tensor(1.0)), ValueError, "at least 1 dim"),
    (lambda: B.quantize_activations_int8(torch.tensor([[float("inf"), 1.0]])), ValueError, "x has 1 non-finite"),
    (lambda: B.quantize_activations_int8(torch.randn(2, 4), eps=-1), ValueError, "eps must be > 0"),
    (lambda: B.dequantize_ternary(torch.ones(2, 4, dtype=torch.int8), torch.ones(2, 3)), ValueError, "scale must be a scalar or (..., G)"),
    (lambda: B.dequantize_ternary([1], torch.ones(1)), TypeError, "w_q must be a torch.Tensor"),
    (lambda: B.dequantize_ternary(torch.ones(2, 4), torch.ones(())), TypeError, "w_q must have dtype"),
    (lambda: B.dequantize_ternary(torch.ones(2, 4, dtype=torch.int8), torch.ones((), dtype=torch.int32)), TypeError, "scale must have dtype float"),
    (lambda: B.ste(torch.randn(3), torch.randn(4)), ValueError, "x_hat must have shape (3)"),
    (lambda: B.ste(torch.ones(3, dtype=torch.long), torch.ones(3)), TypeError, "x must have dtype float"),
    (lambda: B.fake_quant_weights(torch.randn(3, 4), eps=0), ValueError, "eps must be > 0"),
    (lambda: B.fake_quant_weights(torch.ones(3, 4, dtype=torch.long)), TypeError, "w must be a floating-point tensor"),
    (lambda: B.fake_quant_activations(torch.randn(3, 0)), ValueError, "non-empty last dim"),
    (lambda: B.BitLinear(4.0, 4), TypeError, "in_features must be an int"),
    (lambda: B.BitLinear(True, 4), TypeError, "in_features must be an int"),
    (lambda: B.BitLinear(4, 0), ValueError, "out_features must be an int >= 1"),
    (lambda: B.BitLinear(4, 4, eps=float("nan")), ValueError, "eps must be a finite number"),
    (lambda: B.BitLinear(4, 4, bias=1), TypeError, "bias must be a bool"),
    (lambda: B.BitLinear(4, 4)(torch.ones(2, 4, dtype=torch.long)), TypeError, "x must be a floating-point tensor"),
    (lambda: B.BitLinear(4, 4)(torch.tensor(1.0)), ValueError, "in_features=4"),
    (lambda: B.unpack_ternary(_p8(), (2, 5)), ValueError, "non-zero weights past column 5"),
    (lambda: B.unpack_ternary(_p8(), (2, 5.0)), TypeError, "shape[1] must be an int"),
    (lambda: B.unpack_ternary(_p8(), (2,)), ValueError, "shape must be (out_features, in_features)"),
    (lambda: B.unpack_ternary(_p8(), (2, 0)), ValueError, "shape[1] must be an int >= 1"),
    (lambda: B.unpack_ternary_base3(B.pack_ternary_base3(torch.ones(2, 5, dtype=torch.int8)), (2, 3)), ValueError, "past column 3"),
    (lambda: B.ternary_matmul(torch.randn(1, 5), _p8(), _one()), ValueError, "x has K=5 columns but packed holds non-zero weights"),
    (lambda: B.ternary_matmul(torch.randn(1, 13), _p8(), _one()), ValueError, "ceil(K/4)=4"),
    (lambda: B.ternary_matmul(torch.tensor(1.0), _p8(), _one()), ValueError, "at least 1 dim"),
    (lambda: B.ternary_matmul([1.0] * 8, _p8(), _one()), TypeError, "x must be a torch.Tensor"),
    (lambda: B.ternary_matmul(torch.randn(2, 8), _p8(), _one(), x_scale=torch.tensor([1, 2])), TypeError, "x_scale must have dtype float"),
    (lambda: B.ternary_matmul(torch.randn(2, 8), _p8(), torch.tensor(1)), ValueError, "w_scale must be a float tensor"),
    (lambda: B.ternary_matmul(torch.randn(2, 8), torch.zeros(2, 0, dtype=torch.uint8), _one()), TypeError, "packed must be a 2-D uint8"),
    (lambda: B.ternary_matmul(torch.randn(2, 8), _p8(), _one(), backend="gpu"), ValueError, "backend must be"),
    (lambda: B.ternary_matmul_ref(torch.randn(2, 8).to(torch.int32), _p8(), _one()), TypeError, "int8 (quantised activations) or a float"),
    (lambda: B.trace_bitnet(torch.randn(4, 8), torch.randn(2, 4), bins=0), ValueError, "bins must be an int in [1, 200]"),
    (lambda: B.ternary_matmul(torch.randn(2, 8), _p8(), torch.tensor(float("nan"))), ValueError, "w_scale has 1 non-finite"),
    (lambda: B.ternary_matmul_ref(torch.randn(2, 8), _p8(), _one(), torch.tensor([1.0, float("inf")])), ValueError, "x_scale has 1 non-finite"),
    (lambda: B.dequantize_ternary(torch.ones(2, 4, dtype=torch.int8), torch.full((2, 2), float("nan"))), ValueError, "scale has 4 non-finite"),
    (lambda: B.trace_bitnet(torch.randn(4, 8), torch.randn(2, 4), group_size=0), ValueError, "group_size must be an int >= 1"),
    (lambda: B.trace_bitnet(torch.full((4, 8), float("nan")), torch.randn(2, 4)), ValueError, "w has 32 non-finite"),
]

@pytest.mark.parametrize("call, exc, fragment", BAD, ids=[f"bad-{i}" for i in range(len(BAD))])
def test_bad_input(call, exc, fragment):
    with pytest.raises(exc) as e: call()
    assert fragment in str(e.value), f"message {str(e.value)!r} does not contain {fragment!r}"

@needs_triton
def test_bad_input_triton_launcher():
    "The launcher refuses what the kernels cannot do (float64, bad tile sizes, a K that drops weights) before launching."
    x = torch.randn(2, 8)
    with pytest.raises(TypeError, match="float64"): B.ternary_matmul_triton(x.double(), _p8(), _one())
    with pytest.raises(TypeError, match="float64"): B.ternary_matmul(x.double(), _p8(), _one(), backend="triton")
    with pytest.raises(ValueError, match="blocks must be None or a dict"): B.ternary_matmul_triton(x, _p8(), _one(), blocks=dict(BLOCK_N=32, BLOCK_KP=8))
    with pytest.raises(ValueError, match="power-of-two"): B.ternary_matmul_triton(x, _p8(), _one(), blocks=dict(BLOCK_M=16, BLOCK_N=30, BLOCK_KP=8))
    with pytest.raises(ValueError, match="past column 5"): B.ternary_matmul_triton(torch.randn(1, 5), _p8(), _one())

def test_documented_results_for_edge_input():
    "Narrower K that only drops padding is fine; a wider unpack shape within the same bytes pads with zeros; "
    "auto falls back to PyTorch for float64; zero rows give an empty (0, N) result on both paths."
    w = ternary(3, 5, 1); p = B.pack_ternary(w)
    assert torch.equal(B.unpack_ternary(p, (3, 7))[:, :5], w) and (B.unpack_ternary(p, (3, 7))[:, 5:] == 0).all()
    x = torch.randn(2, 7)
    torch.testing.assert_close(B.ternary_matmul(x, p, _one()), x[:, :5] @ w.float().T)
    xd = torch.randn(2, 5, dtype=torch.float64)
    assert B.ternary_matmul(xd, p, _one()).dtype == torch.float64
    assert B.ternary_matmul(torch.zeros(0, 5), p, _one()).shape == (0, 3)
    if HAS_TRITON and (interpreting() or torch.cuda.is_available()):
        assert B.ternary_matmul_triton(torch.zeros(0, 5), p, _one()).shape == (0, 3)

def test_empty_matrices_round_trip():
    "No rows is a legitimate (empty) matrix: it packs to (0, ceil(K/4)) bytes and back; a matrix with no columns is refused."
    for pack, unpack, per in ((B.pack_ternary, B.unpack_ternary, 4), (B.pack_ternary_base3, B.unpack_ternary_base3, 5)):
        p = pack(torch.zeros(0, 7, dtype=torch.int8))
        assert p.shape == (0, -(-7 // per)) and unpack(p, (0, 7)).shape == (0, 7)
    with pytest.raises(ValueError, match="in_features > 0"): B.pack_ternary(torch.zeros(3, 0, dtype=torch.int8))
