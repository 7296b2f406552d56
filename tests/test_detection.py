"""llmlab.detection: AUROC / TPR@FPR on hand-made scores (ties included), the image attacks and detectors, the zero-shot
text scores against independent computations, the green-list watermark (determinism, fraction, null and watermarked
z-scores), the paraphrase attack, the widget trace, and the errors for bad input."""
import math, os
os.environ.setdefault("LLMLAB_PROGRESS", "0")
import numpy as np
import pytest, torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from llmlab.gpt import GPT, GPTConfig, pretrained, world_of
from llmlab.world import World, Tokenizer
from llmlab.multimodal import shapes
from llmlab.detection import (auroc, auroc_ref, tpr_at_fpr, spectrum_features, attack, ATTACKS, ImageDetector,
                              SpectrumDetector, perplexity_score, fast_detectgpt_score, binoculars_score, zero_shot_scores,
                              world_texts, sample_texts, green_list, watermark_generate, green_flags, watermark_zscore,
                              next_token_entropy, watermark_zscore_entropy,
                              paraphrase_attack, trace_detection, _word_classes)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return pretrained("world-tiny")


@pytest.fixture(scope="module")
def tok(tiny):
    return world_of(tiny)[1]


@pytest.fixture(scope="module")
def other(tiny):
    "A second model with the same vocabulary (random weights): enough for Binoculars' arithmetic."
    torch.manual_seed(0)
    c = tiny.config
    return GPT(GPTConfig(vocab_size=c.vocab_size, ctx_len=c.ctx_len, n_layer=1, n_head=2, d_model=32)).eval()


# ---- metrics ----------------------------------------------------------------------------------------------------------

def test_auroc_hand_made_with_ties():
    assert auroc([0, 1, 1, 2], [1, 2, 3, 1]) == pytest.approx((9 + 0.5 * 5) / 16)
    assert auroc([0, 0], [1, 1]) == 1.0 and auroc([1, 1], [0, 0]) == 0.0
    assert auroc([3, 3, 3], [3, 3]) == 0.5                              # all tied: a coin


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=30), st.lists(st.integers(0, 4), min_size=1, max_size=30))
def test_auroc_rank_form_equals_the_definition(r, f):
    assert auroc(r, f) == pytest.approx(auroc_ref(r, f), abs=1e-12)


def test_tpr_at_fpr_hand_made():
    real, fake = list(range(100)), [50.5] * 10 + [99.5] * 10
    tpr, t = tpr_at_fpr(real, fake, 0.01, return_threshold=True)
    assert t == 98 and tpr == 0.5                                        # one real (99) above 98; only the 99.5s are flagged
    assert tpr_at_fpr([0, 1, 2, 3], [3, 3], 0.0) == 0.0                 # ties at the threshold are not flagged
    assert tpr_at_fpr([0, 1, 2, 3], [5], 0.0) == 1.0
    tpr, t = tpr_at_fpr(real, fake, 0.5, return_threshold=True)
    assert sum(r > t for r in real) <= 50


def test_metric_errors():
    with pytest.raises(ValueError, match="empty"): auroc([], [1])
    with pytest.raises(ValueError, match="non-finite"): auroc([0, float("nan")], [1])
    with pytest.raises(ValueError, match="fpr"): tpr_at_fpr([0], [1], fpr=1.0)
    with pytest.raises(TypeError, match="scores_fake"): auroc([0], ["a"])


# ---- images -------------------------------------------------------------------------------------------------------------

def test_attacks_keep_shape_dtype_and_range():
    x = shapes(6, seed=1)["images"]
    for kind in ATTACKS:
        for s in (0.05, 0.5, 2.0):
            y = attack(x, kind, s, seed=3)
            assert y.shape == x.shape and y.dtype == x.dtype and float(y.min()) >= 0 and float(y.max()) <= 1
        assert torch.equal(attack(x, kind, 0.0), x)
    assert torch.equal(attack(x, "noise", 0.1, seed=3), attack(x, "noise", 0.1, seed=3))
    assert attack(x[0], "blur", 1.0).shape == (1, 3, 16, 16)            # one image is promoted to a batch
    assert attack(x.double(), "blur", 1.0).dtype == torch.float64


