"""llmlab.distill and llmlab.kernels.distill: each divergence against an independent float64 computation, the JSD's
beta limits (beta -> 0: forward KL, beta -> 1: reverse KL) and symmetry, zero for equal distributions, temperature,
masks; the row kernel (its own online log-sum-exps, loss-only mode) against autograd and its PyTorch twin; the
fused loss and its gradients against the materialised reference over random shapes, both backends (Triton through
the interpreter on CPU); the trainer's prompt mask and fused path; the world checker; bad input."""
import math
import pytest, torch
from hypothesis import given, settings, strategies as st, HealthCheck
from llmlab.distill import distill_loss, token_divergence, DistillTrainer, check_statements, distinct_n, fit_gaussian, mixture_logits
from llmlab.kernels.distill import fused_linear_distill, distill_rows_, KINDS
from llmlab import gpt

BACKENDS = ["torch", "triton"]


def ref_div(s, t, kind, beta=0.5, T=1.0):
    "Independent float64 per-row divergences from probabilities (no log-softmax shortcuts)."
    p = torch.softmax(s.double() / T, -1); q = torch.softmax(t.double() / T, -1)
    kl = lambda a, b: (a * (a / b).log()).sum(-1)
    if kind == "forward_kl": return kl(q, p)
    if kind == "reverse_kl": return kl(p, q)
    if kind == "tvd": return 0.5 * (p - q).abs().sum(-1)
    m = beta * q + (1 - beta) * p
    return beta * kl(q, m) + (1 - beta) * kl(p, m)


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(KINDS), beta=st.floats(0.05, 0.95), T=st.sampled_from([0.5, 1.0, 3.0]), V=st.integers(2, 30),
       seed=st.integers(0, 1000))
def test_divergences_match_float64(kind, beta, T, V, seed):
    g = torch.Generator().manual_seed(seed)
    s, t = torch.randn(5, V, generator=g) * 2, torch.randn(5, V, generator=g) * 2
    mask = torch.tensor([1, 0, 1, 1, 0])
    want = T ** 2 * ref_div(s, t, kind, beta, T)[mask.bool()].mean()
    got = distill_loss(s, t, mask, kind=kind, beta=beta, temperature=T)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-4)


def test_jsd_beta_limits_are_forward_then_reverse():
    g = torch.Generator().manual_seed(0)
    s, t = (torch.randn(8, 12, generator=g, dtype=torch.float64) * 2, torch.randn(8, 12, generator=g, dtype=torch.float64) * 2)
    fwd, rev = distill_loss(s, t, kind="forward_kl").item(), distill_loss(s, t, kind="reverse_kl").item()
    assert abs(fwd - rev) > 1e-2, "the test needs distinguishable KLs"
    eps = 1e-6
    assert math.isclose(distill_loss(s, t, kind="jsd", beta=eps).item() / eps, fwd, rel_tol=1e-3), "beta -> 0 must give KL(teacher || student)"
    assert math.isclose(distill_loss(s, t, kind="jsd", beta=1 - eps).item() / eps, rev, rel_tol=1e-3), "beta -> 1 must give KL(student || teacher)"
    assert distill_loss(s, t, kind="jsd", beta=0.0).item() == fwd and distill_loss(s, t, kind="jsd", beta=1.0).item() == rev


def test_symmetry_and_zero():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(4, 9, generator=g), torch.randn(4, 9, generator=g)
    torch.testing.assert_close(distill_loss(s, t, kind="jsd"), distill_loss(t, s, kind="jsd"))
    torch.testing.assert_close(distill_loss(s, t, kind="tvd"), distill_loss(t, s, kind="tvd"))
    assert abs(distill_loss(s, t).item() - distill_loss(t, s).item()) > 1e-3
    for kind in KINDS:
        assert abs(distill_loss(s, s - 2.0, kind=kind).item()) < 1e-6


def test_mask_and_fully_masked():
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(2, 3, 7, generator=g), torch.randn(2, 3, 7, generator=g)
    m = torch.tensor([[True, False, True], [False, False, True]])
    torch.testing.assert_close(distill_loss(s, t, m), distill_loss(s[m], t[m]))
    x = s.clone().requires_grad_()
    loss = distill_loss(x, t, torch.zeros(2, 3))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(x.grad).all() and x.grad.abs().sum() == 0


def test_temperature_factor():
    g = torch.Generator().manual_seed(3)
    s, t = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    torch.testing.assert_close(distill_loss(s, t, temperature=2.0), 4 * distill_loss(s / 2, t / 2))


