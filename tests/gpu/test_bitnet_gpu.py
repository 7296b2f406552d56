"""BitNet on a GPU: the compiled Triton GEMV/GEMM (autotuned) equal the int32 reference exactly for int8 activations,
match the reference for fp16/bf16 activations, at bench-like shapes; a frozen BitLinear on CUDA matches training mode."""
import pytest, torch
from llmlab import bitnet as B

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

@pytest.mark.parametrize("M", [1, 16, 33])
@pytest.mark.parametrize("N,K", [(2560, 2560), (4096, 4096), (1000, 1003), (13824, 2560)])
def test_kernel_exact_int8(M, N, K):
    g = torch.Generator().manual_seed(N + K + M)
    wq, ws = B.quantize_weights_ternary(torch.randn(N, K, generator=g))
    p, ws = B.pack_ternary(wq).cuda(), ws.cuda()
    xq, xs = B.quantize_activations_int8(torch.randn(M, K, generator=g).cuda())
    y = B.ternary_matmul(xq, p, ws, backend="triton", x_scale=xs)
    assert torch.equal(y, B.ternary_matmul(xq, p, ws, backend="torch", x_scale=xs))
    y1 = B.ternary_matmul(xq, p, torch.ones(1, device="cuda"), backend="triton")
    assert torch.equal(y1.cpu(), (xq.cpu().long() @ wq.long().T).float())

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("M", [1, 16])
def test_kernel_float_activations(dtype, M):
    g = torch.Generator().manual_seed(1)
    N, K = 2048, 1536
    wq, ws = B.quantize_weights_ternary(torch.randn(N, K, generator=g))
    p, ws = B.pack_ternary(wq).cuda(), ws.cuda()
    x = torch.randn(M, K, generator=g).cuda().to(dtype)
    y = B.ternary_matmul(x, p, ws, backend="triton")
    ref = (x.float() @ (wq.float().cuda() * ws).T)
    assert y.dtype == dtype
    torch.testing.assert_close(y.float(), ref, rtol=2e-2, atol=2e-2 * ref.abs().max().item())

def test_frozen_bitlinear_on_cuda():
    torch.manual_seed(0)
    layer = B.BitLinear(512, 384).cuda()
    x = torch.randn(4, 7, 512, device="cuda")
    with torch.no_grad(): before = layer(x)
    layer.freeze()
    with torch.no_grad(): after = layer(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)

def test_float64_falls_back_on_auto_and_is_refused_by_the_kernels():
    w = torch.randint(-1, 2, (33, 70), dtype=torch.int8, device="cuda")
    p, ws = B.pack_ternary(w), torch.ones(1, device="cuda")
    x = torch.randn(3, 70, device="cuda", dtype=torch.float64)
    y = B.ternary_matmul(x, p, ws)                                     # auto: the PyTorch path, in float64
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, x @ w.double().T)
    with pytest.raises(TypeError, match="float64"): B.ternary_matmul(x, p, ws, backend="triton")
