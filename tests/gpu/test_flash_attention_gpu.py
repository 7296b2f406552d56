"""Flash attention on a GPU in fp16/bf16, under FlashAttention's accuracy rule: against a float32 reference computed
from the same (rounded) inputs, the kernel's error must be at most twice the error of the plain PyTorch reference run
in the same low precision (plus a small absolute floor for outputs that are exactly representable). Forward, LSE and
dq/dk/dv, causal and not, GQA, Nq != Nk, head dims 16..256. Skipped without CUDA (tests/gpu/conftest.py)."""
import pytest, torch
from llmlab.flash_attention import attention_ref, flash_attention

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

CASES = [  # (B, H, Hkv, Nq, Nk, D)
    (2, 4, 4, 128, 128, 64), (1, 8, 2, 1000, 1000, 128), (2, 4, 1, 17, 513, 64), (1, 4, 2, 513, 17, 32),
    (1, 2, 2, 1, 300, 16), (1, 2, 1, 257, 257, 256), (4, 16, 16, 2048, 2048, 128),
]


def ref_lse(q, k, causal):
    G, D = q.shape[1] // k.shape[1], q.shape[-1]
    s = q @ k.repeat_interleave(G, 1).transpose(-2, -1) * D ** -0.5
    if causal:
        i = torch.arange(q.shape[2], device=q.device)[:, None]; j = torch.arange(k.shape[2], device=q.device)[None]
        s = s.masked_fill(j > i + k.shape[2] - q.shape[2], float("-inf"))
    return torch.logsumexp(s, -1)


def outputs(fn, q, k, v, dout, dtype):
    "out and dq, dk, dv of sum(out * dout) for `fn` run on inputs cast to `dtype`."
    qx, kx, vx = (t.to(dtype).requires_grad_() for t in (q, k, v))
    out = fn(qx, kx, vx)
    grads = torch.autograd.grad(out, (qx, kx, vx), dout.to(dtype))
    return [out.float(), *(g.float() for g in grads)]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", CASES, ids=lambda s: "B{}H{}Hkv{}Nq{}Nk{}D{}".format(*s))
def test_low_precision_within_twice_the_pytorch_error(shape, causal, dtype):
    B, H, Hkv, Nq, Nk, D = shape
    g = torch.Generator(device="cuda").manual_seed(0)
    mk = lambda *s: torch.randn(*s, device="cuda", generator=g).to(dtype).float()   # exactly representable in dtype
    q, k, v, dout = mk(B, H, Nq, D), mk(B, Hkv, Nk, D), mk(B, Hkv, Nk, D), mk(B, H, Nq, D)
    truth = outputs(lambda q, k, v: attention_ref(q, k, v, causal), q, k, v, dout, torch.float32)
    base = outputs(lambda q, k, v: attention_ref(q, k, v, causal), q, k, v, dout, dtype)
    got = outputs(lambda q, k, v: flash_attention(q, k, v, causal=causal, backend="triton"), q, k, v, dout, dtype)
    for name, t, b, f in zip(["out", "dq", "dk", "dv"], truth, base, got):
        assert not torch.isnan(f).any(), f"{name} has NaN"
        err_f, err_b = (f - t).abs().max().item(), (b - t).abs().max().item()
        assert err_f <= 2 * err_b + 1e-5, f"{name}: flash error {err_f:.3g} > 2 x PyTorch {dtype} error {err_b:.3g}"
    _, lse = flash_attention(q.to(dtype), k.to(dtype), v.to(dtype), causal=causal, backend="triton", return_lse=True)
    want = ref_lse(q, k, causal)
    fin = torch.isfinite(want)
    assert lse.dtype == torch.float32 and torch.equal(torch.isfinite(lse), fin)
    assert (lse[fin] - want[fin]).abs().max().item() < 2e-2


def test_auto_uses_triton_on_cuda_and_matches_sdpa_at_long_length():
    q, k, v = torch.randn(3, 1, 8, 8192, 128, device="cuda", dtype=torch.bfloat16)
    out = flash_attention(q, k, v, causal=True)
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert (out.float() - want.float()).abs().max().item() < 2e-2


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=["fp16", "bf16", "fp32"])
def test_fully_masked_rows_are_zero_with_lse_minus_inf_forward_and_backward(dtype):
    "Causal with Nq=300 > Nk=70: the first 230 rows see no key. Output 0, LSE -inf, dq 0, no NaN anywhere (issue 17's rule)."
    g = torch.Generator(device="cuda").manual_seed(1)
    q = torch.randn(2, 4, 300, 64, device="cuda", generator=g).to(dtype).requires_grad_()
    k, v = (torch.randn(2, 2, 70, 64, device="cuda", generator=g).to(dtype).requires_grad_() for _ in range(2))
    out, lse = flash_attention(q, k, v, causal=True, backend="triton", return_lse=True)
    dq, dk, dv = torch.autograd.grad((out.float().sum() + lse.masked_fill(~torch.isfinite(lse), 0).sum()), (q, k, v))
    assert not any(torch.isnan(t).any() for t in (out, lse, dq, dk, dv))
    assert out[:, :, :230].abs().max().item() == 0 and dq[:, :, :230].abs().max().item() == 0
    assert (lse[:, :, :230] == float("-inf")).all() and torch.isfinite(lse[:, :, 230:]).all()


def test_launcher_refuses_gqa_that_does_not_divide_on_gpu():
    "Before the check, 4 query heads over 3 K/V heads read past K/V and gave NaN for some heads."
    from llmlab.kernels.flash_attention import flash_fwd_triton
    q, kv = torch.randn(1, 4, 64, 64, device="cuda"), torch.randn(1, 3, 64, 64, device="cuda")
    with pytest.raises(ValueError, match="divisible by k/v heads Hkv=3"): flash_fwd_triton(q, kv, kv, False, 0.125)
