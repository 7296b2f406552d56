"""Ring attention: layouts, block plans, the LSE merge, the simulated ring, and real spawned gloo runs (P=2 and P=4)
against attention on the gathered tensors, forward and dQ/dK/dV. Spawning costs seconds per run, so each spawned
test batches every case into one run. Tolerances: float64 runs must match to 1e-12, float32 runs to 1e-5."""
import os, subprocess, sys, time
import pytest, torch
from hypothesis import given, settings, strategies as st, HealthCheck
import torch.nn.functional as F
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
    with pytest.raises(ValueError, match="world must be an int >= 1, got 0"): shard_positions(8, 0, 0)
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
    with pytest.raises(ValueError, match="world_size must be an int >= 1, got 0"): launch(ring_check_worker, 0)
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
    with pytest.raises(ValueError, match="bandwidth must be > 0"): overlap_block_length(1e15, 0)

def test_gpt_plugin_matches_reference():
    q, k, v, _ = case_tensors((1, 4, 12, 8), torch.float64, seed=5, hkv=2)
    for causal in (False, True):
        torch.testing.assert_close(ra.ring_gpt_attention(q, k, v, causal), block_attention_ref(q, k, v, causal)[0], atol=1e-12, rtol=0)
        torch.testing.assert_close(ra.ring_gpt_attention(q[:, :, -2:], k, v, causal),
                                   block_attention_ref(q[:, :, -2:], k, v, causal)[0], atol=1e-12, rtol=0)


