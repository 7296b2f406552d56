from cases_common import *
from cases_flash_attention import attn_shape_cases

def build(C):
    from llmlab.kernels import flash_attention as K
    fwd = lambda q, k, v, c, s=None: K.flash_fwd_triton(q, k, v, c, s if s is not None else 0.25)
    q, k, v = R(1, 2, 16, 16), R(1, 2, 16, 16, seed=1), R(1, 2, 16, 16, seed=2)
    attn_shape_cases(C, "flash_fwd_triton", lambda q, k, v, c: fwd(q, k, v, c), D=16)
    C("flash_fwd_triton(q H=4, k/v Hkv=3) (issue: reads past K/V)", lambda: fwd(R(1, 4, 16, 16), R(1, 3, 16, 16), R(1, 3, 16, 16), False), err=["H", "head"])
    C("flash_fwd_triton(q, k, v, False) (ok)", lambda: fwd(q, k, v, False), ok=lambda r: close(r[0], ref_attn(q, k, v)[0], 1e-3))
    C("flash_fwd_triton(causal, Nq=16 > Nk=8) (masked rows: 0, lse -inf)", lambda: fwd(q, k[:, :, :8], v[:, :, :8], True),
      ok=lambda r: (close(r[0], ref_attn(q, k[:, :, :8], v[:, :, :8], True)[0], 1e-3) is True and close(r[1], ref_attn(q, k[:, :, :8], v[:, :, :8], True)[1], 1e-3) is True) or "masked rows wrong", finite=False)
    C("flash_fwd_triton(Nq=5, Nk=7, causal) (ok: ragged)", lambda: fwd(q[:, :, :5], k[:, :, :7], v[:, :, :7], True),
      ok=lambda r: close(r[0], ref_attn(q[:, :, :5], k[:, :, :7], v[:, :, :7], True)[0], 1e-3))
    qn = R(1, 16, 2, 16).transpose(1, 2)
    C("flash_fwd_triton(non-contiguous q) (ok)", lambda: fwd(qn, k, v, False), ok=lambda r: close(r[0], ref_attn(qn, k, v)[0], 1e-3))
    C("flash_fwd_triton(float64) (refuse or exact)", lambda: fwd(q.double(), k.double(), v.double(), False), err="dtype",
      ok=lambda r: close(r[0], ref_attn(q, k, v)[0], 1e-6))
    C("flash_fwd_triton(D=12, not a power of 2)", lambda: fwd(q[..., :12], k[..., :12], v[..., :12], False), err=["D", "head", "power"],
      ok=lambda r: close(r[0], ref_attn(q[..., :12], k[..., :12], v[..., :12])[0], 1e-3))
    C("flash_fwd_triton(D=0)", lambda: fwd(q[..., :0], k[..., :0], v[..., :0], False, 1.0), err=["D", "head"])
    C("flash_fwd_triton(D=512 huge head)", lambda: fwd(R(1, 1, 2, 512), R(1, 1, 2, 512), R(1, 1, 2, 512), False), err=["D", "head"],
      ok=lambda r: close(r[0], ref_attn(R(1, 1, 2, 512), R(1, 1, 2, 512), R(1, 1, 2, 512))[0], 1e-3))
    C("flash_fwd_triton(Nk=0)", lambda: fwd(q, k[:, :, :0], v[:, :, :0], False), err=["Nk", "k", "empty"],
      ok=lambda r: (is_zero(r[0]) and all_neg_inf(r[1])) or "not (0, -inf)", finite=False)
    C("flash_fwd_triton(Nq=0) (ok: empty)", lambda: fwd(q[:, :, :0], k, v, False), err=["Nq", "empty"], ok=lambda r: r[0].shape == (1, 2, 0, 16))
    C("flash_fwd_triton(B=0) (ok: empty)", lambda: fwd(q[:0], k[:0], v[:0], False), err=["B", "empty"], ok=lambda r: r[0].shape == (0, 2, 16, 16))
    C("flash_fwd_triton(scale=nan)", lambda: fwd(q, k, v, False, NAN), err="scale")
    C("flash_fwd_triton(scale=None)", lambda: K.flash_fwd_triton(q, k, v, False, None), err="scale",
      ok=lambda r: close(r[0], ref_attn(q, k, v)[0], 1e-3))
    C("flash_fwd_triton(scale='x')", lambda: K.flash_fwd_triton(q, k, v, False, "x"), err="scale")
    C("flash_fwd_triton(q*100) (huge scores; ok)", lambda: fwd(q * 100, k, v, False), ok=lambda r: close(r[0], ref_attn(q * 100, k, v)[0], 1e-3))
    C("flash_fwd_triton(float16) (ok or refuse)", lambda: fwd(q.half(), k.half(), v.half(), False), err="dtype",
      ok=lambda r: close(r[0].float(), ref_attn(q, k, v)[0], 2e-2))
    # backward
    kk, vv = k[:, :, :8].contiguous(), v[:, :, :8].contiguous()
    o, lse = fwd(q, kk, vv, True)
    do = R(1, 2, 16, 16, seed=7)
    bwd = lambda *a, dlse=None, causal=True: K.flash_bwd_triton(*a, causal, 16 ** -0.5, dlse=dlse)
    C("flash_bwd_triton(do of wrong shape)", lambda: bwd(q, kk, vv, o, lse, do[:, :, :4]), err=["do", "dout"])
    C("flash_bwd_triton(lse of wrong shape)", lambda: bwd(q, kk, vv, o, lse[..., :4], do), err="lse")
    C("flash_bwd_triton(lse float64)", lambda: bwd(q, kk, vv, o, lse.double(), do), err="lse",
      ok=lambda r: all(torch.isfinite(t).all() for t in r))
    C("flash_bwd_triton(o of wrong shape)", lambda: bwd(q, kk, vv, o[:, :1], lse, do), err=["o", "out"])
    C("flash_bwd_triton(dlse of wrong shape)", lambda: bwd(q, kk, vv, o, lse, do, dlse=R(1, 2, 3)), err="dlse")
    C("flash_bwd_triton(k Hkv=3 with H=2)", lambda: bwd(q, R(1, 3, 8, 16), R(1, 3, 8, 16), o, lse, do), err=["H", "head"])
    C("flash_bwd_triton(None lse)", lambda: bwd(q, kk, vv, o, None, do), err="lse")
    def bwd_ok():
        qq, kq, vq = (t.double().clone().requires_grad_() for t in (q, kk, vv))
        ro, _ = ref_attn(qq, kq, vq, True); ro.backward(do.double())
        g = bwd(q, kk, vv, o, lse, do)
        return [close(a, b, 2e-3) for a, b in zip(g, (qq.grad, kq.grad, vq.grad))]
    C("flash_bwd_triton(causal Nq=16 > Nk=8) (ok: matches reference autograd, masked rows 0)", bwd_ok,
      ok=lambda r: all(x is True for x in r) or str(r))
    C("flash_bwd_triton(non-contiguous do) (ok)", lambda: (bwd(q, kk, vv, o, lse, do.transpose(1, 2).contiguous().transpose(1, 2)), bwd(q, kk, vv, o, lse, do)),
      ok=lambda r: all(close(a, b) is True for a, b in zip(r[0], r[1])) or "differs")
