"""llmlab.lora: every adapter equals its base at init; merge/unmerge round trips; LoRA and rsLoRA scales; trainable
counts r*(in+out) per wrapped layer; PiSSA's residual + BA reconstructs the weight; DoRA's magnitude starts at the row
norms; NF4 codes and their error; nf4_matmul (Triton through the interpreter on CPU) against dequantise-then-matmul
over odd shapes; adapter save/load; LoRA+ groups; errors for bad input."""
import math, pytest, torch, torch.nn as nn
from hypothesis import given, settings, strategies as st, HealthCheck
from llmlab.lora import (LoRALinear, VeRALinear, QLoRALinear, lora_ref, lora_scale, vera_shared, add_lora, add_vera,
                         merge_lora, trainable_parameters, lora_state_dict, save_adapter, load_adapter,
                         loraplus_param_groups, nf4_levels, NF4, nf4_quantize, nf4_dequantize, nf4_codes, nf4_matmul,
                         nf4_matmul_ref, quantize_absmax, dequantize_absmax, adapters)
from llmlab.gpt import GPT, GPTConfig

VARIANTS = [dict(), dict(use_rslora=True), dict(use_dora=True), dict(init="pissa"), dict(init="pissa", use_dora=True),
            dict(dropout=0.1)]


def linear(i=24, o=16, bias=True, seed=0):
    torch.manual_seed(seed)
    l = nn.Linear(i, o, bias=bias).double()
    return l


def copy_of(l):
    c = nn.Linear(l.in_features, l.out_features, bias=l.bias is not None).double()
    c.load_state_dict(l.state_dict())
    return c


def randomise(m, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            if p.requires_grad: p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)


@pytest.mark.parametrize("kw", VARIANTS)
def test_equal_to_base_at_init(kw):
    base = linear()
    x = torch.randn(3, 5, 24, dtype=torch.float64)
    l = LoRALinear(copy_of(base), r=4, **kw).double().eval()
    torch.testing.assert_close(l(x), base(x), atol=1e-10, rtol=1e-10)


def test_vera_and_qlora_equal_their_base_at_init():
    base = linear()
    x = torch.randn(4, 24, dtype=torch.float64)
    A, B = vera_shared(32, 32, 8)
    torch.testing.assert_close(VeRALinear(copy_of(base), 8, A.double(), B.double())(x), base(x))
    q = QLoRALinear(linear(64, 16).float(), block_size=32)
    l = LoRALinear(q, r=4)
    xf = torch.randn(4, 64)
    torch.testing.assert_close(l(xf), q(xf))


