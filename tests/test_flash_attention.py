"""FlashAttention: the reference against SDPA, the tiled PyTorch path (float64) and the Triton kernels (float32,
through the interpreter on CPU) against the reference, forward, LSE and backward, causal and not, GQA, Nq != Nk,
lengths that are not multiples of the block; LSE semantics; memory; the widget trace; errors."""
import math, subprocess, sys
import pytest, torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st, HealthCheck
from llmlab import lab
from llmlab import flash_attention as FA
from llmlab.flash_attention import attention_ref, flash_attention, flash_fwd_torch, flash_bwd_torch

TRITON_OK = lab.HAS_TRITON and (torch.cuda.is_available() or lab.interpreting())
needs_triton = pytest.mark.skipif(not TRITON_OK, reason="needs Triton (CUDA, or TRITON_INTERPRET=1 set by conftest)")
DEV = "cuda" if torch.cuda.is_available() else "cpu"
# the interpreter (numpy 2.3) warns on every runtime loop bound; the kernels are checked by value below
pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def make(B, H, Hkv, Nq, Nk, D, dtype=torch.float64, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, Nq, D, generator=g, dtype=torch.float64)
    k = torch.randn(B, Hkv, Nk, D, generator=g, dtype=torch.float64)
    v = torch.randn(B, Hkv, Nk, D, generator=g, dtype=torch.float64)
    dout = torch.randn(B, H, Nq, D, generator=g, dtype=torch.float64)
    dlse = torch.randn(B, H, Nq, generator=g, dtype=torch.float64)
    return q, k, v, dout, dlse


def ref_lse(q, k, v, causal, scale=None):
    G, D = q.shape[1] // k.shape[1], q.shape[-1]
    s = q @ k.repeat_interleave(G, 1).transpose(-2, -1) * (scale or D ** -0.5)
    if causal: s = s.masked_fill(~FA.causal_mask(q.shape[2], k.shape[2], q.device), float("-inf"))
    return torch.logsumexp(s, -1)


def ref_all(q, k, v, dout, dlse, causal):
    "out, lse, dq, dk, dv of sum(out*dout) + sum(lse*dlse) through the float64 reference (-inf LSE rows excluded)."
    q, k, v = (t.detach().double().requires_grad_() for t in (q, k, v))
    out, lse = attention_ref(q, k, v, causal), ref_lse(q, k, v, causal)
    loss = (out * dout).sum() + torch.where(torch.isfinite(lse), lse, 0.0).mul(dlse).sum()
    return (out.detach(), lse.detach(), *torch.autograd.grad(loss, (q, k, v)))


def run_flash(q, k, v, dout, dlse, causal, backend, dtype, device="cpu"):
    qx, kx, vx = (t.to(device=device, dtype=dtype).requires_grad_() for t in (q, k, v))
    out, lse = flash_attention(qx, kx, vx, causal=causal, backend=backend, return_lse=True)
    fin = torch.isfinite(lse)
    loss = (out * dout.to(device, dtype)).sum() + (lse.masked_fill(~fin, 0) * dlse.to(device, lse.dtype)).sum()
    return (out, lse, *torch.autograd.grad(loss, (qx, kx, vx)))


def assert_matches_ref(got, want, tol, what=""):
    names = ["out", "lse", "dq", "dk", "dv"]
    for name, a, b in zip(names, got, want):
        a = a.detach().double().cpu()
        assert a.shape == b.shape, f"{what} {name}: shape {tuple(a.shape)} != reference {tuple(b.shape)}"
        if name == "lse":
            assert torch.equal(torch.isfinite(a), torch.isfinite(b)), f"{what} lse: -inf rows differ from the reference"
            a, b = a.masked_fill(~torch.isfinite(b), 0), b.masked_fill(~torch.isfinite(b), 0)
        assert not torch.isnan(a).any(), f"{what} {name} has NaN (a fully masked row must give zeros)"
        err = (a - b).abs().max().item()
        assert err < tol, f"{what} {name}: max error {err:.3g} > {tol:.0e}"