# ---------------------------------------------------------------- bad input
# Every public function of llmlab.ring_attention with bad or edge input: (id, call, error type, message fragment).
_q = torch.randn(1, 2, 8, 8)
_k3 = torch.randn(1, 3, 8, 8)
_work = ring_work(2, "contiguous", True, 4)
BAD_INPUT = [
    ("shard_positions: zigzag split", lambda: shard_positions(12, 0, 4, "zigzag"), ValueError, "multiple of 2\\*world=8"),
    ("shard_positions: rank out of range", lambda: shard_positions(16, 4, 4), ValueError, r"rank must be an int in \[0, 4\), got 4"),
    ("shard_positions: float length", lambda: shard_positions(16.0, 0, 4), TypeError, "sequence length N must be an int"),
    ("shard_positions: world 0", lambda: shard_positions(16, 0, 0), ValueError, "world must be an int >= 1, got 0"),
    ("shard_positions: layout", lambda: shard_positions(16, 0, 4, "spiral"), ValueError, "layout must be one of"),
    ("shard: list", lambda: shard([1, 2], 0, 2), TypeError, "x must be a torch.Tensor"),
    ("shard: dim out of range", lambda: shard(_q, 0, 2, dim=5), ValueError, r"dim must be in \[-4, 4\)"),
    ("unshard: empty list", lambda: unshard([]), TypeError, "shards must be a non-empty list"),
    ("unshard: shapes differ", lambda: unshard([_q, _q[:, :, :4]]), ValueError, "same shape"),
    ("unshard: dim", lambda: unshard([_q, _q], dim=9), ValueError, "dim must be in"),
    ("block_ref: 3-D q", lambda: block_attention_ref(_q[0], _q, _q), ValueError, "q must have 4 dims"),
    ("block_ref: heads", lambda: block_attention_ref(_q, _k3, _k3), ValueError, "divisible by k/v heads Hkv=3"),
    ("block_ref: q_pos shape", lambda: block_attention_ref(_q, _q, _q, True, q_pos=torch.arange(5)), ValueError, r"q_pos must have shape \(8\)"),
    ("block_ref: float k_pos", lambda: block_attention_ref(_q, _q, _q, True, k_pos=torch.arange(8.0)), TypeError, "k_pos must hold integer positions"),
    ("block_ref: str causal", lambda: block_attention_ref(_q, _q, _q, "yes"), TypeError, "causal must be a bool"),
    ("block_ref: scale 0", lambda: block_attention_ref(_q, _q, _q, scale=0.0), ValueError, "scale must be a positive finite number"),
    ("case_tensors: 3 dims", lambda: case_tensors((1, 2, 3)), ValueError, r"shape must be \(B, H, N, D\)"),
    ("case_tensors: empty", lambda: case_tensors((1, 2, 0, 8)), ValueError, r"shape\[2\] must be an int >= 1"),
    ("case_tensors: hkv", lambda: case_tensors((1, 4, 8, 8), hkv=3), ValueError, "hkv must divide H=4"),
    ("merge: shapes", lambda: merge_partials(_q, _q[..., 0], _q[:, :1], _q[:, :1, :, 0]), ValueError, "must share a shape"),
    ("merge: lse shape", lambda: merge_partials(_q, _q[..., 0, 0], _q, _q[..., 0, 0]), ValueError, "must share a shape"),
    ("merge: list", lambda: merge_partials([1.0], _q, _q, _q), TypeError, "out_a must be a torch.Tensor"),
    ("plan: q_rank", lambda: ring_block_plan("zigzag", 4, 0, 4, 6, True), ValueError, r"q_rank must be an int in \[0, 3\]"),
    ("plan: n_local 0", lambda: ring_block_plan("zigzag", 0, 0, 4, 0, True), ValueError, "n_local must be an int >= 1"),
    ("plan: zigzag odd", lambda: ring_block_plan("zigzag", 1, 0, 4, 5, True), ValueError, "zigzag needs an even local length"),
    ("plan: str causal", lambda: ring_block_plan("zigzag", 1, 0, 4, 6, "yes"), TypeError, "causal must be a bool"),
    ("plan: zigzag odd, own block", lambda: ring_block_plan("zigzag", 0, 0, 2, 3, True), ValueError, "zigzag needs an even local length"),
    ("merge: NaN lse", lambda: merge_partials(_q, _q[..., 0] * float("nan"), _q, _q[..., 0]), ValueError, "lse_a has NaN or \\+inf"),
    ("merge: +inf lse", lambda: merge_partials(_q, _q[..., 0], _q, torch.full_like(_q[..., 0], float("inf"))), ValueError, "lse_b has NaN or \\+inf"),
    ("merge: NaN out", lambda: merge_partials(_q * float("nan"), _q[..., 0], _q, _q[..., 0]), ValueError, "out_a has .* non-finite"),
    ("case_tensors: int dtype", lambda: case_tensors((1, 4, 8, 4), dtype=torch.int64), TypeError, "dtype must be a torch float dtype"),
    ("check_against_reference: no results", lambda: ra.check_against_reference([dict(shape=(1, 1, 4, 8), causal=True, layout="zigzag")], [], 2), ValueError, "results must hold one list of 1 case results per rank for world=2"),
    ("simulated: world_size 2.5", lambda: ring_attention_simulated(_q, _q, _q, 2.5), TypeError, "world_size must be an int"),
    ("plan_pairs: not a plan", lambda: plan_pairs("all"), TypeError, "plan must be a BlockPlan or None"),
    ("ring_work: n_local 0", lambda: ring_work(4, "zigzag", True, 0), ValueError, "n_local must be an int >= 1"),
    ("ring_work: world 0", lambda: ring_work(0, "zigzag", True, 4), ValueError, "world must be an int >= 1"),
    ("efficiency: empty", lambda: layout_efficiency([]), ValueError, "work must be a non-empty list"),
    ("efficiency: not square", lambda: layout_efficiency([[1, 2]]), ValueError, r"work\[0\] must be a list of 1 step counts"),
    ("efficiency: no work", lambda: layout_efficiency([[0, 0], [0, 0]]), ValueError, "no pairs at all"),
    ("efficiency: negative", lambda: layout_efficiency([[1, -1], [1, 1]]), ValueError, r"work\[0\]\[1\] must be an int >= 0"),
    ("efficiency: float", lambda: layout_efficiency([[1.5]]), TypeError, r"work\[0\]\[0\] must be an int"),
    ("timeline: block_pairs 0", lambda: ring_timeline(_work, 0), ValueError, "block_pairs must be an int >= 1"),
    ("timeline: comm < 0", lambda: ring_timeline(_work, 16, comm=-1.0), ValueError, "comm must be >= 0"),
    ("timeline: comm NaN", lambda: ring_timeline(_work, 16, comm=float("nan")), ValueError, "comm must be a finite number"),
    ("timeline: overlap str", lambda: ring_timeline(_work, 16, overlap="no"), TypeError, "overlap must be a bool"),
    ("simulated: does not split", lambda: ring_attention_simulated(_q, _q, _q, 3, layout="zigzag"), ValueError, "does not split evenly"),
    ("simulated: world 0", lambda: ring_attention_simulated(_q, _q, _q, 0), ValueError, "world_size must be an int >= 1"),
    ("simulated: 3-D q", lambda: ring_attention_simulated(_q[0], _q, _q, 2), ValueError, "q must have 4 dims"),
    ("simulated: str causal", lambda: ring_attention_simulated(_q, _q, _q, 2, causal="yes"), TypeError, "causal must be a bool"),
    ("simulated: on_step", lambda: ring_attention_simulated(_q, _q, _q, 2, on_step=3), TypeError, "on_step must be callable"),
    ("ring: no process group", lambda: ring_attention(_q, _q, _q), RuntimeError, "needs an initialised torch.distributed"),
    ("ring: str overlap", lambda: ring_attention(_q, _q, _q, overlap="yes"), TypeError, "overlap must be a bool"),
    ("ring: empty shard", lambda: ring_attention(_q[:, :, :0], _q[:, :, :0], _q[:, :, :0]), ValueError, "no empty dimension"),
    ("local_attention: 3-D", lambda: ra.local_attention(_q[0], _q, _q), ValueError, "q must have 4 dims"),
    ("launch: world 0", lambda: launch(ring_check_worker, 0), ValueError, "world_size must be an int >= 1"),
    ("launch: backend", lambda: launch(ring_check_worker, 2, backend="mpi"), ValueError, "backend must be 'gloo'"),
    ("launch: timeout 0", lambda: launch(ring_check_worker, 2, timeout=0), ValueError, "timeout must be a positive"),
    ("launch: lambda", lambda: launch(lambda r, w: None, 2), TypeError, "top level of an importable module"),
    ("launch: args not a tuple", lambda: launch(ring_check_worker, 2, args=5), TypeError, "args must be a tuple"),
    ("launch: threads 0", lambda: launch(ring_check_worker, 2, threads=0), ValueError, "threads must be an int >= 1"),
    ("overlap: bandwidth 0", lambda: overlap_block_length(1e15, 0), ValueError, "bandwidth must be > 0"),
    ("overlap: bandwidth NaN", lambda: overlap_block_length(1e15, float("nan")), ValueError, "bandwidth must be a finite number"),
    ("overlap: flops inf", lambda: overlap_block_length(float("inf"), 1e9), ValueError, "flops must be a finite number"),
    ("overlap: flops bool", lambda: overlap_block_length(True, 1e9), TypeError, "flops must be a number"),
    ("overlap: kv ratio 2", lambda: overlap_block_length(1e15, 1e9, kv_heads_ratio=2.0), ValueError, r"kv_heads_ratio must be in \(0, 1\]"),
    ("overlap: causal int", lambda: overlap_block_length(1e15, 1e9, causal=1), TypeError, "causal must be a bool"),
    ("trace: no worlds", lambda: trace_ring_attention(worlds=()), ValueError, "worlds must be a non-empty list"),
    ("trace: odd n_local", lambda: trace_ring_attention(worlds=(2,), n_local=3), ValueError, "n_local must be even"),
    ("trace: layout", lambda: trace_ring_attention(worlds=(2,), layouts=("spiral",)), ValueError, "layout must be one of"),
    ("widget: layout", lambda: ra.RingAttentionWidget(layout="spiral"), ValueError, "layout must be one of"),
    ("gpt plug-in: world 0", lambda: ra.ring_gpt_attention(_q, _q, _q, True, world_size=0), ValueError, "world_size must be an int >= 1"),
    ("gpt plug-in: 3-D", lambda: ra.ring_gpt_attention(_q[0], _q, _q, True), ValueError, "q must have 4 dims"),
    ("fault worker: mode", lambda: ring_fault_worker(0, 2, mode="explode"), ValueError, "mode must be one of"),
]

