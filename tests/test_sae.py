"Sparse autoencoders: activations, decoder constraint, JumpReLU gradients, metrics by hand, toy recovery, errors."
import itertools
import pytest
import torch
import torch.nn.functional as F

from llmlab import gpt
from llmlab.world import World, Tokenizer, dataset, TAGS, CITIES
from llmlab.sae import (SAE, ACTIVATIONS, JumpReLUFn, StepFn, topk_ref, batchtopk_ref, geometric_median, train_sae,
                        toy_superposition, dictionary_recovery, ActivationStore, evaluate_sae, latent_activations,
                        feature_report, auroc, current_token_labels, best_features, trace_sae, SAEWidget, logit_effects)
from llmlab.lab import HAS_WIDGETS, trace_size

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def world_bits():
    w = World(0); tok = Tokenizer.from_world(w)
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=tok.vocab_size, ctx_len=16, n_layer=2, n_head=2, d_model=16)).eval()
    data = dataset(tok, w.corpus(60, seed=3), 16)
    return model, tok, data


def _kw(kind):
    return {"topk": dict(k=4), "batchtopk": dict(k=4)}.get(kind, {})


@pytest.mark.parametrize("kind", ACTIVATIONS)
def test_decoder_rows_stay_unit_norm_after_training_steps(kind):
    sae = SAE(12, 40, kind, **_kw(kind))
    x = torch.randn(500, 12) * 3 + 1
    train_sae(sae, x, 5, lr=0.05, batch_size=64, aux_k=8, dead_after=1, bar=False)
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(40), atol=1e-5)


def test_parallel_gradient_is_removed():
    sae = SAE(6, 20, "relu")
    sae(torch.randn(32, 6))[2]["loss"].backward()
    assert (sae.W_dec.grad * sae.W_dec).sum(-1).abs().max() > 1e-6       # there was a parallel part
    sae.remove_parallel_grad()
    assert torch.allclose((sae.W_dec.grad * sae.W_dec).sum(-1), torch.zeros(20), atol=1e-6)


def test_topk_gives_exactly_k_active():
    sae = SAE(10, 50, "topk", k=7)
    with torch.no_grad(): sae.b_enc.fill_(10.0)                           # every pre-activation positive
    z = sae.encode(torch.randn(33, 10))
    assert ((z > 0).sum(-1) == 7).all()
    pre = sae.pre_acts(torch.randn(33, 10))
    ref = torch.where(pre >= pre.topk(7, -1).values[:, -1:], F.relu(pre), torch.zeros_like(pre))
    assert torch.equal(sae.activate(pre), ref)


def test_batchtopk_gives_k_times_batch_overall_and_threshold_at_eval():
    sae = SAE(10, 50, "batchtopk", k=3).train()
    with torch.no_grad(): sae.b_enc.fill_(10.0)
    x = torch.randn(16, 10)
    z = sae.encode(x).detach()
    assert int((z > 0).sum()) == 3 * 16
    assert (z > 0).sum(-1).float().std() >= 0                             # rows may differ, the batch total may not
    thr = float(sae.threshold)
    assert thr > 0 and abs(thr - z[z > 0].min().item()) < 1e-6
    sae.eval()
    pre = sae.pre_acts(x)
    assert torch.equal(sae.encode(x), F.relu(pre) * (pre > thr))
    # batchtopk_ref keeps the k*B largest of the flattened batch
    p = torch.randn(5, 8)
    kept = batchtopk_ref(p, 2)
    assert torch.equal(kept.reshape(-1) != 0, torch.isin(torch.arange(40), p.reshape(-1).topk(10).indices) & (p.reshape(-1) > 0))


def test_jumprelu_threshold_gradients_as_documented():
    g = torch.Generator().manual_seed(0)
    z = torch.rand(200, 6, generator=g)
    theta = torch.rand(6, generator=g) * 0.5 + 0.25
    eps = 0.1
    cot = torch.randn(200, 6, generator=g)
    win = ((z - theta).abs() < eps / 2).float()
    th = theta.clone().requires_grad_(); zz = z.clone().requires_grad_()
    (JumpReLUFn.apply(zz, th, eps) * cot).sum().backward()
    assert torch.allclose(th.grad, (-(theta / eps) * win * cot).sum(0), atol=1e-5)
    assert torch.equal(zz.grad, cot * (z > theta))
    th2 = theta.clone().requires_grad_()
    (StepFn.apply(z, th2, eps) * cot).sum().backward()
    assert torch.allclose(th2.grad, (-(1 / eps) * win * cot).sum(0), atol=1e-5)
    assert torch.equal(JumpReLUFn.apply(z, theta, eps), z * (z > theta))


