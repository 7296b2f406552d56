"""llmlab.multimodal: the shapes world and its pixel oracle, patch tokenizers (k-means reference, VQ-VAE with the
straight-through gradient), the shared vocabulary, QK-norm and attention logits, early/late fusion models (parameter
counts, reading, writing), the widget trace, and the errors for bad input."""
import math, os
os.environ.setdefault("LLMLAB_PROGRESS", "0")
import pytest, torch
from hypothesis import given, settings, strategies as st, HealthCheck
from llmlab.gpt import GPT, GPTConfig
from llmlab.world import World, Tokenizer, COLOURS
from llmlab.multimodal import (SHAPES, SIZES, EXTRA_WORDS, IMG, END_IMG, PATCH, QUESTIONS, shape_mask, draw, caption_of,
                               shapes, describe, matches, colour_map, patchify, unpatchify, kmeans_ref, KMeansTokenizer,
                               quantize_st, VQTokenizer, multimodal_tokenizer, image_ids, sequences,
                               attention_logits, max_attention_logit, EarlyFusion, LateFusion, param_counts,
                               matched_late_fusion, train_fusion, caption, answer, generate_image, parse_caption,
                               text_sequences, train_late_fusion, trace_multimodal, _templates)

torch.set_num_threads(1)
WORLD = World(0)


@pytest.fixture(scope="module")
def vq():
    torch.manual_seed(0)
    t = VQTokenizer(codebook_size=32, patch_size=4, d_code=8, hidden=32)
    t.fit(shapes(200, seed=5)["images"], steps=30, batch_size=16, bar=False)
    return t


@pytest.fixture(scope="module")
def early(vq):
    torch.manual_seed(0)
    return EarlyFusion(vq, WORLD, d_model=32, n_layer=1, n_head=2).eval()


# ---- the world of shapes and its oracle -----------------------------------------------------------------------------

def test_shapes_are_deterministic_under_a_seed():
    a, b, c = shapes(20, seed=7), shapes(20, seed=7), shapes(20, seed=8)
    assert torch.equal(a["images"], b["images"]) and a["labels"] == b["labels"] and a["captions"] == b["captions"]
    assert not torch.equal(a["images"], c["images"])
    assert a["images"].shape == (20, 3, 16, 16) and a["images"].min() >= 0 and a["images"].max() <= 1


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), size=st.sampled_from([14, 16, 20]))
def test_oracle_reads_back_every_label_it_drew(seed, size):
    d = shapes(60, size=size, seed=seed)
    for r, l in zip(describe(d["images"]), d["labels"]):
        assert r["iou"] == 1.0 and r["purity"] == 1.0, (r, l)
        assert all(r[k] == l[k] for k in ("shape", "colour", "size", "x", "y")), (r, l)
        assert matches(r, l)


def test_every_drawable_template_is_distinct_and_captions_parse():
    keys, bank = _templates(16)
    assert len(torch.unique(bank, dim=0)) == len(keys)
    lab = {"shape": "cross", "colour": "gold", "size": "small", "x": 5, "y": 6}
    assert caption_of(lab) == "a small gold cross ."
    assert parse_caption(caption_of(lab)) == {"shape": "cross", "colour": "gold", "size": "small"}


def test_oracle_on_a_blank_image_and_a_single_image():
    blank = draw("square", "red", "small", 7, 7) * 0 + shapes(1)["images"][0][:, :1, :1]   # the background colour everywhere
    assert describe(blank)[0]["shape"] is None
    img = draw("triangle", "blue", "big", 8, 8)
    r = describe(img)[0]
    assert (r["shape"], r["colour"], r["size"], r["x"], r["y"]) == ("triangle", "blue", "big", 8, 8)
    assert colour_map(img[None])[0, 8, 8] == 1 + COLOURS.index("blue")


