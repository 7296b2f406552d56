"""Tests for llmlab.repe: reading vectors (sign, mean_diff, PCA on a planted direction), the steer context manager
(alpha = 0 is exact, hooks removed even after an exception, project_out orthogonality), evaluation and errors."""
import json
import pytest
import torch
from llmlab import gpt
from llmlab.world import World, Tokenizer
from llmlab.repe import (collect_activations, reading_vector, steer, evaluate_reading, evaluate_steering, pair_accuracy,
                         threshold_accuracy, trace_repe, hook_name, label_topic, READING_METHODS, topic_pairs,
                         generated_sentence, steered_completions)

@pytest.fixture(scope="module")
def world():
    w = World(0)
    return w, Tokenizer.from_world(w)

@pytest.fixture(scope="module")
def model(world):
    "An untrained (random) world-shaped GPT: the steering and hooking properties hold for any weights."
    torch.manual_seed(0)
    return gpt.GPT(gpt.GPTConfig(vocab_size=world[1].vocab_size, ctx_len=32, n_layer=2, n_head=2, d_model=32)).eval()

def planted(n=200, d=16, scale=3.0, seed=0):
    "Pairs whose difference is +scale * u plus small noise, on top of large shared random content."
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(d, generator=g); u = u / u.norm()
    base = 5 * torch.randn(n, d, generator=g)
    pos = base + scale * u + 0.1 * torch.randn(n, d, generator=g)
    neg = base + 0.1 * torch.randn(n, d, generator=g)
    return pos, neg, u

@pytest.mark.parametrize("method", READING_METHODS)
def test_sign_convention_positives_project_higher(method):
    pos, neg, u = planted()
    v = reading_vector(pos, neg, method)
    assert abs(float(v.norm()) - 1) < 1e-5
    assert (pos @ v).mean() > (neg @ v).mean()
    v_swapped = reading_vector(neg, pos, method)                       # swapping the roles flips the direction
    assert (neg @ v_swapped).mean() > (pos @ v_swapped).mean()

def test_mean_diff_is_normalised_difference_of_means():
    g = torch.Generator().manual_seed(1)
    pos, neg = torch.randn(30, 8, generator=g) + 1, torch.randn(40, 8, generator=g)
    d = pos.double().mean(0) - neg.double().mean(0)
    torch.testing.assert_close(reading_vector(pos, neg, "mean_diff"), (d / d.norm()).float(), atol=1e-6, rtol=0)

@pytest.mark.parametrize("method, least", [("pca_diff", 0.99), ("mean_diff", 0.99), ("logistic", 0.9)])
def test_planted_direction_is_recovered(method, least):
    # logistic regression ignores the pairing and fits the finite sample's discriminative direction: close, not exact
    pos, neg, u = planted()
    assert float(reading_vector(pos, neg, method) @ u) >= least, "the reading vector should point along the planted direction"

def test_pca_center_recovers_a_dominant_planted_direction():
    # unsupervised PCA finds the attribute only when it dominates the variance: make the shared content small
    g = torch.Generator().manual_seed(2)
    u = torch.randn(16, generator=g); u = u / u.norm()
    base = 0.2 * torch.randn(100, 16, generator=g)
    v = reading_vector(base[:50] + 3 * u, base[50:] - 3 * u, "pca_center")
    assert float(v @ u) >= 0.99

def test_reading_vector_per_layer_dicts():
    pos, neg, u = planted()
    out = reading_vector({"a": pos, "b": -pos}, {"a": neg, "b": -neg}, "mean_diff")
    assert set(out) == {"a", "b"} and float(out["a"] @ out["b"]) < -0.99

def test_reading_vector_errors():
    pos, neg, _ = planted()
    with pytest.raises(ValueError, match="unknown method"): reading_vector(pos, neg, "svm")
    with pytest.raises(ValueError, match="same d"): reading_vector(pos, neg[:, :8])
    with pytest.raises(ValueError, match="paired"): reading_vector(pos, neg[:10], "pca_diff")
    with pytest.raises(ValueError, match="zero direction"): reading_vector(pos, pos.clone())
    with pytest.raises(ValueError, match="same keys"): reading_vector({"a": pos}, {"b": neg})

