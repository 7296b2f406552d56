"""Ring attention: layouts, block plans, the LSE merge, the simulated ring, and real spawned gloo runs (P=2 and P=4)
against attention on the gathered tensors, forward and dQ/dK/dV. Spawning costs seconds per run, so each spawned
test batches every case into one run. Tolerances: float64 runs must match to 1e-12, float32 runs to 1e-5."""
import os, subprocess, sys, time
import pytest, torch
from hypothesis import given, settings, strategies as st
from llmlab import ring_attention as ra
from llmlab.ring_attention import (LAYOUTS, shard, unshard, shard_positions, block_attention_ref, merge_partials,
                                   ring_block_plan, plan_pairs, ring_work, layout_efficiency, ring_timeline,
                                   ring_attention, ring_attention_simulated, launch, case_tensors, ring_check_worker,
                                   check_against_reference, ring_fault_worker, trace_ring_attention, overlap_block_length)

torch.set_num_threads(1)

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("P", [1, 2, 3, 4])
def test_shard_unshard_roundtrip(layout, P):
    N = 4 * P
    x = torch.randn(2, 3, N, 5)
    parts = [shard(x, r, P, layout) for r in range(P)]
    assert torch.equal(unshard(parts, layout), x)
    pos = [shard_positions(N, r, P, layout) for r in range(P)]
    assert sorted(torch.cat(pos).tolist()) == list(range(N))
    for r in range(P):                     # the positions are the RoPE ids: row i of the shard is token pos[r][i]
        assert torch.equal(parts[r], x[:, :, pos[r]])
        assert torch.all(pos[r][1:] > pos[r][:-1])

