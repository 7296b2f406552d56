from cases_common import *

def loop_ref(x, w_gate, w_up, w_down, offsets):
    out = torch.zeros(x.shape[0], w_down.shape[-1], dtype=torch.float64)
    for e in range(w_gate.shape[0]):
        a, b = int(offsets[e]), int(offsets[e + 1])
        xe = x[a:b].double()
        out[a:b] = (torch.nn.functional.silu(xe @ w_gate[e].double()) * (xe @ w_up[e].double())) @ w_down[e].double()
    return out

def build(C):
    from llmlab import moe as M
    C_, F_, E = 8, 12, 4
    torch.manual_seed(0)
    x = R(5, C_)
    wg, wu, wd = R(C_, F_, seed=1), R(C_, F_, seed=2), R(F_, C_, seed=3)
    C("swiglu(x (5,8), w_gate (9,12))", lambda: M.swiglu(x, R(9, F_), wu, wd), err=["w_gate", "shape"])
    C("swiglu(x, w_gate, w_up (8,10), w_down)", lambda: M.swiglu(x, wg, R(C_, 10), wd), err=["w_up", "shape"])
    C("swiglu(None, ...)", lambda: M.swiglu(None, wg, wu, wd), err="x")
    C("swiglu(x, w_gate, w_up, w_down (11, 8))", lambda: M.swiglu(x, wg, wu, R(11, C_)), err=["w_down", "shape"])
    for a, nm in [((0, 4), "d_model"), ((4, -1), "d_ff"), ((4.5, 4), "d_model")]:
        C(f"SwiGLU{a}", lambda a=a: M.SwiGLU(*a), err=nm)
    for a, nm in [((0, 4, 8), "n_experts"), ((2, 0, 8), "d_model"), ((2, 4, 0), "d_ff")]:
        C(f"Experts{a}", lambda a=a: M.Experts(*a), err=nm)
    C("Experts(2, 4, 8)[5]", lambda: M.Experts(2, 4, 8)[5], err=["expert", "index", "5"], exc=(IndexError,))
    for kw, nm in [(dict(top_k=0), "top_k"), (dict(top_k=5), "top_k"), (dict(top_k=-1), "top_k"), (dict(gating="bogus"), "gating"),
                   (dict(bias_rate=NAN), "bias_rate"), (dict(bias_rate=-1.0), "bias_rate"), (dict(n_experts=0, top_k=1), "n_experts"),
                   (dict(top_k=2.0), "top_k")]:
        C(f"Router(8, **{{n_experts: 4, top_k: 2, **{kw}}})", lambda kw=kw: M.Router(C_, **{**dict(n_experts=E, top_k=2), **kw}), err=nm)
    r = M.Router(C_, E, 2)
    C("Router(8,4,2)(x (5, 7))", lambda: r(R(5, 7)), err=["x", "d_model", "8"])
    C("Router(8,4,2)(x (0, 8)) (zero tokens: ok)", lambda: r(torch.zeros(0, C_)), ok=lambda o: o.indices.shape == (0, 2))
    C("Router(8,4,2)(int x)", lambda: r(torch.ones(5, C_, dtype=torch.long)), err="x")
    C("Router(8,4,2,'sigmoid')(x) (ok: gates sum to 1)", lambda: M.Router(C_, E, 2, "sigmoid")(x), ok=lambda o: close(o.gates.sum(-1), torch.ones(5)))
    rb = M.Router(C_, E, 2, bias_balancing=True)
    C("Router.update_bias(load (3,))", lambda: rb.update_bias(torch.ones(3)), err="load")
    C("Router.update_bias(load with NaN)", lambda: rb.update_bias(torch.tensor([1.0, NAN, 1.0, 1.0])), err="load",
      post=lambda: "NaN written into the router bias" if any(not torch.isfinite(b).all() for b in rb.buffers()) else None)
    C("Router.update_bias(zero load: nothing routed) (ok: finite bias)", lambda: rb.update_bias(torch.zeros(E)), err="load",
      ok=lambda _: all(torch.isfinite(b).all() for b in rb.buffers()) or "non-finite bias")
    mk = lambda **k: M.MoE(**{**dict(d_model=C_, d_ff=F_, n_experts=E, top_k=2, backend="torch"), **k})
    for kw, nm in [(dict(d_model=0), "d_model"), (dict(d_ff=0), "d_ff"), (dict(capacity_factor=0.0), "capacity_factor"),
                   (dict(capacity_factor=NAN), "capacity_factor"), (dict(capacity_factor=-1.0), "capacity_factor"),
                   (dict(balance_coef=NAN), "balance_coef"), (dict(z_coef=-1.0), "z_coef"), (dict(backend="bogus"), "backend"),
                   (dict(n_shared=-1), "n_shared"), (dict(top_k=5), "top_k"), (dict(bias_rate=INF, bias_balancing=True), "bias_rate"),
                   (dict(capacity_factor=INF), "capacity_factor")]:
        C(f"MoE(**{kw})", lambda kw=kw: mk(**kw), err=nm)
    moe = mk(capacity_factor=1.0)
    def zero_tok():
        out, st = moe(torch.zeros(0, C_)); return out, st
    C("MoE(x (0, 8)) (zero tokens: empty out, finite 0 losses)", zero_tok,
      ok=lambda r: (r[0].shape == (0, C_) and float(r[1]["aux_loss"]) == 0.0) or f"aux_loss {r[1]['aux_loss']}")
    C("MoE(x (2, 0, 8)) (zero tokens, 3-D)", lambda: moe(torch.zeros(2, 0, C_)), ok=lambda r: r[0].shape == (2, 0, C_))
    def zero_tok_grad():
        m2 = mk(); xx = torch.zeros(0, C_, requires_grad=True); out, st = m2(xx); (out.sum() + st["aux_loss"]).backward()
        return [p.grad for p in m2.parameters() if p.grad is not None]
    C("MoE(zero tokens).backward() (grads zero/finite)", zero_tok_grad, ok=lambda gs: all(is_zero(g) for g in gs) or "nonzero grads")
    C("MoE(x (5, 7))", lambda: moe(R(5, 7)), err=["x", "d_model", "8"])
    C("MoE(x 1-D (8,))", lambda: moe(R(C_)), err="x", ok=lambda r: r[0].shape == (C_,))
    C("MoE(int x)", lambda: moe(torch.ones(5, C_, dtype=torch.long)), err="x")
    C("MoE.capacity(-1)", lambda: moe.capacity(-1), err="n_tokens")
    C("MoE.capacity(0) (ok: 0 or 1)", lambda: moe.capacity(0), ok=lambda r: r in (0, 1))
    def moe_vs_ref():
        torch.manual_seed(3); m3 = mk(); m3.eval(); xx = R(6, C_)
        return m3(xx)[0], M.moe_ref(xx, m3.router, m3.experts)
    C("MoE(x) vs moe_ref (ok: equal)", moe_vs_ref, ok=lambda r: close(r[0], r[1], 1e-4))
    C("MoE(x*1e4) (huge activations: finite z_loss value)", lambda: moe(R(5, C_) * 1e4)[1]["z_loss"], ok=lambda r: bool(torch.isfinite(r)))
    C("MoE(capacity_factor=1e-9)(x) (ok: capacity >= 1, finite)", lambda: mk(capacity_factor=1e-9)(x), ok=lambda r: bool(torch.isfinite(r[0]).all()))
    def bias_zero_tokens():
        m7 = mk(bias_balancing=True); m7.train(); m7(torch.zeros(0, C_)); return [b for b in m7.buffers()]
    C("MoE(bias_balancing) training forward on zero tokens (ok: bias finite)", bias_zero_tokens, ok=lambda bs: all(torch.isfinite(b).all() for b in bs))
    C("MoE(x (2,3,8)) 3-D (ok: same as flattened)", lambda: (moe.eval()(R(2, 3, C_))[0], moe.eval()(R(2, 3, C_).reshape(6, C_))[0].reshape(2, 3, C_)),
      ok=lambda r: close(r[0], r[1], 1e-5))
    C("load_balance_loss(empty (0,4), empty (0,2), 4) (zero tokens -> 0)",
      lambda: M.load_balance_loss(torch.zeros(0, E), torch.zeros(0, 2, dtype=torch.long), E), ok=lambda r: float(r) == 0.0 or f"{r}")
    C("load_balance_loss(probs (5,4), idx, n_experts=3)", lambda: M.load_balance_loss(torch.softmax(R(5, E), -1), torch.randint(0, E, (5, 2)), 3), err="n_experts")
    C("load_balance_loss(..., alpha=nan)", lambda: M.load_balance_loss(torch.softmax(R(5, E), -1), torch.randint(0, E, (5, 2)), E, alpha=NAN), err="alpha")
    C("load_balance_loss(idx with 7 >= E)", lambda: M.load_balance_loss(torch.softmax(R(5, E), -1), torch.full((5, 2), 7), E), err=["expert_indices", "indices"])
    C("load_balance_loss(probs 5 rows, idx 4 rows)", lambda: M.load_balance_loss(torch.softmax(R(5, E), -1), torch.zeros(4, 2, dtype=torch.long), E), err=["expert_indices", "router_probs", "rows"])
    C("load_balance_loss(uniform) (ok: alpha)", lambda: M.load_balance_loss(torch.full((4, E), 0.25), torch.arange(4).view(4, 1), E, alpha=0.01),
      ok=lambda r: abs(float(r) - 0.01) < 1e-7 or f"{float(r)}")
    C("z_loss(empty (0,4)) (zero tokens -> 0)", lambda: M.z_loss(torch.zeros(0, E)), ok=lambda r: float(r) == 0.0 or f"{r}")
    C("z_loss(logits*1e4) (ok: exact)", lambda: M.z_loss(R(3, E) * 1e4), ok=lambda r: close(r, (torch.logsumexp(R(3, E).double() * 1e4, -1) ** 2).mean(), 1e-6))
    C("z_loss(None)", lambda: M.z_loss(None), err="router_logits")
    C("dispatch(indices with 4 >= n_experts=4)", lambda: M.dispatch(torch.tensor([[0, 4]]), E), err="indices")
    C("dispatch(indices with -1)", lambda: M.dispatch(torch.tensor([[0, -1]]), E), err="indices")
    C("dispatch(indices, capacity=-1)", lambda: M.dispatch(torch.tensor([[0, 1]]), E, capacity=-1), err="capacity")
    C("dispatch(indices, capacity=0) (ok: all dropped, or refuse)", lambda: M.dispatch(torch.tensor([[0, 1], [2, 3]]), E, capacity=0), err="capacity",
      ok=lambda d: (d.token.numel() == 0 and int(d.dropped.sum() if d.dropped.dtype == torch.bool else d.dropped) >= 4 - 0) or f"{d}")
    C("dispatch(float indices)", lambda: M.dispatch(torch.tensor([[0.0, 1.0]]), E), err="indices")
    C("dispatch(indices (0, 2)) (ok: empty, offsets 0)", lambda: M.dispatch(torch.zeros(0, 2, dtype=torch.long), E),
      ok=lambda d: d.offsets.tolist() == [0] * (E + 1) or f"{d.offsets}")
    C("dispatch(indices, n_experts=0)", lambda: M.dispatch(torch.tensor([[0, 1]]), 0), err="n_experts")
    C("dispatch(tokens 0..2 -> experts) (ok: offsets/load)", lambda: M.dispatch(torch.tensor([[1, 0], [1, 3], [2, 1]]), E),
      ok=lambda d: (d.offsets.tolist() == [0, 1, 4, 5, 6] and d.load.tolist() == [1, 3, 1, 1]) or f"{d.offsets} {d.load}")
    ex = M.Experts(E, C_, F_)
    xs = R(6, C_)
    for off, lab in [([0, 2, 4, 5, 7], "last != M"), ([0, 3, 2, 5, 6], "decreasing"), ([0, 2, 6], "length != E+1"),
                     ([0.0, 2.0, 4.0, 5.0, 6.0], "float"), ([1, 2, 4, 5, 6], "first != 0"), ([0, 2, 4, 5, 60], "out of range")]:
        C(f"expert_loop(xs (6,8), experts, offsets={off}) ({lab})", lambda off=off: M.expert_loop(xs, ex, torch.tensor(off)), err="offsets")
    C("expert_loop(xs (6,7), experts C=8, offsets)", lambda: M.expert_loop(R(6, 7), ex, torch.tensor([0, 2, 4, 5, 6])), err=["xs", "d_model"])
    C("expert_loop(xs, experts, offsets) (ok vs loop)", lambda: M.expert_loop(xs, ex, torch.tensor([0, 2, 2, 5, 6])),
      ok=lambda r: close(r, loop_ref(xs, ex.w_gate if hasattr(ex, "w_gate") else ex.w1, ex.w_up if hasattr(ex, "w_up") else ex.w3, ex.w_down if hasattr(ex, "w_down") else ex.w2, [0, 2, 2, 5, 6]), 1e-4))
    C("moe_ref(x, router, experts, capacity=-1)", lambda: M.moe_ref(x, r, M.Experts(E, C_, F_), capacity=-1), err="capacity")
    C("moe_ref(x (0,8), ...) (ok: empty)", lambda: M.moe_ref(torch.zeros(0, C_), r, M.Experts(E, C_, F_)), ok=lambda o: o.shape == (0, C_))
    C("route_snapshot(moe, x, digits=-1)", lambda: M.route_snapshot(moe, x, digits=-1), err="digits")
    C("route_snapshot(moe, x, capacity_factor=nan)", lambda: M.route_snapshot(moe, x, capacity_factor=NAN), err="capacity_factor")
    C("route_snapshot(moe, x (5,7))", lambda: M.route_snapshot(moe, R(5, 7)), err=["x", "d_model"])
    C("route_snapshot(None, x)", lambda: M.route_snapshot(None, x), err="moe")
    snap = M.route_snapshot(moe, x)
    C("trace_moe(tokens 5, snapshots [1], steps [0, 1]) (length mismatch)", lambda: M.trace_moe(["a"] * 5, [snap], [0, 1], torch.ones(2, E), E, 2), err=["steps", "snapshots"])
    C("trace_moe(tokens 3 for 5 routed tokens)", lambda: M.trace_moe(["a"] * 3, [snap], [0], torch.ones(1, E), E, 2), err="tokens")
    C("trace_moe(load_history with 3 experts)", lambda: M.trace_moe(["a"] * 5, [snap], [0], torch.ones(1, 3), E, 2), err="load_history")
    C("trace_moe(load_history all zero) (no NaN shares)", lambda: M.trace_moe(["a"] * 5, [snap], [0], torch.zeros(1, E), E, 2), err="load_history",
      ok=lambda t: True)
    C("MoEWidget({})", lambda: M.MoEWidget({}), err="trace")
    C("moe_mlp(None)", lambda: M.moe_mlp(None), err="config")
    from llmlab import gpt
    C("moe_mlp(GPTConfig(mlp_kwargs={'n_experts': 0}))", lambda: M.moe_mlp(gpt.GPTConfig(d_model=16, n_head=2, mlp="moe", mlp_kwargs={"n_experts": 0})), err="n_experts")
    C("moe_mlp(GPTConfig(mlp_kwargs={'bogus': 1}))", lambda: M.moe_mlp(gpt.GPTConfig(d_model=16, n_head=2, mlp="moe", mlp_kwargs={"bogus": 1})), err="bogus")
    def gpt_moe():
        torch.manual_seed(0)
        g = gpt.GPT(gpt.GPTConfig(vocab_size=16, ctx_len=8, n_layer=1, n_head=2, d_model=16, mlp="moe", mlp_kwargs=dict(n_experts=4, top_k=2)))
        return g(torch.randint(0, 16, (2, 8)), torch.randint(0, 16, (2, 8)))[1]
    C("GPT(mlp='moe') forward with targets (ok: finite loss)", gpt_moe, ok=lambda l: bool(torch.isfinite(l)))
    def f64_triton():
        torch.manual_seed(0); m = mk(backend="triton").double(); m2 = mk(backend="torch").double(); m2.load_state_dict(m.state_dict())
        xx = R(6, C_, dtype=torch.float64)
        return m(xx)[0], m2(xx)[0]
    C("MoE(backend='triton') in float64 [interpreter] (refuse dtype or agree with torch)", f64_triton, err="dtype",
      ok=lambda r: close(r[0], r[1], 1e-9))
    def f32_triton():
        torch.manual_seed(0); m = mk(backend="triton"); m2 = mk(backend="torch"); m2.load_state_dict(m.state_dict())
        xx = R(6, C_)
        return m(xx)[0], m2(xx)[0]
    C("MoE(backend='triton') float32 [interpreter] (ok: agrees with torch)", f32_triton, ok=lambda r: close(r[0], r[1], 1e-3))