# ---------------------------------------------------------------- the reference
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("Nq,Nk", [(5, 5), (3, 9), (9, 3)])
def test_reference_matches_sdpa_with_gqa_and_bottom_right_mask(causal, Nq, Nk):
    q, k, v, *_ = make(2, 4, 2, Nq, Nk, 8)
    ke, ve = k.repeat_interleave(2, 1), v.repeat_interleave(2, 1)
    mask = FA.causal_mask(Nq, Nk) if causal else None
    want = F.scaled_dot_product_attention(q, ke, ve, attn_mask=mask).nan_to_num(0.0)
    got = attention_ref(q, k, v, causal)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_bottom_right_alignment_and_fully_masked_rows():
    m = FA.causal_mask(2, 4)
    assert m.tolist() == [[True, True, True, False], [True, True, True, True]], "query i sees keys j <= i + Nk - Nq"
    q, k, v, *_ = make(1, 1, 1, 6, 3, 8)
    out = attention_ref(q, k, v, causal=True)
    assert out[0, 0, :3].abs().sum() == 0 and not torch.isnan(out).any(), "rows with no visible key must be zeros"


# ---------------------------------------------------------------- the lesson's building blocks
def test_online_softmax_and_hbm_counts():
    x = torch.randn(4, 13, dtype=torch.float64) * 4
    p, lse = FA.online_softmax(x, block=5)
    torch.testing.assert_close(p, torch.softmax(x, -1)); torch.testing.assert_close(lse, torch.logsumexp(x, -1))
    c = FA.attention_hbm_bytes(4096, 64)
    assert c["naive_bytes"] == (4 * 4096**2 + 4 * 4096 * 64) * 2 and c["flops"] == 4 * 4096**2 * 64
    assert c["flash_bytes"] < c["naive_bytes"] / 3
    assert FA.attention_hbm_bytes(4096, 64, causal=True)["flash_bytes"] < c["flash_bytes"]
    with pytest.raises(ValueError, match="block must be a positive int"): FA.online_softmax(x, 0)
    with pytest.raises(ValueError, match="N must be a positive int"): FA.attention_hbm_bytes(0, 64)


# ---------------------------------------------------------------- PyTorch path, float64
TORCH_CASES = [  # (B, H, Hkv, Nq, Nk, D)
    (1, 1, 1, 1, 1, 16), (2, 2, 2, 17, 17, 16), (1, 4, 2, 100, 100, 32), (1, 2, 1, 129, 129, 64),
    (1, 4, 1, 17, 129, 128), (2, 2, 2, 100, 17, 32), (1, 3, 3, 1, 100, 64), (1, 2, 1, 129, 1, 16),
]

@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", TORCH_CASES, ids=lambda s: "B{}H{}Hkv{}Nq{}Nk{}D{}".format(*s))
def test_torch_path_matches_reference_float64(shape, causal):
    q, k, v, dout, dlse = make(*shape)
    got = run_flash(q, k, v, dout, dlse, causal, "torch", torch.float64)
    assert_matches_ref(got, ref_all(q, k, v, dout, dlse, causal), 1e-10, f"torch {shape} causal={causal}")


