from cases_common import *
from cases_bitnet import ref_mm

def build(C):
    from llmlab import bitnet as B
    import llmlab.kernels.bitnet as KB          # the kernels the launcher runs (under the interpreter)
    T = B.ternary_matmul_triton
    K, N = 16, 8
    g = torch.Generator().manual_seed(0)
    wq = torch.randint(-1, 2, (N, K), generator=g).to(torch.int8)
    pk = B.pack_ternary(wq); ws = torch.tensor([0.5]); wsN = torch.rand(N, generator=g) + 0.5
    x1, x3 = R(1, K), R(3, K)
    C("ternary_matmul_triton(x (1,16)) GEMV (ok)", lambda: T(x1, pk, ws), ok=lambda r: close(r, ref_mm(x1, wq, ws), 1e-4))
    C("ternary_matmul_triton(x (3,16)) GEMM (ok)", lambda: T(x3, pk, ws), ok=lambda r: close(r, ref_mm(x3, wq, ws), 1e-4))
    C("ternary_matmul_triton(per-row w_scale (8,)) (ok)", lambda: T(x3, pk, wsN), ok=lambda r: close(r, ref_mm(x3, wq, wsN), 1e-4))
    xi = torch.randint(-127, 128, (3, K), generator=g).to(torch.int8); xs = torch.tensor([0.1, 0.2, 0.3])
    C("ternary_matmul_triton(int8 x, x_scale) (ok: exact)", lambda: T(xi, pk, ws, xs), ok=lambda r: close(r, ref_mm(xi, wq, ws, xs), 1e-5))
    C("ternary_matmul_triton(int8 x (1,16), x_scale) GEMV (ok)", lambda: T(xi[:1], pk, ws, xs[:1]), ok=lambda r: close(r, ref_mm(xi[:1], wq, ws, xs[:1]), 1e-5))
    C("ternary_matmul_triton(x K=12 vs packed K=16)", lambda: T(R(3, 12), pk, ws), err=["K", "x"])
    C("ternary_matmul_triton(x K=20 vs packed K=16)", lambda: T(R(3, 20), pk, ws), err=["K", "x"])
    C("ternary_matmul_triton(packed int8)", lambda: T(x3, pk.to(torch.int8), ws), err="packed")
    C("ternary_matmul_triton(packed 1-D)", lambda: T(x3, pk.reshape(-1), ws), err="packed")
    C("ternary_matmul_triton(w_scale (3,))", lambda: T(x3, pk, torch.ones(3)), err="w_scale")
    C("ternary_matmul_triton(x_scale (2,) for M=3)", lambda: T(x3, pk, ws, torch.ones(2)), err="x_scale")
    C("ternary_matmul_triton(x float64)", lambda: T(x3.double(), pk, ws), err=["dtype", "float64"], ok=lambda r: close(r, ref_mm(x3, wq, ws), 1e-6))
    C("ternary_matmul_triton(x int64)", lambda: T(x3.long(), pk, ws), err=["dtype", "x"])
    xn = R(K, 3).t()
    C("ternary_matmul_triton(non-contiguous x) (ok)", lambda: T(xn, pk, ws), ok=lambda r: close(r, ref_mm(xn, wq, ws), 1e-4))
    pkn = torch.cat([pk, pk], 1)[:, ::2]
    C("ternary_matmul_triton(non-contiguous packed) (ok or refuse)", lambda: T(x3, pkn, ws), err="packed",
      ok=lambda r: close(r, ref_mm(x3, B.unpack_ternary(pkn.contiguous(), (N, K)), ws), 1e-4))
    C("ternary_matmul_triton(x (2,3,16)) (batched: ok or refuse)", lambda: T(R(2, 3, K), pk, ws), err=["x", "2-D", "ndim"],
      ok=lambda r: close(r, ref_mm(R(2, 3, K).reshape(6, K), wq, ws).reshape(2, 3, N), 1e-4))
    t5 = torch.randint(-1, 2, (N, 10), generator=g).to(torch.int8)
    C("ternary_matmul_triton(K=10, not a multiple of 4) (ok)", lambda: T(R(3, 10), B.pack_ternary(t5), ws), ok=lambda r: close(r, ref_mm(R(3, 10), t5, ws), 1e-4))
    C("ternary_matmul_triton(M=0) (ok: empty)", lambda: T(torch.zeros(0, K), pk, ws), err=["x", "M", "empty"], ok=lambda r: r.shape == (0, N))
    C("ternary_matmul_triton(N=0) (ok: empty)", lambda: T(x3, pk[:0], ws), err=["N", "packed", "empty"], ok=lambda r: r.shape == (3, 0))
    C("ternary_matmul_triton(blocks={'BLOCK_N': 0, 'BLOCK_KP': 4, 'BLOCK_M': 4})", lambda: T(x3, pk, ws, blocks={"BLOCK_N": 0, "BLOCK_KP": 4, "BLOCK_M": 4}), err="blocks")
    C("ternary_matmul_triton(blocks={'bogus': 1})", lambda: T(x3, pk, ws, blocks={"bogus": 1}), err="blocks")
    C("ternary_matmul_triton(blocks='x')", lambda: T(x3, pk, ws, blocks="x"), err="blocks")
    C("ternary_matmul_triton(blocks=3 x 16 (power of 2)) (ok)", lambda: T(x3, pk, ws, blocks={"BLOCK_N": 16, "BLOCK_KP": 4, "BLOCK_M": 16}),
      ok=lambda r: close(r, ref_mm(x3, wq, ws), 1e-4))
    C("ternary_matmul_triton(x on 'meta')", lambda: T(x3.to("meta"), pk, ws), err=["device", "meta"])
    C("ternary_matmul(x, packed, ws, backend='triton') [interpreter] (ok)", lambda: B.ternary_matmul(x3, pk, ws, backend="triton"),
      ok=lambda r: close(r, ref_mm(x3, wq, ws), 1e-4))
    C("ternary_matmul(x K=12, backend='triton')", lambda: B.ternary_matmul(R(3, 12), pk, ws, backend="triton"), err=["K", "x"])
    C("ternary_matmul(x float16, backend='triton') (ok)", lambda: B.ternary_matmul(x3.half(), pk, ws, backend="triton"),
      ok=lambda r: close(r.float(), ref_mm(x3.half().float(), wq, ws), 1e-2))
    C("ternary_matmul(x*1e30 float32, backend='triton') (huge; ok or inf-free)", lambda: B.ternary_matmul(x3 * 1e30, pk, ws, backend="triton"),
      err="x", ok=lambda r: close(r, ref_mm(x3 * 1e30, wq, ws), 1e-3))