def test_geometric_median_minimises_summed_distance():
    x = torch.randn(300, 5, dtype=torch.float64); x[:20] += 50                # outliers
    m = geometric_median(x, iters=500, tol=1e-12)
    y = m.clone().requires_grad_(); (x - y).norm(dim=-1).sum().backward()
    assert y.grad.norm() < 1e-4 * len(x)
    assert (m - x.mean(0)).norm() > 1.0                                     # not the mean
    sae = SAE(5, 10, "relu"); sae.init_pre_bias(x.float())
    assert torch.allclose(sae.b_pre, m.float(), atol=1e-3)


def test_auroc_matches_pairwise_count_with_ties():
    g = torch.Generator().manual_seed(1)
    s = torch.randint(0, 4, (60, 3), generator=g).float()                 # many ties
    y = torch.rand(60, generator=g) < 0.4
    pos, neg = s[y], s[~y]
    brute = ((pos[:, None] > neg[None]).float() + 0.5 * (pos[:, None] == neg[None]).float()).mean((0, 1))
    assert torch.allclose(auroc(s, y), brute, atol=1e-6)
    assert auroc(torch.tensor([3., 2., 1.]), torch.tensor([1, 0, 0])).item() == 1.0


def test_toy_superposition_recovered_by_topk():
    x, D, codes = toy_superposition(8000, n_features=32, d=16, p=0.06, seed=0)
    assert x.shape == (8000, 16) and torch.allclose(D.norm(dim=1), torch.ones(32))
    torch.manual_seed(0)
    sae = SAE(16, 64, "topk", k=3)
    train_sae(sae, x, 600, lr=3e-3, batch_size=256, aux_k=16, dead_after=3000, bar=False)
    rec, best = dictionary_recovery(sae.W_dec, D)
    assert rec >= 0.9, f"TopK recovered the dictionary only to mean cosine {rec:.3f}"
    # a random decoder does not
    assert dictionary_recovery(SAE(16, 64, "topk", k=3, seed=5).W_dec, D)[0] < 0.8


# ---------------------------------------------------------------- bad input: (call, error type, message fragment)
_x8 = torch.randn(64, 8)
_nan_row = _x8.clone(); _nan_row[37, 2] = float("nan")

def _model_bits():
    w = World(0); tok = Tokenizer.from_world(w)
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=tok.vocab_size, ctx_len=16, n_layer=2, n_head=2, d_model=16)).eval()
    return model, tok, dataset(tok, w.corpus(20, seed=3), 16)