@pytest.mark.parametrize("call,exc,msg", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_names_the_argument(call, exc, msg):
    with pytest.raises(exc, match=msg): call()


def _unequal_shards_worker(rank, world):
    "Rank 0 passes 4 tokens, the others 6: without a check gloo aborts the process on the size mismatch."
    q = torch.randn(1, 1, 4 if rank == 0 else 6, 8)
    return ring_attention(q, q, q)

def test_unequal_shard_lengths_are_a_clear_error_on_every_rank():
    with pytest.raises(RuntimeError, match=r"every rank must pass shards of the same shape.*rank 0: q \(1, 1, 4, 8\).*rank 1: q \(1, 1, 6, 8\)"):
        launch(_unequal_shards_worker, 2, timeout=30)


# ---------------------------------------------------------------- fully masked rows: output 0, LSE -inf, no NaN
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(Nq=st.integers(1, 12), Nk=st.integers(1, 12), G=st.integers(1, 2), seed=st.integers(0, 10_000), data=st.data())
def test_property_block_ref_masked_rows_match_sdpa_forward_and_backward(Nq, Nk, G, seed, data):
    "Random positions (so random masks, often with rows that see nothing) against PyTorch's SDPA with the same mask."
    q_pos = torch.tensor(data.draw(st.lists(st.integers(0, 20), min_size=Nq, max_size=Nq)))
    k_pos = torch.tensor(data.draw(st.lists(st.integers(0, 20), min_size=Nk, max_size=Nk)))
    q, k, v, _ = case_tensors((1, 2 * G, max(Nq, Nk), 8), torch.float64, seed, hkv=2)
    q, k, v = q[:, :, :Nq].clone().requires_grad_(), k[:, :, :Nk].clone().requires_grad_(), v[:, :, :Nk].clone().requires_grad_()
    out, lse = block_attention_ref(q, k, v, True, q_pos=q_pos, k_pos=k_pos)
    mask = k_pos[None, :] <= q_pos[:, None]
    none = ~mask.any(-1)
    want = F.scaled_dot_product_attention(q, k.repeat_interleave(G, 1), v.repeat_interleave(G, 1), attn_mask=mask)
    torch.testing.assert_close(out, want, atol=1e-12, rtol=0)
    assert torch.equal(out[:, :, none], torch.zeros_like(out[:, :, none])) and (lse[:, :, none] == float("-inf")).all()
    assert torch.isfinite(lse[:, :, ~none]).all()
    dout, dlse = torch.randn_like(out), torch.randn_like(lse)
    got = torch.autograd.grad((out * dout).sum() + (lse.masked_fill(none, 0) * dlse).sum(), (q, k, v))
    s = (q @ k.repeat_interleave(G, 1).transpose(-2, -1) / 8 ** 0.5).masked_fill(~mask, float("-inf"))
    lse_ref = torch.where(none, 0.0, torch.logsumexp(s.masked_fill(none[:, None], 0.0), -1))
    ref = torch.autograd.grad((want * dout).sum() + (lse_ref.masked_fill(none, 0) * dlse).sum(), (q, k, v))
    for a, b in zip(got, ref):
        assert not torch.isnan(a).any()
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    assert torch.equal(got[0][:, :, none], torch.zeros_like(got[0][:, :, none]))


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(st.sampled_from(["a", "b", "both", "none"]), min_size=1, max_size=6), seed=st.integers(0, 10_000))
def test_property_merge_rows_that_saw_nothing_give_zero_and_no_nan_gradient(rows, seed):
    "Each row saw keys in part a only, b only, both, or neither: the merge is exact, and the empty rows stay 0 / -inf."
    g = torch.Generator().manual_seed(seed)
    oa, ob = torch.randn(1, 1, len(rows), 4, generator=g, dtype=torch.float64), torch.randn(1, 1, len(rows), 4, generator=g, dtype=torch.float64)
    la, lb = torch.randn(1, 1, len(rows), generator=g, dtype=torch.float64), torch.randn(1, 1, len(rows), generator=g, dtype=torch.float64)
    for i, r in enumerate(rows):
        if r in ("b", "none"): la[..., i], oa[..., i, :] = float("-inf"), 0.0
        if r in ("a", "none"): lb[..., i], ob[..., i, :] = float("-inf"), 0.0
    ts = [t.requires_grad_() for t in (oa, la, ob, lb)]
    o, l = merge_partials(*ts)
    grads = torch.autograd.grad(o.sum() + l.masked_fill(~torch.isfinite(l), 0).sum(), ts)
    assert not any(torch.isnan(x).any() for x in (o, l, *grads))
    for i, r in enumerate(rows):
        want_l = {"a": la[..., i], "b": lb[..., i], "both": torch.logaddexp(la[..., i], lb[..., i]), "none": torch.tensor(float("-inf"), dtype=torch.float64)}[r]
        torch.testing.assert_close(l[..., i].detach(), want_l.detach().expand_as(l[..., i]), atol=1e-12, rtol=0)
        if r == "none": assert torch.equal(o[..., i, :].detach(), torch.zeros(1, 1, 4, dtype=torch.float64))
        if r == "a": torch.testing.assert_close(o[..., i, :].detach(), oa[..., i, :].detach(), atol=1e-12, rtol=0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(P=st.integers(1, 4), layout=st.sampled_from(LAYOUTS), causal=st.booleans(), n2=st.integers(1, 4), G=st.integers(1, 2), seed=st.integers(0, 999))
def test_property_simulated_ring_equals_flash_and_reference(P, layout, causal, n2, G, seed):
    "The ring (simulated) against flash attention and the naive reference on the whole sequence: out and gradients."
    from llmlab.flash_attention import flash_attention, attention_ref
    q, k, v, dout = case_tensors((1, 2 * G, 2 * n2 * P, 8), torch.float64, seed, hkv=2)
    outs = {}
    for name, fn in (("ring", lambda q, k, v: ring_attention_simulated(q, k, v, P, causal, layout)),
                     ("flash", lambda q, k, v: flash_attention(q, k, v, causal, backend="torch")),
                     ("reference", lambda q, k, v: attention_ref(q, k, v, causal))):
        qx, kx, vx = (t.clone().requires_grad_() for t in (q, k, v))
        o = fn(qx, kx, vx)
        outs[name] = (o.detach(), *torch.autograd.grad(o, (qx, kx, vx), dout))
    for name in ("ring", "flash"):
        for a, b in zip(outs[name], outs["reference"]):
            assert not torch.isnan(a).any()
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