def test_blur_is_a_normalised_filter():
    x = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(attack(x, "blur", 1.5), x, atol=1e-6)         # constant images are unchanged


def test_spectrum_features_against_numpy():
    x = shapes(3, seed=2)["images"]
    grey = x.mean(1).numpy(); grey = grey - grey.mean((-2, -1), keepdims=True)
    ref = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(grey), axes=(-2, -1))))
    assert np.allclose(spectrum_features(x).numpy(), ref, atol=1e-4)
    assert float(spectrum_features(x)[:, 8, 8].abs().max()) < 1e-4     # the mean was removed: no energy at frequency 0


def test_detectors_learn_an_easy_split():
    real = shapes(64, seed=0)["images"]
    fake = attack(real, "blur", 1.0)                                     # blurred reals: a detectable 'generator'
    for det in (ImageDetector(width=8), SpectrumDetector()):
        torch.manual_seed(0)
        hist = det.fit(real, fake, steps=150, batch_size=32, lr=1e-2, bar=False)
        assert hist[-1] < hist[0]
        s_real, s_fake = det.score(real), det.score(fake)
        assert s_real.shape == (64,) and auroc(s_real, s_fake) > 0.9


def test_image_errors():
    x = shapes(2, seed=0)["images"]
    with pytest.raises(ValueError, match=r"\(N, 3, H, H\)"): spectrum_features(x[:, :2])
    with pytest.raises(ValueError, match=r"\(N, 3, H, H\)"): attack(x[:, :, :8], "blur", 1.0)
    with pytest.raises(ValueError, match="must be 3-D or 4-D|ndim|-D"): ImageDetector().score(x[0, 0])
    with pytest.raises(TypeError, match="dtype"): attack((x * 255).to(torch.uint8), "blur", 1.0)
    with pytest.raises(ValueError, match="kind"): attack(x, "sharpen", 1.0)
    with pytest.raises(ValueError, match="strength"): attack(x, "noise", -0.1)
    with pytest.raises(ValueError, match="differ in shape"): ImageDetector().fit(x, shapes(2, size=20)["images"], steps=1, bar=False)
    with pytest.raises(ValueError, match="16x16"): SpectrumDetector(16)(shapes(2, size=20)["images"])


# ---- zero-shot text scores --------------------------------------------------------------------------------------------------

def test_perplexity_score_is_minus_cross_entropy(tiny, tok):
    texts = world_texts(4, 30, seed=7)
    ids = torch.tensor([tok.encode(t) for t in texts])
    with torch.no_grad(): logits = tiny(ids[:, :-1])[0]
    ce = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten(), reduction="none").view(4, -1).mean(1)
    assert torch.allclose(perplexity_score(tiny, texts), -ce, atol=1e-5)


def test_fast_detectgpt_by_hand(tiny, tok):
    text = world_texts(1, 12, seed=4)[0]
    ids = torch.tensor([tok.encode(text)])
    with torch.no_grad(): lp = tiny(ids[:, :-1])[0][0].double().log_softmax(-1)
    ll = lp[torch.arange(11), ids[0, 1:]].sum()
    mu = (lp.exp() * lp).sum(-1); var = (lp.exp() * lp ** 2).sum(-1) - mu ** 2
    assert float(fast_detectgpt_score(tiny, [text])[0]) == pytest.approx(float((ll - mu.sum()) / var.sum().sqrt()), abs=1e-3)