def test_accuracies_on_separable_pairs():
    pos, neg, u = planted()
    assert pair_accuracy(u, pos, neg) == 1.0 and pair_accuracy(-u, pos, neg) == 0.0
    assert pair_accuracy(u, pos, pos) == 0.5                           # ties count one half
    assert threshold_accuracy(u, pos, neg, pos, neg) > 0.5

def test_collect_activations_positions(model, world):
    w, tok = world
    texts = ["ada ford ate the apple .", "ben cole fed the cat and felt glad ."]
    last = collect_activations(model, texts, [0, "blocks.1.resid_post"], "last", tok)
    allp = collect_activations(model, texts, [0, "blocks.1.resid_post"], "all", tok)
    mean = collect_activations(model, texts, "blocks.0.resid_post", "mean", tok)
    assert set(last) == {"blocks.0.resid_post", "blocks.1.resid_post"} and last["blocks.0.resid_post"].shape == (2, 32)
    # right padding does not change a causal model's activations: batched == one text at a time
    for i, t in enumerate(texts):
        _, c = model.run_with_cache(torch.tensor([tok.encode(t, bos=True)]), "blocks.0.resid_post")
        torch.testing.assert_close(allp["blocks.0.resid_post"][i], c["blocks.0.resid_post"][0])
        torch.testing.assert_close(last["blocks.0.resid_post"][i], c["blocks.0.resid_post"][0, -1])
        torch.testing.assert_close(mean["blocks.0.resid_post"][i], c["blocks.0.resid_post"][0].mean(0))
    idx = collect_activations(model, texts, 0, -2, tok)["blocks.0.resid_post"]
    torch.testing.assert_close(idx[1], allp["blocks.0.resid_post"][1][-2])

def test_collect_activations_errors(model, world):
    w, tok = world
    with pytest.raises(ValueError, match="unknown hook"): collect_activations(model, ["ada ford ."], "blocks.9.resid_post", tokenizer=tok)
    with pytest.raises(ValueError, match="out of range"): collect_activations(model, ["ada ford ."], 5, tokenizer=tok)
    with pytest.raises(ValueError, match="tokenizer"): collect_activations(model, ["ada ford ."], 0)
    with pytest.raises(ValueError, match="position"): collect_activations(model, ["ada ford ."], 0, "first", tok)
    with pytest.raises(ValueError, match="non-empty"): collect_activations(model, [], 0, tokenizer=tok)

def test_steer_alpha_zero_is_bit_identical_and_hooks_removed(model, world):
    w, tok = world
    x = torch.tensor([tok.encode("ada ford ate the apple and felt", bos=True)])
    v = torch.randn(32)
    ref = model(x)[0]
    for positions in ("all", "after_prompt"):
        with steer(model, v, 1, 0.0, positions):
            assert torch.equal(model(x)[0], ref)
    assert torch.equal(model(x)[0], ref)
    with steer(model, v, 0, 4.0): assert not torch.allclose(model(x)[0], ref)
    hooks_left = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    assert hooks_left == 0, "steer must remove every hook on exit"
    with pytest.raises(RuntimeError, match="boom"):
        with steer(model, v, 0, 4.0, "after_prompt"):
            raise RuntimeError("boom")
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 0
    assert torch.equal(model(x)[0], ref), "after an exception inside steer the model must be unsteered again"

def test_steer_add_adds_alpha_v_at_that_layer(model, world):
    w, tok = world
    x = torch.tensor([tok.encode("ada ford ate the apple", bos=True)])
    v = torch.randn(32)
    _, c0 = model.run_with_cache(x, ["blocks.0.resid_post", "blocks.1.resid_pre"])
    with steer(model, v, 0, 2.5):
        _, c1 = model.run_with_cache(x, ["blocks.0.resid_post", "blocks.1.resid_pre"])
    torch.testing.assert_close(c1["blocks.0.resid_post"], c0["blocks.0.resid_post"] + 2.5 * v)
    torch.testing.assert_close(c1["blocks.1.resid_pre"], c1["blocks.0.resid_post"])

