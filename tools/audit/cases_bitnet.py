from cases_common import *

def ref_mm(x, wq, ws, xs=None):
    y = x.double() @ wq.double().T * ws.double().reshape(1, -1) if ws.numel() > 1 else x.double() @ wq.double().T * ws.double()
    if xs is not None: y = y * xs.double().reshape(-1, 1)
    return y

def build(C):
    from llmlab import bitnet as B
    w = R(6, 8)
    C("quantize_weights_ternary(zeros(4,8)) (ok: zeros, finite scale)", lambda: B.quantize_weights_ternary(torch.zeros(4, 8)),
      ok=lambda r: is_zero(r[0]) or "nonzero")
    C("quantize_weights_ternary(zeros, eps=0)", lambda: B.quantize_weights_ternary(torch.zeros(4, 8), eps=0.0), err="eps",
      ok=lambda r: is_zero(r[0]) or "nonzero")
    for e in (NAN, -1.0, INF, "x"):
        C(f"quantize_weights_ternary(w, eps={e!r})", lambda e=e: B.quantize_weights_ternary(w, eps=e), err="eps")
    for g in (0, -1, 3, 2.5, 16):
        C(f"quantize_weights_ternary(w (6,8), group_size={g!r})", lambda g=g: B.quantize_weights_ternary(w, group_size=g), err="group_size")
    C("quantize_weights_ternary(w with NaN)", lambda: B.quantize_weights_ternary(torch.tensor([[1.0, NAN]])), err="w")
    C("quantize_weights_ternary(w with inf)", lambda: B.quantize_weights_ternary(torch.tensor([[1.0, INF]])), err="w")
    C("quantize_weights_ternary(int w)", lambda: B.quantize_weights_ternary(torch.ones(2, 4, dtype=torch.long)), err="w")
    C("quantize_weights_ternary(empty (0, 8))", lambda: B.quantize_weights_ternary(torch.zeros(0, 8)), err=["w", "empty"],
      ok=lambda r: r[0].shape == (0, 8))
    C("quantize_weights_ternary(None)", lambda: B.quantize_weights_ternary(None), err="w")
    C("quantize_weights_ternary(w*1e30) (huge; ok)", lambda: B.quantize_weights_ternary(w * 1e30),
      ok=lambda r: torch.equal(r[0], B.quantize_weights_ternary(w)[0]) or "differs from unscaled")
    C("quantize_weights_ternary(w, group_size=4) (ok: values in {-1,0,1})", lambda: B.quantize_weights_ternary(w, group_size=4),
      ok=lambda r: bool(r[0].abs().le(1).all()) and r[0].dtype == torch.int8)
    wq, sc = B.quantize_weights_ternary(w, group_size=4)
    C("dequantize_ternary(w_q, scale of wrong shape)", lambda: B.dequantize_ternary(wq, sc[:1, :1].expand(3, 1).contiguous()), err="scale")
    C("dequantize_ternary(w_q float, scale)", lambda: B.dequantize_ternary(wq.float() * 0.5, sc), err="w_q")
    C("dequantize_ternary(None, scale)", lambda: B.dequantize_ternary(None, sc), err="w_q")
    C("dequantize_ternary(w_q, scale with NaN)", lambda: B.dequantize_ternary(wq, torch.full_like(sc, NAN)), err="scale")
    C("quantize_activations_int8(zeros) (ok: zeros)", lambda: B.quantize_activations_int8(torch.zeros(3, 8)), ok=lambda r: is_zero(r[0]))
    C("quantize_activations_int8(zeros, eps=0)", lambda: B.quantize_activations_int8(torch.zeros(3, 8), eps=0.0), err="eps", ok=lambda r: is_zero(r[0]))
    C("quantize_activations_int8(x, eps=nan)", lambda: B.quantize_activations_int8(R(3, 8), eps=NAN), err="eps")
    C("quantize_activations_int8(x with inf)", lambda: B.quantize_activations_int8(torch.tensor([[1.0, INF]])), err="x")
    C("quantize_activations_int8(x with NaN)", lambda: B.quantize_activations_int8(torch.tensor([[1.0, NAN]])), err="x")
    C("quantize_activations_int8(empty (0,8)) (ok)", lambda: B.quantize_activations_int8(torch.zeros(0, 8)), err=["x", "empty"], ok=lambda r: r[0].shape == (0, 8))
    C("quantize_activations_int8(0-d)", lambda: B.quantize_activations_int8(torch.tensor(1.0)), err="x")
    C("quantize_activations_int8(x*1e30) (ok: same codes)", lambda: B.quantize_activations_int8(R(3, 8) * 1e30),
      ok=lambda r: torch.equal(r[0], B.quantize_activations_int8(R(3, 8))[0]) or "differs")
    C("fake_quant_weights(w, eps=nan)", lambda: B.fake_quant_weights(w, eps=NAN), err="eps")
    C("fake_quant_weights(w, eps=0) on zeros", lambda: B.fake_quant_weights(torch.zeros(2, 4), eps=0.0), err="eps", ok=lambda r: is_zero(r))
    C("fake_quant_activations(x, eps=-1)", lambda: B.fake_quant_activations(R(2, 4), eps=-1.0), err="eps")
    C("fake_quant_activations(zeros) (ok: zeros, zero-safe grad)", lambda: B.fake_quant_activations(torch.zeros(2, 4)), ok=lambda r: is_zero(r))
    C("ste(x (2,4), x_hat (2,5))", lambda: B.ste(R(2, 4), R(2, 5)), err="x_hat")
    C("ste(x, None)", lambda: B.ste(R(2, 4), None), err="x_hat")
    for a, nm in [((0, 4), "in_features"), ((4, 0), "out_features"), ((-1, 4), "in_features"), ((4.5, 4), "in_features")]:
        C(f"BitLinear{a}", lambda a=a: B.BitLinear(*a), err=nm)
    C("BitLinear(4, 4, eps=nan)", lambda: B.BitLinear(4, 4, eps=NAN), err="eps")
    C("BitLinear(4, 4, eps=0)", lambda: B.BitLinear(4, 4, eps=0.0), err="eps")
    C("BitLinear(4, 4, eps=-1)", lambda: B.BitLinear(4, 4, eps=-1.0), err="eps")
    torch.manual_seed(0); bl = B.BitLinear(8, 4)
    C("BitLinear(8,4)(x (2,5))", lambda: bl(R(2, 5)), err=["x", "in_features", "8"])
    C("BitLinear(8,4)(int x)", lambda: bl(torch.ones(2, 8, dtype=torch.long)), err="x")
    C("BitLinear(8,4)(zeros) (ok: finite zeros)", lambda: bl(torch.zeros(2, 8)), ok=lambda r: is_zero(r) or "nonzero")
    def bl_zero_grad():
        x = torch.zeros(2, 8, requires_grad=True); bl(x).sum().backward(); return x.grad
    C("BitLinear(8,4)(zeros).backward() (ok: finite grad)", bl_zero_grad, ok=lambda r: r is not None)
    def frozen():
        torch.manual_seed(1); a = B.BitLinear(8, 4); x = R(3, 8); y0 = a(x).detach(); a.freeze(); return y0, a(x)
    C("BitLinear.freeze() then forward (ok: same output)", frozen, ok=lambda r: close(r[0], r[1], 1e-4))
    # packing
    t3 = torch.tensor([[1, 0, -1, 1, 0], [-1, -1, 0, 1, 1]], dtype=torch.int8)
    C("pack_ternary(w with value 2)", lambda: B.pack_ternary(torch.tensor([[2, 0, 0, 0]], dtype=torch.int8)), err="w_q")
    C("pack_ternary(w with value -2)", lambda: B.pack_ternary(torch.tensor([[-2, 0, 0, 0]], dtype=torch.int8)), err="w_q")
    C("pack_ternary(1-D w)", lambda: B.pack_ternary(torch.tensor([1, 0, -1, 0], dtype=torch.int8)), err="w_q")
    C("pack_ternary(float w 0.5)", lambda: B.pack_ternary(torch.tensor([[0.5, 0, 0, 0]])), err="w_q")
    C("pack_ternary(float w in {-1,0,1}) (ok or refuse)", lambda: B.unpack_ternary(B.pack_ternary(t3.float()), (2, 5)), err=["w_q", "dtype"],
      ok=lambda r: torch.equal(r, t3))
    C("pack/unpack_ternary K=5 (ok: roundtrip)", lambda: B.unpack_ternary(B.pack_ternary(t3), (2, 5)), ok=lambda r: torch.equal(r, t3))
    C("pack_ternary(empty (0,4)) (ok or clear)", lambda: B.pack_ternary(torch.zeros(0, 4, dtype=torch.int8)), err=["w_q", "empty"], ok=lambda r: r.shape == (0, 1))
    p3 = B.pack_ternary(t3)
    C("unpack_ternary(packed K=5, shape=(2, 1)) (drops non-zero weights)", lambda: B.unpack_ternary(p3, (2, 1)), err="shape")
    C("unpack_ternary(packed (2,2), shape=(2, 16)) (more than packed)", lambda: B.unpack_ternary(p3, (2, 16)), err="shape")
    C("unpack_ternary(packed, shape=(3, 5))", lambda: B.unpack_ternary(p3, (3, 5)), err="shape")
    C("unpack_ternary(packed, shape=None)", lambda: B.unpack_ternary(p3, None), err="shape")
    C("unpack_ternary(packed, shape=(2,))", lambda: B.unpack_ternary(p3, (2,)), err="shape")
    C("unpack_ternary(packed, shape=(2, -5))", lambda: B.unpack_ternary(p3, (2, -5)), err="shape")
    C("unpack_ternary(packed int8)", lambda: B.unpack_ternary(p3.to(torch.int8), (2, 5)), err="packed")
    C("unpack_ternary(byte with code 3 = 0b11)", lambda: B.unpack_ternary(torch.tensor([[3]], dtype=torch.uint8), (1, 4)), err="packed",
      ok=lambda r: "invalid code accepted" if True else True)
    C("pack_ternary_base3(w with value 2)", lambda: B.pack_ternary_base3(torch.tensor([[2, 0, 0, 0, 0]], dtype=torch.int8)), err="w_q")
    C("pack/unpack_ternary_base3 K=7 (ok: roundtrip)", lambda: B.unpack_ternary_base3(B.pack_ternary_base3(torch.tensor([[1, 0, -1, 1, 0, -1, -1]], dtype=torch.int8)), (1, 7)),
      ok=lambda r: r.tolist() == [[1, 0, -1, 1, 0, -1, -1]])
    pb = B.pack_ternary_base3(t3)
    C("unpack_ternary_base3(packed, shape=(2, 2)) (drops non-zero weights)", lambda: B.unpack_ternary_base3(pb, (2, 2)), err="shape")
    C("unpack_ternary_base3(packed, shape=(2, 50))", lambda: B.unpack_ternary_base3(pb, (2, 50)), err="shape")
    C("unpack_ternary_base3(byte 255 > 242)", lambda: B.unpack_ternary_base3(torch.tensor([[255]], dtype=torch.uint8), (1, 5)), err="packed",
      ok=lambda r: "invalid code accepted" if True else True)
    C("pack_ternary_base3(None)", lambda: B.pack_ternary_base3(None), err="w_q")
    # matmul (torch backend)
    K, N = 12, 5
    wq = torch.randint(-1, 2, (N, K), generator=torch.Generator().manual_seed(0)).to(torch.int8)
    pk = B.pack_ternary(wq); ws = torch.tensor([0.5])
    x = R(3, K)
    C("ternary_matmul_ref(x (3,12), packed K=12) (ok)", lambda: B.ternary_matmul_ref(x, pk, ws), ok=lambda r: close(r, ref_mm(x, wq, ws)))
    C("ternary_matmul_ref(x K=8 vs packed K=12)", lambda: B.ternary_matmul_ref(R(3, 8), pk, ws), err=["K", "x"])
    C("ternary_matmul_ref(x K=16 vs packed K=12 (same bytes... 4 codes/byte: 3 bytes hold 12))", lambda: B.ternary_matmul_ref(R(3, 16), pk, ws), err=["K", "x"])
    C("ternary_matmul_ref(w_scale (3,) for N=5)", lambda: B.ternary_matmul_ref(x, pk, torch.ones(3)), err="w_scale")
    C("ternary_matmul_ref(x_scale (2,) for M=3)", lambda: B.ternary_matmul_ref(x, pk, ws, torch.ones(2)), err="x_scale")
    C("ternary_matmul_ref(packed int8)", lambda: B.ternary_matmul_ref(x, pk.to(torch.int8), ws), err="packed")
    C("ternary_matmul_ref(x (0,12)) (ok: empty, or clear)", lambda: B.ternary_matmul_ref(torch.zeros(0, K), pk, ws), err=["x", "empty"], ok=lambda r: r.shape == (0, N))
    xi = torch.randint(-127, 128, (3, K), generator=torch.Generator().manual_seed(1)).to(torch.int8)
    C("ternary_matmul_ref(int8 x, x_scale) (ok: exact)", lambda: B.ternary_matmul_ref(xi, pk, ws, torch.tensor([1.0, 2.0, 3.0])),
      ok=lambda r: close(r, ref_mm(xi, wq, ws, torch.tensor([1.0, 2.0, 3.0])), 1e-6))
    C("ternary_matmul(x, packed, ws, backend='bogus')", lambda: B.ternary_matmul(x, pk, ws, backend="bogus"), err="backend")
    C("ternary_matmul(x K=8, backend='torch')", lambda: B.ternary_matmul(R(3, 8), pk, ws, backend="torch"), err=["K", "x"])
    C("ternary_matmul(x (2,3,12), backend='torch') (ok: batched)", lambda: B.ternary_matmul(R(2, 3, K), pk, ws, backend="torch"),
      ok=lambda r: close(r, ref_mm(R(2, 3, K).reshape(6, K), wq, ws).reshape(2, 3, N)))
    C("trace_bitnet(w, x, group_size=0)", lambda: B.trace_bitnet(w, R(3, 8), group_size=0), err="group_size")
    C("trace_bitnet(w, x, bins=0)", lambda: B.trace_bitnet(w, R(3, 8), bins=0), err="bins")
    C("trace_bitnet(1-D w, x)", lambda: B.trace_bitnet(R(8), R(3, 8)), err="w")
    C("trace_bitnet(w, x, group_size=3) (K=8)", lambda: B.trace_bitnet(w, R(3, 8), group_size=3), err="group_size")
    C("BitNetWidget(w, x, group_size=5)", lambda: B.BitNetWidget(w, R(3, 8), group_size=5), err="group_size")