def test_binoculars_by_hand_and_the_table(tiny, other, tok):
    texts = world_texts(3, 16, seed=5)
    ids = torch.tensor([tok.encode(t) for t in texts])
    with torch.no_grad():
        lo = tiny(ids[:, :-1])[0].double().log_softmax(-1); lq = other(ids[:, :-1])[0].double().log_softmax(-1)
    log_ppl = -lo.gather(2, ids[:, 1:, None])[..., 0].mean(1)
    x_ppl = -(lq.exp() * lo).sum(-1).mean(1)
    got = binoculars_score(tiny, other, texts, tok)
    assert torch.allclose(got.double(), -log_ppl / x_ppl, atol=1e-4)
    table = zero_shot_scores(tiny, other, texts, tok, names=("t", "o"))
    assert torch.allclose(table["binoculars (t obs, o perf)"], got, atol=1e-6)
    assert torch.allclose(table["perplexity (t)"], perplexity_score(tiny, texts), atol=1e-6)
    assert torch.allclose(table["fast-detectgpt (o)"], fast_detectgpt_score(other, texts, tok), atol=1e-5)


def test_mixed_lengths_score_like_one_at_a_time(tiny):
    texts = world_texts(2, 20, seed=1) + world_texts(1, 9, seed=1)
    together = perplexity_score(tiny, texts)
    alone = torch.cat([perplexity_score(tiny, [t]) for t in texts])
    assert torch.allclose(together, alone, atol=1e-5)


def test_text_errors(tiny, tok, other):
    with pytest.raises(ValueError, match="at least 2"): perplexity_score(tiny, ["<bos>"])
    with pytest.raises(ValueError, match="at least 2"): watermark_zscore(["ada"], tok)
    with pytest.raises(ValueError, match="ctx_len"): perplexity_score(tiny, [" ".join(["ada"] * 80)])
    with pytest.raises(TypeError, match="texts"): perplexity_score(tiny, [])
    with pytest.raises(TypeError, match=r"texts\[1\]"): fast_detectgpt_score(tiny, ["ada ford .", 3])
    with pytest.raises(ValueError, match="unknown word"): perplexity_score(tiny, ["hello world"])
    small_vocab = GPT(GPTConfig(vocab_size=50, ctx_len=16, n_layer=1, n_head=2, d_model=16))
    with pytest.raises(ValueError, match="share a vocabulary"): binoculars_score(tiny, small_vocab, ["ada ford ."], tok)


# ---- watermark ------------------------------------------------------------------------------------------------------------------

def test_green_list_is_deterministic_with_fraction_gamma():
    V = 533
    for gamma in (0.1, 0.25, 0.5, 0.9):
        a = green_list(11, V, gamma, key=3)
        assert torch.equal(a, green_list(11, V, gamma, key=3)) and int(a.sum()) == round(gamma * V)
    a = green_list(11, V, 0.25, key=3)
    assert not torch.equal(a, green_list(12, V, 0.25, key=3)) and not torch.equal(a, green_list(11, V, 0.25, key=4))
    # over many previous tokens, each token is green about gamma of the time
    share = torch.stack([green_list(p, V, 0.25, key=0) for p in range(V)]).float().mean(0)
    assert abs(float(share.mean()) - round(0.25 * V) / V) < 1e-9 and float(share.std()) < 0.05


def test_gamma_errors(tok):
    for bad in (0.0, 1.0, -0.2, 1.5):
        with pytest.raises(ValueError, match="gamma"): green_list(0, 100, bad)
        with pytest.raises(ValueError, match="gamma"): watermark_zscore(["ada ford ."], tok, gamma=bad)
    with pytest.raises(ValueError, match="prev"): green_list(100, 100, 0.25)


def test_zscore_of_unwatermarked_text_is_standard_normal(tok):
    g = torch.Generator().manual_seed(0)
    texts = [tok.decode(r) for r in torch.randint(5, tok.vocab_size, (3000, 41), generator=g).tolist()]
    for gamma in (0.25, 0.5):
        z = watermark_zscore(texts, tok, gamma=gamma, key=7)
        assert abs(float(z.mean())) < 0.08 and abs(float(z.std()) - 1) < 0.08


