"""MoE on a GPU: the compiled Triton grouped GEMMs (autotuned, bf16/fp16/fp32) against the float32 per-expert loop,
forward and backward. Skipped without CUDA (tests/gpu/conftest.py)."""
import pytest, torch
from llmlab.moe import MoE, moe_ref

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

def run(m, x, backend, dy):
    m.backend = backend
    x = x.detach().requires_grad_()
    out, st = m(x)
    out.backward(dy)
    grads = [x.grad] + [p.grad.clone() for p in (m.router.proj.weight, m.experts.w_gate, m.experts.w_up, m.experts.w_down)]
    m.zero_grad(set_to_none=True)
    return out, grads, st

@pytest.mark.parametrize("dtype, tol", [(torch.float32, 2e-2), (torch.bfloat16, 6e-2), (torch.float16, 3e-2)])
@pytest.mark.parametrize("E, k, n_shared, cf", [(8, 2, 0, None), (64, 8, 1, None), (16, 4, 0, 1.0), (5, 1, 0, None)])
def test_triton_matches_loop_on_gpu(dtype, tol, E, k, n_shared, cf):
    torch.manual_seed(0)
    m = MoE(320, 192, E, k, n_shared=n_shared, capacity_factor=cf).cuda()
    x = torch.randn(4, 517, 320, device="cuda")                 # 2068 tokens: not a multiple of any tile
    dy = torch.randn_like(x)
    ref_out, ref_g, ref_st = run(m, x, "torch", dy)              # float32 per-expert loop
    m = m.to(dtype)
    out, g, st = run(m, x.to(dtype), "triton", dy.to(dtype))
    assert torch.equal(st["load"], ref_st["load"].to(st["load"].dtype)) or dtype != torch.float32
    rel = lambda a, b: ((a.float() - b.float()).norm() / b.float().norm()).item()
    assert rel(out, ref_out) < tol, f"forward relative error {rel(out, ref_out):.3g}"
    for name, a, b in zip(["x", "router", "w_gate", "w_up", "w_down"], g, ref_g):
        assert rel(a, b) < 2 * tol, f"grad {name}: relative error {rel(a, b):.3g}"

def test_triton_matches_moe_ref_small():
    torch.manual_seed(1)
    m = MoE(40, 24, 6, 2, n_shared=1, capacity_factor=1.25, backend="triton").cuda()
    x = torch.randn(2, 33, 40, device="cuda")
    torch.testing.assert_close(m(x)[0], moe_ref(x, m.router, m.experts, m.capacity(66), m.shared), atol=2e-2, rtol=2e-2)

def test_empty_experts_and_single_token():
    m = MoE(64, 32, 64, 2, backend="triton").cuda()
    for n in (1, 3):
        x = torch.randn(n, 64, device="cuda")
        out, st = m(x)
        assert int((st["load"] == 0).sum()) >= 64 - 2 * n
        torch.testing.assert_close(out, moe_ref(x, m.router, m.experts), atol=2e-2, rtol=2e-2)

def test_launchers_refuse_bad_input_on_gpu():
    "Checked before launching on the device too: offsets past the rows, offsets on the wrong device, float64."
    from llmlab.kernels.moe import grouped_mm
    x, w = torch.randn(3, 4, device="cuda"), torch.randn(2, 4, 5, device="cuda")
    with pytest.raises(ValueError, match="end at the number of rows, 3"): grouped_mm(x, w, torch.tensor([0, 2, 40], device="cuda"))
    with pytest.raises(ValueError, match="offsets is on cpu"): grouped_mm(x, w, torch.tensor([0, 2, 3]))
    torch.cuda.synchronize()
    m = MoE(8, 4, 4, 2).cuda().double()
    xd = torch.randn(5, 8, device="cuda", dtype=torch.float64)
    torch.testing.assert_close(m(xd)[0], moe_ref(xd, m.router, m.experts))    # auto: float64 falls back to the loop
    m.backend = "triton"
    with pytest.raises(TypeError, match="float64"): m(xd)