def test_oracle_tolerates_small_pixel_noise():
    d = shapes(30, seed=2)
    noisy = (d["images"] + 0.05 * torch.randn(d["images"].shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert all(matches(r, l) for r, l in zip(describe(noisy), d["labels"]))


def test_errors_for_unknown_shapes_colours_and_bad_geometry():
    with pytest.raises(ValueError, match="shape must be one of"): shape_mask("hexagon", 9, 7, 7)
    with pytest.raises(ValueError, match="colour must be one of"): draw("circle", "teal", "big", 8, 8)
    with pytest.raises(ValueError, match="size must be one of"): draw("circle", "red", "huge", 8, 8)
    with pytest.raises(ValueError, match="side must be odd"): shape_mask("circle", 8, 7, 7)
    with pytest.raises(ValueError, match="cx must be"): shape_mask("circle", 9, 2, 7)
    with pytest.raises(ValueError, match="size must be an int"): shapes(3, size=8)
    with pytest.raises(TypeError, match="n must be an int"): shapes(2.0)
    with pytest.raises(ValueError, match=r"images must be \(N, 3, H, W\)"): describe(torch.zeros(2, 1, 16, 16))


# ---- tokenizers -----------------------------------------------------------------------------------------------------

@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3), g=st.integers(1, 4), p=st.integers(1, 4))
def test_patchify_inverts(n, c, g, p):
    x = torch.randn(n, c, g * p, g * p)
    P = patchify(x, p)
    assert P.shape == (n, g * g, c * p * p)
    assert torch.equal(unpatchify(P, p, channels=c), x)


def test_sizes_not_divisible_by_the_patch_are_errors(vq):
    with pytest.raises(ValueError, match="not divisible by patch_size=3"): patchify(torch.zeros(1, 3, 16, 16), 3)
    with pytest.raises(ValueError, match="not divisible by patch_size=4"): vq.encode(torch.zeros(1, 3, 18, 18))
    with pytest.raises(ValueError, match="image_size=18 is not divisible"): EarlyFusion(vq, WORLD, d_model=32, n_layer=1, n_head=2, image_size=18)


def test_kmeans_reference_is_a_fixed_point():
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(1))
    c, a = kmeans_ref(x, 6, iters=30)
    assert torch.equal(a, torch.cdist(x, c).argmin(1))                       # each point's code: the nearest centroid
    for j in range(6):                                                        # each centroid: the mean of its points
        if (a == j).any(): torch.testing.assert_close(c[j], x[a == j].mean(0), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="exceeds the 2 distinct rows"): kmeans_ref(torch.zeros(10, 2).index_fill_(0, torch.tensor([0]), 1.0), 3)


def test_kmeans_tokenizer_is_exact_when_the_codebook_holds_every_patch():
    d = shapes(3, seed=0)
    n_distinct = len(torch.unique(patchify(d["images"], 4).reshape(-1, 48), dim=0))
    km = KMeansTokenizer(n_distinct, 4).fit(d["images"], iters=5)
    assert km.recon_error(d["images"]) < 1e-10 and km.usage(d["images"]) == 1.0


def test_vq_encode_decode_shapes_and_codebook_usage(vq):
    imgs = shapes(10, seed=3)["images"]
    ids = vq.encode(imgs)
    assert ids.shape == (10, 16) and ids.dtype == torch.long and 0 <= int(ids.min()) and int(ids.max()) < 32
    out = vq.decode(ids)
    assert out.shape == imgs.shape and out.min() >= 0 and out.max() <= 1
    assert 0 < vq.usage(imgs) <= 1
    assert vq.usage(shapes(200, seed=5)["images"]) >= 0.25                    # dead-code restarts keep codes in use
    with pytest.raises(ValueError, match=r"ids must be in \[0, 32\)"): vq.decode(torch.full((1, 16), 32))


def test_straight_through_gradient():
    z = torch.randn(7, 4, requires_grad=True); cb = torch.randn(5, 4)
    zq, ids = quantize_st(z, cb)
    torch.testing.assert_close(zq.detach(), cb[ids])
    up = torch.randn(7, 4); (zq * up).sum().backward()
    torch.testing.assert_close(z.grad, up)                                    # d zq / d z = identity


def test_vq_loss_reaches_encoder_decoder_and_codebook():
    torch.manual_seed(0)
    t = VQTokenizer(16, 4, d_code=4, hidden=8)
    _, _, L = t(shapes(4, seed=1)["images"])
    L["loss"].backward()
    for name, p in (("encoder", t.encoder[0].weight), ("decoder", t.decoder[0].weight), ("codebook", t.codebook)):
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches the {name}"


# ---- vocabulary and sequences ---------------------------------------------------------------------------------------

