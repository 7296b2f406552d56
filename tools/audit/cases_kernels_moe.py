from cases_common import *
from cases_moe import loop_ref

def gmm_ref(x, w, offsets, transpose_w=False):
    out = torch.zeros(x.shape[0], w.shape[1] if transpose_w else w.shape[2], dtype=torch.float64)
    for e in range(w.shape[0]):
        a, b = int(offsets[e]), int(offsets[e + 1])
        we = w[e].double().T if transpose_w else w[e].double()
        out[a:b] = x[a:b].double() @ we
    return out

def build(C):
    from llmlab.kernels import moe as KM
    M_, K_, N_, E = 6, 16, 16, 3
    x = R(M_, K_); w = R(E, K_, N_, seed=1)
    off = torch.tensor([0, 2, 2, 6])
    C("grouped_mm(x, w, offsets) (ok vs loop)", lambda: KM.grouped_mm(x, w, off), ok=lambda r: close(r, gmm_ref(x, w, off), 1e-4))
    C("grouped_mm(x, w (E,N,K), offsets, transpose_w=True) (ok)", lambda: KM.grouped_mm(x, w.transpose(1, 2).contiguous(), off, transpose_w=True),
      ok=lambda r: close(r, gmm_ref(x, w, off), 1e-4))
    bad_offs = [([0, 2, 40], "ends past M (issue: heap corruption)", 3), ([0, 2, 2, 40], "ends past M", None), ([0, 4, 2, 6], "decreasing", None),
                ([0, 2, 6], "length E", None), ([0, 2, 2, 6, 6], "length E+2", None), ([1, 2, 2, 6], "first != 0", None),
                ([0, 2, 2, 5], "ends before M", None), ([0, -2, 2, 6], "negative", None), ([0, 2, 2, 2**40], "huge", None)]
    for o, lab, m in bad_offs:
        xx = x[:m] if m else x
        C(f"grouped_mm(x ({xx.shape[0]},16), w (3,16,16), offsets={o}) ({lab})", lambda o=o, xx=xx: KM.grouped_mm(xx, w, torch.tensor(o)), err="offsets")
    C("grouped_mm(x, w, offsets float)", lambda: KM.grouped_mm(x, w, off.float()), err="offsets")
    C("grouped_mm(x, w, offsets int32) (ok or refuse)", lambda: KM.grouped_mm(x, w, off.int()), err="offsets", ok=lambda r: close(r, gmm_ref(x, w, off), 1e-4))
    C("grouped_mm(x, w, offsets 2-D)", lambda: KM.grouped_mm(x, w, off.view(2, 2)), err="offsets")
    C("grouped_mm(x, w, offsets=None)", lambda: KM.grouped_mm(x, w, None), err="offsets")
    C("grouped_mm(x K=12, w K=16)", lambda: KM.grouped_mm(R(M_, 12), w, off), err=["x", "K", "columns"])
    C("grouped_mm(x, w 2-D)", lambda: KM.grouped_mm(x, w[0], off), err="w")
    C("grouped_mm(x 1-D, w)", lambda: KM.grouped_mm(x[0], w, off), err="x")
    C("grouped_mm(x float32, w float64)", lambda: KM.grouped_mm(x, w.double(), off), err="dtype")
    C("grouped_mm(x, w float64) (refuse or exact)", lambda: KM.grouped_mm(x.double(), w.double(), off), err="dtype",
      ok=lambda r: close(r, gmm_ref(x, w, off), 1e-9))
    C("grouped_mm(x int64, w int64)", lambda: KM.grouped_mm(x.long(), w.long(), off), err="dtype")
    C("grouped_mm(x float16, w float16) (ok or refuse)", lambda: KM.grouped_mm(x.half(), w.half(), off), err="dtype",
      ok=lambda r: close(r.float(), gmm_ref(x.half(), w.half(), off), 2e-2))
    xn = R(K_, M_).t()
    C("grouped_mm(non-contiguous x) (ok)", lambda: KM.grouped_mm(xn, w, off), ok=lambda r: close(r, gmm_ref(xn, w, off), 1e-4))
    wn = R(E, N_, K_, seed=1).transpose(1, 2)
    C("grouped_mm(non-contiguous w) (ok)", lambda: KM.grouped_mm(x, wn, off), ok=lambda r: close(r, gmm_ref(x, wn, off), 1e-4))
    C("grouped_mm(M=0, offsets zeros) (ok: empty)", lambda: KM.grouped_mm(torch.zeros(0, K_), w, torch.zeros(E + 1, dtype=torch.long)), ok=lambda r: r.shape == (0, N_))
    C("grouped_mm(K=12, N=20 not powers of 2) (ok or refuse)", lambda: KM.grouped_mm(R(M_, 12), R(E, 12, 20), off), err=["K", "N"],
      ok=lambda r: close(r, gmm_ref(R(M_, 12), R(E, 12, 20), off), 1e-4))
    C("grouped_mm(x on meta)", lambda: KM.grouped_mm(x.to("meta"), w, off), err=["device", "meta"])
    C("grouped_mm(x, w, offsets on meta)", lambda: KM.grouped_mm(x, w, off.to("meta")), err=["device", "meta", "offsets"])
    for o, lab in [([0, 4, 2, 6], "decreasing"), ([0, 2, 2, 9], "ends past rows")]:
        C(f"tile_schedule(offsets={o}, 16, 6) ({lab})", lambda o=o: KM.tile_schedule(torch.tensor(o), 16, 6), err="offsets")
    C("tile_schedule(offsets, block_m=0, 6)", lambda: KM.tile_schedule(off, 0, 6), err="block_m")
    C("tile_schedule(offsets, block_m=-16, 6)", lambda: KM.tile_schedule(off, -16, 6), err="block_m")
    C("tile_schedule(offsets, 16, total_rows=-1)", lambda: KM.tile_schedule(off, 16, -1), err="total_rows")
    C("tile_schedule(offsets float, 16, 6)", lambda: KM.tile_schedule(off.float(), 16, 6), err="offsets")
    C("tile_schedule([0,2,2,6], 2, 6) (ok: covers rows)", lambda: KM.tile_schedule(off, 2, 6),
      ok=lambda r: r[2] >= 3 or f"n_tiles {r[2]}")
    wg, wu = R(E, K_, N_, seed=2), R(E, K_, N_, seed=3)
    def up_ref():
        a, b = gmm_ref(x, wg, off), gmm_ref(x, wu, off); return torch.nn.functional.silu(a) * b
    C("grouped_swiglu_up(x, wg, wu, offsets) (ok)", lambda: KM.grouped_swiglu_up(x, wg, wu, off), ok=lambda r: close(r[0] if isinstance(r, tuple) else r, up_ref(), 1e-4))
    C("grouped_swiglu_up(x, wg, wu (3,16,8))", lambda: KM.grouped_swiglu_up(x, wg, R(E, K_, 8), off), err=["w_up", "w_gate", "shape"])
    C("grouped_swiglu_up(offsets [0,2,40] for 6 rows)", lambda: KM.grouped_swiglu_up(x, wg, wu, torch.tensor([0, 2, 2, 40])), err="offsets")
    C("grouped_swiglu_up(offsets decreasing)", lambda: KM.grouped_swiglu_up(x, wg, wu, torch.tensor([0, 4, 2, 6])), err="offsets")
    C("grouped_swiglu_up(x K=12)", lambda: KM.grouped_swiglu_up(R(M_, 12), wg, wu, off), err=["x", "K"])
    C("grouped_swiglu_up(float64) (refuse or exact)", lambda: KM.grouped_swiglu_up(x.double(), wg.double(), wu.double(), off), err="dtype",
      ok=lambda r: close(r[0] if isinstance(r, tuple) else r, up_ref(), 1e-9))
    dy = R(M_, N_, seed=5)
    def wgrad_ref():
        out = torch.zeros(E, K_, N_, dtype=torch.float64)
        for e in range(E):
            a, b = int(off[e]), int(off[e + 1]); out[e] = x[a:b].double().T @ dy[a:b].double()
        return out
    C("grouped_wgrad(x, dy, offsets) (ok; empty expert -> zeros)", lambda: KM.grouped_wgrad(x, dy, off), ok=lambda r: close(r, wgrad_ref(), 1e-4))
    C("grouped_wgrad(x 6 rows, dy 5 rows)", lambda: KM.grouped_wgrad(x, dy[:5], off), err=["dy", "rows"])
    C("grouped_wgrad(offsets [0,2,40] for 6 rows)", lambda: KM.grouped_wgrad(x, dy, torch.tensor([0, 2, 2, 40])), err="offsets")
    C("grouped_wgrad(offsets decreasing)", lambda: KM.grouped_wgrad(x, dy, torch.tensor([0, 4, 2, 6])), err="offsets")
    C("grouped_wgrad(x float32, dy float64)", lambda: KM.grouped_wgrad(x, dy.double(), off), err="dtype")
    C("grouped_wgrad(float64) (refuse or exact)", lambda: KM.grouped_wgrad(x.double(), dy.double(), off), err="dtype", ok=lambda r: close(r, wgrad_ref(), 1e-9))
    wd = R(E, N_, K_, seed=4)
    C("grouped_swiglu(x, wg, wu, wd, offsets) (ok vs loop)", lambda: KM.grouped_swiglu(x, wg, wu, wd, off), ok=lambda r: close(r, loop_ref(x, wg, wu, wd, off), 1e-3))
    C("grouped_swiglu(wd (3,8,16))", lambda: KM.grouped_swiglu(x, wg, wu, R(E, 8, K_), off), err=["w_down", "shape"])
    C("grouped_swiglu(offsets [0,2,2,40])", lambda: KM.grouped_swiglu(x, wg, wu, wd, torch.tensor([0, 2, 2, 40])), err="offsets")
    C("grouped_swiglu(offsets length E)", lambda: KM.grouped_swiglu(x, wg, wu, wd, torch.tensor([0, 2, 6])), err="offsets")
    def gs_grad():
        xx, a, b, c = (t.clone().requires_grad_() for t in (x, wg, wu, wd))
        KM.grouped_swiglu(xx, a, b, c, off).sum().backward()
        x2, a2, b2, c2 = (t.double().clone().requires_grad_() for t in (x, wg, wu, wd))
        loop_ref2 = torch.zeros(M_, K_, dtype=torch.float64)
        outs = []
        for e in range(E):
            s, t = int(off[e]), int(off[e + 1]); xe = x2[s:t]
            outs.append((torch.nn.functional.silu(xe @ a2[e]) * (xe @ b2[e])) @ c2[e])
        torch.cat(outs).sum().backward()
        return [close(g1, g2, 1e-3) for g1, g2 in zip((xx.grad, a.grad, b.grad, c.grad), (x2.grad, a2.grad, b2.grad, c2.grad))]
    C("grouped_swiglu(...).backward() (ok: grads match, empty expert 0)", gs_grad, ok=lambda r: all(v is True for v in r) or str(r))
    C("grouped_swiglu(M=0) (ok: empty)", lambda: KM.grouped_swiglu(torch.zeros(0, K_), wg, wu, wd, torch.zeros(E + 1, dtype=torch.long)), ok=lambda r: r.shape == (0, K_))
