"""Ring attention on GPUs (skipped without CUDA): the per-block flash kernel on the slice shapes the ring plans use,
the simulated ring in bf16 forward and backward, and (with two or more GPUs) the real ring on NCCL."""
import pytest, torch
from llmlab.ring_attention import (LAYOUTS, ring_block_plan, local_attention, block_attention_ref, ring_attention_simulated,
                                   case_tensors, launch, ring_check_worker, check_against_reference)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

@pytest.mark.parametrize("layout", LAYOUTS)
def test_block_kernel_on_plan_slices_bf16(layout):
    P, n = 4, 256
    q, k, v, _ = (t.cuda() for t in case_tensors((2, 4, n, 64), torch.float32, seed=0, hkv=2))
    for j in range(P):
        plan = ring_block_plan(layout, 1, j, P, n, True)
        if plan is None: continue
        qs, ks, vs = q[:, :, plan.rows], k[:, :, plan.cols], v[:, :, plan.cols]
        o, l = local_attention(qs.bfloat16(), ks.bfloat16(), vs.bfloat16(), plan.causal)
        o_ref, l_ref = block_attention_ref(qs, ks, vs, plan.causal)
        assert (o.float() - o_ref).abs().max() < 3e-2 and (l.float() - l_ref).abs().max() < 3e-2, (layout, j, plan)

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("causal", [False, True])
def test_simulated_ring_bf16_forward_and_backward(layout, causal):
    q, k, v, dout = (t.cuda() for t in case_tensors((1, 4, 512, 64), torch.float32, seed=1))
    ref_in = [t.clone().requires_grad_() for t in (q, k, v)]
    lo_in = [t.bfloat16().requires_grad_() for t in (q, k, v)]
    want = block_attention_ref(*ref_in, causal)[0]
    got = ring_attention_simulated(*lo_in, 4, causal, layout)
    g_want = torch.autograd.grad(want, ref_in, dout)
    g_got = torch.autograd.grad(got, lo_in, dout.bfloat16())
    assert (got.float() - want).abs().max() < 3e-2
    for a, b in zip(g_got, g_want): assert (a.float() - b).abs().max() < 1e-1

@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs for an NCCL ring")
def test_nccl_ring_matches_gathered_attention():
    cases = [dict(shape=(1, 4, 256, 64), causal=c, layout=l, seed=i, dtype="float32")
             for i, (c, l) in enumerate((c, l) for c in (False, True) for l in LAYOUTS)]
    res = launch(ring_check_worker, 2, backend="nccl", args=(cases,), timeout=120)
    assert max(check_against_reference(cases, res, 2)) < 1e-2