def test_zscore_by_hand(tok):
    text = "<bos> ada ford lives in paris . ada ford likes red ."
    flags = green_flags(text, tok, 0.25, 1)
    T = len(tok.encode(text)) - 1
    assert len(flags) == T
    assert float(watermark_zscore([text], tok, gamma=0.25, key=1)[0]) == pytest.approx((sum(flags) - 0.25 * T) / math.sqrt(T * 0.1875))
    rep = "<bos> . . . . . ."                                            # one bigram repeated: scored once with ignore_repeats
    one = float(watermark_zscore([rep], tok, gamma=0.25, ignore_repeats=True)[0])
    assert one in (pytest.approx((0 - 0.25 * 2) / math.sqrt(2 * 0.1875)), pytest.approx((1 - 0.5) / math.sqrt(2 * 0.1875)),
                   pytest.approx((2 - 0.5) / math.sqrt(2 * 0.1875)))


def test_watermarked_text_has_large_z(tiny, tok):
    wm = watermark_generate(tiny, ["<bos>"] * 40, delta=8.0, key=5, max_new_tokens=40, seed=0)
    plain = watermark_generate(tiny, ["<bos>"] * 40, delta=0.0, key=5, max_new_tokens=40, seed=0)
    assert all(len(tok.encode(t)) == 41 for t in wm)
    zw, zp = watermark_zscore(wm, tok, key=5), watermark_zscore(plain, tok, key=5)
    assert float(zw.mean()) > 4 and float(zw.mean()) > float(zp.mean()) + 4
    assert float(watermark_zscore(wm, tok, key=6).mean()) < 2            # the wrong key sees no watermark
    assert watermark_generate(tiny, "<bos> ada", delta=2.0, max_new_tokens=3, seed=1) == \
        watermark_generate(tiny, "<bos> ada", delta=2.0, max_new_tokens=3, seed=1)


def test_generation_equals_plain_sampling_at_delta_zero(tiny, tok):
    assert sample_texts(tiny, 3, 10, 1.0, seed=4) == watermark_generate(tiny, ["<bos>"] * 3, delta=0.0, max_new_tokens=9, seed=4)
    greedy = watermark_generate(tiny, "<bos> calc 12 + 35 :", delta=0.0, max_new_tokens=10, temperature=0.0)[0]
    assert greedy.startswith("<bos> calc 12 + 35 : 12 + 35 = 47")


def test_generation_errors(tiny):
    with pytest.raises(ValueError, match="ctx_len"): watermark_generate(tiny, "<bos>", max_new_tokens=64)
    with pytest.raises(ValueError, match="delta"): watermark_generate(tiny, "<bos>", delta=-1.0)
    with pytest.raises(ValueError, match="at least 1"): watermark_generate(tiny, "")
    with pytest.raises(ValueError, match="n_tokens"): sample_texts(tiny, 2, 80)


# ---- paraphrase, texts and the trace ------------------------------------------------------------------------------------------

def test_paraphrase_swaps_within_classes(tok):
    texts = world_texts(30, 40, seed=8)
    out = paraphrase_attack(texts, 0.5, seed=1)
    cls = _word_classes(World(0))
    changed = 0
    for a, b in zip(texts, out):
        wa, wb = Tokenizer.split(a), Tokenizer.split(b)
        assert len(wa) == len(wb) and tok.encode(b)
        for x, y in zip(wa, wb):
            if x != y: assert x in cls and y in cls[x]; changed += 1
            elif x not in cls: pass
    assert changed > 50
    assert paraphrase_attack(texts, 0.0) == texts and paraphrase_attack(texts, 0.5, seed=1) == out
    with pytest.raises(ValueError, match="rate"): paraphrase_attack(texts, 1.5)


def test_world_texts_have_exact_length(tok):
    t = world_texts(20, 33, seed=2)
    assert len(t) == 20 and all(len(tok.encode(x)) == 33 and x.startswith("<bos>") for x in t)
    assert t == world_texts(20, 33, seed=2) and t != world_texts(20, 33, seed=3)