def test_steer_after_prompt_leaves_the_prompt_alone(model, world):
    w, tok = world
    ids = tok.encode("ada ford ate the apple", bos=True)
    x = torch.tensor([ids])
    v = torch.randn(32)
    base = model.generate(x, 4, temperature=0)
    with steer(model, v, 1, 3.0, "after_prompt"):
        y = model.generate(x, 4, temperature=0)
        logits, _ = model(y)                                         # same context: prompt_len is the generate prompt
    plain = model(y)[0]
    P = len(ids)
    torch.testing.assert_close(logits[0, :P - 1], plain[0, :P - 1])  # prompt positions before the last: unchanged
    assert not torch.allclose(logits[0, P - 1:], plain[0, P - 1:])    # from the prompt's last token on: steered
    # with the KV cache and without it, the steered generation is the same
    with steer(model, v, 1, 3.0, "after_prompt"):
        y_nocache = model.generate(x, 4, temperature=0, use_cache=False)
    assert torch.equal(y, y_nocache)
    assert base.shape == y.shape

def test_project_out_makes_activations_orthogonal(model, world):
    w, tok = world
    x = torch.tensor([tok.encode("ben cole fed the cat and felt glad .", bos=True)])
    v = torch.randn(32) * 3
    with torch.no_grad(), steer(model, v, 0, 1.0, mode="project_out"):
        _, c = model.run_with_cache(x, "blocks.0.resid_post")
    a = c["blocks.0.resid_post"]
    assert float((a @ (v / v.norm())).abs().max()) < 1e-4 * float(a.norm(dim=-1).max())
    with torch.no_grad(): _, c0 = model.run_with_cache(x, "blocks.0.resid_post")
    assert float((c0["blocks.0.resid_post"] @ (v / v.norm())).abs().max()) > 1e-2

def test_steer_errors(model):
    v = torch.randn(32)
    with pytest.raises(ValueError, match="out of range"):
        with steer(model, v, 2, 1.0): pass
    with pytest.raises(ValueError, match="unknown hook"):
        with steer(model, v, "blocks.0.resid_mid", 1.0): pass
    with pytest.raises(ValueError, match="zero"):
        with steer(model, torch.zeros(32), 0, 1.0): pass
    with pytest.raises(ValueError, match=r"\(d_model,\)"):
        with steer(model, torch.randn(16), 0, 1.0): pass
    with pytest.raises(ValueError, match="mode"):
        with steer(model, v, 0, 1.0, mode="multiply"): pass
    with pytest.raises(ValueError, match="positions"):
        with steer(model, v, 0, 1.0, positions="before"): pass
    with pytest.raises(ValueError, match="alpha"):
        with steer(model, v, 0, float("nan")): pass
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 0

def test_evaluate_reading_and_steering_run_and_are_consistent(model, world):
    w, tok = world
    tr, te = w.sentiment_pairs(12, seed=1), w.sentiment_pairs(12, seed=2)
    R = evaluate_reading(model, tr, te, tok, [0, 1], methods=("mean_diff", "logistic"), position=-2)
    for m in ("mean_diff", "logistic"):
        for n in ("blocks.0.resid_post", "blocks.1.resid_post"):
            assert 0 <= R["pair_accuracy"][m][n] <= 1 and 0 <= R["accuracy"][m][n] <= 1
    # at the embedding of the sentiment word itself (16 words in 32 dimensions), a logistic probe fits its training pairs
    R0 = evaluate_reading(model, tr, tr, tok, ["blocks.0.resid_pre"], methods=("logistic",), position=-2)
    assert R0["pair_accuracy"]["logistic"]["blocks.0.resid_pre"] == 1.0
    v = R["vectors"]["mean_diff"]["blocks.1.resid_post"]
    prompts = [" ".join(p.split()[:5]) for p, _ in te[:6]]
    S = evaluate_steering(model, v, 1, [-2.0, 0.0, 2.0], prompts, tok, neutral_texts=["ada ford lives in paris ."],
                          heldout=(torch.tensor([tok.encode("ada ford ate the apple today .", bos=True)])[:, :-1],
                                   torch.tensor([tok.encode("ada ford ate the apple today .", bos=True)])[:, 1:]),
                          max_new_tokens=6, bar=False)
    assert S["kl"][1] == 0.0 and S["loss"][1] == S["base_loss"]      # alpha = 0: no side effects at all
    assert S["kl"][0] > 0 and S["kl"][2] > 0
    assert all(abs(sum(S["labels"][k][i] for k in S["labels"]) - 1) < 1e-9 for i in range(3))