@settings(max_examples=40, deadline=None)
@given(P=st.integers(1, 6), n=st.integers(1, 5), layout=st.sampled_from(LAYOUTS), causal=st.booleans(), seed=st.integers(0, 99))
def test_property_plans_cover_exactly_the_visible_pairs(P, n, layout, causal, seed):
    "For random P, local length and layout: shards partition the sequence and the plans' work equals the visible pairs."
    n_local = 2 * n if layout == "zigzag" else n
    N = P * n_local
    x = torch.randn(1, 1, N, 2, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(unshard([shard(x, r, P, layout) for r in range(P)], layout), x)
    pos = [shard_positions(N, r, P, layout) for r in range(P)]
    total = sum(plan_pairs(ring_block_plan(layout, i, j, P, n_local, causal)) for i in range(P) for j in range(P))
    assert total == (N * (N + 1) // 2 if causal else N * N)
    i, j = seed % P, (seed // P) % P
    allowed = int((pos[j][None, :] <= pos[i][:, None]).sum()) if causal else n_local * n_local
    assert plan_pairs(ring_block_plan(layout, i, j, P, n_local, causal)) == allowed

def test_lengths_that_do_not_split_fail_clearly():
    with pytest.raises(ValueError, match=r"N=12 does not split evenly for layout='zigzag' over world=4.*2\*world=8"):
        shard_positions(12, 0, 4, "zigzag")
    with pytest.raises(ValueError, match=r"N=10 does not split evenly for layout='contiguous' over world=4"):
        shard(torch.zeros(1, 1, 10, 2), 0, 4)
    with pytest.raises(ValueError, match="N=9 does not split evenly for layout='stripe'"):
        ring_attention_simulated(*[torch.zeros(1, 1, 9, 2)] * 3, world_size=2, layout="stripe")
    with pytest.raises(ValueError, match="rank must be an int in"): shard_positions(8, 4, 4)
    with pytest.raises(ValueError, match="layout must be one of"): shard_positions(8, 0, 4, "spiral")
    with pytest.raises(ValueError, match="world must be a positive int"): shard_positions(8, 0, 0)
    with pytest.raises(TypeError, match="shards must be a non-empty list"): unshard([])
    with pytest.raises(ValueError, match="same shape"): unshard([torch.zeros(1, 1, 2, 1), torch.zeros(1, 1, 3, 1)])

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("causal", [False, True])
def test_block_plans_equal_position_masks(layout, causal):
    "Each plan computes exactly the (query, key) pairs that the shards' positions allow."
    for P in (1, 2, 3, 5):
        for n in (2, 4, 6):
            N = P * n
            for i in range(P):
                for j in range(P):
                    qp, kp = shard_positions(N, i, P, layout), shard_positions(N, j, P, layout)
                    allowed = (kp[None, :] <= qp[:, None]) if causal else torch.ones(n, n, dtype=torch.bool)
                    plan = ring_block_plan(layout, i, j, P, n, causal)
                    got = torch.zeros(n, n, dtype=torch.bool)
                    if plan is not None:
                        r, c = plan.rows, plan.cols
                        sub = torch.ones(r.stop - r.start, c.stop - c.start, dtype=torch.bool)
                        got[r, c] = sub.tril(sub.shape[1] - sub.shape[0]) if plan.causal else sub
                    assert torch.equal(got, allowed), (layout, causal, P, n, i, j, plan)
                    assert plan_pairs(plan) == int(allowed.sum())

def test_block_ref_masks_by_positions_and_empty_rows():
    q, k, v, _ = case_tensors((1, 2, 4, 8), torch.float64, seed=1)
    o, lse = block_attention_ref(q, k, v, True, q_pos=torch.tensor([0, 1, 5, 6]), k_pos=torch.tensor([2, 3, 4, 5]))
    assert torch.equal(o[:, :, :2], torch.zeros_like(o[:, :, :2])) and torch.isinf(lse[:, :, :2]).all()
    want = torch.nn.functional.scaled_dot_product_attention(q[:, :, 2:], k, v, attn_mask=torch.tensor([[1, 1, 1, 1], [1, 1, 1, 1]]).bool())
    torch.testing.assert_close(o[:, :, 2:], want, atol=1e-12, rtol=0)

def test_merge_is_exact_and_safe_on_empty_rows():
    q, k, v, _ = case_tensors((2, 2, 5, 8), torch.float64, seed=2, hkv=1)
    oa, la = block_attention_ref(q, k[:, :, :3], v[:, :, :3]); ob, lb = block_attention_ref(q, k[:, :, 3:], v[:, :, 3:])
    o, l = merge_partials(oa, la, ob, lb)
    of, lf = block_attention_ref(q, k, v)
    torch.testing.assert_close(o, of, atol=1e-12, rtol=0); torch.testing.assert_close(l, lf, atol=1e-12, rtol=0)
    o2, l2 = merge_partials(ob, lb, oa, la)                     # order does not matter
    torch.testing.assert_close(o2, o, atol=1e-14, rtol=0)
    ninf = torch.full((1, 1, 2), float("-inf"))
    oe, le = merge_partials(torch.zeros(1, 1, 2, 3), ninf, torch.zeros(1, 1, 2, 3), ninf)
    assert not torch.isnan(oe).any() and torch.equal(oe, torch.zeros_like(oe)) and torch.isinf(le).all()

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("causal", [False, True])
def test_simulated_ring_matches_reference(layout, causal):
    for P in (1, 2, 3, 4):
        q, k, v, dout = case_tensors((2, 4, 4 * P, 8), torch.float64, seed=P, hkv=2)
        q, k, v = (t.requires_grad_() for t in (q, k, v))
        got = ring_attention_simulated(q, k, v, P, causal, layout, scale=0.3)
        want = block_attention_ref(q, k, v, causal, scale=0.3)[0]
        assert (got - want).abs().max() < 1e-12, f"simulated forward differs (P={P})"
        for a, b, name in zip(torch.autograd.grad(got, (q, k, v), dout), torch.autograd.grad(want, (q, k, v), dout), "qkv"):
            assert (a - b).abs().max() < 1e-12, f"simulated d{name} differs (P={P})"

CASES = ([dict(shape=(1, 2, 16, 8), causal=c, layout=l, seed=i, hkv=1 if i % 2 else None)
          for i, (c, l) in enumerate((c, l) for c in (False, True) for l in LAYOUTS)]
         + [dict(shape=(2, 2, 16, 4), causal=True, layout="zigzag", seed=9, overlap=False),
            dict(shape=(1, 2, 16, 8), causal=True, layout="stripe", seed=10, scale=0.5)])
F32 = [dict(shape=(1, 2, 16, 8), causal=c, layout=l, seed=20 + i, dtype="float32")
       for i, (c, l) in enumerate([(True, "zigzag"), (True, "contiguous"), (False, "stripe")])]

GROUPS = [dict(shape=(1, 2, 16, 8), causal=True, layout="zigzag", seed=30, group_size=2)]   # two rings of 2 in a world of 4

@pytest.mark.parametrize("P", [2, 4])
def test_spawned_ring_matches_gathered_attention(P):
    "Real gloo processes: out, dq, dk, dv equal attention on the gathered tensors; the output equals the simulated ring."
    extra = GROUPS if P == 4 else []
    res = launch(ring_check_worker, P, args=(CASES + F32 + extra,), timeout=60)
    errs = check_against_reference(CASES + F32 + extra, res, P)
    for c, e in zip(CASES + F32 + extra, errs):
        assert e < (1e-5 if c.get("dtype") == "float32" else 1e-12), (c, e)
    for i, c in enumerate(CASES):
        q, k, v, _ = case_tensors(c["shape"], torch.float64, c["seed"], c.get("hkv"))
        sim = ring_attention_simulated(q, k, v, P, c["causal"], c["layout"], scale=c.get("scale"))
        assert torch.equal(unshard([res[r][i]["out"] for r in range(P)], c["layout"]), sim), c

def test_a_raising_rank_ends_the_run():
    t0 = time.time()
    with pytest.raises(RuntimeError, match=r"rank 1 of 2 failed with ValueError: rank 1 fails on purpose"):
        launch(ring_fault_worker, 2, args=("raise",), timeout=30)
    assert time.time() - t0 < 30

def test_a_rank_that_never_joins_ends_the_run_within_the_timeout():
    t0 = time.time()
    with pytest.raises(RuntimeError, match=r"launch: rank 0 of 2 failed"):
        launch(ring_fault_worker, 2, args=("hang", 1, 120.0), timeout=4)
    assert time.time() - t0 < 40, "the waiting rank should give up after the 4 s timeout (plus start-up)"

def test_demo_runs_under_torchrun():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        "-m", "llmlab.ring_attention", "--length", "64", "--layout", "stripe"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(l for l in r.stdout.splitlines() if l.startswith("ring attention, 2 ranks"))
    assert float(line.split("single device| = ")[1].split(",")[0]) < 1e-5, line

def test_ring_attention_input_errors():
    q = torch.randn(1, 2, 6, 8)
    with pytest.raises(RuntimeError, match="needs an initialised torch.distributed"): ring_attention(q, q, q)
    with pytest.raises(ValueError, match="4 dims"): ring_attention(q[0], q, q)
    with pytest.raises(ValueError, match="same shape"): ring_attention(q, q, q[:, :, :3])
    with pytest.raises(TypeError, match="share a dtype"): ring_attention(q, q.double(), q.double())
    with pytest.raises(ValueError, match="even local length"): ring_attention(q[:, :, :5], q[:, :, :5], q[:, :, :5], layout="zigzag")
    with pytest.raises(ValueError, match="divisible by k/v heads"): ring_attention(q, q[:, :1].repeat(1, 3, 1, 1)[:, :3], q[:, :1].repeat(1, 3, 1, 1)[:, :3])
    with pytest.raises(ValueError, match="scale must be"): ring_attention(q, q, q, scale=-1.0)
    with pytest.raises(TypeError, match="causal must be a bool"): ring_attention(q, q, q, causal=1)

def test_launch_argument_errors():
    with pytest.raises(ValueError, match="world_size must be a positive int"): launch(ring_check_worker, 0)
    with pytest.raises(ValueError, match="backend must be 'gloo'"): launch(ring_check_worker, 2, backend="mpi")
    with pytest.raises(ValueError, match="timeout must be a positive"): launch(ring_check_worker, 2, timeout=0)
    with pytest.raises(TypeError, match="top level of an importable module"): launch(lambda r, w: None, 2)
    if torch.cuda.device_count() < 64:
        with pytest.raises(RuntimeError, match="one GPU per rank"): launch(ring_check_worker, 64, backend="nccl")

def test_work_counts_and_efficiency():
    for P in (2, 4, 8):
        assert layout_efficiency(ring_work(P, "zigzag", True, 16)) == {"balance": 1.0, "lockstep": 1.0}
        n = 64
        cont = layout_efficiency(ring_work(P, "contiguous", True, n))["balance"]
        diag = n * (n + 1) / 2
        assert abs(cont - (P * diag + P * (P - 1) / 2 * n * n) / P / (diag + (P - 1) * n * n)) < 1e-12
        stripe = ring_work(P, "stripe", True, n)
        for i in range(P):   # (i+1) causal triangles with the diagonal, P-1-i without it
            assert sum(stripe[i]) == (i + 1) * n * (n + 1) // 2 + (P - 1 - i) * n * (n - 1) // 2
        assert layout_efficiency(ring_work(P, "contiguous", False, n))["balance"] == 1.0

def test_timeline_model():
    work = ring_work(4, "contiguous", True, 8)
    with_, without = ring_timeline(work, 64, 0.5, True), ring_timeline(work, 64, 0.5, False)
    assert with_["end"] < without["end"]
    for evs in with_["events"]:
        comp = [e for e in evs if e["kind"] == "compute"]
        assert all(a["t1"] <= b["t0"] + 1e-12 for a, b in zip(comp, comp[1:]))        # one block at a time per rank
    flat = ring_timeline(ring_work(3, "zigzag", False, 8), 64, 0.0, True)
    assert flat["end"] == pytest.approx(3.0)                                        # free comm: P full blocks

def test_widget_trace_from_real_runs():
    tr = trace_ring_attention(worlds=(2, 3), n_local=4)
    assert set(tr["configs"]) == {f"{P}-{l}-{c}" for P in (2, 3) for l in LAYOUTS for c in (0, 1)}
    for cfg in tr["configs"].values():
        assert all(row[-1] < 1e-12 for row in cfg["error"])                       # exact after the last step
        assert cfg["work"] == ring_work(cfg["P"], cfg["layout"], cfg["causal"], 4)
        assert sorted(sum(cfg["positions"], [])) == list(range(cfg["N"]))
    assert any(row[0] > 1e-3 for cfg in tr["configs"].values() for row in cfg["error"])   # ...but not before
    from llmlab.lab import HAS_WIDGETS, trace_size, TRACE_LIMIT_BYTES
    full = trace_ring_attention()
    assert trace_size(full) < TRACE_LIMIT_BYTES
    if HAS_WIDGETS:
        w = ra.RingAttentionWidget(P=3, layout="zigzag")
        assert w.trace["initial"]["P"] == 3 and "export default" in w._esm
        with pytest.raises(ValueError, match="P must be one of"): ra.RingAttentionWidget(P=9)

def test_overlap_block_length():
    assert overlap_block_length(1e15, 5e11) == pytest.approx(2e15 / 1e12)
    assert overlap_block_length(1e15, 5e11, causal=True, kv_heads_ratio=0.25) == pytest.approx(1000.0)
    with pytest.raises(ValueError, match="bandwidth must be a positive"): overlap_block_length(1e15, 0)

def test_gpt_plugin_matches_reference():
    q, k, v, _ = case_tensors((1, 4, 12, 8), torch.float64, seed=5, hkv=2)
    for causal in (False, True):
        torch.testing.assert_close(ra.ring_gpt_attention(q, k, v, causal), block_attention_ref(q, k, v, causal)[0], atol=1e-12, rtol=0)
        torch.testing.assert_close(ra.ring_gpt_attention(q[:, :, -2:], k, v, causal),
                                   block_attention_ref(q[:, :, -2:], k, v, causal)[0], atol=1e-12, rtol=0)