BAD = [
    (lambda: SAE(8, 16, "topk", k=17), ValueError, "k must be an int in [1, 16]"),
    (lambda: SAE(8, 16, "batchtopk"), ValueError, "needs an int k"),
    (lambda: SAE(8, 16, "topk", k=2.0), TypeError, "k must be an int"),
    (lambda: SAE(8, 16, "gelu"), ValueError, "activation must be one of"),
    (lambda: SAE(8, 16, "topk", k=2, l1_coeff=0.1), ValueError, "l1_coeff is for"),
    (lambda: SAE(8, 16, "relu", k=2), ValueError, "k is only for"),
    (lambda: SAE(0, 16), ValueError, "d_in must be an int >= 1"),
    (lambda: SAE(8, 16.0), TypeError, "n_latents must be an int"),
    (lambda: SAE(8, 16, "relu", l1_coeff=float("nan")), ValueError, "l1_coeff must be a finite number"),
    (lambda: SAE(8, 16, "relu", l1_coeff=-1.0), ValueError, "l1_coeff must be >= 0"),
    (lambda: SAE(8, 16, "jumprelu", l0_coeff=float("inf")), ValueError, "l0_coeff must be a finite number"),
    (lambda: SAE(8, 16, "jumprelu", threshold_init=0), ValueError, "threshold_init must be > 0"),
    (lambda: SAE(8, 16, "jumprelu", threshold_init=-1.0), ValueError, "threshold_init must be > 0"),
    (lambda: SAE(8, 16, "jumprelu", bandwidth=0.0), ValueError, "bandwidth must be > 0"),
    (lambda: SAE(8, 16, "relu", seed=1.5), TypeError, "seed must be an int"),
    (lambda: SAE(8, 16, "relu")(torch.randn(4, 7)), ValueError, "d_in=8"),
    (lambda: SAE(8, 16, "relu")(torch.ones(4, 8, dtype=torch.long)), TypeError, "dtype"),
    (lambda: SAE(8, 16, "relu")([1.0] * 8), TypeError, "must be a torch.Tensor"),
    (lambda: SAE(8, 16, "relu")(_nan_row), ValueError, "non-finite"),
    (lambda: SAE(8, 16, "relu").decode(torch.randn(3, 15)), ValueError, "n_latents=16"),
    (lambda: SAE(8, 16, "relu").activate(torch.randn(3, 15)), ValueError, "n_latents=16"),
    (lambda: SAE(8, 16, "topk", k=2).auxk_loss(_x8, _x8, torch.randn(64, 16), torch.ones(16, dtype=torch.bool), 0), ValueError, "aux_k must be an int >= 1"),
    (lambda: SAE(8, 16, "topk", k=2).auxk_loss(_x8, _x8, torch.randn(64, 16), torch.ones(15, dtype=torch.bool), 4), ValueError, "dead must have shape (16)"),
    (lambda: JumpReLUFn.apply(torch.rand(3, 4), torch.rand(4), 0.0), ValueError, "eps must be > 0"),
    (lambda: StepFn.apply(torch.rand(3, 4), torch.rand(4), float("nan")), ValueError, "eps must be a finite number"),
    (lambda: train_sae(SAE(8, 16, "relu"), torch.randn(10, 9), 1, bar=False), ValueError, "(N, d_in=8)"),
    (lambda: train_sae(SAE(8, 16, "relu"), torch.randn(0, 8), 1, bar=False), ValueError, "N >= 1"),
    (lambda: train_sae(SAE(8, 16, "relu"), _nan_row, 1, bar=False), ValueError, "the first is row 37"),
    (lambda: train_sae(SAE(8, 16, "relu"), torch.ones(50, 8), 1, bar=False), ValueError, "constant"),
    (lambda: train_sae(SAE(8, 16, "relu"), _x8, 1, aux_k=99, bar=False), ValueError, "aux_k must be an int in [1, 16]"),
    (lambda: train_sae(SAE(8, 16, "relu"), _x8, 0, bar=False), ValueError, "steps must be an int >= 1"),
    (lambda: train_sae(SAE(8, 16, "relu"), _x8, 1, lr=float("nan"), bar=False), ValueError, "lr must be a finite number"),
    (lambda: train_sae(SAE(8, 16, "relu"), _x8, 1, lr=0.0, bar=False), ValueError, "lr must be > 0"),
    (lambda: train_sae(SAE(8, 16, "relu"), _x8, 1, batch_size=0, bar=False), ValueError, "batch_size must be an int >= 1"),
    (lambda: train_sae(SAE(8, 16, "relu"), _x8, 1, decay_frac=1.5, bar=False), ValueError, "decay_frac must be in [0, 1]"),
    (lambda: train_sae(SAE(8, 16, "relu"), _x8, 1, aux_coeff=-1.0, bar=False), ValueError, "aux_coeff must be >= 0"),
    (lambda: train_sae(SAE(8, 16, "relu"), _x8, 1, dead_after=0, bar=False), ValueError, "dead_after must be an int >= 1"),
    (lambda: train_sae(SAE(8, 16, "relu"), "acts", 1, bar=False), TypeError, "activations must be a tensor"),
    (lambda: train_sae("sae", _x8, 1, bar=False), TypeError, "sae must be an SAE"),
    (lambda: train_sae(SAE(8, 16, "relu"), lambda b, g: torch.full((b, 8), float("nan")), 1, bar=False), ValueError, "non-finite"),
    (lambda: train_sae(SAE(8, 16, "relu"), _x8 * 1e20, 1, bar=False), ValueError, "too large"),
    (lambda: geometric_median(torch.zeros(0, 3)), ValueError, "no rows"),
    (lambda: geometric_median(torch.tensor([[1.0, float("nan")]])), ValueError, "non-finite"),
    (lambda: geometric_median(torch.zeros(3)), ValueError, "2-D"),
    (lambda: geometric_median(torch.zeros(3, 2), iters=0), ValueError, "iters must be an int >= 1"),
    (lambda: topk_ref(torch.randn(3, 4), 5), ValueError, "k must be an int in [1, 4]"),
    (lambda: topk_ref(torch.randn(3, 4), 0), ValueError, "k must be an int in [1, 4]"),
    (lambda: batchtopk_ref(torch.randn(2, 3, 4), 1), ValueError, "2-D"),
    (lambda: toy_superposition(0), ValueError, "n_samples must be an int >= 1"),
    (lambda: toy_superposition(10, p=float("nan")), ValueError, "p must be a finite number"),
    (lambda: toy_superposition(10, p=0.0), ValueError, "p must be in (0, 1]"),
    (lambda: toy_superposition(10, d=2.5), TypeError, "d must be an int"),
    (lambda: dictionary_recovery(torch.randn(4, 3), torch.randn(5, 2)), ValueError, "dims"),
    (lambda: dictionary_recovery(torch.randn(0, 3), torch.randn(5, 3)), ValueError, "need rows"),
    (lambda: dictionary_recovery(torch.full((4, 3), float("nan")), torch.randn(5, 3)), ValueError, "non-finite"),
    (lambda: auroc(torch.randn(5), torch.zeros(5)), ValueError, "positives and negatives"),
    (lambda: auroc(torch.tensor([0.1, float("nan"), 0.3]), torch.tensor([1, 0, 1])), ValueError, "non-finite"),
    (lambda: auroc(torch.randn(5), torch.tensor([1, 0, 2, 0, 1])), ValueError, "boolean"),
    (lambda: auroc(torch.randn(5), torch.tensor([1, 0, 1])), ValueError, "5 rows but labels 3"),
    (lambda: auroc([0.1, 0.2], torch.tensor([1, 0])), TypeError, "scores must be a torch.Tensor"),
    (lambda: trace_sae([]), ValueError, "reports is empty"),
    (lambda: trace_sae([{"feature": 1}]), ValueError, "lacks"),
    (lambda: trace_sae("report"), TypeError, "reports must be a list"),
]