def test_label_topic():
    assert label_topic("ada ford ate the apple and felt glad .") == "food"
    assert label_topic("ada ford fed the apple .") == "mixed"
    assert label_topic("ada ford lives in paris .") == "none"
    assert label_topic("ada ford watched the rain and felt sad .") == "weather"   # 'felt' after 'and' is not a verb slot

def test_trace_matches_a_direct_steered_generation(model, world):
    w, tok = world
    v = torch.randn(32)
    tr = trace_repe(model, tok, {0: v, 1: -v}, [-2.0, 0.0, 2.0], ["ada ford ate the apple"], max_new_tokens=4, top_k=3)
    json.dumps(tr)                                                    # plain JSON
    assert tr["layers"] == [0, 1] and len(tr["prompts"][0]["steered"]) == 2
    x = torch.tensor([tok.encode("ada ford ate the apple", bos=True)])
    with steer(model, v, 0, 2.0, "after_prompt"):
        y = model.generate(x, 4, temperature=0)
    assert tr["prompts"][0]["steered"][0][2]["tokens"] == [tok.itos[int(i)] for i in y[0, x.shape[1]:]]
    assert tr["prompts"][0]["steered"][1][1] == tr["prompts"][0]["base"]   # alpha = 0 is the baseline
    heat = tr["prompts"][0]["base"]["heat"]
    assert len(heat) == 2 and len(heat[0]) == x.shape[1] + 4
    with pytest.raises(ValueError, match="non-empty"): trace_repe(model, tok, {}, [0.0], ["ada ford"])

def test_widget_answers_ping_and_generate(model, world):
    pytest.importorskip("anywidget")
    from llmlab.repe import RepeWidget
    w, tok = world
    v = torch.randn(32)
    tr = trace_repe(model, tok, {1: v}, [-1.0, 0.0, 1.0], ["ada ford ate the apple"], max_new_tokens=3, scales={1: 2.0})
    assert tr["scales"] == [2.0]
    got = []
    wid = RepeWidget(tr, model, tok, {1: v})
    assert wid.step == 1                                              # starts at alpha = 0
    wid.send = got.append
    wid._handle(wid, {"type": "ping"}, [])
    wid._handle(wid, {"type": "generate", "layer": 1, "alpha": 1.0, "prompt": "ada ford ate the apple", "seed": 3}, [])
    assert got[0] == {"type": "pong", "live": True}
    assert got[1]["type"] == "generated" and "error" not in got[1] and got[1]["alpha"] == 2.0   # relative alpha x scale
    assert got[1]["c"] == 1.0                                         # the view shows the slider's unit, c, back
    static = RepeWidget(tr)                                           # no model: the view keeps 'generate' disabled
    static.send = got.append
    static._handle(static, {"type": "ping"}, [])
    assert got[-1] == {"type": "pong", "live": False}