def test_trace_matches_the_reference(tiny, tok):
    wm = watermark_generate(tiny, "<bos>", delta=4.0, max_new_tokens=20, seed=3)[0]
    x = shapes(2, seed=0)["images"]
    det = ImageDetector(width=4)
    tr = trace_detection({"wm": wm}, tok, tiny, {"real": x[0], "fake": attack(x[1], "blur", 1.0)}, det,
                         strengths={"blur": [0, 1.0], "noise": [0, 0.1]})
    t = tr["texts"][0]
    assert t["z"][-1] == pytest.approx(float(watermark_zscore([wm], tok)[0]), abs=1e-3)
    assert t["green"] == [int(v) for v in green_flags(wm, tok)] and len(t["tokens"]) == len(t["rank"]) + 1
    assert min(t["rank"]) >= 1
    im = tr["images"][0]["attacks"]["blur"]
    assert len(im) == 2 and len(im[0]["pixels"]) == 256 and 0 <= min(im[1]["spectrum"]) and max(im[1]["spectrum"]) <= 1
    assert im[1]["p_fake"] == pytest.approx(float(torch.sigmoid(det.score(attack(x[:1], "blur", 1.0, seed=1))[0])), abs=1e-4)
    with pytest.raises(ValueError, match="kind"): trace_detection({"wm": wm}, tok, tiny, {"r": x[0]}, det, strengths={"sharpen": [0]})


# ---- entropy-aware watermark detection ------------------------------------------------------------------------------------

def test_next_token_entropy_by_hand(tiny, tok):
    texts = world_texts(3, 30, seed=4) + world_texts(1, 12, seed=4)                  # mixed lengths
    H = next_token_entropy(tiny, texts, tok)
    for t, h in zip(texts, H):
        x = torch.tensor([tok.encode(t)])
        with torch.no_grad(): p = F.softmax(tiny(x[:, :-1])[0][0].double(), -1)      # (T-1, V)
        ref = -(p * p.clamp(min=1e-300).log()).sum(-1)
        assert h.dtype == torch.float64 and h.shape == (x.shape[1] - 1,)
        assert torch.allclose(h, ref, atol=1e-4), "entropy must be -sum p log p of the next-token distribution, in nats"
        assert float(h.min()) >= 0 and float(h.max()) <= math.log(tok.vocab_size) + 1e-9


def test_entropy_zscore_threshold_zero_is_the_plain_z(tiny, tok):
    texts = world_texts(30, 40, seed=6)
    for r in (False, True):
        for key in (0, 3):
            assert torch.equal(watermark_zscore_entropy(texts, tok, tiny, gamma=0.25, key=key, threshold=0.0, ignore_repeats=r),
                               watermark_zscore(texts, tok, gamma=0.25, key=key, ignore_repeats=r))


def test_entropy_zscore_by_hand(tiny, tok):
    text = "<bos> ada ford lives in paris . ada ford likes red . ada ford lives in paris ."
    T = len(tok.encode(text)) - 1
    flags = green_flags(text, tok, 0.25, 2)
    H = torch.tensor([float(i % 3) for i in range(T)], dtype=torch.float64)          # 0, 1, 2, 0, 1, 2, ...
    for thr in (0.5, 1.0, 1.5, 2.0, 2.5):
        keep = [bool(h >= thr) for h in H]
        G, n = sum(f for f, k in zip(flags, keep) if k), sum(keep)
        z, g, t = watermark_zscore_entropy([text], tok, gamma=0.25, key=2, threshold=thr, entropies=[H], return_counts=True)
        assert (int(g[0]), int(t[0])) == (G, n)
        assert float(z[0]) == (pytest.approx((G - 0.25 * n) / math.sqrt(n * 0.1875)) if n else 0.0)   # no token left: z = 0
    ids = tok.encode(text)
    pairs = [p for p, h in zip(zip(ids[:-1], ids[1:]), H) if h >= 1.0]
    _, g, t = watermark_zscore_entropy([text], tok, gamma=0.25, key=2, threshold=1.0, entropies=[H], ignore_repeats=True, return_counts=True)
    assert int(t[0]) == len(set(pairs)) < len(pairs)                                  # the repeated sentence is scored once
    # the model path equals precomputed entropies
    assert torch.equal(watermark_zscore_entropy([text], tok, tiny, threshold=0.7),
                       watermark_zscore_entropy([text], tok, threshold=0.7, entropies=next_token_entropy(tiny, [text], tok)))