@pytest.mark.parametrize("bq,bk", [(1, 1), (7, 5), (16, 64), (256, 256)])
def test_torch_path_any_block_sizes(bq, bk):
    q, k, v, dout, _ = make(1, 2, 1, 37, 53, 16)
    for causal in (False, True):
        o, lse = flash_fwd_torch(q, k, v, causal, block_q=bq, block_k=bk)
        torch.testing.assert_close(o, attention_ref(q, k, v, causal), atol=1e-12, rtol=0)
        dq, dk, dv = flash_bwd_torch(q, k, v, o, lse, dout, causal, block_q=bq, block_k=bk)
        _, _, rq, rk, rv = ref_all(q, k, v, dout, torch.zeros_like(lse), causal)
        for a, b in ((dq, rq), (dk, rk), (dv, rv)): torch.testing.assert_close(a, b, atol=1e-11, rtol=0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(B=st.integers(1, 2), Hkv=st.integers(1, 2), G=st.integers(1, 3), Nq=st.integers(1, 70), Nk=st.integers(1, 70),
       D=st.sampled_from([1, 3, 16, 24]), causal=st.booleans(), seed=st.integers(0, 10_000))
def test_torch_path_property(B, Hkv, G, Nq, Nk, D, causal, seed):
    q, k, v, dout, dlse = make(B, Hkv * G, Hkv, Nq, Nk, D, seed=seed)
    got = run_flash(q, k, v, dout, dlse, causal, "torch", torch.float64)
    assert_matches_ref(got, ref_all(q, k, v, dout, dlse, causal), 1e-9, "property")


def test_torch_path_gradcheck():
    q, k, v, *_ = make(1, 2, 1, 6, 9, 4)
    for causal in (False, True):
        fn = lambda q, k, v: flash_attention(q, k, v, causal=causal, backend="torch", return_lse=True)
        assert torch.autograd.gradcheck(fn, tuple(t.requires_grad_() for t in (q, k, v)))


def test_lse_semantics_for_ring_attention():
    "return_lse: natural-log LSE per row, float32 for float32 inputs, shape (B, H, Nq), -inf where no key is visible."
    q, k, v, *_ = make(2, 4, 2, 9, 5, 16)
    q, k, v = q.float(), k.float(), v.float()
    out, lse = flash_attention(q, k, v, causal=True, return_lse=True)
    assert lse.shape == (2, 4, 9) and lse.dtype == torch.float32
    want = ref_lse(q.double(), k.double(), v.double(), True)
    assert torch.isinf(lse[..., :4]).all() and (lse[..., :4] < 0).all() and torch.isfinite(lse[..., 4:]).all()
    torch.testing.assert_close(lse[..., 4:].double(), want[..., 4:], atol=1e-5, rtol=0)
    assert out[..., :4, :].abs().sum() == 0
    # merging two halves of the keys through the LSE gives attention over all keys (what ring attention does)
    q, k, v, *_ = make(1, 2, 2, 7, 20, 16)
    o1, l1 = flash_attention(q, k[:, :, :8], v[:, :, :8], return_lse=True)
    o2, l2 = flash_attention(q, k[:, :, 8:], v[:, :, 8:], return_lse=True)
    lse = torch.logaddexp(l1, l2)
    merged = torch.exp(l1 - lse)[..., None] * o1 + torch.exp(l2 - lse)[..., None] * o2
    torch.testing.assert_close(merged, attention_ref(q, k, v), atol=1e-12, rtol=0)


def test_only_lse_used_in_loss_still_differentiates():
    q, k, v, *_ = make(1, 2, 1, 10, 12, 8)
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    _, lse = flash_attention(q, k, v, causal=True, backend="torch", return_lse=True)
    got = torch.autograd.grad(lse.sum(), (q, k, v))
    want = torch.autograd.grad(ref_lse(q, k, v, True).sum(), (q, k))          # the LSE does not depend on v
    for a, b in zip(got, want): torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    assert got[2].abs().max() == 0


def test_noncontiguous_inputs_and_custom_scale():
    x = torch.randn(2, 11, 4, 16, dtype=torch.float64)                        # (B, T, H, D), a common layout
    q = k = v = x.transpose(1, 2)                                             # (B, H, T, D), not contiguous
    for backend in ["torch"] + (["triton"] if TRITON_OK else []):
        dtype = torch.float64 if backend == "torch" else torch.float32
        qd = q.to(DEV if backend == "triton" else "cpu", dtype)
        got = flash_attention(qd, qd, qd, causal=True, scale=0.3, backend=backend)
        torch.testing.assert_close(got.double().cpu(), attention_ref(q, k, v, True, scale=0.3), atol=1e-5, rtol=0)


def test_auto_backend_on_cpu_is_torch_and_falls_back_for_odd_head_dims():
    assert lab.pick_backend("auto", "cpu") == "torch"
    q, k, v, *_ = make(1, 1, 1, 5, 5, 48)                                     # D=48: not a Triton head dim
    torch.testing.assert_close(flash_attention(q, k, v), attention_ref(q, k, v))


# ---------------------------------------------------------------- memory
def test_tiled_path_does_not_materialise_n_by_n():
    N, D = 2048, 32
    q, k, v = torch.randn(3, 1, 1, N, D)
    _, naive = FA.peak_cpu_memory(lambda: attention_ref(q, k, v, causal=True))
    _, tiled = FA.peak_cpu_memory(lambda: flash_fwd_torch(q, k, v, causal=True))
    nn_bytes = N * N * 4
    assert naive >= nn_bytes, f"naive peak {naive} should hold at least one N x N fp32 matrix ({nn_bytes})"
    assert tiled < nn_bytes / 8, f"tiled peak {tiled} bytes is too close to N x N = {nn_bytes}"


# ---------------------------------------------------------------- Triton kernels (interpreter on CPU)
TRITON_CASES = [  # (B, H, Hkv, Nq, Nk, D): small, since the interpreter runs every program in numpy
    (1, 2, 1, 17, 17, 16),       # GQA, one partial tile
    (1, 2, 2, 100, 37, 32),      # Nq > Nk: queries that see no key when causal
    (1, 2, 1, 33, 129, 64),      # Nq < Nk (KV cache), 129 = 4 tiles + 1
    (1, 1, 1, 1, 1, 16),         # length 1
    (1, 1, 1, 40, 40, 128),      # largest tested head dim
]

@needs_triton
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", TRITON_CASES, ids=lambda s: "B{}H{}Hkv{}Nq{}Nk{}D{}".format(*s))
def test_triton_matches_reference_float32(shape, causal):
    q, k, v, dout, dlse = make(*shape)
    got = run_flash(q, k, v, dout, dlse, causal, "triton", torch.float32, DEV)
    assert_matches_ref(got, ref_all(q, k, v, dout, dlse, causal), 2e-4, f"triton {shape} causal={causal}")


@needs_triton
def test_triton_and_torch_paths_agree_on_values_shapes_and_dtypes():
    q, k, v, *_ = make(2, 2, 1, 20, 45, 32)
    q, k, v = q.float().to(DEV), k.float().to(DEV), v.float().to(DEV)
    o1, l1 = flash_attention(q, k, v, causal=True, backend="triton", return_lse=True)
    o2, l2 = flash_attention(q, k, v, causal=True, backend="torch", return_lse=True)
    assert o1.dtype == o2.dtype == torch.float32 and l1.dtype == l2.dtype == torch.float32 and l1.shape == l2.shape
    torch.testing.assert_close(o1, o2, atol=1e-5, rtol=0); torch.testing.assert_close(l1, l2, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- bad input
def test_errors_name_the_argument():
    x = torch.randn(1, 4, 8, 16)
    cases = [
        (lambda: flash_attention(x[0], x, x), ValueError, "q must have 4 dims"),
        (lambda: flash_attention(x, x[0], x), ValueError, "k must have 4 dims"),
        (lambda: flash_attention(x, x, x[..., :4, :]), ValueError, "k and v must have the same shape"),
        (lambda: flash_attention(x, x[..., :8], x[..., :8]), ValueError, "head dim D=16 like q, got 8"),
        (lambda: flash_attention(x, torch.randn(1, 3, 8, 16), torch.randn(1, 3, 8, 16)), ValueError, "H=4 must be divisible by k/v heads Hkv=3"),
        (lambda: flash_attention(x, torch.randn(2, 4, 8, 16), torch.randn(2, 4, 8, 16)), ValueError, "batch size B=1"),
        (lambda: flash_attention(x.long(), x.long(), x.long()), TypeError, "q.dtype must be one of"),
        (lambda: flash_attention(x, x.double(), x.double()), TypeError, "must share a dtype"),
        (lambda: flash_attention(x.numpy(), x, x), TypeError, "q must be a torch.Tensor"),
        (lambda: flash_attention(x, x, x, backend="cuda"), ValueError, "backend must be 'auto', 'triton' or 'torch'"),
        (lambda: flash_attention(x, x, x, scale=-1.0), ValueError, "scale must be a positive finite number"),
        (lambda: flash_attention(x, x, x, causal="yes"), TypeError, "causal must be a bool"),
        (lambda: flash_attention(x[:, :, :0], x, x), ValueError, "no empty dimension"),
        (lambda: attention_ref(x, x[..., :8], x[..., :8]), ValueError, "head dim D=16"),
    ]
    for fn, exc, msg in cases:
        with pytest.raises(exc, match=msg): fn()


@needs_triton
def test_triton_backend_refuses_what_it_cannot_run():
    odd = torch.randn(1, 1, 8, 48, device=DEV)
    with pytest.raises(ValueError, match=r"head dim D must be one of \(16, 32, 64, 128, 256\), got 48"):
        flash_attention(odd, odd, odd, backend="triton")
    x64 = torch.randn(1, 1, 8, 16, dtype=torch.float64, device=DEV)
    with pytest.raises(ValueError, match="dtype must be float16, bfloat16 or float32, got torch.float64"):
        flash_attention(x64, x64, x64, backend="triton")


def test_without_triton_auto_works_and_triton_backend_explains():
    code = ("import sys; sys.modules['triton'] = None; sys.modules['triton.language'] = None\n"
            "import torch; from llmlab.flash_attention import flash_attention\n"
            "x = torch.randn(1, 2, 5, 16); print(tuple(flash_attention(x, x, x, causal=True).shape))\n"
            "try:\n    flash_attention(x, x, x, backend='triton')\nexcept RuntimeError as e: print('refused:', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "TRITON_INTERPRET": "0"})
    assert "(1, 2, 5, 16)" in r.stdout and "refused: backend='triton' cannot run here" in r.stdout, r.stdout + r.stderr


# ---------------------------------------------------------------- widget trace
def test_widget_trace_is_the_real_computation():
    tr = FA.trace_flash_attention()
    assert lab.trace_size(tr) < lab.TRACE_LIMIT_BYTES
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 32, 8, dtype=torch.float64, generator=g)
    assert len(tr["configs"]) == 2 * 4 * 2
    for name, c in tr["configs"].items():
        causal = name.startswith("causal")
        _, lse = flash_fwd_torch(q[None, None], k[None, None], k[None, None], causal=causal)
        torch.testing.assert_close(torch.tensor(c["lse"], dtype=torch.float64), lse[0, 0], atol=1e-4, rtol=0)
        nq, nk = -(-32 // c["bq"]), -(-32 // c["bk"])
        assert len(c["steps"]) + len(c["skipped"]) == nq * nk
        if causal:
            assert c["skipped"] and all(j * c["bk"] > (i + 1) * c["bq"] - 1 for i, j in c["skipped"]), "only tiles above the diagonal are skipped"
        else:
            assert not c["skipped"]
        for r, entries in enumerate(c["rows"]):       # each row: one entry per visited tile covering it, m never decreases
            ms = [e[1] for e in entries]
            assert ms == sorted(ms) and all(0 < e[3] <= 1 for e in entries[1:])
    fa1, fa2 = tr["configs"]["full-8x8-fa1"]["steps"][-1], tr["configs"]["full-8x8-fa2"]["steps"][-1]
    assert fa2["write"] == (32 * 8 + 2 * 32) * 2 and fa1["write"] > 4 * fa2["write"]
    with pytest.raises(ValueError, match="N must be an int in"): FA.trace_flash_attention(N=1000)


@pytest.mark.skipif(not lab.HAS_WIDGETS, reason="needs anywidget")
def test_widget_builds_with_its_module():
    w = FA.FlashAttentionWidget()
    assert "export default" in w._esm and all(c in w._esm for c in ("llm-next", "llm-prev", "llm-play", "llm-causal", "llm-block", "llm-order", "llm-row"))
    assert w.step == 0 and w.trace["N"] == 32


# ---------------------------------------------------------------- GPT plug-in
def _world_tiny_config(gpt, **kw):
    "The world-tiny preset's config when llmlab.gpt defines it, else GPTConfig's defaults (the same small shape)."
    base = dict(gpt.PRESETS["world-tiny"]["config"]) if "world-tiny" in getattr(gpt, "PRESETS", {}) else {}
    return gpt.GPTConfig(**{**base, **kw})


def test_registers_as_flash_in_the_gpt_registry():
    gpt = pytest.importorskip("llmlab.gpt", reason="llmlab.gpt (03_gpt) is not in this checkout yet")
    assert gpt.get_attention("flash") is FA.gpt_flash_attention


@pytest.mark.parametrize("n_kv_head", [None, 2], ids=["mha", "gqa"])
def test_world_tiny_shaped_gpt_same_loss_and_grads_with_flash_as_naive(n_kv_head):
    gpt = pytest.importorskip("llmlab.gpt", reason="llmlab.gpt (03_gpt) is not in this checkout yet")
    torch.manual_seed(0)
    cfg = _world_tiny_config(gpt, attention="naive")
    if n_kv_head: cfg = _world_tiny_config(gpt, attention="naive", n_kv_head=n_kv_head)
    naive = gpt.GPT(cfg)
    flash = gpt.GPT(gpt.GPTConfig(**{**cfg.to_dict(), "attention": "flash"}))
    flash.load_state_dict(naive.state_dict())
    idx = torch.randint(0, cfg.vocab_size, (2, min(cfg.ctx_len, 77)), generator=torch.Generator().manual_seed(1))
    l1, l2 = naive(idx, idx)[1], flash(idx, idx)[1]
    assert abs(l1.item() - l2.item()) < 1e-5, f"loss naive {l1.item():.6f} vs flash {l2.item():.6f}"
    l1.backward(); l2.backward()
    for (n, a), (_, b) in zip(naive.named_parameters(), flash.named_parameters()):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-4, msg=lambda m: f"grad of {n}: {m}")
    # KV-cache decoding: one new query against a longer cache, where the causal mask is aligned bottom-right
    out1 = gpt.generate(naive, idx[:, :10], 6, temperature=0.0 + 1e-6, generator=torch.Generator().manual_seed(2))
    out2 = gpt.generate(flash, idx[:, :10], 6, temperature=0.0 + 1e-6, generator=torch.Generator().manual_seed(2))
    assert torch.equal(out1, out2)
