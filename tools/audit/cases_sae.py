from cases_common import *

def build(C):
    from llmlab import sae as S, gpt, world as W
    w = W.World(0); tok = W.Tokenizer.from_world(w); V = tok.vocab_size
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=V, ctx_len=8, n_layer=1, n_head=2, d_model=16)).eval()
    data = W.dataset(tok, w.corpus(40), 8)
    hook = "blocks.0.resid_post"
    d = 16
    mk = lambda **k: S.SAE(**{**dict(d_in=d, n_latents=32), **k})
    for kw, nm in [(dict(d_in=0), "d_in"), (dict(n_latents=0), "n_latents"), (dict(d_in=-1), "d_in"), (dict(activation="bogus"), "activation"),
                   (dict(activation="topk"), "k"), (dict(activation="topk", k=0), "k"), (dict(activation="topk", k=33), "k"),
                   (dict(activation="batchtopk", k=-1), "k"), (dict(l1_coeff=NAN), "l1_coeff"), (dict(l1_coeff=-1.0), "l1_coeff"),
                   (dict(activation="jumprelu", l0_coeff=NAN), "l0_coeff"), (dict(activation="jumprelu", bandwidth=0.0), "bandwidth"),
                   (dict(activation="jumprelu", bandwidth=NAN), "bandwidth"), (dict(activation="jumprelu", threshold_init=0.0), "threshold_init"),
                   (dict(activation="jumprelu", threshold_init=-1.0), "threshold_init"), (dict(seed="x"), "seed"), (dict(d_in=2.5), "d_in")]:
        C(f"SAE(**{kw})", lambda kw=kw: mk(**kw), err=nm)
    sae = mk()
    x = R(64, d)
    C("sae(x (4, 15))", lambda: sae(R(4, 15)), err=["x", "d_in"])
    C("sae(int x)", lambda: sae(torch.ones(4, d, dtype=torch.long)), err="x")
    C("sae(x (0, 16)) (zero tokens: losses 0)", lambda: sae(torch.zeros(0, d)),
      err=["x", "empty"], ok=lambda r: all(float(v) == 0 for v in (r[1].values() if isinstance(r, tuple) and isinstance(r[1], dict) else [])) or f"{r[1] if isinstance(r, tuple) else r}")
    C("sae.encode(x (4, 15))", lambda: sae.encode(R(4, 15)), err=["x", "d_in"])
    C("sae.decode(z (4, 31))", lambda: sae.decode(R(4, 31)), err=["z", "n_latents"])
    C("sae.activate(pre (4, 31))", lambda: sae.activate(R(4, 31)), err=["pre", "n_latents"])
    C("sae.init_pre_bias(empty (0,16))", lambda: mk().init_pre_bias(torch.zeros(0, d)), err=["x", "empty"])
    C("sae.reconstruct(a (4, 15))", lambda: sae.reconstruct(R(4, 15)), err=["a", "x", "d_in"])
    tr = lambda s=None, acts=None, **k: S.train_sae(s or mk(), x if acts is None else acts, **{**dict(steps=3, batch_size=16, bar=False, plot=False), **k})
    for kw, nm in [(dict(steps=-1), "steps"), (dict(steps=0), "steps"), (dict(lr=NAN), "lr"), (dict(lr=0.0), "lr"), (dict(batch_size=0), "batch_size"),
                   (dict(aux_k=0), "aux_k"), (dict(aux_coeff=NAN), "aux_coeff"), (dict(dead_after=0), "dead_after"), (dict(decay_frac=1.5), "decay_frac"),
                   (dict(decay_frac=NAN), "decay_frac"), (dict(aux_k=1000), "aux_k")]:
        C(f"train_sae(sae, acts, **{kw})", lambda kw=kw: tr(**kw), err=nm)
    C("train_sae(sae, empty (0,16))", lambda: tr(acts=torch.zeros(0, d)), err="activations")
    C("train_sae(sae, acts (64, 15))", lambda: tr(acts=R(64, 15)), err=["activations", "d_in"])
    C("train_sae(sae, 1-D acts)", lambda: tr(acts=R(64)), err="activations")
    C("train_sae(sae, int acts)", lambda: tr(acts=torch.ones(64, d, dtype=torch.long)), err="activations")
    C("train_sae(sae, None)", lambda: S.train_sae(mk(), None, 3, bar=False, plot=False), err="activations")
    C("train_sae('x', acts)", lambda: S.train_sae("x", x, 3, bar=False, plot=False), err="sae")
    s_nan = mk()
    xn = x.clone(); xn[5, 3] = NAN
    C("train_sae(sae, acts with one NaN row) (refuse; weights finite)", lambda: tr(s_nan, xn), err="activations",
      post=lambda: "NaN in SAE weights" if any(not torch.isfinite(p).all() for p in s_nan.parameters()) else None)
    xi = x.clone(); xi[7, 0] = INF
    C("train_sae(sae, acts with inf)", lambda: tr(acts=xi), err="activations")
    C("train_sae(sae, constant activations) (FVU undefined: refuse, no NaN)", lambda: tr(acts=torch.ones(64, d)), err=["activations", "constant", "variance"])
    s_big = mk()
    C("train_sae(sae, acts, lr=1e30) (non-finite loss: FloatingPointError, weights finite)", lambda: tr(s_big, acts=x, lr=1e30, steps=5), err=["loss", "finite"],
      exc=(FloatingPointError,), ok=lambda h: all(torch.isfinite(p).all() for p in s_big.parameters()) or "non-finite weights",
      post=lambda: "non-finite SAE weights" if any(not torch.isfinite(p).all() for p in s_big.parameters()) else None)
    s_huge = mk()
    C("train_sae(sae, acts * 1e20) (huge but finite data: train or refuse, weights finite)", lambda: tr(s_huge, acts=x * 1e20), err=["activations", "loss", "finite"],
      exc=(FloatingPointError,), ok=lambda h: all(torch.isfinite(p).all() for p in s_huge.parameters()) or "non-finite weights",
      post=lambda: "non-finite SAE weights (b_pre)" if any(not torch.isfinite(p).all() for p in s_huge.parameters()) else None)
    C("geometric_median(x * 1e20) (huge but finite: ok finite)", lambda: S.geometric_median(R(5, 4) * 1e20),
      ok=lambda r: close(r / 1e20, S.geometric_median(R(5, 4)), 1e-3))
    def bad_callable():
        return tr(acts=lambda n, g: torch.full((n, d), NAN))
    C("train_sae(sae, callable returning NaN)", bad_callable, err="activations")
    C("train_sae(sae, acts) (ok: finite history)", lambda: tr(acts=x), ok=lambda h: all(math.isfinite(v) for v in h["fvu"]) or "NaN fvu")
    C("train_sae(topk sae, acts) (ok)", lambda: tr(mk(activation="topk", k=4), acts=x), ok=lambda h: all(math.isfinite(v) for v in h["loss"]))
    C("train_sae(jumprelu sae, acts) (ok)", lambda: tr(mk(activation="jumprelu", l0_coeff=1e-3), acts=x), ok=lambda h: all(math.isfinite(v) for v in h["loss"]))
    C("SAE(topk, k=n_latents) (ok: dense)", lambda: mk(activation="topk", k=32)(x), ok=lambda r: True)
    C("train_sae(sae, acts 4 rows, batch_size=16 > N) (ok or clear)", lambda: tr(acts=x[:4]), err="batch_size", ok=lambda h: all(math.isfinite(v) for v in h["loss"]))
    C("auroc(scores (6, 3), labels (6,)) (ok: per column)", lambda: S.auroc(torch.stack([torch.arange(6.0), -torch.arange(6.0), torch.zeros(6)], 1), torch.tensor([0, 0, 0, 1, 1, 1]).bool()),
      ok=lambda r: close(r, torch.tensor([1.0, 0.0, 0.5]), 1e-6))
    C("toy_superposition(n_samples=50, p=0.0) (all-zero data: ok or refuse p)", lambda: S.toy_superposition(50, p=0.0), err="p", ok=lambda r: True)
    C("geometric_median(empty (0,4))", lambda: S.geometric_median(torch.zeros(0, 4)), err="x")
    C("geometric_median(x, iters=0)", lambda: S.geometric_median(R(5, 4), iters=0), err="iters")
    C("geometric_median(x, tol=nan)", lambda: S.geometric_median(R(5, 4), tol=NAN), err="tol")
    C("geometric_median(1-D x)", lambda: S.geometric_median(R(5)), err="x")
    C("geometric_median(identical rows) (ok: that row)", lambda: S.geometric_median(torch.ones(5, 4) * 3), ok=lambda r: close(r, torch.full((4,), 3.0)))
    C("geometric_median(rows incl. the median itself) (ok: finite)", lambda: S.geometric_median(torch.tensor([[0.0, 0], [0, 0], [0, 0], [1, 0], [-1, 0]])),
      ok=lambda r: close(r, torch.zeros(2), 1e-3))
    C("geometric_median(x with NaN)", lambda: S.geometric_median(torch.tensor([[NAN, 0.0], [1.0, 1.0]])), err="x")
    C("topk_ref(pre, k=-1)", lambda: S.topk_ref(R(3, 8), -1), err="k")
    C("topk_ref(pre (3,8), k=9)", lambda: S.topk_ref(R(3, 8), 9), err="k")
    C("topk_ref(pre, k=0) (ok: zeros, or refuse)", lambda: S.topk_ref(R(3, 8), 0), err="k", ok=is_zero)
    C("topk_ref(pre, k=2) (ok)", lambda: S.topk_ref(torch.tensor([[3.0, -1, 2, 1]]), 2), ok=lambda r: r.tolist() == [[3.0, 0, 2, 0]])
    C("batchtopk_ref(empty (0,8), 2) (ok: empty)", lambda: S.batchtopk_ref(torch.zeros(0, 8), 2), ok=lambda r: r.shape == (0, 8))
    C("batchtopk_ref(pre (3,8), k=9)", lambda: S.batchtopk_ref(R(3, 8), 9), err="k")
    C("batchtopk_ref(pre, 2.5)", lambda: S.batchtopk_ref(R(3, 8), 2.5), err="k")
    C("dictionary_recovery(W_dec (32,16), dict (10,15))", lambda: S.dictionary_recovery(R(32, 16), R(10, 15)), err=["dictionary", "W_dec"])
    C("dictionary_recovery(W_dec, dict with a zero row)", lambda: S.dictionary_recovery(R(32, 16), torch.cat([R(3, 16), torch.zeros(1, 16)])), err="dictionary",
      ok=lambda r: math.isfinite(r[0]) or "NaN")
    C("dictionary_recovery(W_dec, empty dict)", lambda: S.dictionary_recovery(R(32, 16), torch.zeros(0, 16)), err="dictionary")
    C("dictionary_recovery(D, D) (ok: 1.0)", lambda: S.dictionary_recovery(R(5, 16), R(5, 16)), ok=lambda r: abs(r[0] - 1) < 1e-5)
    C("auroc(scores, labels all True) (undefined)", lambda: S.auroc(R(10), torch.ones(10, dtype=torch.bool)), err="labels")
    C("auroc(scores (10,), labels (9,))", lambda: S.auroc(R(10), torch.ones(9, dtype=torch.bool)), err="labels")
    C("auroc(scores with NaN)", lambda: S.auroc(torch.tensor([NAN, 1.0, 0.0, 2.0]), torch.tensor([True, False, True, False])), err="scores")
    C("auroc(constant scores) (ok: 0.5)", lambda: S.auroc(torch.zeros(6), torch.tensor([1, 0, 1, 0, 1, 0]).bool()), ok=lambda r: abs(float(r) - 0.5) < 1e-6)
    C("auroc(perfect) (ok: 1.0)", lambda: S.auroc(torch.arange(6.0), torch.tensor([0, 0, 0, 1, 1, 1]).bool()), ok=lambda r: abs(float(r) - 1) < 1e-6)
    C("auroc(labels 0/1 ints) (ok or refuse)", lambda: S.auroc(torch.arange(6.0), torch.tensor([0, 0, 0, 1, 1, 1])), err="labels", ok=lambda r: abs(float(r) - 1) < 1e-6)
    for kw, nm in [(dict(n_samples=0), "n_samples"), (dict(n_samples=10, n_features=0), "n_features"), (dict(n_samples=10, p=NAN), "p"),
                   (dict(n_samples=10, p=1.5), "p"), (dict(n_samples=10, d=0), "d")]:
        C(f"toy_superposition(**{kw})", lambda kw=kw: S.toy_superposition(**kw), err=nm)
    for kw, nm in [(dict(hook_name="bogus.hook"), ["hook_name", "hook point"]), (dict(windows_per_run=0), "windows_per_run"), (dict(buffer_windows=0), "buffer_windows"),
                   (dict(norm_windows=0), "norm_windows"), (dict(data=torch.zeros(0, 8, dtype=torch.long)), "data"), (dict(data=None), "data"),
                   (dict(data=torch.zeros(3, 8)), "data")]:
        C(f"ActivationStore(model, **{kw})", lambda kw=kw: S.ActivationStore(**{**dict(model=model, hook_name=hook, data=data, windows_per_run=4, buffer_windows=8, norm_windows=4), **kw}), err=nm)
    st = S.ActivationStore(model, hook, data, windows_per_run=4, buffer_windows=8, norm_windows=4)
    C("ActivationStore.next_batch(0)", lambda: st.next_batch(0), err="batch_size")
    C("ActivationStore.next_batch(-1)", lambda: st.next_batch(-1), err="batch_size")
    C("ActivationStore.collect(0)", lambda: st.collect(0), err="n_windows")
    C("ActivationStore.next_batch(16) (ok: (16, 16) finite)", lambda: st.next_batch(16), ok=lambda r: r.shape == (16, d))
    C("evaluate_sae(sae d_in=15, model d=16)", lambda: S.evaluate_sae(S.SAE(15, 32), model, hook, data, n_windows=4), err=["d_in", "sae"])
    C("evaluate_sae(..., n_windows=0)", lambda: S.evaluate_sae(sae, model, hook, data, n_windows=0), err="n_windows")
    C("evaluate_sae(..., batch_size=0)", lambda: S.evaluate_sae(sae, model, hook, data, n_windows=4, batch_size=0), err="batch_size")
    C("evaluate_sae(..., dense_above=nan)", lambda: S.evaluate_sae(sae, model, hook, data, n_windows=4, dense_above=NAN), err="dense_above")
    C("evaluate_sae(..., hook 'bogus')", lambda: S.evaluate_sae(sae, model, "bogus", data, n_windows=4), err=["hook_name", "hook point"])
    C("evaluate_sae(sae, model, hook, data, 4) (ok: finite)", lambda: S.evaluate_sae(sae, model, hook, data, n_windows=4), ok=lambda r: isinstance(r, dict))
    def const_model_eval():
        m0 = gpt.GPT(gpt.GPTConfig(vocab_size=V, ctx_len=8, n_layer=1, n_head=2, d_model=16)).eval()
        with torch.no_grad():
            for p in m0.parameters(): p.zero_()
        return S.evaluate_sae(S.SAE(16, 32), m0, hook, data, n_windows=4)
    C("evaluate_sae(model with constant activations) (FVU undefined: refuse, no NaN)", const_model_eval,
      err=["variance", "constant", "activations"])
    C("latent_activations(..., n_windows=0)", lambda: S.latent_activations(sae, model, hook, data, n_windows=0), err="n_windows")
    C("latent_activations(..., batch_size=0)", lambda: S.latent_activations(sae, model, hook, data, n_windows=4, batch_size=0), err="batch_size")
    C("current_token_labels(data, n_windows=0)", lambda: S.current_token_labels(data, 0), err="n_windows")
    C("current_token_labels(None, 4)", lambda: S.current_token_labels(None, 4), err="data")
    lat = S.latent_activations(sae, model, hook, data, n_windows=4, with_inputs=True)
    labels, valid = S.current_token_labels(data, 4)
    z, neu = (lat if isinstance(lat, tuple) else (lat, None))
    C("best_features(..., min_count=-1)", lambda: S.best_features(z, neu, labels, valid, min_count=-1), err="min_count")
    C("best_features(latents, neurons, {}, valid)", lambda: S.best_features(z, neu, {}, valid), err="labels", ok=lambda r: r == [])
    C("best_features(latents (…), valid of wrong shape)", lambda: S.best_features(z, neu, labels, valid[:1]), err="valid")
    C("logit_effects(sae, model, feature=-1)", lambda: S.logit_effects(sae, model, -1), err="feature")
    C("logit_effects(sae, model, feature=32)", lambda: S.logit_effects(sae, model, 32), err="feature")
    C("logit_effects(sae, model, 0, k=0)", lambda: S.logit_effects(sae, model, 0, k=0), err="k")
    C("logit_effects(sae, model, 0, k=10**6)", lambda: S.logit_effects(sae, model, 0, k=10 ** 6), err="k", ok=lambda r: len(r[0]) <= V)
    C("feature_report(..., feature=10**6)", lambda: S.feature_report(sae, model, hook, data, 10 ** 6, tok, n_windows=4), err="feature")
    C("feature_report(..., n_quantiles=0)", lambda: S.feature_report(sae, model, hook, data, 0, tok, n_windows=4, n_quantiles=0), err="n_quantiles")
    C("feature_report(..., feature=[])", lambda: S.feature_report(sae, model, hook, data, [], tok, n_windows=4), err="feature")
    C("feature_report(dead feature) (ok: no NaN stats)", lambda: _dead_report(S, model, hook, data, tok), ok=lambda r: True)
    C("trace_sae([])", lambda: S.trace_sae([]), err="reports")
    C("SAEWidget({})", lambda: S.SAEWidget({}), err="trace")

def _dead_report(S, model, hook, data, tok):
    s = S.SAE(16, 8); 
    with torch.no_grad():
        s.b_enc.fill_(-1e6) if hasattr(s, "b_enc") else None
    return S.feature_report(s, model, hook, data, 0, tok, n_windows=4)