@pytest.mark.parametrize("call,err,frag", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_table(call, err, frag):
    with pytest.raises(err) as e: call()
    assert frag in str(e.value), f"message {str(e.value)!r} lacks {frag!r}"


def test_bad_input_with_a_model(world_bits):
    model, tok, data = world_bits
    sae, hook = SAE(16, 32, "topk", k=4), "blocks.0.resid_post"
    cases = [
        (lambda: ActivationStore(model, "blocks.9.resid_post", data), ValueError, "no hook point"),
        (lambda: ActivationStore(model, hook, data.x.float()), TypeError, "LongTensor of token ids"),
        (lambda: ActivationStore(model, hook, data.x[:0]), ValueError, "no tokens"),
        (lambda: ActivationStore(model, hook, data, buffer_windows=0), ValueError, "buffer_windows must be an int >= 1"),
        (lambda: ActivationStore("model", hook, data), TypeError, "hook points"),
        (lambda: ActivationStore(model, hook, data).next_batch(0), ValueError, "batch_size must be an int >= 1"),
        (lambda: evaluate_sae(sae, model, hook, data, n_windows=0), ValueError, "n_windows must be an int >= 1"),
        (lambda: evaluate_sae(sae, model, hook, data, batch_size=-1), ValueError, "batch_size must be an int >= 1"),
        (lambda: evaluate_sae(sae, model, hook, data, dense_above=float("nan")), ValueError, "dense_above must be a finite number"),
        (lambda: evaluate_sae(sae, model, hook, data.x), ValueError, "next-token targets"),
        (lambda: evaluate_sae(SAE(8, 16, "relu"), model, hook, data), ValueError, "does not match the model width"),
        (lambda: latent_activations(sae, model, hook, data, n_windows=0), ValueError, "n_windows must be an int >= 1"),
        (lambda: current_token_labels(data.x, 4), TypeError, "world LMData"),
        (lambda: current_token_labels(data, 0), ValueError, "n_windows must be an int >= 1"),
        (lambda: feature_report(sae, model, hook, data, 99, n_windows=4), ValueError, "feature must be an int in [0, 32)"),
        (lambda: feature_report(sae, model, hook, data, [], n_windows=4), ValueError, "empty list"),
        (lambda: feature_report(sae, model, hook, data, 1, n_windows=4, bins=0), ValueError, "bins must be an int >= 1"),
        (lambda: feature_report(sae, model, hook, data, 1, n_windows=4, latents=torch.zeros(4, 16, 31)), ValueError, "latents have shape"),
        (lambda: logit_effects(sae, model, -1), ValueError, "feature must be an int"),
        (lambda: logit_effects(sae, model, 1, k=0), ValueError, "k must be an int in [1,"),
        (lambda: best_features(torch.zeros(2, 3, 5), torch.zeros(2, 3, 4), {}, torch.ones(2, 4, dtype=torch.bool)), ValueError, "valid's shape"),
    ]
    for call, err, frag in cases:
        with pytest.raises(err) as e: call()
        assert frag in str(e.value), f"message {str(e.value)!r} lacks {frag!r}"
    if HAS_WIDGETS:
        with pytest.raises(ValueError, match="needs a trace"): SAEWidget({"features": []})


def test_geometric_median_of_huge_values_is_finite_and_scales():
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    m = geometric_median(x)
    big = geometric_median(x * 2.0 ** 70)                                 # squared norms would overflow float32
    assert torch.isfinite(big).all() and torch.allclose(big / 2.0 ** 70, m, rtol=1e-4, atol=1e-5)


def test_zero_tokens_give_zero_loss_and_zero_gradient():
    for kind in ACTIVATIONS:
        sae = SAE(8, 16, kind, **_kw(kind)).train()
        recon, z, losses = sae(torch.zeros(0, 8))
        assert recon.shape == (0, 8) and all(v.item() == 0.0 for v in losses.values()), (kind, losses)
        losses["loss"].backward()
        assert all(p.grad is None or p.grad.abs().max() == 0 for p in sae.parameters()), kind


def test_nonfinite_loss_stops_training_before_the_step():
    sae = SAE(8, 16, "relu")
    calls = {"n": 0}
    def source(b, g):
        calls["n"] += 1
        return torch.randn(b, 8, generator=g) * (1e30 if calls["n"] > 5 else 1.0)   # finite, but the loss overflows
    train_sae(sae, torch.randn(256, 8), 2, batch_size=64, bar=False)
    before = {k: v.clone() for k, v in sae.state_dict().items()}
    with pytest.raises(FloatingPointError, match="before the optimizer step"):
        train_sae(sae, source, 3, batch_size=1024, init_pre_bias=False, bar=False)
    assert calls["n"] == 6                                                 # 4 for the reference sample, step 0 fine, step 1 stops
    after = sae.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values())


