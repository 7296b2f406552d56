from cases_common import *

def attn_shape_cases(C, label, f, D=8):
    "Shape/dtype/device cases shared by every attention entry point: f(q, k, v, causal) -> out or (out, lse)."
    q, k, v = R(1, 2, 4, D), R(1, 2, 6, D, seed=1), R(1, 2, 6, D, seed=2)
    C(f"{label}(3-D q, k, v)", lambda: f(q[0], k[0], v[0], False), err="q")
    C(f"{label}(q D={D}, k D={D//2}, v D={D//2})", lambda: f(q, k[..., :D // 2], v[..., :D // 2], False), err=["k", "D", "head dim", "last dim"])
    C(f"{label}(k Nk=6, v Nk=5)", lambda: f(q, k, v[:, :, :5], False), err="v")
    C(f"{label}(q H=4, k/v Hkv=3)", lambda: f(R(1, 4, 4, D), R(1, 3, 6, D), R(1, 3, 6, D), False), err=["H", "head"])
    C(f"{label}(q B=2, k B=1)", lambda: f(R(2, 2, 4, D), k, v, False), err=["B", "batch", "k"])
    C(f"{label}(int64 q, k, v)", lambda: f(q.long(), k.long(), v.long(), False), err="dtype")
    C(f"{label}(q float64, k float32)", lambda: f(q.double(), k, v, False), err="dtype")
    C(f"{label}(None, k, v)", lambda: f(None, k, v, False), err="q")
    C(f"{label}(k on 'meta' device)", lambda: f(q, k.to("meta"), v, False), err=["device", "meta"])
    C(f"{label}(q, k, v, causal='yes')", lambda: f(q, k, v, "yes"), err="causal", ok=None)

def first(r): return r[0] if isinstance(r, tuple) else r

def build(C):
    from llmlab import flash_attention as F
    q, k, v = R(1, 2, 4, 8), R(1, 2, 2, 8, seed=1), R(1, 2, 2, 8, seed=2)
    exp, exp_lse = ref_attn(q, k, v, causal=True)
    # fully masked rows: Nq=4 > Nk=2, causal bottom-right -> rows 0, 1 see nothing
    C("attention_ref(q Nq=4, k Nk=2, causal=True) (masked rows -> 0)", lambda: F.attention_ref(q, k, v, causal=True), ok=lambda r: close(first(r), exp))
    C("online_softmax([[-inf, -inf, -inf]]) (-> zeros, lse -inf)", lambda: F.online_softmax(torch.full((1, 3), -INF)),
      ok=lambda r: (is_zero(r[0]) and all_neg_inf(r[1])) or "not (0, -inf)", finite=False)
    C("online_softmax(x (2,0)) (empty row: lse -inf)", lambda: F.online_softmax(torch.zeros(2, 0)),
      err=["x", "empty"], ok=lambda r: r[0].shape == (2, 0) and all_neg_inf(r[1]), finite=False)
    for b in (0, -1, 2.5, None):
        C(f"online_softmax(x, block={b!r})", lambda b=b: F.online_softmax(R(2, 5), block=b), err="block")
    C("online_softmax(x with NaN)", lambda: F.online_softmax(torch.tensor([[1.0, NAN]])), err="x")
    C("online_softmax(x*1e4, block=2) (huge; ok vs torch)", lambda: F.online_softmax(R(3, 7) * 1e4, block=2),
      ok=lambda r: close(r[0], torch.softmax(R(3, 7).double() * 1e4, -1)))
    C("online_softmax(x, block=100 > width) (ok)", lambda: F.online_softmax(R(3, 7), block=100), ok=lambda r: close(r[0], torch.softmax(R(3, 7), -1)))
    C("online_softmax(int tensor)", lambda: F.online_softmax(torch.ones(2, 3, dtype=torch.long)), err="x")
    C("flash_fwd_torch(causal, Nq=4 > Nk=2) (masked rows: out 0, lse -inf)", lambda: F.flash_fwd_torch(q, k, v, causal=True, block_q=2, block_k=2),
      ok=lambda r: (close(r[0], exp) is True and close(r[1], exp_lse) is True) or f"{close(r[0], exp)} / lse {close(r[1], exp_lse)}", finite=False)
    for kw, nm in [(dict(block_q=0), "block_q"), (dict(block_k=-1), "block_k"), (dict(block_q=2.5), "block_q"),
                   (dict(block_k=None), "block_k"), (dict(scale=NAN), "scale"), (dict(scale=INF), "scale"), (dict(scale="x"), "scale")]:
        C(f"flash_fwd_torch(q, k, v, **{kw})", lambda kw=kw: F.flash_fwd_torch(q, k, v, **kw), err=nm)
    C("flash_fwd_torch(q, k, v, scale=0) (ok: mean of v)", lambda: F.flash_fwd_torch(q, k, v, scale=0.0)[0],
      err="scale", ok=lambda r: close(r, v.mean(-2, keepdim=True).expand_as(r)))
    q5, k5, v5 = R(1, 2, 5, 8), R(1, 2, 7, 8, seed=3), R(1, 2, 7, 8, seed=4)
    C("flash_fwd_torch(Nq=5, Nk=7, block 3x2, causal) (ok)", lambda: F.flash_fwd_torch(q5, k5, v5, True, block_q=3, block_k=2),
      ok=lambda r: close(r[0], ref_attn(q5, k5, v5, True)[0]))
    C("flash_fwd_torch(Nk=0) (no keys: out 0, lse -inf)", lambda: F.flash_fwd_torch(q, k[:, :, :0], v[:, :, :0]),
      err=["Nk", "k", "empty"], ok=lambda r: (is_zero(r[0]) and all_neg_inf(r[1])) or "not (0, -inf)", finite=False)
    C("flash_fwd_torch(Nq=0) (ok: empty)", lambda: F.flash_fwd_torch(q[:, :, :0], k, v), err=["Nq", "q", "empty"], ok=lambda r: r[0].shape == (1, 2, 0, 8))
    C("flash_fwd_torch(B=0) (ok: empty)", lambda: F.flash_fwd_torch(q[:0], k[:0], v[:0]), err=["B", "empty"], ok=lambda r: r[0].shape == (0, 2, 4, 8))
    C("flash_fwd_torch(D=0)", lambda: F.flash_fwd_torch(q[..., :0], k[..., :0], v[..., :0]), err=["D", "head", "dim"])
    qn = R(1, 4, 2, 8).transpose(1, 2)
    C("flash_fwd_torch(non-contiguous q) (ok)", lambda: F.flash_fwd_torch(qn, k, v), ok=lambda r: close(r[0], ref_attn(qn, k, v)[0]))
    C("flash_fwd_torch(GQA H=4, Hkv=2, causal Nq>Nk) (ok)", lambda: F.flash_fwd_torch(R(1, 4, 4, 8), k, v, True, block_q=2, block_k=2),
      ok=lambda r: close(r[0], ref_attn(R(1, 4, 4, 8), k, v, True)[0]), finite=False)
    attn_shape_cases(C, "flash_fwd_torch", lambda q, k, v, c: F.flash_fwd_torch(q, k, v, causal=c))
    attn_shape_cases(C, "flash_attention", lambda q, k, v, c: F.flash_attention(q, k, v, causal=c, backend="torch"))
    C("flash_attention(q, k, v, backend='bogus')", lambda: F.flash_attention(q, k, v, backend="bogus"), err="backend")
    C("flash_attention(q, k, v, backend=None)", lambda: F.flash_attention(q, k, v, backend=None), err="backend")
    C("flash_attention(causal Nq>Nk, return_lse) backend='torch' (0, -inf)", lambda: F.flash_attention(q, k, v, True, backend="torch", return_lse=True),
      ok=lambda r: (close(r[0], exp) is True and close(r[1], exp_lse) is True) or "masked rows wrong", finite=False)
    def grad_masked(backend):
        qq, kk, vv = (t.clone().requires_grad_() for t in (q, k, v))
        o = F.flash_attention(qq, kk, vv, True, backend=backend); o.sum().backward()
        return qq.grad, kk.grad, vv.grad
    C("flash_attention(causal Nq>Nk).backward() backend='torch' (finite grads, 0 for masked q rows)", lambda: grad_masked("torch"),
      ok=lambda r: is_zero(r[0][:, :, :2]) or "masked rows get gradient")
    C("flash_attention(q*1e3, k, v) (huge scores; ok)", lambda: F.flash_attention(q * 1e3, k, v, backend="torch"),
      ok=lambda r: close(r, ref_attn(q * 1e3, k, v)[0], 1e-3))
    q16, k16, v16 = R(1, 2, 32, 16), R(1, 2, 16, 16, seed=1), R(1, 2, 16, 16, seed=2)
    e16, l16 = ref_attn(q16, k16, v16, True)
    C("flash_attention(causal Nq=32>Nk=16, D=16, return_lse) backend='triton' [interpreter] (0, -inf)",
      lambda: F.flash_attention(q16, k16, v16, True, backend="triton", return_lse=True),
      ok=lambda r: (close(r[0], e16, 1e-3) is True and close(r[1], l16, 1e-3) is True) or "masked rows wrong", finite=False)
    def grad16():
        qq, kk, vv = (t.clone().requires_grad_() for t in (q16, k16, v16))
        o = F.flash_attention(qq, kk, vv, True, backend="triton"); o.sum().backward()
        return qq.grad, kk.grad, vv.grad
    C("flash_attention(causal Nq=32>Nk=16, D=16).backward() backend='triton' [interpreter] (masked q rows: grad 0)", grad16,
      ok=lambda r: is_zero(r[0][:, :, :16]) or "masked rows get gradient")
    # backward
    o, lse = F.flash_fwd_torch(q, k, v, True)
    do = R(1, 2, 4, 8, seed=9)
    C("flash_bwd_torch(dout of wrong shape)", lambda: F.flash_bwd_torch(q, k, v, o, lse, do[:, :, :2], True), err="dout")
    C("flash_bwd_torch(lse of wrong shape)", lambda: F.flash_bwd_torch(q, k, v, o, lse[..., :2], do, True), err="lse")
    C("flash_bwd_torch(lse int)", lambda: F.flash_bwd_torch(q, k, v, o, lse.long(), do, True), err="lse")
    C("flash_bwd_torch(dlse of wrong shape)", lambda: F.flash_bwd_torch(q, k, v, o, lse, do, True, dlse=R(3)), err="dlse")
    C("flash_bwd_torch(block_k=0)", lambda: F.flash_bwd_torch(q, k, v, o, lse, do, True, block_k=0), err="block_k")
    def bwd_ok():
        qq, kk, vv = (t.double().clone().requires_grad_() for t in (q, k, v))
        ro, _ = ref_attn(qq, kk, vv, True); ro.backward(do.double())
        g = F.flash_bwd_torch(q.double(), k.double(), v.double(), o.double(), lse.double(), do.double(), True, block_q=2, block_k=2)
        return [close(a, b) for a, b in zip(g, (qq.grad, kk.grad, vv.grad))]
    C("flash_bwd_torch(causal Nq>Nk) (ok: matches autograd of the reference)", bwd_ok, ok=lambda r: all(x is True for x in r) or str(r))
    C("gpt_flash_attention(3-D q)", lambda: F.gpt_flash_attention(q[0], k[0], v[0], True), err="q")
    C("gpt_flash_attention(q, k, v, causal) (ok)", lambda: F.gpt_flash_attention(q, k, v, True), ok=lambda r: close(r, exp))
    for kw, nm in [(dict(N=0, d=8), "N"), (dict(N=-1, d=8), "N"), (dict(N=64, d=0), "d"), (dict(N=64, d=8, block_q=0), "block_q"),
                   (dict(N=64, d=8, elem_bytes=0), "elem_bytes"), (dict(N=2.5, d=8), "N")]:
        C(f"attention_hbm_bytes(**{kw})", lambda kw=kw: F.attention_hbm_bytes(**kw), err=nm)
    C("causal_mask(-1, 2)", lambda: F.causal_mask(-1, 2), err="Nq")
    C("causal_mask(2, 'x')", lambda: F.causal_mask(2, "x"), err="Nk")
    C("peak_cpu_memory(None)", lambda: F.peak_cpu_memory(None), err="fn")
    for kw, nm in [(dict(N=0), "N"), (dict(d=0), "d"), (dict(blocks=((0, 8),)), "blocks"), (dict(blocks=()), "blocks"),
                   (dict(N=8, blocks=((16, 16),)), "blocks"), (dict(elem_bytes=-2), "elem_bytes")]:
        C(f"trace_flash_attention(**{kw})", lambda kw=kw: F.trace_flash_attention(**kw), err=nm,
          ok=(lambda r: isinstance(r, dict)) if kw.get("N") == 8 else None)
    def property_masked_rows():
        "Random shapes (Nq >= Nk, causal, GQA): every attention path agrees with the float64 reference, masked rows 0 / lse -inf."
        from llmlab import gpt, ring_attention as RA
        g = torch.Generator().manual_seed(123); bad = []
        for t in range(6):
            Nk = int(torch.randint(1, 6, (1,), generator=g)); Nq = Nk + int(torch.randint(0, 5, (1,), generator=g))
            Hkv = int(torch.randint(1, 3, (1,), generator=g)); H = Hkv * int(torch.randint(1, 3, (1,), generator=g))
            q = torch.randn(1, H, Nq, 8, generator=g); k = torch.randn(1, Hkv, Nk, 8, generator=g); v = torch.randn(1, Hkv, Nk, 8, generator=g)
            e, el = ref_attn(q, k, v, True)
            paths = {"gpt.attention_ref": lambda: gpt.attention_ref(q, k, v, True), "gpt.attention_sdpa": lambda: gpt.attention_sdpa(q, k, v, True),
                     "flash_fwd_torch": lambda: F.flash_fwd_torch(q, k, v, True, block_q=2, block_k=3),
                     "flash_attention(torch)": lambda: F.flash_attention(q, k, v, True, backend="torch", return_lse=True),
                     "F.attention_ref": lambda: F.attention_ref(q, k, v, True),
                     "ring.local_attention": lambda: RA.local_attention(q, k, v, True, backend="torch")}
            if H == Hkv: paths["ring.block_attention_ref"] = lambda: RA.block_attention_ref(q, k, v, True)
            for name, fn in paths.items():
                try: r = fn()
                except Exception as ex: bad.append(f"{name} {tuple(q.shape)}/{tuple(k.shape)}: {type(ex).__name__}: {str(ex)[:60]}"); continue
                out, lse = (r if isinstance(r, tuple) else (r, None))
                c = close(out, e, 1e-4)
                if c is not True: bad.append(f"{name} Nq={Nq} Nk={Nk}: out {c}")
                if lse is not None and close(lse, el, 1e-4) is not True: bad.append(f"{name} Nq={Nq} Nk={Nk}: lse {close(lse, el, 1e-4)}")
        return True if not bad else "; ".join(bad[:4]) + f" ({len(bad)} in all)"
    C("property: 6 random causal GQA shapes (Nq >= Nk) through 7 attention paths (all equal the reference, masked rows 0/-inf)",
      property_masked_rows, ok=lambda r: r, finite=False)
    C("FlashAttentionWidget(N=0)", lambda: F.FlashAttentionWidget(N=0), err="N")
