from cases_common import *

def build(C):
    from llmlab import ring_attention as RA
    def partition_ok(n, world, layout):
        ps = [RA.shard_positions(n, r, world, layout) for r in range(world)]
        allp = torch.cat(ps).sort().values
        return torch.equal(allp, torch.arange(n)) or f"positions {[p.tolist() for p in ps]}"
    for n, w, lay in [(10, 3, "contiguous"), (10, 3, "zigzag"), (6, 4, "zigzag"), (7, 2, "stripe")]:
        C(f"shard_positions({n}, r, world={w}, '{lay}') (n not divisible: clear error or an exact partition)",
          lambda n=n, w=w, lay=lay: partition_ok(n, w, lay), err=["n", "divisible", "sequence length"], ok=lambda r: r)
    for n, w, lay in [(16, 4, "zigzag"), (12, 3, "stripe"), (8, 2, "contiguous")]:
        C(f"shard_positions({n}, r, {w}, '{lay}') (ok: a partition)", lambda n=n, w=w, lay=lay: partition_ok(n, w, lay), ok=lambda r: r)
    C("shard_positions(8, rank=4, world=4)", lambda: RA.shard_positions(8, 4, 4), err="rank")
    C("shard_positions(8, rank=-1, world=4)", lambda: RA.shard_positions(8, -1, 4), err="rank")
    C("shard_positions(8, 0, world=0)", lambda: RA.shard_positions(8, 0, 0), err="world")
    C("shard_positions(8, 0, 2, layout='bogus')", lambda: RA.shard_positions(8, 0, 2, "bogus"), err="layout")
    C("shard_positions(-4, 0, 2)", lambda: RA.shard_positions(-4, 0, 2), err="n")
    C("shard_positions(8.0, 0, 2)", lambda: RA.shard_positions(8.0, 0, 2), err="n")
    C("shard_positions(0, 0, 2) (ok: empty or clear)", lambda: RA.shard_positions(0, 0, 2), err="n", ok=lambda r: r.numel() == 0)
    x = R(1, 2, 8, 4)
    C("shard(x, 0, 2, dim=5)", lambda: RA.shard(x, 0, 2, dim=5), err="dim")
    C("shard(None, 0, 2)", lambda: RA.shard(None, 0, 2), err="x")
    C("shard(x N=5, 0, 2)", lambda: RA.shard(R(1, 2, 5, 4), 0, 2), err=["N", "divisible", "sequence length"],
      ok=lambda r: r.shape[-2] in (2, 3))
    C("unshard(shard(x, r, 4, 'zigzag')) (ok: x)", lambda: RA.unshard([RA.shard(x, r, 4, "zigzag") for r in range(4)], "zigzag"),
      ok=lambda r: torch.equal(r, x))
    C("unshard([])", lambda: RA.unshard([]), err="shards")
    C("unshard(None)", lambda: RA.unshard(None), err="shards")
    C("unshard([a (1,2,4,4), b (1,2,3,4)])", lambda: RA.unshard([R(1, 2, 4, 4), R(1, 2, 3, 4)]), err="shard")
    C("unshard([a (1,2,4,4), b (1,3,4,4)])", lambda: RA.unshard([R(1, 2, 4, 4), R(1, 3, 4, 4)]), err="shard")
    C("unshard([x], layout='bogus')", lambda: RA.unshard([x], "bogus"), err="layout")
    q, k, v = R(1, 2, 4, 8, dtype=torch.float64), R(1, 2, 4, 8, seed=1, dtype=torch.float64), R(1, 2, 4, 8, seed=2, dtype=torch.float64)
    C("block_attention_ref(causal, q_pos all < k_pos) (all masked: 0, -inf)",
      lambda: RA.block_attention_ref(q, k, v, True, q_pos=torch.arange(4), k_pos=torch.arange(4) + 10),
      ok=lambda r: (is_zero(r[0]) and all_neg_inf(r[1])) or "not (0, -inf)", finite=False)
    C("block_attention_ref(q_pos of wrong length)", lambda: RA.block_attention_ref(q, k, v, True, q_pos=torch.arange(3), k_pos=torch.arange(4)), err="q_pos")
    C("block_attention_ref(q_pos float)", lambda: RA.block_attention_ref(q, k, v, True, q_pos=torch.arange(4.0), k_pos=torch.arange(4)), err="q_pos")
    C("block_attention_ref(3-D q)", lambda: RA.block_attention_ref(q[0], k[0], v[0]), err="q")
    C("block_attention_ref(scale=nan)", lambda: RA.block_attention_ref(q, k, v, scale=NAN), err="scale")
    C("block_attention_ref(q, k, v) (ok)", lambda: RA.block_attention_ref(q, k, v, True), ok=lambda r: close(r[0], ref_attn(q, k, v, True)[0], 1e-9))
    oa, la = RA.block_attention_ref(q, k, v)
    ninf = torch.full_like(la, -INF)
    C("merge_partials(both sides empty: lse -inf) (-> 0, -inf)", lambda: RA.merge_partials(torch.zeros_like(oa), ninf, torch.zeros_like(oa), ninf),
      ok=lambda r: (is_zero(r[0]) and all_neg_inf(r[1])) or "not (0, -inf)", finite=False)
    C("merge_partials(one side empty) (ok: the other side)", lambda: RA.merge_partials(oa, la, torch.zeros_like(oa), ninf),
      ok=lambda r: (close(r[0], oa) is True and close(r[1], la) is True) or "changed")
    C("merge_partials(lse shape mismatch)", lambda: RA.merge_partials(oa, la, oa, la[..., :2]), err="lse")
    C("merge_partials(out shape mismatch)", lambda: RA.merge_partials(oa, la, oa[..., :4], la), err="out")
    def merge_halves():
        a = RA.block_attention_ref(q, k[:, :, :2], v[:, :, :2]); b = RA.block_attention_ref(q, k[:, :, 2:], v[:, :, 2:])
        return RA.merge_partials(a[0], a[1], b[0], b[1])
    C("merge_partials(two key halves) (ok: = full attention)", merge_halves, ok=lambda r: (close(r[0], oa, 1e-9) is True and close(r[1], la, 1e-9) is True) or "differs")
    C("ring_block_plan('bogus', 0, 0, 2, 4, True)", lambda: RA.ring_block_plan("bogus", 0, 0, 2, 4, True), err="layout")
    C("ring_block_plan('zigzag', 2, 0, 2, 4, True)", lambda: RA.ring_block_plan("zigzag", 2, 0, 2, 4, True), err="q_rank")
    C("ring_block_plan('zigzag', 0, -1, 2, 4, True)", lambda: RA.ring_block_plan("zigzag", 0, -1, 2, 4, True), err="kv_rank")
    C("ring_block_plan('contiguous', 0, 0, 2, 0, True)", lambda: RA.ring_block_plan("contiguous", 0, 0, 2, 0, True), err="n_local")
    C("ring_block_plan('zigzag', 0, 0, 2, 3, True) (odd n_local)", lambda: RA.ring_block_plan("zigzag", 0, 0, 2, 3, True), err="n_local")
    C("plan_pairs(None) (ok: 0)", lambda: RA.plan_pairs(None), ok=lambda r: r == 0)
    C("plan_pairs('x')", lambda: RA.plan_pairs("x"), err="plan")
    C("ring_work(0, 'zigzag', True)", lambda: RA.ring_work(0, "zigzag", True), err="world")
    C("ring_work(2, 'bogus', True)", lambda: RA.ring_work(2, "bogus", True), err="layout")
    C("ring_work(2, 'zigzag', True, n_local=0)", lambda: RA.ring_work(2, "zigzag", True, n_local=0), err="n_local")
    C("ring_work(4, 'zigzag', True, 8) (ok: total = causal pairs)", lambda: RA.ring_work(4, "zigzag", True, 8),
      ok=lambda r: sum(map(sum, r)) == 32 * 33 // 2 or f"total {sum(map(sum, r))}")
    C("layout_efficiency([])", lambda: RA.layout_efficiency([]), err="work")
    C("layout_efficiency([[0, 0], [0, 0]]) (no work)", lambda: RA.layout_efficiency([[0, 0], [0, 0]]), err="work")
    C("layout_efficiency([[1, 2], [3]]) (ragged)", lambda: RA.layout_efficiency([[1, 2], [3]]), err="work")
    C("layout_efficiency([[1, -2], [3, 4]])", lambda: RA.layout_efficiency([[1, -2], [3, 4]]), err="work")
    C("layout_efficiency(None)", lambda: RA.layout_efficiency(None), err="work")
    C("layout_efficiency([[2, 2], [2, 2]]) (ok: 1.0)", lambda: RA.layout_efficiency([[2, 2], [2, 2]]), ok=lambda r: abs(r["balance"] - 1) < 1e-12)
    wk = RA.ring_work(2, "zigzag", True, 4)
    C("ring_timeline(work, block_pairs=0)", lambda: RA.ring_timeline(wk, 0), err="block_pairs")
    C("ring_timeline(work, 16, comm=-1)", lambda: RA.ring_timeline(wk, 16, comm=-1.0), err="comm")
    C("ring_timeline(work, 16, comm=nan)", lambda: RA.ring_timeline(wk, 16, comm=NAN), err="comm")
    C("ring_timeline([], 16)", lambda: RA.ring_timeline([], 16), err="work")
    qf, kf, vf = R(1, 2, 4, 8), R(1, 2, 2, 8, seed=1), R(1, 2, 2, 8, seed=2)
    e, el = ref_attn(qf, kf, vf, True)
    C("local_attention(causal Nq=4 > Nk=2) (masked rows 0, -inf)", lambda: RA.local_attention(qf, kf, vf, True),
      ok=lambda r: (close(r[0], e) is True and close(r[1], el) is True) or "masked rows wrong", finite=False)
    C("local_attention(backend='bogus')", lambda: RA.local_attention(qf, kf, vf, backend="bogus"), err="backend")
    C("local_attention(3-D q)", lambda: RA.local_attention(qf[0], kf[0], vf[0]), err="q")
    qs, ks, vs = R(1, 2, 12, 8, dtype=torch.float64), R(1, 2, 12, 8, seed=1, dtype=torch.float64), R(1, 2, 12, 8, seed=2, dtype=torch.float64)
    C("ring_attention_simulated(world_size=0)", lambda: RA.ring_attention_simulated(qs, ks, vs, 0), err=["world_size", "world must"])
    C("ring_attention_simulated(world_size=2.5)", lambda: RA.ring_attention_simulated(qs, ks, vs, 2.5), err=["world_size", "world must"])
    C("ring_attention_simulated(world_size=5, N=12)", lambda: RA.ring_attention_simulated(qs, ks, vs, 5, True), err=["N", "divisible", "world_size", "sequence length"],
      ok=lambda r: close(r[0] if isinstance(r, tuple) else r, ref_attn(qs, ks, vs, True)[0], 1e-9))
    C("ring_attention_simulated(world_size=24 > N=12)", lambda: RA.ring_attention_simulated(qs, ks, vs, 24), err=["N", "world_size", "sequence length"])
    C("ring_attention_simulated(layout='bogus')", lambda: RA.ring_attention_simulated(qs, ks, vs, 2, layout="bogus"), err="layout")
    C("ring_attention_simulated(q H=4, k Hkv=3)", lambda: RA.ring_attention_simulated(R(1, 4, 12, 8), R(1, 3, 12, 8), R(1, 3, 12, 8), 2), err=["H", "head"])
    C("ring_attention_simulated(q N=12, k N=8)", lambda: RA.ring_attention_simulated(qs, ks[:, :, :8], vs[:, :, :8], 2), err=["N", "k", "length"])
    for lay in ("contiguous", "zigzag", "stripe"):
        C(f"ring_attention_simulated(N=12, world 3, causal, '{lay}') (ok vs reference)", lambda lay=lay: RA.ring_attention_simulated(qs, ks, vs, 3, True, lay),
          ok=lambda r: close(r[0] if isinstance(r, tuple) else r, ref_attn(qs, ks, vs, True)[0], 1e-9))
    def ring_grad():
        a, b, c = (t.clone().requires_grad_() for t in (qs, ks, vs))
        o = RA.ring_attention_simulated(a, b, c, 3, True, "zigzag"); (o[0] if isinstance(o, tuple) else o).sum().backward()
        a2, b2, c2 = (t.clone().requires_grad_() for t in (qs, ks, vs))
        ref_attn(a2, b2, c2, True)[0].sum().backward()
        return [close(g1, g2, 1e-8) for g1, g2 in zip((a.grad, b.grad, c.grad), (a2.grad, b2.grad, c2.grad))]
    C("ring_attention_simulated(N=12, world 3, zigzag, causal).backward() (ok: grads = reference)", ring_grad, ok=lambda r: all(x is True for x in r) or str(r))
    C("ring_attention_simulated(world_size=1) (ok)", lambda: RA.ring_attention_simulated(qs, ks, vs, 1, True),
      ok=lambda r: close(r[0] if isinstance(r, tuple) else r, ref_attn(qs, ks, vs, True)[0], 1e-9))
    C("ring_attention(q, k, v) without a process group", lambda: RA.ring_attention(qs, ks, vs), err=["group", "init", "distributed"], exc=(RuntimeError,))
    C("overlap_block_length(flops=0, bandwidth=1e9)", lambda: RA.overlap_block_length(0.0, 1e9), err="flops")
    C("overlap_block_length(1e12, bandwidth=0)", lambda: RA.overlap_block_length(1e12, 0.0), err="bandwidth")
    C("overlap_block_length(1e12, bandwidth=nan)", lambda: RA.overlap_block_length(1e12, NAN), err="bandwidth")
    C("overlap_block_length(-1e12, 1e9)", lambda: RA.overlap_block_length(-1e12, 1e9), err="flops")
    C("overlap_block_length(1e12, 1e9, bytes_per_el=0)", lambda: RA.overlap_block_length(1e12, 1e9, bytes_per_el=0), err="bytes_per_el")
    C("overlap_block_length(1e12, 1e9, kv_heads_ratio=nan)", lambda: RA.overlap_block_length(1e12, 1e9, kv_heads_ratio=NAN), err="kv_heads_ratio")
    C("overlap_block_length(1e12, 1e9, kv_heads_ratio=0)", lambda: RA.overlap_block_length(1e12, 1e9, kv_heads_ratio=0.0), err="kv_heads_ratio")
    qg, kg, vg = R(1, 2, 6, 8), R(1, 2, 6, 8, seed=1), R(1, 2, 6, 8, seed=2)
    C("ring_gpt_attention(world_size=0)", lambda: RA.ring_gpt_attention(qg, kg, vg, True, world_size=0), err="world_size")
    C("ring_gpt_attention(T=6, world_size=4) (cannot split: one block, ok)", lambda: RA.ring_gpt_attention(qg, kg, vg, True, world_size=4),
      ok=lambda r: close(r, ref_attn(qg, kg, vg, True)[0], 1e-4))
    C("case_tensors(shape=(1, 2))", lambda: RA.case_tensors((1, 2)), err="shape")
    C("case_tensors((1, 4, 8, 4), hkv=3)", lambda: RA.case_tensors((1, 4, 8, 4), hkv=3), err="hkv")
    C("case_tensors((1, 4, 8, 4), dtype=torch.int64)", lambda: RA.case_tensors((1, 4, 8, 4), dtype=torch.int64), err="dtype")
    C("check_against_reference([{...}], [], 2) (results missing)", lambda: RA.check_against_reference([dict(shape=(1, 2, 8, 4), causal=True, layout="zigzag", seed=0)], [], 2),
      err=["results", "cases"])
    C("trace_ring_attention(worlds=(0,))", lambda: RA.trace_ring_attention(worlds=(0,)), err="world")
    C("trace_ring_attention(worlds=(2,), n_local=0)", lambda: RA.trace_ring_attention(worlds=(2,), n_local=0), err="n_local")
    C("trace_ring_attention(worlds=(2,), layouts=('bogus',))", lambda: RA.trace_ring_attention(worlds=(2,), layouts=("bogus",)), err="layout")
    C("RingAttentionWidget(P=0)", lambda: RA.RingAttentionWidget(P=0), err="P")
    C("RingAttentionWidget(P=4, layout='bogus')", lambda: RA.RingAttentionWidget(P=4, layout="bogus"), err="layout")
    C("profile_ring(worlds=(0,))", lambda: RA.profile_ring(worlds=(0,)), err="world")
    C("launch(fn, world_size=0)", lambda: RA.launch(RA.ring_fault_worker, 0), err="world_size")
    C("launch(fn, 2, timeout=0)", lambda: RA.launch(RA.ring_fault_worker, 2, timeout=0), err="timeout")
    C("launch(fn, 2, timeout=nan)", lambda: RA.launch(RA.ring_fault_worker, 2, timeout=NAN), err="timeout")
    C("launch(fn, 2, threads=0)", lambda: RA.launch(RA.ring_fault_worker, 2, threads=0), err="threads")
    C("launch(fn, 2, backend='bogus')", lambda: RA.launch(RA.ring_fault_worker, 2, backend="bogus"), err="backend")
    C("launch(None, 2)", lambda: RA.launch(None, 2), err="fn")
    C("launch(lambda r, w: 0, 2) (not picklable)", lambda: RA.launch(lambda r, w: 0, 2, timeout=30), err=["fn", "pickl", "module"], exc=(RuntimeError,))
    C("launch(ring_fault_worker, 2, args=('raise', 1)) (error says which rank and why)", lambda: RA.launch(RA.ring_fault_worker, 2, args=("raise", 1), timeout=60),
      err=["rank 1"], exc=(RuntimeError,), timeout=120)
    import ring_helpers
    C("launch(worker with unequal shard lengths per rank, 2)", lambda: RA.launch(ring_helpers.unequal_shards, 2, timeout=60),
      err=["shard", "length", "n"], exc=(RuntimeError,), timeout=120)