def test_constant_activations_fvu_is_refused(world_bits):
    model, tok, data = world_bits
    hook = "blocks.0.resid_post"
    with model.hooks({hook: lambda a: torch.ones_like(a)}):
        with pytest.raises(ValueError, match="FVU has nothing to measure"): evaluate_sae(_identity_sae(16), model, hook, data, n_windows=4)


def _identity_sae(d):
    "n = 2d latents [x]+ and [-x]+ with decoder rows I and -I: reconstructs every x exactly."
    sae = SAE(d, 2 * d, "relu")
    with torch.no_grad():
        eye = torch.eye(d)
        sae.W_enc.copy_(torch.cat([eye, -eye], 1)); sae.W_dec.copy_(torch.cat([eye, -eye], 0))
        sae.b_enc.zero_(); sae.b_pre.zero_()
    return sae.eval()


def test_evaluate_sae_by_hand(world_bits):
    model, tok, data = world_bits
    hook = "blocks.0.resid_post"
    ev = evaluate_sae(_identity_sae(16), model, hook, data, n_windows=8)
    assert ev["fvu"] < 1e-10 and ev["kl_sae"] < 1e-6 and abs(ev["ce_sae"] - ev["ce_clean"]) < 1e-5
    assert abs(ev["ce_recovered"] - 1) < 1e-4
    assert abs(ev["l0"] - 16) < 1e-6                                        # each coordinate non-zero: one of +/- fires
    x, y = data.x[:8], data.y[:8]
    ce = lambda lg: F.cross_entropy(lg.reshape(-1, lg.shape[-1]), y.reshape(-1)).item()
    with torch.no_grad():
        clean = ce(model(x)[0])
        with model.hooks({hook: lambda a: torch.zeros_like(a)}): zero = ce(model(x)[0])
    assert abs(ev["ce_clean"] - clean) < 1e-4 and abs(ev["ce_zero"] - zero) < 1e-4
    assert ev["dead_frac"] == 0.0 and ev["dense_frac"] == 1.0
    # an SAE that never fires reconstructs the mean: FVU = 1 exactly
    _, cache = model.run_with_cache(x, [hook])
    mean_sae = SAE(16, 4, "relu")
    with torch.no_grad():
        mean_sae.W_enc.zero_(); mean_sae.b_enc.fill_(-1.0); mean_sae.b_pre.copy_(cache[hook].reshape(-1, 16).mean(0))
    ev0 = evaluate_sae(mean_sae, model, hook, data, n_windows=8)
    assert abs(ev0["fvu"] - 1) < 1e-4 and ev0["l0"] == 0 and ev0["dead_frac"] == 1.0
    assert sum(ev0["density_hist"]["counts"]) == 0 and ev0["density_hist"]["dead"] == 4