def test_image_tokens_never_collide_with_word_ids():
    wtok = Tokenizer.from_world(WORLD)
    tok = multimodal_tokenizer(WORLD, 64)
    assert tok.itos[:wtok.vocab_size] == wtok.itos
    word_ids = {tok.stoi[w] for w in list(wtok.itos) + EXTRA_WORDS + [IMG, END_IMG]}
    img = set(image_ids(tok, torch.arange(64)).tolist())
    assert not (word_ids & img) and min(img) > max(word_ids) and len(img) == 64 and tok.vocab_size == max(img) + 1
    with pytest.raises(ValueError, match=r"codes must be in \[0, 64\)"): image_ids(tok, torch.tensor([64]))
    with pytest.raises(ValueError, match="no image tokens"): image_ids(multimodal_tokenizer(WORLD, 0, patch_slot=True), torch.tensor([0]))


def test_sequences_in_both_orders_and_late_fusion_rows():
    d = shapes(3, seed=0)
    tok = multimodal_tokenizer(WORLD, 8)
    codes = torch.randint(0, 8, (3, 16))
    x, y, kinds = sequences(tok, codes, d["labels"])
    assert kinds[:3] == ["caption", "generate", "answer"] and x.shape == y.shape
    cap, gen = tok.decode(x[0].tolist()).split(), tok.decode(x[1].tolist()).split()
    assert cap[1] == IMG and cap[18] == END_IMG and " ".join(cap[19:24]) == d["captions"][0]
    assert " ".join(gen[1:6]) == d["captions"][0] and gen[6] == IMG and gen[23] == END_IMG
    assert torch.equal(y[:, :-1][x[:, 1:] != tok.pad_id], x[:, 1:][x[:, 1:] != tok.pad_id])   # y is x shifted by one
    ltok = multimodal_tokenizer(WORLD, 0, patch_slot=True)
    lx, ly, _ = sequences(ltok, codes, d["labels"], kinds=("caption",))
    assert (lx == ltok.stoi[PATCH]).sum(1).tolist() == [16] * 3 and not (ly == ltok.stoi[PATCH]).any()
    with pytest.raises(ValueError, match="cannot generate images"): sequences(ltok, codes, d["labels"])
    with pytest.raises(ValueError, match="kinds must be one of"): sequences(tok, codes, d["labels"], kinds=("draw",))
    tx, ty = text_sequences(ltok, d["labels"])
    assert tx.shape[0] == 6 and not (tx == ltok.stoi[PATCH]).any()


def test_image_loss_generate_drops_only_the_image_targets_of_image_first_rows():
    d = shapes(4, seed=2)
    tok = multimodal_tokenizer(WORLD, 8)
    codes = torch.randint(0, 8, (4, 16))
    x, y, kinds = sequences(tok, codes, d["labels"], seed=3)
    x2, y2, kinds2 = sequences(tok, codes, d["labels"], seed=3, image_loss="generate")
    assert torch.equal(x, x2) and kinds == kinds2
    gen = torch.tensor([k == "generate" for k in kinds])
    img = y >= tok.image_offset
    assert torch.equal(y2[gen], y[gen])                                        # text -> image rows keep every target
    assert bool(img[~gen].any()) and not bool((y2[~gen] >= tok.image_offset).any())   # image-first rows: none left
    assert torch.equal(y2[~gen][~img[~gen]], y[~gen][~img[~gen]])              # ... and their text targets are untouched
    with pytest.raises(ValueError, match="image_loss must be one of"): sequences(tok, codes, d["labels"], image_loss="none")


# ---- QK-norm and attention logits -----------------------------------------------------------------------------------

def test_attention_logits_match_the_gpt_attention_weights():
    torch.manual_seed(0)
    g = GPT(GPTConfig(vocab_size=40, ctx_len=16, n_layer=2, n_head=4, n_kv_head=2, d_model=32))
    idx = torch.randint(0, 40, (2, 10))
    _, probs = g.run_with_attention(idx)
    for s, p in zip(attention_logits(g, idx), probs): torch.testing.assert_close(s.softmax(-1), p, atol=1e-5, rtol=0)


