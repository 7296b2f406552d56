"Helpers shared by the case tables."
import math, os, tempfile, pathlib
import numpy as np
import torch

NAN, INF = float("nan"), float("inf")
TMP = pathlib.Path(tempfile.mkdtemp(prefix="llmlab_audit_"))

def R(*shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)

def close(a, b, tol=1e-4):
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    if a.shape != b.shape: return f"shape {tuple(a.shape)} != expected {tuple(b.shape)}"
    if a.numel() == 0: return True
    fa, fb = torch.isfinite(a), torch.isfinite(b)
    if not torch.equal(fa, fb) or not torch.equal(a[~fa], b[~fb]): return "non-finite pattern differs from the reference"
    err = (a[fa] - b[fb]).abs().max().item() if fa.any() else 0.0
    return True if err <= tol * (1 + b[fb].abs().max().item() if fb.any() else 1) else f"max error {err:.3g} vs reference"

def is_zero(t): return bool(torch.as_tensor(t).eq(0).all())

def all_neg_inf(t): return bool(torch.isneginf(torch.as_tensor(t)).all())

def bad_ints(C, label, fn, name, values=(0, -1, 2.5, None, "3", True, NAN)):
    "Cases fn(v) for each bad int v, expecting an error naming `name`."
    for v in values:
        C(f"{label.format(v=repr(v))}", (lambda v=v: fn(v)), err=name)

def bad_floats(C, label, fn, name, values=(NAN, INF, -1.0, "x", None)):
    for v in values:
        C(f"{label.format(v=repr(v))}", (lambda v=v: fn(v)), err=name)

def ref_attn(q, k, v, causal=False, scale=None):
    "float64 reference, bottom-right causal, GQA, fully masked rows -> 0."
    q, k, v = q.double(), k.double(), v.double()
    H, Hkv = q.shape[1], k.shape[1]
    if Hkv != H: k = k.repeat_interleave(H // Hkv, 1); v = v.repeat_interleave(H // Hkv, 1)
    s = q @ k.transpose(-1, -2) * (scale if scale is not None else q.shape[-1] ** -0.5)
    Nq, Nk = q.shape[-2], k.shape[-2]
    if causal:
        m = torch.arange(Nk)[None, :] <= torch.arange(Nq)[:, None] + Nk - Nq
        s = s.masked_fill(~m, -math.inf)
    lse = torch.logsumexp(s, -1)
    p = torch.exp(s - torch.where(torch.isneginf(lse), torch.zeros_like(lse), lse)[..., None])
    return p @ v, lse