def test_activation_store_and_training_on_a_model(world_bits):
    model, tok, data = world_bits
    store = ActivationStore(model, "blocks.1.resid_pre", data, buffer_windows=8, norm_windows=len(data))
    a = store.collect()
    assert a.shape == (len(data) * 16, 16) and abs(a.pow(2).sum(-1).mean().item() - 1) < 1e-4
    b = store.next_batch(50)
    assert b.shape == (50, 16)
    sae = SAE(16, 32, "topk", k=4)
    hist = train_sae(sae, store, 3, batch_size=32, bar=False)
    assert float(sae.input_scale) == pytest.approx(store.scale) and len(hist["fvu"]) == 3 and hist["acts_per_s"] > 0
    with pytest.raises(ValueError, match="no hook point"): ActivationStore(model, "blocks.9.resid_post", data)


def test_feature_report_labels_and_trace(world_bits):
    model, tok, data = world_bits
    hook = "blocks.0.resid_post"
    sae = SAE(16, 32, "topk", k=4).eval()
    Z = latent_activations(sae, model, hook, data, 20)
    assert Z.shape == (20, 16, 32) and ((Z > 0).sum(-1) <= 4).all()
    f = int((Z > 0).reshape(-1, 32).sum(0).argmax())
    rep = feature_report(sae, model, hook, data, f, tokenizer=tok, n_windows=20, latents=Z)
    zf = Z[..., f]
    assert rep["density"] == pytest.approx((zf > 0).float().mean().item())
    assert sum(rep["hist"]["counts"]) == int((zf > 0).sum()) and rep["max_act"] == pytest.approx(zf.max().item())
    top = rep["groups"][0]["contexts"][0]
    assert top["act"] == pytest.approx(zf.max().item(), abs=1e-3) and top["acts"][top["pos"]] == top["act"]
    assert all(t in tok.stoi for t in top["tokens"]) and len(rep["logits_pos"]) == 6
    # current-token labels: CITY positions hold city tokens
    labels, valid = current_token_labels(data, 20)
    x = data.x[:20]
    city_ids = {tok.stoi[c] for c in CITIES if c in tok.stoi}
    assert labels["CITY"].any() and all(i in city_ids for i in x[labels["CITY"]].tolist())
    rows = best_features(Z, latent_activations(sae, model, hook, data, 20, with_inputs=True)[1], labels, valid, min_count=3)
    assert rows and all(0 <= r["latent_auroc"] <= 1 and 0.5 <= r["neuron_auroc"] <= 1 for r in rows)
    tr = trace_sae([rep], {f: ("CITY", 0.9)}, title="t")
    assert tr["features"][0]["tag"] == "CITY" and trace_size(tr) < 1_000_000
    with pytest.raises(ValueError, match="feature must be an int"): feature_report(sae, model, hook, data, 99, n_windows=4)
    with pytest.raises(ValueError, match="reports is empty"): trace_sae([])
    if HAS_WIDGETS:
        w = SAEWidget(tr)
        assert w.trace["features"][0]["feature"] == f and w.step == 0
