"""The fused log-probabilities on a GPU: the compiled Triton kernels (fp32/bf16/fp16) against the materialised float32
log_softmax + gather, values and gradients w.r.t. hidden and weight. Skipped without CUDA (tests/gpu/conftest.py)."""
import pytest, torch
import torch.nn.functional as F
from llmlab.kernels.preference import fused_linear_logprobs

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

def reference(h, w, t, ignore=-100):
    lp = F.log_softmax(h.float() @ w.float().T, -1).gather(1, t.clamp(min=0)[:, None]).squeeze(1)
    return torch.where(t == ignore, torch.zeros_like(lp), lp)

@pytest.mark.parametrize("dtype, atol, gtol", [(torch.float32, 2e-3, 1e-3), (torch.bfloat16, 6e-2, 4e-2), (torch.float16, 1e-2, 1e-2)])
@pytest.mark.parametrize("N, d, V, chunk", [(1000, 256, 5003, 1024), (64, 128, 32000, 4096), (3, 64, 777, 256)])
def test_triton_matches_materialised_on_gpu(dtype, atol, gtol, N, d, V, chunk):
    torch.manual_seed(0)
    h = (torch.randn(N, d, device="cuda") / d ** 0.25).to(dtype).requires_grad_()
    w = (torch.randn(V, d, device="cuda") / d ** 0.25).to(dtype).requires_grad_()
    t = torch.randint(0, V, (N,), device="cuda"); t[::7] = -100                  # some rows ignored
    g = torch.randn(N, device="cuda")
    h32, w32 = h.detach().float().requires_grad_(), w.detach().float().requires_grad_()
    want = reference(h32, w32, t); (want * g).sum().backward()
    got = fused_linear_logprobs(h, w, t, chunk_size=chunk, backend="triton"); (got * g).sum().backward()
    assert got.dtype == torch.float32 and bool((got[t == -100] == 0).all())
    assert (got - want).abs().max().item() < atol, f"log-prob error {(got - want).abs().max().item():.3g}"
    rel = lambda a, b: ((a.float() - b).norm() / b.norm()).item()
    assert rel(h.grad, h32.grad) < gtol and rel(w.grad, w32.grad) < gtol, (rel(h.grad, h32.grad), rel(w.grad, w32.grad))

def test_triton_equals_torch_chunked_path_in_float32():
    torch.manual_seed(1)
    h, w = torch.randn(300, 96, device="cuda"), torch.randn(4099, 96, device="cuda")
    t = torch.randint(0, 4099, (300,), device="cuda")
    a = fused_linear_logprobs(h, w, t, chunk_size=1000, backend="triton")
    b = fused_linear_logprobs(h, w, t, chunk_size=1000, backend="torch")
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