# ---------------------------------------------------------------- bad input: (call, error type, message fragment)
def test_bad_input_table(model, world):
    w, tok = world
    pos, neg, u = planted(d=32)
    v = torch.randn(32)
    nan_acts = pos.clone(); nan_acts[3, 1] = float("nan")
    pairs = w.sentiment_pairs(4, seed=1)
    def entered(**kw):
        args = dict(model=model, vector=v, layer=0, alpha=1.0); args.update(kw)
        with steer(**args): pass
    cases = [
        (lambda: hook_name(model, 1.0), TypeError, "layer must be an int"),
        (lambda: hook_name(model, True), TypeError, "layer must be an int"),
        (lambda: hook_name("model", 0), TypeError, "hook points"),
        (lambda: collect_activations(model, ["ada ford ."], 0, tokenizer=tok, batch_size=0), ValueError, "batch_size must be an int >= 1"),
        (lambda: collect_activations(model, [None], 0, tokenizer=tok), TypeError, "each item of texts"),
        (lambda: collect_activations(model, [[1, 2, 10**6]], 0), ValueError, "outside [0,"),
        (lambda: collect_activations(model, [[]], 0), ValueError, "empty sequence"),
        (lambda: collect_activations(model, "ada ford .", 0, tokenizer=tok), ValueError, "non-empty list"),
        (lambda: collect_activations(model, ["ada ford ."], 0, True, tok), ValueError, "position"),
        (lambda: collect_activations(model, ["ada ford ."], 0, 7, tok), ValueError, "outside a text"),
        (lambda: reading_vector(nan_acts, neg), ValueError, "non-finite"),
        (lambda: reading_vector(pos[:0], neg), ValueError, "N >= 1"),
        (lambda: reading_vector("acts", neg), TypeError, "acts_pos must be an (N, d) tensor"),
        (lambda: reading_vector(pos.long(), neg), TypeError, "dtype"),
        (lambda: reading_vector(pos[0], neg), ValueError, "(N, d)"),
        (lambda: pair_accuracy(u, pos[:0], neg[:0]), ValueError, "N >= 1"),
        (lambda: pair_accuracy(u[:5], pos, neg), ValueError, "d=5"),
        (lambda: pair_accuracy(torch.full((32,), float("nan")), pos, neg), ValueError, "non-finite"),
        (lambda: pair_accuracy(u[None], pos, neg), ValueError, "shape (d,)"),
        
        (lambda: threshold_accuracy(u, pos, neg, nan_acts, neg), ValueError, "non-finite"),
        (lambda: entered(alpha=float("inf")), ValueError, "alpha must be a finite number"),
        (lambda: entered(alpha="1"), TypeError, "alpha must be a number"),
        (lambda: entered(prompt_len=0), ValueError, "prompt_len must be an int >= 1"),
        (lambda: entered(vector="up"), TypeError, "vector must be a (d_model,) tensor"),
        (lambda: entered(vector=torch.ones(32, dtype=torch.long)), TypeError, "float tensor"),
        (lambda: entered(vector=torch.full((32,), float("nan"))), ValueError, "NaN or inf"),
        (lambda: evaluate_reading(model, [], pairs, tok), ValueError, "train_pairs must be a non-empty list"),
        (lambda: evaluate_reading(model, pairs, ["ab"], tok), ValueError, "test_pairs must be a non-empty list"),
        (lambda: evaluate_reading(model, pairs, pairs, tok, methods=()), ValueError, "methods must be a non-empty"),
        (lambda: evaluate_reading(model, pairs, pairs, tok, methods=("svm",)), ValueError, "unknown methods"),
        (lambda: topic_pairs(w, -1), ValueError, "n must be an int >= 0"),
        (lambda: topic_pairs(w, 2.0), TypeError, "n must be an int"),
        (lambda: topic_pairs(w, 2, "food", "food"), ValueError, "must differ"),
        (lambda: topic_pairs(w, 2, "cars"), ValueError, "pos_topic must be one of"),
        (lambda: topic_pairs(w, 2, "food", None), ValueError, "neg_topic must be one of"),
        (lambda: collect_activations(model, [" "], 0, tokenizer=tok), ValueError, "empty string"),
        (lambda: pair_accuracy(u, pos, neg[:5]), ValueError, "acts_pos and acts_neg must be pairs"),
        (lambda: threshold_accuracy(u, pos[:0], neg, pos, neg), ValueError, "train_pos must be (N, d"),
        (lambda: evaluate_steering(model, v, 0, [1.0], ["ada ford"], tok, target="bogus", bar=False), ValueError, "target must be one of"),
        (lambda: evaluate_steering(model, v, 0, [1.0], ["ada ford"], tok, target=1, bar=False), TypeError, "target must be a label str"),
        (lambda: topic_pairs("world", 2), TypeError, "World"),
        (lambda: label_topic(None), TypeError, "sentence must be a str"),
        (lambda: generated_sentence("ada", 3), TypeError, "completion must be a str"),
        (lambda: steered_completions(model, ["ada ford"], None), TypeError, "tokenizer"),
        (lambda: steered_completions(model, ["ada ford"], tok, max_new_tokens=0), ValueError, "max_new_tokens must be an int >= 1"),
        (lambda: steered_completions(model, ["ada ford"], tok, temperature=-1.0), ValueError, "temperature must be >= 0"),
        (lambda: steered_completions(model, ["ada ford"], tok, v, 0, float("nan")), ValueError, "alpha must be a finite number"),
        (lambda: steered_completions(model, ["ada ford"], tok, v, 7, 1.0), ValueError, "out of range"),
        (lambda: steered_completions(model, ["ada ford"], tok, positions="some"), ValueError, "positions must be one of"),
        (lambda: evaluate_steering(model, v, 0, [], ["ada ford"], tok, bar=False), ValueError, "alphas is empty"),
        (lambda: evaluate_steering(model, v, 0, 1.0, ["ada ford"], tok, bar=False), TypeError, "alphas must be a list"),
        (lambda: evaluate_steering(model, v, 0, [float("nan")], ["ada ford"], tok, bar=False), ValueError, "finite"),
        (lambda: evaluate_steering(model, v, 0, [1.0], ["ada ford"], tok, samples=0, bar=False), ValueError, "samples must be an int >= 1"),
        (lambda: evaluate_steering(model, v, 0, [1.0], ["ada ford"], tok, samples=1.5, bar=False), TypeError, "samples must be an int"),
        (lambda: evaluate_steering(model, v, 0, [1.0], [], tok, bar=False), ValueError, "prompts is empty"),
        (lambda: evaluate_steering(model, v, 0, [1.0], [[1, 2]], tok, bar=False), TypeError, "prompts must be a list of strings"),
        (lambda: evaluate_steering(model, v, 0, [1.0], ["ada ford"], tok, labeller="happy", bar=False), TypeError, "labeller"),
        (lambda: trace_repe(model, tok, {0: v}, [0.0], ["ada ford"], top_k=0), ValueError, "top_k must be an int in [1,"),
        (lambda: trace_repe(model, tok, {0: v}, [0.0], ["ada ford"], scales={0: 0.0}), ValueError, "scales[0] must be > 0"),
        (lambda: trace_repe(model, tok, {0: v}, [], ["ada ford"]), ValueError, "alphas is empty"),
        (lambda: trace_repe(model, tok, {0: v}, [0.0], []), ValueError, "non-empty list"),
    ]
    for call, err, frag in cases:
        with pytest.raises(err) as e: call()
        assert frag in str(e.value), f"message {str(e.value)!r} lacks {frag!r}"
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 0


def test_widget_bad_input(model, world):
    pytest.importorskip("anywidget")
    from llmlab.repe import RepeWidget
    w, tok = world
    tr = trace_repe(model, tok, {1: torch.randn(32)}, [-1.0, 0.0, 1.0], ["ada ford"], max_new_tokens=2)
    with pytest.raises(ValueError, match="needs a trace"): RepeWidget({"alphas": []})
    with pytest.raises(ValueError, match="step must be an int in"): RepeWidget(tr, step=3)
    with pytest.raises(ValueError, match="model, tokenizer and vectors"): RepeWidget(tr, model)
    got = []
    wid = RepeWidget(tr, model, tok, {1: torch.randn(32)}); wid.send = got.append
    wid._handle(wid, {"type": "generate", "layer": 5, "alpha": 1.0, "prompt": "ada"}, [])
    assert "error" in got[-1]                                        # reported to the view, the kernel thread lives