@pytest.mark.parametrize("kw", VARIANTS[:5])
def test_merge_unmerge_round_trip(kw):
    base = linear()
    x = torch.randn(6, 24, dtype=torch.float64)
    l = LoRALinear(copy_of(base), r=4, **kw).double().eval()
    randomise(l)
    y = l(x)
    w0 = l.base.weight.clone()
    l.merge()
    torch.testing.assert_close(l(x), y, atol=1e-10, rtol=1e-10)
    l.unmerge()
    torch.testing.assert_close(l(x), y, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(l.base.weight, w0, atol=1e-12, rtol=1e-12)
    with pytest.raises(RuntimeError, match="not merged"): l.unmerge()


def test_vera_merge_round_trip_and_reference():
    base = linear()
    A, B = vera_shared(24, 16, 4)
    v = VeRALinear(copy_of(base), 4, A.double(), B.double())
    randomise(v)
    x = torch.randn(5, 24, dtype=torch.float64)
    want = base(x) + ((x @ A[:4, :24].double().T) * v.vera_d) @ B[:16, :4].double().T * v.vera_b
    torch.testing.assert_close(v(x), want)
    y = v(x); v.merge(); torch.testing.assert_close(v(x), y); v.unmerge(); torch.testing.assert_close(v(x), y)


def test_lora_matches_reference_and_scales():
    assert lora_scale(16, 32) == 2.0 and lora_scale(16, 32, use_rslora=True) == 8.0
    base = linear(bias=False)
    l = LoRALinear(copy_of(base), r=4, alpha=8).double(); randomise(l)
    assert l.scale == 2.0
    x = torch.randn(7, 24, dtype=torch.float64)
    torch.testing.assert_close(l(x), lora_ref(x, base.weight, l.lora_A, l.lora_B, 2.0))
    lr = LoRALinear(copy_of(base), r=4, alpha=8, use_rslora=True).double()
    assert lr.scale == 4.0


def test_dora_magnitude_and_direction():
    base = linear()
    l = LoRALinear(copy_of(base), r=4, use_dora=True).double()
    torch.testing.assert_close(l.magnitude, base.weight.norm(dim=1))
    randomise(l)
    W = base.weight + l.delta_weight()
    x = torch.randn(3, 24, dtype=torch.float64)
    want = x @ (l.magnitude[:, None] * W / W.norm(dim=1, keepdim=True)).T + base.bias
    torch.testing.assert_close(l(x), want)


def test_pissa_residual_plus_ba_is_the_weight():
    base = linear(32, 20)
    W = base.weight.detach().clone()
    l = LoRALinear(copy_of(base), r=5, alpha=10, init="pissa").double()
    torch.testing.assert_close(l.base.weight + l.delta_weight(), W)
    S = torch.linalg.svdvals(W)
    torch.testing.assert_close(torch.linalg.svdvals(l.delta_weight())[:5], S[:5])      # BA holds the top-5 directions
    torch.testing.assert_close(torch.linalg.svdvals(l.base.weight)[:15], S[5:])        # the residual the rest


def test_trainable_counts_r_times_in_plus_out():
    cfg = GPTConfig(vocab_size=40, d_model=32, n_layer=2, n_head=4)
    m = add_lora(GPT(cfg), targets=("wq", "wv"), r=4)
    assert trainable_parameters(m) == 2 * 2 * 4 * (32 + 32)
    m = add_lora(GPT(cfg), targets=("w1",), r=3)
    assert trainable_parameters(m) == 2 * 3 * (32 + cfg.d_ff)
    m = add_lora(GPT(cfg), targets=("w2",), r=2, use_dora=True)          # + one magnitude per output row
    assert trainable_parameters(m) == 2 * (2 * (cfg.d_ff + 32) + 32)
    m = add_vera(GPT(cfg), r=8, targets=("wq",))
    assert trainable_parameters(m) == 2 * (8 + 32)
    assert len(adapters(m)) == 2


def test_gpt_with_lora_equals_base_and_merges_back():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=40, d_model=32, n_layer=2, n_head=4)
    m = GPT(cfg).eval()
    idx = torch.randint(0, 40, (2, 9))
    want = m(idx)[0]
    import copy
    lm = add_lora(copy.deepcopy(m), r=4, init="pissa")
    torch.testing.assert_close(lm(idx)[0], want, atol=1e-4, rtol=1e-4)
    randomise(lm)
    y = lm(idx)[0]
    merged = merge_lora(lm)
    assert not adapters(merged) and isinstance(merged.blocks[0].attn.wq, nn.Linear)
    torch.testing.assert_close(merged(idx)[0], y, atol=1e-4, rtol=1e-4)
    # the registry: a 'lora' GPT loads a dense checkpoint and equals it
    lg = GPT(GPTConfig(vocab_size=40, d_model=32, n_layer=2, n_head=4, linear="lora", linear_kwargs={"r": 2})).eval()
    missing, unexpected = lg.load_state_dict(m.state_dict(), strict=False)
    assert not unexpected and all("lora_" in k for k in missing)
    torch.testing.assert_close(lg(idx)[0], want)


def test_adapter_save_load_round_trip(tmp_path):
    cfg = GPTConfig(vocab_size=40, d_model=32, n_layer=2, n_head=4)
    torch.manual_seed(0); base = GPT(cfg)
    import copy
    a = add_lora(copy.deepcopy(base), r=4, use_dora=True); randomise(a)
    p = save_adapter(a, tmp_path / "ad.safetensors")
    assert p.stat().st_size < 100_000
    b = add_lora(copy.deepcopy(base), r=4, use_dora=True)
    load_adapter(b, p)
    idx = torch.randint(0, 40, (2, 7))
    torch.testing.assert_close(a.eval()(idx)[0], b.eval()(idx)[0])
    c = add_lora(copy.deepcopy(base), r=8, use_dora=True)
    with pytest.raises(ValueError, match="shape"): load_adapter(c, p)
    d = add_lora(copy.deepcopy(base), targets=("wq",), r=4)
    with pytest.raises(ValueError, match="does not fit"): load_adapter(d, p)
    with pytest.raises(FileNotFoundError): load_adapter(b, tmp_path / "nope.safetensors")


def test_loraplus_groups():
    m = add_lora(GPT(GPTConfig(vocab_size=40, d_model=32, n_layer=1, n_head=4)), r=2)
    g = loraplus_param_groups(m, 1e-3, ratio=16)
    assert g[0]["lr"] == 1e-3 and g[1]["lr"] == 16e-3
    names = {id(p): n for n, p in m.named_parameters()}
    assert all(names[id(p)].endswith("lora_B") for p in g[1]["params"])
    assert all(names[id(p)].endswith("lora_A") for p in g[0]["params"])
    assert sum(p.numel() for gr in g for p in gr["params"]) == trainable_parameters(m)


