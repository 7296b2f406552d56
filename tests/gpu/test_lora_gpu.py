"""QLoRA's 4-bit kernels on a GPU: the compiled NF4 GEMV (M <= 4) and GEMM against dequantise-then-matmul in float32.
Skipped without CUDA (tests/gpu/conftest.py)."""
import pytest, torch
from llmlab.lora import nf4_quantize, nf4_dequantize, nf4_matmul

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

@pytest.mark.parametrize("dtype, tol", [(torch.float32, 5e-3), (torch.bfloat16, 3e-2), (torch.float16, 1e-2)])
@pytest.mark.parametrize("M", [1, 3, 16, 257])
def test_nf4_matmul_compiled_on_gpu(M, dtype, tol):
    "The compiled GEMV (M <= 4) and GEMM kernels against dequantise-then-matmul in float32, relative to the output scale."
    torch.manual_seed(0)
    N, K = 1000, 1024
    w = torch.randn(N, K, device="cuda") / K ** 0.5
    packed, absmax = nf4_quantize(w, 64)
    x = torch.randn(M, K, device="cuda")
    want = x @ nf4_dequantize(packed, absmax, (N, K), 64).T
    got = nf4_matmul(x.to(dtype), packed, absmax, N, 64, backend="triton").float()
    assert ((got - want).abs().max() / want.abs().max()).item() < tol