def test_entropy_zscore_null_is_standard_normal(tiny, tok):
    g = torch.Generator().manual_seed(3)
    rand = [tok.decode(r) for r in torch.randint(5, tok.vocab_size, (1500, 41), generator=g).tolist()]
    H = next_token_entropy(tiny, rand, tok)
    for thr in (0.5, 1.5):
        z, _, t = watermark_zscore_entropy(rand, tok, gamma=0.25, key=7, threshold=thr, entropies=H, return_counts=True)
        assert float(t.double().mean()) > 3                                            # some tokens left to score
        assert abs(float(z.mean())) < 0.1 and abs(float(z.std()) - 1) < 0.1
    # the model's own low-entropy samples, over many keys: still centred with unit spread
    own = sample_texts(tiny, 200, 41, 1.0, seed=9)
    Ho = next_token_entropy(tiny, own, tok)
    z = torch.cat([watermark_zscore_entropy(own, tok, gamma=0.25, key=k, threshold=1.0, ignore_repeats=True, entropies=Ho) for k in range(10)])
    assert abs(float(z.mean())) < 0.15 and abs(float(z.std()) - 1) < 0.15


def test_entropy_zscore_sees_the_watermark(tiny, tok):
    wm = watermark_generate(tiny, ["<bos>"] * 60, delta=4.0, key=5, max_new_tokens=40, seed=2)
    H = next_token_entropy(tiny, wm, tok)
    z = watermark_zscore_entropy(wm, tok, key=5, threshold=1.0, entropies=H)
    assert float(z.mean()) > float(watermark_zscore(wm, tok, key=5).mean())            # the kept tokens carry more signal
    assert float(z.mean()) > 3 and float(watermark_zscore_entropy(wm, tok, key=6, threshold=1.0, entropies=H).mean()) < 1.5


def test_entropy_zscore_errors(tiny, tok):
    text = ["<bos> ada ford lives in paris ."]
    H = next_token_entropy(tiny, text, tok)
    with pytest.raises(ValueError, match="threshold"): watermark_zscore_entropy(text, tok, tiny, threshold=-0.1)
    with pytest.raises(ValueError, match="threshold"): watermark_zscore_entropy(text, tok, tiny, threshold=float("nan"))
    with pytest.raises(TypeError, match="threshold"): watermark_zscore_entropy(text, tok, tiny, threshold="high")
    with pytest.raises(ValueError, match="gamma"): watermark_zscore_entropy(text, tok, tiny, gamma=1.0)
    with pytest.raises(TypeError, match="exactly one"): watermark_zscore_entropy(text, tok, threshold=1.0)
    with pytest.raises(TypeError, match="exactly one"): watermark_zscore_entropy(text, tok, tiny, entropies=H)
    with pytest.raises(TypeError, match="model"): watermark_zscore_entropy(text, tok, "world-tiny")
    with pytest.raises(TypeError, match="ignore_repeats"): watermark_zscore_entropy(text, tok, tiny, ignore_repeats=1)
    with pytest.raises(TypeError, match="return_counts"): watermark_zscore_entropy(text, tok, tiny, return_counts="yes")
    with pytest.raises(ValueError, match="at least 2"): watermark_zscore_entropy(["ada"], tok, tiny)
    with pytest.raises(ValueError, match="one tensor per text"): watermark_zscore_entropy(text * 2, tok, entropies=H)
    with pytest.raises(ValueError, match=r"entropies\[0\]"): watermark_zscore_entropy(text, tok, entropies=[H[0][:-1]])
    other = GPT(GPTConfig(vocab_size=50, ctx_len=16, n_layer=1, n_head=2, d_model=16))
    with pytest.raises(ValueError, match="vocab_size"): watermark_zscore_entropy(text, tok, other)
    with pytest.raises(ValueError, match="ctx_len"): watermark_zscore_entropy([" ".join(["ada"] * 80)], tok, tiny)