def test_nf4_levels_are_the_papers():
    paper = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
             -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
             0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]
    torch.testing.assert_close(nf4_levels(), torch.tensor(paper), atol=1e-6, rtol=0)
    assert torch.equal(NF4, nf4_levels())


@settings(max_examples=20, deadline=None)
@given(rows=st.integers(1, 9), blocks=st.integers(1, 4), bs=st.sampled_from([2, 8, 64]), seed=st.integers(0, 1000))
def test_nf4_codes_and_error_within_level_spacing(rows, blocks, bs, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, blocks * bs, generator=g) * 3
    packed, absmax = nf4_quantize(w, bs)
    assert packed.dtype == torch.uint8 and packed.numel() == w.numel() // 2
    codes = nf4_codes(packed)
    assert int(codes.max()) <= 15
    wd = nf4_dequantize(packed, absmax, w.shape, bs)
    vals = (wd.reshape(-1, bs) / absmax[:, None].clamp_min(1e-12)).reshape(-1)
    assert torch.isin(vals.round(decimals=5), NF4.round(decimals=5)).all()          # every value is a level
    torch.testing.assert_close(absmax, w.reshape(-1, bs).abs().amax(1))
    # the error of each weight is at most half the gap between the two levels around it, times its block's absmax
    normed = (w.reshape(-1, bs) / absmax[:, None]).reshape(-1)
    i = torch.bucketize(normed, NF4).clamp(1, 15)
    gap = (NF4[i] - NF4[i - 1]) * absmax.repeat_interleave(bs)
    assert ((w.reshape(-1) - wd.reshape(-1)).abs() <= gap / 2 + 1e-6).all()


def test_double_quant_round_trip():
    a = torch.rand(1000) * 2 + 0.1
    q, s, mean = quantize_absmax(a, 256)
    assert q.dtype == torch.int8 and s.numel() == 4
    back = dequantize_absmax(q, s, mean, 256)
    assert (back - a).abs().max() <= s.max() / 2 + 1e-6


BACKENDS = ["torch", "triton"]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(M=st.sampled_from([1, 2, 3, 5, 17, 33]), N=st.integers(1, 40), kb=st.integers(1, 3), bs=st.sampled_from([2, 16, 32]),
       backend=st.sampled_from(BACKENDS), seed=st.integers(0, 1000))