def test_qk_norm_bounds_the_logits_and_keeps_the_model_usable(vq):
    torch.manual_seed(0)
    g = GPT(GPTConfig(vocab_size=40, ctx_len=16, n_layer=2, n_head=4, n_kv_head=2, d_model=32, qk_norm=True))
    idx = torch.randint(0, 40, (2, 10))
    with torch.no_grad():
        for b in g.blocks: b.attn.wq.weight.mul_(1000); b.attn.wk.weight.mul_(1000)
    assert max_attention_logit(g, idx) <= math.sqrt(g.config.head_dim) + 1e-4
    logits, loss = g(idx, idx)
    assert torch.isfinite(loss) and logits.shape == (2, 10, 40)
    _, probs = g.run_with_attention(idx)                                      # the probe applies the GPT's own QK-norm
    for s, p in zip(attention_logits(g, idx), probs): torch.testing.assert_close(s.softmax(-1), p, atol=1e-5, rtol=0)
    plain, qk = EarlyFusion(vq, WORLD, d_model=32, n_layer=1, n_head=2), EarlyFusion(vq, WORLD, d_model=32, n_layer=1, n_head=2, qk_norm=True)
    assert not plain.gpt.config.qk_norm and qk.gpt.config.qk_norm
    extra = sum(p.numel() for n, p in qk.gpt.named_parameters() if "_norm" in n)
    assert extra > 0 and qk.gpt.num_params() == plain.gpt.num_params() + extra
    with pytest.raises(TypeError, match="qk_norm must be a bool"): EarlyFusion(vq, WORLD, qk_norm=1)
    with pytest.raises(TypeError, match="llmlab GPT"): attention_logits(torch.nn.Linear(2, 2), idx)


# ---- models ---------------------------------------------------------------------------------------------------------

def test_models_have_the_parameter_counts_they_report(vq, early):
    late = matched_late_fusion(early, vq, WORLD)
    for m in (early, late):
        pc = param_counts(m)
        n = lambda mod: sum(p.numel() for p in mod.parameters())
        assert pc["gpt"] == n(m.gpt) == m.gpt.num_params()
        assert pc["encoder"] == n(m.image_tok.encoder)
        assert pc["total"] == sum(v for k, v in pc.items() if k not in ("total", "trainable"))
    assert param_counts(early)["codebook"] == vq.codebook.numel()
    assert param_counts(late)["projection"] == sum(p.numel() for p in late.project.parameters())
    per = vq.d_code + 1 + 32                                                  # one projection unit's parameters
    assert abs(param_counts(early)["total"] - param_counts(late)["total"]) <= per
    with pytest.raises(TypeError, match="EarlyFusion or LateFusion"): param_counts(early.gpt)


def test_late_fusion_reads_the_image_through_the_projection(vq, early):
    torch.manual_seed(0)
    late = matched_late_fusion(early, vq, WORLD).eval()
    d = shapes(2, seed=4)
    prefix = late.image_prefix(d["images"])
    a = late(prefix, images=d["images"])[0]
    b = late(prefix, images=d["images"].flip(0))[0]
    assert not torch.allclose(a, b)                                           # a different image, different logits
    torch.testing.assert_close(a[0], late(prefix[:1], images=d["images"][:1])[0][0])
    with pytest.raises(ValueError, match="pass one image per row"): late(prefix)
    with pytest.raises(TypeError, match="only an EarlyFusion model can generate"): generate_image(late, "a big red circle .")


def test_training_moves_only_trainable_parameters(vq):
    torch.manual_seed(0)
    late = LateFusion(vq, WORLD, d_model=32, n_layer=1, n_head=2, proj_hidden=8)
    d = shapes(16, seed=0)
    enc0 = [p.clone() for p in vq.encoder.parameters()]
    r = train_late_fusion(late, d["images"], d["labels"], 6, batch_size=4)
    assert set(r["history"]) == {"text", "align", "tune"} and all(v > 0 for v in r["tokens"].values())
    assert all(torch.equal(a, b) for a, b in zip(enc0, vq.encoder.parameters()))   # the image encoder stays frozen


