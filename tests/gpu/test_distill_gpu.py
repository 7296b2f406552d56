"""The fused distillation loss on a GPU: the compiled Triton row kernel (fp32/bf16/fp16) against the float32
materialised reference, loss and gradients w.r.t. the student's hidden states and head weight, every kind.
Skipped without CUDA (tests/gpu/conftest.py)."""
import pytest, torch
from llmlab.distill import distill_loss
from llmlab.kernels.distill import fused_linear_distill, KINDS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 2e-3), (torch.bfloat16, 5e-2), (torch.float16, 1e-2)])
@pytest.mark.parametrize("N, d, V, chunk", [(700, 128, 5003, 256), (64, 64, 32000, 64)])
def test_triton_matches_reference_on_gpu(kind, dtype, tol, N, d, V, chunk):
    torch.manual_seed(0)
    hs = torch.randn(N, d, device="cuda").to(dtype).requires_grad_()
    ws = (torch.randn(V, d, device="cuda") / d ** 0.5).to(dtype).requires_grad_()
    ht, wt = torch.randn(N, d, device="cuda").to(dtype), (torch.randn(V, d, device="cuda") / d ** 0.5).to(dtype)
    tg = torch.randint(0, V, (N,), device="cuda"); tg[::5] = -100
    h32, w32 = hs.detach().float().requires_grad_(), ws.detach().float().requires_grad_()
    want = distill_loss(h32 @ w32.T, ht.float() @ wt.float().T, tg != -100, kind=kind, temperature=2.0); want.backward()
    got = fused_linear_distill(hs, ws, ht, wt, tg, kind=kind, temperature=2.0, chunk_size=chunk, backend="triton"); got.backward()
    assert abs(got.item() - want.item()) <= tol * max(1.0, abs(want.item())), (got.item(), want.item())
    rel = lambda a, b: ((a.float() - b).norm() / b.norm().clamp(min=1e-12)).item()
    assert rel(hs.grad, h32.grad) < 5 * tol and rel(ws.grad, w32.grad) < 5 * tol, (rel(hs.grad, h32.grad), rel(ws.grad, w32.grad))

def test_triton_equals_torch_rows_in_float32():
    torch.manual_seed(1)
    hs, ws = torch.randn(300, 96, device="cuda"), torch.randn(4099, 96, device="cuda") / 10
    ht, wt = torch.randn(300, 64, device="cuda"), torch.randn(4099, 64, device="cuda") / 8
    for kind in KINDS:
        a = fused_linear_distill(hs, ws, ht, wt, kind=kind, chunk_size=100, backend="triton")
        b = fused_linear_distill(hs, ws, ht, wt, kind=kind, chunk_size=100, backend="torch")
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
