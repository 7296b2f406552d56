"""llmlab.kernels.preference: fused linear log-probabilities (value and gradients w.r.t. hidden and weight) against
the materialised reference over random shapes, vocabularies not divisible by the chunk, ignored rows, both backends
(Triton through the interpreter on CPU); the per-chunk kernels against their PyTorch twins; bad input."""
import pytest, torch
from hypothesis import given, settings, strategies as st, HealthCheck
from llmlab.kernels.preference import fused_linear_logprobs, lse_update, logprob_grad_

BACKENDS = ["torch", "triton"]


def ref(hidden, weight, targets, ignore_index=-100):
    "Materialised logits -> log_softmax -> gather; 0 for ignored rows (an independent re-derivation, float64)."
    logp = torch.log_softmax(hidden.double() @ weight.double().T, -1)
    out = logp.gather(1, targets.clamp(min=0)[:, None]).squeeze(1)
    return torch.where(targets == ignore_index, torch.zeros_like(out), out)


def run(fn, h, w, t, gup, **kw):
    h, w = h.clone().requires_grad_(), w.clone().requires_grad_()
    lp = fn(h, w, t, **kw)
    (lp * gup).sum().backward()
    return lp.detach().double(), h.grad.double(), w.grad.double()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(N=st.integers(1, 9), d=st.sampled_from([4, 8, 16]), V=st.integers(1, 70), chunk=st.integers(1, 40),
       backend=st.sampled_from(BACKENDS), seed=st.integers(0, 10_000))
def test_value_and_gradients_match_the_reference(N, d, V, chunk, backend, seed):
    g = torch.Generator().manual_seed(seed)
    h, w = torch.randn(N, d, generator=g), torch.randn(V, d, generator=g) / 2
    t = torch.randint(0, V, (N,), generator=g)
    t[torch.rand(N, generator=g) < 0.25] = -100                        # some ignored rows
    gup = torch.randn(N, generator=g)
    got = run(fused_linear_logprobs, h, w, t, gup, chunk_size=chunk, backend=backend)
    want = run(ref, h, w, t, gup)
    for name, a, b in zip(("logp", "d hidden", "d weight"), got, want):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=2e-5, msg=f"{name} differs ({backend}, V={V}, chunk={chunk})")


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_logits_do_not_overflow(backend):
    h = torch.tensor([[30.0, -30.0]]); w = torch.tensor([[3.0, 0.0], [0.0, 3.0], [2.9, 0.1]])
    t = torch.tensor([2])
    out = fused_linear_logprobs(h, w, t, chunk_size=2, backend=backend)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), ref(h, w, t), atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fully_masked_batch_gives_zeros_and_zero_gradients(backend):
    h, w = torch.randn(4, 8), torch.randn(11, 8)
    t = torch.full((4,), -100)
    lp, dh, dw = run(fused_linear_logprobs, h, w, t, torch.ones(4), chunk_size=4, backend=backend)
    assert lp.abs().sum() == 0 and dh.abs().sum() == 0 and dw.abs().sum() == 0
    assert torch.isfinite(lp).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunk_kernels_match_their_twins(backend):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(5, 37, generator=g) * 4
    m, s = torch.full((5,), float("-inf")), torch.zeros(5)
    for c0 in range(0, 37, 10): lse_update(z[:, c0:c0 + 10].contiguous(), m, s, backend, block_c=16)
    torch.testing.assert_close(m + s.log(), torch.logsumexp(z, 1), atol=1e-5, rtol=0)
    lse, gr = torch.logsumexp(z, 1), torch.randn(5, generator=g)
    a = logprob_grad_(z.clone(), lse, gr, backend, block_c=16)
    torch.testing.assert_close(a, -gr[:, None] * torch.softmax(z, 1), atol=1e-6, rtol=1e-5)


def test_the_chunk_kernels_accept_strided_rows():
    z = torch.randn(4, 64)[:, :20]                                     # row stride 64, unit column stride
    m, s = torch.full((4,), float("-inf")), torch.zeros(4)
    lse_update(z, m, s, "triton", block_c=16)
    torch.testing.assert_close(m + s.log(), torch.logsumexp(z, 1), atol=1e-5, rtol=0)


h0, w0, t0 = torch.randn(3, 8), torch.randn(10, 8), torch.tensor([1, 2, 3])
BAD = [
    (lambda: fused_linear_logprobs([[1.0]], w0, t0), TypeError, "hidden must be a torch.Tensor"),
    (lambda: fused_linear_logprobs(h0[0], w0, t0), ValueError, "hidden must be 2-D"),
    (lambda: fused_linear_logprobs(h0.long(), w0, t0), TypeError, "hidden must have dtype"),
    (lambda: fused_linear_logprobs(h0, w0.half(), t0), TypeError, "weight must have dtype torch.float32"),
    (lambda: fused_linear_logprobs(h0, w0[:, :4], t0), ValueError, "weight must be (V, d) with d = hidden.shape[1] = 8"),
    (lambda: fused_linear_logprobs(h0, w0[:0], t0), ValueError, "empty vocabulary"),
    (lambda: fused_linear_logprobs(h0, w0, t0[:2]), ValueError, "targets must have shape (3)"),
    (lambda: fused_linear_logprobs(h0, w0, t0.float()), TypeError, "targets must have dtype"),
    (lambda: fused_linear_logprobs(h0, w0, torch.tensor([1, 2, 10])), ValueError, "targets must be in [0, 10)"),
    (lambda: fused_linear_logprobs(h0, w0, torch.tensor([1, -1, 2])), ValueError, "got -1"),
    (lambda: fused_linear_logprobs(h0, w0, t0, chunk_size=0), ValueError, "chunk_size must be an int >= 1"),
    (lambda: fused_linear_logprobs(h0, w0, t0, chunk_size=2.5), TypeError, "chunk_size must be an int"),
    (lambda: fused_linear_logprobs(h0, w0, t0, backend="cuda"), ValueError, "backend must be 'auto', 'triton' or 'torch'"),
    (lambda: lse_update(torch.randn(3, 4).T, torch.zeros(4), torch.zeros(4)), ValueError, "unit stride"),
    (lambda: lse_update(torch.randn(3, 4), torch.zeros(2), torch.zeros(3)), ValueError, "m must have shape (3)"),
    (lambda: lse_update(torch.randn(3, 4), torch.zeros(3, dtype=torch.float64), torch.zeros(3)), TypeError, "m must have dtype torch.float32"),
    (lambda: logprob_grad_(torch.randn(3, 4), torch.zeros(3), torch.zeros(3), block_c=0), ValueError, "block_c must be an int >= 16"),
    (lambda: logprob_grad_(torch.randn(3, 4).long(), torch.zeros(3), torch.zeros(3)), TypeError, "z must have dtype"),
]


@pytest.mark.parametrize("call, exc, fragment", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_is_named(call, exc, fragment):
    with pytest.raises(exc) as e:
        call()
    assert fragment in str(e.value), f"message {str(e.value)!r} does not say {fragment!r}"