def test_late_fusion_trained_to_a_token_budget_sees_that_many_tokens(vq):
    torch.manual_seed(0)
    late = LateFusion(vq, WORLD, d_model=32, n_layer=1, n_head=2, proj_hidden=8)
    d = shapes(16, seed=0)
    by_steps = train_late_fusion(late, d["images"], d["labels"], 10, batch_size=4)
    per_step = sum(by_steps["tokens"].values()) / 10
    r = train_late_fusion(late, d["images"], d["labels"], tokens=per_step * 12.2, batch_size=4)
    assert by_steps["steps"] == 10 and r["steps"] == 12                       # the step count whose tokens come closest
    assert abs(sum(r["tokens"].values()) - per_step * 12.2) <= per_step      # within one step's worth of the budget
    for bad, err in (({}, "exactly one of steps and tokens"), ({"steps": 5, "tokens": 100.0}, "exactly one of steps and tokens"),
                     ({"tokens": 0.0}, "tokens must be"), ({"tokens": "many"}, "tokens must be a number")):
        with pytest.raises((ValueError, TypeError), match=err): train_late_fusion(late, d["images"], d["labels"], **bad)


def test_reading_and_writing_give_the_documented_types(early):
    d = shapes(3, seed=9)
    caps = caption(early, d["images"])
    assert len(caps) == 3 and all(isinstance(c, str) and c.startswith("a") for c in caps)
    assert len(caption(early, d["images"][0])) == 1
    ans = answer(early, d["images"], "what colour ?")
    assert len(ans) == 3 and all(a in early.tok.stoi for a in ans)
    imgs, ids = generate_image(early, ["a big red circle .", "a small blue cross ."], temperature=1.0, seed=0, return_ids=True)
    assert imgs.shape == (2, 3, 16, 16) and ids.shape == (2, 16) and int(ids.max()) < early.image_tok.codebook_size
    again = generate_image(early, ["a big red circle .", "a small blue cross ."], temperature=1.0, seed=0)
    assert torch.equal(imgs, again)                                           # seeded
    assert torch.equal(generate_image(early, "a big red circle .", temperature=0.0), generate_image(early, "a big red circle .", temperature=0.0))
    with pytest.raises(ValueError, match="unknown word 'hexagon'"): generate_image(early, "a big red hexagon .")
    with pytest.raises(ValueError, match="question must be one of"): answer(early, d["images"], "how many ?")
    with pytest.raises(ValueError, match="images must be 3-D or 4-D|must be \\(3, 4\\)-D"): caption(early, torch.zeros(16, 16))


def test_train_fusion_lowers_the_loss_and_records_logits(early, vq):
    torch.manual_seed(0)
    m = EarlyFusion(vq, WORLD, d_model=32, n_layer=1, n_head=2)
    d = shapes(64, seed=0)
    x, y, _ = sequences(m.tok, vq.encode(d["images"]), d["labels"])
    h = train_fusion(m, x, y, 30, batch_size=16, probe=x[:4], probe_every=10, lr=1e-2)
    assert h[-1]["loss"] < h[0]["loss"] and sum("max_logit" in r for r in h) == 4
    with pytest.raises(ValueError, match="one shape"): train_fusion(m, x, y[:, :-1], 1)
    with pytest.raises(ValueError, match="steps must be an int >= 1"): train_fusion(m, x, y, 0)


# ---- widget trace ---------------------------------------------------------------------------------------------------

def test_trace_holds_what_the_view_shows(early):
    d = shapes(2, seed=1)
    caps = ["a big red circle .", "a small blue square ."]
    t = trace_multimodal(early, d["images"], d["labels"], caps, temperature=1.0, seed=0)
    assert (t["size"], t["patch"], t["grid"], t["codebook_size"]) == (16, 4, 4, early.image_tok.codebook_size)
    assert len(t["samples"]) == 2 and len(t["gens"]) == 2
    s = t["samples"][0]
    assert len(s["pixels"]) == 256 and len(s["recon"]) == 256 and s["codes"] == early.image_tok.encode(d["images"][:1])[0].tolist()
    assert s["truth"] == d["captions"][0] and all(p.startswith("#") and len(p) == 7 for p in s["pixels"])
    imgs, ids = generate_image(early, caps, 1.0, 0, return_ids=True)
    assert [g["codes"] for g in t["gens"]] == ids.tolist()
    assert [g["ok"] for g in t["gens"]] == [matches(r, parse_caption(c)) for r, c in zip(describe(imgs), caps)]
    with pytest.raises(ValueError, match="one label per image"): trace_multimodal(early, d["images"], d["labels"][:1], caps)