def test_nf4_matmul_equals_dequantise_then_matmul(M, N, kb, bs, backend, seed):
    g = torch.Generator().manual_seed(seed)
    K = kb * bs + 2 * (N % 3)                            # blocks may straddle rows: only N*K must divide by bs
    if (N * K) % bs: N = bs                              # (then N*K = bs*K is a multiple)
    w = torch.randn(N, K, generator=g)
    x = torch.randn(M, K, generator=g)
    packed, absmax = nf4_quantize(w, bs)
    want = x.double() @ nf4_dequantize(packed, absmax, (N, K), bs).double().T
    got = nf4_matmul(x, packed, absmax, N, bs, backend=backend)
    torch.testing.assert_close(got.double(), want, atol=1e-4, rtol=1e-4, msg=f"{backend} M={M} N={N} K={K} bs={bs}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_nf4_matmul_gradient_wrt_x(backend):
    torch.manual_seed(0)
    w, x = torch.randn(12, 64), torch.randn(2, 3, 64, requires_grad=True)
    packed, absmax = nf4_quantize(w, 32)
    nf4_matmul(x, packed, absmax, 12, 32, backend=backend).pow(2).sum().backward()
    xr = x.detach().clone().requires_grad_()
    (xr @ nf4_dequantize(packed, absmax, (12, 64), 32).T).pow(2).sum().backward()
    torch.testing.assert_close(x.grad, xr.grad, atol=1e-4, rtol=1e-4)


def test_qlora_gpt_trains_only_the_adapter():
    cfg = GPTConfig(vocab_size=40, d_model=64, n_layer=1, n_head=4)
    m = add_lora(GPT(cfg), targets=("wq", "w1"), r=2, quantize=True, double_quant=True)
    assert isinstance(m.blocks[0].attn.wq.base, QLoRALinear) and m.blocks[0].attn.wq.base.bits_per_weight() < 4.2
    idx = torch.randint(0, 40, (2, 6))
    m(idx, idx)[1].backward()
    assert all((p.grad is not None) == p.requires_grad for p in m.parameters())
    assert trainable_parameters(m) == 2 * (64 + 64) + 2 * (64 + cfg.d_ff)


def test_errors():
    base = linear(8, 6)
    with pytest.raises(ValueError, match="r must be"): LoRALinear(base, r=0)
    with pytest.raises(ValueError, match="r must be"): LoRALinear(base, r=7)
    with pytest.raises(TypeError, match="r must be an int"): LoRALinear(base, r=2.0)
    with pytest.raises(ValueError, match="init"): LoRALinear(base, r=2, init="kaiming")
    with pytest.raises(ValueError, match="alpha"): LoRALinear(base, r=2, alpha=0)
    with pytest.raises(ValueError, match="dropout"): LoRALinear(base, r=2, dropout=1.0)
    with pytest.raises(TypeError, match="use_dora"): LoRALinear(base, r=2, use_dora=1)
    with pytest.raises(TypeError, match="base"): LoRALinear(nn.Conv1d(2, 2, 1))
    m = GPT(GPTConfig(vocab_size=40, d_model=32, n_layer=1, n_head=4))
    with pytest.raises(ValueError, match="unknown target"): add_lora(m, targets=("wq", "q_proj"))
    with pytest.raises(TypeError, match="targets"): add_lora(m, targets="wq")
    with pytest.raises(ValueError, match="multiple of block_size"): nf4_quantize(torch.randn(3, 10), 64)
    with pytest.raises(ValueError, match="multiple of block_size"): QLoRALinear(nn.Linear(50, 8), block_size=32)
    with pytest.raises(ValueError, match="even"): nf4_quantize(torch.randn(9), 3)
    with pytest.raises(ValueError, match="non-finite"): nf4_quantize(torch.tensor([1.0, float("nan")]), 2)
    p, a = nf4_quantize(torch.randn(4, 64), 32)
    with pytest.raises(ValueError, match="multiple of block_size"): nf4_matmul(torch.randn(2, 50), p[:100], a[:6], 4, 32)
    with pytest.raises(ValueError, match="shape"): nf4_matmul(torch.randn(2, 64), p, a, 5, 32)
    with pytest.raises(ValueError, match="backend"): nf4_matmul(torch.randn(2, 64), p, a, 4, 32, backend="cuda")
    with pytest.raises(ValueError, match="no LoRALinear"): merge_lora(GPT(GPTConfig(vocab_size=40, d_model=32, n_layer=1, n_head=4)))
    with pytest.raises(ValueError, match="pissa"):
        GPT(GPTConfig(vocab_size=40, d_model=32, n_layer=1, n_head=4, linear="lora", linear_kwargs={"init": "pissa"}))
    l = LoRALinear(linear(8, 6), r=2)
    l.merge()
    with pytest.raises(RuntimeError, match="already merged"): l.merge()
    q = LoRALinear(QLoRALinear(nn.Linear(64, 8), 32), r=2)
    with pytest.raises(ValueError, match="pissa"): LoRALinear(QLoRALinear(nn.Linear(64, 8), 32), r=2, init="pissa")
    q.merge()
    with pytest.raises(RuntimeError, match="4-bit"): q.unmerge()
    A, B = vera_shared(4, 4, 2)
    with pytest.raises(ValueError, match="shared_A"): VeRALinear(linear(8, 4), 2, A, B)


def test_trace_lora_numbers_and_errors():
    from llmlab.lora import trace_lora
    torch.manual_seed(0)
    full, low = torch.randn(12, 10), torch.randn(12, 3) @ torch.randn(3, 10)
    merge = {"prompt": "a b", "tokens": ["x", "<y>"], "unmerged": [0.5, 0.25], "merged": [0.5, 0.25 + 1e-7]}
    t = trace_lora(full, low, {"full": 1.0, "LoRA r=3": 0.5}, merge, name="w")
    s = torch.linalg.svdvals(full.double())
    assert t["sv_full"] == [round(float(v), 5) for v in s] and len(t["sv_lora"]) == 10
    assert abs(t["energy"][2] - float((s[:3] ** 2).sum() / (s ** 2).sum())) < 1e-5 and t["energy"][-1] == 1.0
    assert t["sv_lora"][3] < 1e-4 and abs(t["merge"]["max_diff"] - 1e-7) < 1e-9 and t["merge"]["tokens"][1] == "<y>"
    with pytest.raises(ValueError, match="shape"): trace_lora(full, low[:, :5], {"full": 1.0}, merge)
    with pytest.raises(ValueError, match="'full'"): trace_lora(full, low, {"LoRA r=3": 0.5}, merge)
    with pytest.raises(ValueError, match="accuracy"): trace_lora(full, low, {"full": 1.5}, merge)
    with pytest.raises(ValueError, match="merge"): trace_lora(full, low, {"full": 1.0}, {"prompt": "a"})
    from llmlab.lab import HAS_WIDGETS
    if HAS_WIDGETS:
        from llmlab.lora import LoRAWidget
        w = LoRAWidget(t)
        assert w.step == 10 and "render" in w._esm