@pytest.mark.parametrize("bad, msg", [
    (dict(teacher_logits=torch.randn(3, 5)), "vocabularies differ"),
    (dict(teacher_logits=torch.randn(2, 6)), "must have one shape"),
    (dict(beta=-0.1, kind="jsd"), "beta must be in"), (dict(beta=1.01, kind="jsd"), "beta must be in"),
    (dict(temperature=0.0), "temperature must be > 0"), (dict(temperature=-1.0), "temperature must be > 0"),
    (dict(kind="fkl"), "kind must be one of"), (dict(mask=torch.ones(2)), "mask must have shape"),
    (dict(mask=torch.full((3,), 2.0)), "mask must hold only 0 and 1")])
def test_distill_loss_errors(bad, msg):
    kw = dict(student_logits=torch.randn(3, 6), teacher_logits=torch.randn(3, 6)) | bad
    with pytest.raises((ValueError, TypeError), match=msg.replace("(", r"\(")):
        distill_loss(kw.pop("student_logits"), kw.pop("teacher_logits"), kw.pop("mask", None), **kw)


def run(fn, hs, ws, ht, wt, tg, up, **kw):
    a, b = hs.clone().requires_grad_(), ws.clone().requires_grad_()
    loss = fn(a, b, ht, wt, tg, **kw)
    (up * loss).backward()
    return loss.detach().double(), a.grad.double(), b.grad.double()


def ref_fused(hs, ws, ht, wt, tg, kind="forward_kl", beta=0.5, temperature=1.0):
    mask = None if tg is None else tg != -100
    return distill_loss(hs.double() @ ws.double().T, (ht.double() @ wt.double().T), mask, kind=kind, beta=beta, temperature=temperature)


@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(N=st.integers(1, 9), ds=st.sampled_from([4, 8]), dt=st.sampled_from([4, 12]), V=st.integers(2, 45), chunk=st.integers(1, 10),
       kind=st.sampled_from(KINDS), beta=st.sampled_from([0.0, 0.3, 1.0]), T=st.sampled_from([1.0, 2.0]),
       backend=st.sampled_from(BACKENDS), seed=st.integers(0, 10_000))
def test_fused_matches_reference(N, ds, dt, V, chunk, kind, beta, T, backend, seed):
    g = torch.Generator().manual_seed(seed)
    hs, ws = torch.randn(N, ds, generator=g), torch.randn(V, ds, generator=g) / 2
    ht, wt = torch.randn(N, dt, generator=g), torch.randn(V, dt, generator=g) / 2
    tg = torch.randint(0, V, (N,), generator=g); tg[torch.rand(N, generator=g) < 0.3] = -100
    kw = dict(kind=kind, beta=beta, temperature=T)
    got = run(fused_linear_distill, hs, ws, ht, wt, tg, 1.3, chunk_size=chunk, backend=backend, **kw)
    want = run(ref_fused, hs, ws, ht, wt, tg, 1.3, **kw)
    for name, a, b in zip(("loss", "d hidden", "d weight"), got, want):
        torch.testing.assert_close(a, b, atol=3e-5, rtol=3e-5, msg=f"{name} differs ({kind}, beta={beta}, T={T}, {backend}, V={V}, chunk={chunk})")


@pytest.mark.parametrize("kind", KINDS)
def test_row_kernel_equals_torch_twin(kind):
    g = torch.Generator().manual_seed(4)
    zs, zt = torch.randn(5, 70, generator=g) * 3, torch.randn(5, 70, generator=g) * 3
    w = torch.rand(5, generator=g)
    out = {}
    for be in BACKENDS:
        z = zs.clone()
        out[be] = (distill_rows_(z, zt, w, kind=kind, beta=0.4, backend=be, block_c=16), z)
    torch.testing.assert_close(out["triton"][0], out["torch"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["triton"][1], out["torch"][1], atol=1e-6, rtol=1e-5)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(N=st.integers(1, 6), V=st.integers(1, 80), block=st.sampled_from([16, 32]), kind=st.sampled_from(KINDS),
       beta=st.sampled_from([0.1, 0.5, 0.9]), scale=st.sampled_from([0.5, 3.0]), shift=st.sampled_from([0.0, 40.0]),
       seed=st.integers(0, 10_000))
def test_row_kernel_online_stats_equal_autograd(N, V, block, kind, beta, scale, shift, seed):
    """The kernel finds both log-sum-exps itself (one stats sweep; the KLs' loss in it too): loss and gradient against
    autograd on float64 logits, over ragged last blocks, teacher offsets, zero-weight (masked) rows and tied rows."""
    g = torch.Generator().manual_seed(seed)
    zs = torch.randn(N, V, generator=g) * scale
    zt = torch.randn(N, V, generator=g) * scale + shift
    zt[0] = zs[0]                                                     # a tie: p == q exactly (TVD's sign(0))
    w = torch.rand(N, generator=g); w[torch.rand(N, generator=g) < 0.3] = 0.0   # masked rows weigh 0
    x = zs.double().requires_grad_()
    want = ref_div(x, zt.double(), kind, beta)
    (want * w.double()).sum().backward()
    for be in BACKENDS:
        z = zs.clone()
        d = distill_rows_(z, zt, w, kind=kind, beta=beta, backend=be, block_c=block)
        torch.testing.assert_close(d.double(), want.detach(), atol=3e-5, rtol=3e-5, msg=f"loss ({be})")
        torch.testing.assert_close(z.double(), x.grad, atol=3e-5, rtol=3e-5, msg=f"gradient ({be})")
        assert d[0].abs().item() < 1e-5 and z[0].abs().max().item() < 1e-6, "identical rows: D = 0 and no gradient"
        assert (z[w == 0] == 0).all(), "a row of weight 0 gets a zero gradient"
        z = zs.clone()
        torch.testing.assert_close(distill_rows_(z, zt, None, kind=kind, beta=beta, backend=be, block_c=block), d,
                                   atol=1e-6, rtol=1e-6, msg=f"loss only ({be})")
        assert torch.equal(z, zs), "w=None (loss only) leaves the logits alone"


def test_row_kernel_errors():
    zs, zt = torch.randn(3, 10), torch.randn(3, 10)
    for call, msg in [(lambda: distill_rows_(zs, zt[:, :9]), "zt must have zs's shape"),
                      (lambda: distill_rows_(zs, zt, torch.ones(2)), "w must have shape"),
                      (lambda: distill_rows_(zs, zt, torch.ones(3, dtype=torch.float64)), "w must have dtype"),
                      (lambda: distill_rows_(zs[:, :0], zt[:, :0]), "no columns"),
                      (lambda: distill_rows_(zs, zt, kind="jsd", beta=0.0), "beta must be in"),
                      (lambda: distill_rows_(zs, zt, kind="kl"), "kind must be one of"),
                      (lambda: distill_rows_(zs, zt, block_c=8), "block_c must be")]:
        with pytest.raises((ValueError, TypeError), match=msg): call()
    assert distill_rows_(zs[:0], zt[:0]).shape == (0,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_loss_only_without_grad(backend):
    "Under no_grad (or with no input requiring grad) the rows run loss-only: the same loss, no gradient work."
    g = torch.Generator().manual_seed(5)
    hs, ws, ht, wt = (torch.randn(7, 8, generator=g), torch.randn(33, 8, generator=g) / 2,
                      torch.randn(7, 6, generator=g), torch.randn(33, 6, generator=g) / 2)
    tg = torch.tensor([1, -100, 3, 4, -100, 6, 7])
    for kind in KINDS:
        want = ref_fused(hs, ws, ht, wt, tg, kind=kind, temperature=2.0)
        with torch.no_grad():
            a, b = hs.clone().requires_grad_(), ws.clone().requires_grad_()
            got = fused_linear_distill(a, b, ht, wt, tg, kind=kind, temperature=2.0, chunk_size=3, backend=backend)
        torch.testing.assert_close(got.double(), want, atol=3e-5, rtol=3e-5)
        got = fused_linear_distill(hs, ws, ht, wt, tg, kind=kind, temperature=2.0, chunk_size=3, backend=backend)
        assert not got.requires_grad
        torch.testing.assert_close(got.double(), want, atol=3e-5, rtol=3e-5)


def test_fused_errors():
    hs, ws, ht, wt = torch.randn(4, 8), torch.randn(20, 8), torch.randn(4, 6), torch.randn(20, 6)
    for call, msg in [(lambda: fused_linear_distill(hs, ws, ht, wt[:10]), "vocabularies differ"),
                      (lambda: fused_linear_distill(hs, ws, ht[:3], wt), "teacher_hidden has 3 rows"),
                      (lambda: fused_linear_distill(hs, ws[:, :4], ht, wt), "student_weight must be"),
                      (lambda: fused_linear_distill(hs, ws, ht, wt, kind="jsd", beta=2.0), "beta must be in"),
                      (lambda: fused_linear_distill(hs, ws, ht, wt, temperature=0), "temperature must be > 0"),
                      (lambda: fused_linear_distill(hs, ws, ht, wt, chunk_size=0), "chunk_size must be"),
                      (lambda: fused_linear_distill(hs.double(), ws.double(), ht, wt), "student_hidden must have dtype")]:
        with pytest.raises((ValueError, TypeError), match=msg): call()
    assert fused_linear_distill(hs, ws, ht, wt, torch.full((4,), -100)).item() == 0.0


def test_toy_forward_covers_reverse_seeks():
    x = torch.linspace(-6, 6, 241); t = mixture_logits(x)
    f, r = fit_gaussian(t, x, kind="forward_kl")[-1], fit_gaussian(t, x, kind="reverse_kl")[-1]
    assert f["sigma"] > 1.5 and abs(f["mu"]) < 1.0
    assert abs(r["mu"] - 2.0) < 0.1 and r["sigma"] < 0.8


@pytest.fixture(scope="module")
def setup():
    teacher = gpt.pretrained("world-tiny").eval()
    train, _ = gpt.world_data(n_docs=300, val_docs=50, ctx_len=16)
    torch.manual_seed(0)
    student = gpt.GPT(gpt.GPTConfig(vocab_size=teacher.config.vocab_size, ctx_len=64, n_layer=1, n_head=2, d_model=32))
    return teacher, student, train


def test_trainer_prompt_never_counts_and_fused_equals_logits(setup):
    teacher, student, train = setup
    tr = DistillTrainer(student, teacher, train, kind="reverse_kl", batch_size=3, prompt_len=5)
    seq, src = tr._batch()
    assert src == "data" and seq.shape == (3, 16)
    x = seq[:, :-1]
    with torch.no_grad():
        sl, tl = student(x)[0], teacher(x)[0]
        m = torch.zeros(x.shape, dtype=torch.bool); m[:, 4:] = True
        torch.testing.assert_close(tr.loss_on(seq), distill_loss(sl, tl, m, kind="reverse_kl"))
    grads = {}
    for be in ("logits", "fused"):
        tr.backend = be; student.zero_grad(); tr.loss_on(seq).backward()
        grads[be] = torch.cat([p.grad.flatten() for p in student.parameters()])
    torch.testing.assert_close(grads["fused"], grads["logits"], atol=1e-5, rtol=1e-4)


def test_trainer_on_policy_and_seq_kd(setup):
    teacher, student, train = setup
    tr = DistillTrainer(student, teacher, train, lmbda=1.0, batch_size=2, gen_len=6)
    assert tr._batch()[1] == "student"
    hist = tr.train(2, bar=False)
    assert len(hist) == 2 and all(h["on_policy"] == 1.0 and math.isfinite(h["loss"]) for h in hist)
    tr = DistillTrainer(student, teacher, train, kind="ce", seq_kd=True, batch_size=2, seq_pool=4)
    assert tr.pool.shape == (4, 16) and tr._batch()[1] == "teacher"


@pytest.mark.parametrize("kw, msg", [(dict(kind="kl"), "kind must be one of"), (dict(lmbda=1.5), "lmbda must be in"),
                                     (dict(prompt_len=0), "prompt_len must be"), (dict(beta=-1.0), "beta must be in"),
                                     (dict(temperature=0.0), "temperature must be > 0"), (dict(backend="x"), "backend must be one of")])
def test_trainer_errors(setup, kw, msg):
    teacher, student, train = setup
    with pytest.raises((ValueError, TypeError), match=msg): DistillTrainer(student, teacher, train, **kw)
    with pytest.raises(ValueError, match="same object"): DistillTrainer(teacher, teacher, train)
    with pytest.raises(TypeError, match="must be a llmlab GPT"): DistillTrainer(torch.nn.Linear(2, 2), teacher, train)


def test_check_statements_and_distinct():
    world, _ = gpt.world_of("world-tiny")
    p = world.people[0]
    other = next(c for c in ("paris", "lima") if c != p["city"])
    assert check_statements(f"{p['name']} lives in {p['city']} . 3 + 4 = 7 .", world) == (2, 0)
    assert check_statements(f"{p['name']} lives in {other} . 3 + 4 = 8 .", world) == (2, 2)
    assert check_statements(f"{p['name']} lives in", world) == (0, 0)           # cut off: not counted
    docs = world.corpus(50, seed=3)
    assert all(check_statements(d.text, world)[1] == 0 for d in docs)
    assert distinct_n([[1, 1, 1, 1]], 2) == 1 / 3
    with pytest.raises(ValueError, match="nothing to count"): distinct_n([[1]], 2)
