import os, sys, json, shutil, subprocess, time
from cases_common import *

def build(C):
    from llmlab import gpt, world as W
    G = gpt
    cfg = lambda **k: G.GPTConfig(**{**dict(vocab_size=32, ctx_len=8, n_layer=1, n_head=2, d_model=16), **k})
    mk = lambda **k: G.GPT(cfg(**k))
    torch.manual_seed(0)
    m = mk(); m.eval()
    V = 32
    idx = torch.randint(0, V, (2, 6))
    # config / construction
    for k, vals in {"vocab_size": (0, -1, 2.5, None), "ctx_len": (0, -3), "n_layer": (0, -1, 1.5), "n_head": (0, -2, 3),
                    "n_kv_head": (0, 3, -1), "d_model": (0, -16, 15), "d_ff": (0, -1)}.items():
        for v in vals:
            C(f"GPT(GPTConfig({k}={v!r}))", lambda k=k, v=v: mk(**{k: v}), err=k if not (k == "n_head" and v == 3) and not (k == "d_model" and v == 15) else ["n_head", "d_model"])
    C("GPT(GPTConfig(d_model=6, n_head=2)) (odd head_dim for RoPE)", lambda: mk(d_model=6, n_head=2), err=["head_dim", "even", "d_model"])
    for k in ("attention", "linear", "mlp"):
        C(f"GPT(GPTConfig({k}='bogus'))", lambda k=k: mk(**{k: "bogus"}), err=["bogus", k], exc=(KeyError,))
    for k, vals in {"rope_base": (NAN, -1.0, 0.0, INF), "norm_eps": (NAN, -1.0, INF), "init_std": (NAN, -1.0, INF)}.items():
        for v in vals:
            C(f"GPT(GPTConfig({k}={v!r}))", lambda k=k, v=v: mk(**{k: v}), err=k)
    C("GPT(None)", lambda: G.GPT(None), err="config")
    C("GPT({'vocab_size': 32})", lambda: G.GPT({"vocab_size": 32}), err="config")
    C("GPTConfig.from_dict({'bogus_key': 1})", lambda: G.GPTConfig.from_dict({"bogus_key": 1}), err="bogus_key")
    # forward
    C("model(idx.float())", lambda: m(idx.float()), err="idx")
    C("model(idx 1-D)", lambda: m(idx[0]), err="idx")
    C("model(idx with id == vocab_size)", lambda: m(torch.full((1, 4), V)), err="idx", exc=(IndexError,))
    C("model(idx with id -1)", lambda: m(torch.full((1, 4), -1)), err="idx", exc=(IndexError,))
    C("model(idx longer than ctx_len)", lambda: m(torch.zeros(1, 9, dtype=torch.long)), err=["ctx_len", "idx"])
    C("model(idx (1, 0))", lambda: m(torch.zeros(1, 0, dtype=torch.long)), err=["idx", "empty", "token"], ok=lambda r: r[0].shape == (1, 0, V))
    C("model(idx (0, 4)) (zero batch: ok)", lambda: m(torch.zeros(0, 4, dtype=torch.long)), err=["idx", "empty"], ok=lambda r: r[0].shape == (0, 4, V))
    C("model(idx, targets of other shape)", lambda: m(idx, idx[:, :3]), err="targets")
    C("model(idx, targets with id == vocab_size)", lambda: m(idx, torch.full_like(idx, V)), err="targets", exc=(IndexError,))
    C("model(idx, targets.float())", lambda: m(idx, idx.float()), err="targets")
    def all_ignored():
        mm = mk(); logits, loss = mm(idx, torch.full_like(idx, -100)); loss.backward()
        g = max(p.grad.abs().max().item() for p in mm.parameters() if p.grad is not None)
        return loss.item(), g
    C("model(idx, targets all -100) (all ignored: loss 0, grad 0)", all_ignored, ok=lambda r: (r[0] == 0 and r[1] == 0) or f"loss {r[0]}, max|grad| {r[1]}")
    C("model(idx, targets=-5 everywhere)", lambda: m(idx, torch.full_like(idx, -5)), err="targets", exc=(IndexError,))
    C("model(idx) non-contiguous idx (ok: same logits)", lambda: (m(idx.t().contiguous().t())[0], m(idx)[0]), ok=lambda r: close(r[0], r[1]))
    C("model(idx, cache=KVCache(0))", lambda: m(idx, cache=G.KVCache(0)), err=["n_layer", "cache"])
    C("model(idx, cache='x')", lambda: m(idx, cache="x"), err="cache")
    # generate / sampling
    C("generate(m, idx, max_new_tokens=-1)", lambda: G.generate(m, idx, -1), err="max_new_tokens")
    C("generate(m, idx, max_new_tokens=2.5)", lambda: G.generate(m, idx, 2.5), err="max_new_tokens")
    C("generate(m, idx, 0) (ok: idx)", lambda: G.generate(m, idx, 0), ok=lambda r: torch.equal(r, idx))
    for kw, nm in [(dict(temperature=-1.0), "temperature"), (dict(temperature=NAN), "temperature"), (dict(top_k=0), "top_k"),
                   (dict(top_k=-3), "top_k"), (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"), (dict(top_p=NAN), "top_p")]:
        C(f"generate(m, idx, 3, **{kw})", lambda kw=kw: G.generate(m, idx, 3, **kw), err=nm)
    C("generate(m, idx (2,8)=ctx_len, 5) (ok: crops context)", lambda: G.generate(m, torch.zeros(2, 8, dtype=torch.long), 5, temperature=0.0),
      ok=lambda r: r.shape == (2, 13))
    C("generate(m, idx.float(), 3)", lambda: G.generate(m, idx.float(), 3), err="idx")
    C("generate(m, idx, 3, stop=[999])", lambda: G.generate(m, idx, 3, stop=[999]), err="stop", ok=lambda r: r.shape == (2, 9))
    C("generate(m, idx, 3, use_cache=True/False) (ok: same greedy tokens)",
      lambda: (G.generate(m, idx, 3, temperature=0.0, use_cache=True), G.generate(m, idx, 3, temperature=0.0, use_cache=False)),
      ok=lambda r: torch.equal(r[0], r[1]) or "cache changes the tokens")
    lg = R(2, V)
    C("sample_logits(logits with NaN)", lambda: G.sample_logits(torch.tensor([[NAN] * V])), err="logits")
    C("sample_logits(all -inf logits)", lambda: G.sample_logits(torch.full((1, V), -INF)), err="logits")
    C("sample_logits(logits, temperature=0) (ok: argmax)", lambda: G.sample_logits(lg, 0.0), ok=lambda r: torch.equal(r.view(-1), lg.argmax(-1)))
    C("sample_logits(logits, top_k=10**6) (ok or clear)", lambda: G.sample_logits(lg, 1.0, top_k=10 ** 6), err="top_k", ok=lambda r: r.shape[0] == 2)
    C("sample_logits(logits 1-D)", lambda: G.sample_logits(lg[0]), err="logits", ok=lambda r: r.numel() == 1)
    C("sample_logits(logits, top_p=1e-9) (ok: argmax)", lambda: G.sample_logits(lg, 1.0, top_p=1e-9), ok=lambda r: torch.equal(r.view(-1), lg.argmax(-1)))
    C("complete(m, [], 3) (ok: [] or clear refusal)", lambda: G.complete(m, [], 3), err="prompts", ok=lambda r: r == [])
    C("complete(m, [[1,2]], 3, batch_size=0)", lambda: G.complete(m, [[1, 2]], 3, batch_size=0), err="batch_size")
    C("complete(m, [[]], 3)", lambda: G.complete(m, [[]], 3), err="prompt")
    C("complete(m, [[V+5]], 3)", lambda: G.complete(m, [[V + 5]], 3), err=["prompt", "token ids"], exc=(IndexError,))
    C("complete(m, None, 3)", lambda: G.complete(m, None, 3), err="prompts")
    C("complete(m, [[1,2],[3]], 3) (ok: one list per prompt)", lambda: G.complete(m, [[1, 2], [3]], 3), ok=lambda r: len(r) == 2)
    # schedule / batches
    C("lr_schedule(-1, 10, 0.1, 2)", lambda: G.lr_schedule(-1, 10, 0.1, 2), err="step")
    C("lr_schedule(0, 0, 0.1, 0)", lambda: G.lr_schedule(0, 0, 0.1, 0), err="steps")
    C("lr_schedule(0, 10, 0.1, -1)", lambda: G.lr_schedule(0, 10, 0.1, -1), err="warmup")
    C("lr_schedule(0, 10, nan, 2)", lambda: G.lr_schedule(0, 10, NAN, 2), err="lr")
    C("lr_schedule(5, 10, 0.1, 2, min_frac=2)", lambda: G.lr_schedule(5, 10, 0.1, 2, min_frac=2.0), err="min_frac")
    C("lr_schedule(5, 10, 0.1, 2, min_frac=nan)", lambda: G.lr_schedule(5, 10, 0.1, 2, min_frac=NAN), err="min_frac")
    C("lr_schedule(3, 10, 0.1, 10) (warmup=steps; ok finite)", lambda: G.lr_schedule(3, 10, 0.1, 10), ok=lambda r: 0 < r <= 0.1)
    C("lr_schedule(10, 10, 0.1, 10) (warmup=steps=step; ok)", lambda: G.lr_schedule(10, 10, 0.1, 10), ok=lambda r: 0 < r <= 0.1)
    C("lr_schedule(0, 10, 0.1, 0) (ok: lr)", lambda: G.lr_schedule(0, 10, 0.1, 0), ok=lambda r: abs(r - 0.1) < 1e-12)
    stream = torch.randint(0, V, (200,))
    C("get_batch(stream of 5 tokens, 4, 8)", lambda: G.get_batch(stream[:5], 4, 8), err=["data", "tokens"])
    C("get_batch(stream, 0, 8)", lambda: G.get_batch(stream, 0, 8), err="batch_size")
    C("get_batch(stream, 4, 0)", lambda: G.get_batch(stream, 4, 0), err="ctx_len")
    C("get_batch(stream.float(), 4, 8)", lambda: G.get_batch(stream.float() + 0.5, 4, 8), err="data")
    C("get_batch(None, 4, 8)", lambda: G.get_batch(None, 4, 8), err="data")
    C("get_batch(3-D tensor, 4, 8)", lambda: G.get_batch(torch.zeros(2, 3, 4, dtype=torch.long), 4, 8), err="data")
    C("get_batch(stream, 4, 8) (ok: y = x shifted)", lambda: G.get_batch(stream, 4, 8), ok=lambda r: bool((r[0][:, 1:] == r[1][:, :-1]).all()))
    C("evaluate(m, stream, batches=0)", lambda: G.evaluate(m, stream, batches=0), err="batches")
    C("evaluate(m, stream, batch_size=0)", lambda: G.evaluate(m, stream, batch_size=0), err="batch_size")
    C("evaluate(None, stream)", lambda: G.evaluate(None, stream), err="model")
    # training
    tr = lambda mm=None, data=stream, **k: G.train(mm or mk(), data, **{**dict(steps=2, batch_size=2, bar=False, plot=False), **k})
    for kw, nm in [(dict(steps=-1), "steps"), (dict(steps=2.5), "steps"), (dict(lr=NAN), "lr"), (dict(lr=-1.0), "lr"),
                   (dict(batch_size=0), "batch_size"), (dict(accum=0), "accum"), (dict(grad_clip=-1.0), "grad_clip"),
                   (dict(grad_clip=NAN), "grad_clip"), (dict(betas=(1.5, 0.9)), "betas"), (dict(betas=(0.9,)), "betas"),
                   (dict(weight_decay=NAN), "weight_decay"), (dict(warmup=-1), "warmup"), (dict(min_lr_frac=NAN), "min_lr_frac"),
                   (dict(eval_every=0), "eval_every"), (dict(eval_batches=0), "eval_batches")]:
        C(f"train(model, stream, **{kw})", lambda kw=kw: tr(**kw), err=nm)
    C("train(model, stream, steps=0) (ok: empty history or clear)", lambda: tr(steps=0), err="steps", ok=lambda r: isinstance(r, dict))
    C("train(model, float data)", lambda: tr(data=stream.float() + 0.3), err="data")
    C("train(model, data with id >= vocab)", lambda: tr(data=stream + V), err=["data", "token ids"], exc=(IndexError,))
    C("train(None, stream)", lambda: G.train(None, stream, 2, bar=False, plot=False), err="model")
    mm_nan = mk()
    def huge_lr():
        return tr(mm_nan, lr=1e30, steps=4, grad_clip=None)
    C("train(model, stream, lr=1e30, grad_clip=None) (stops on non-finite loss; weights finite)", huge_lr,
      err=["loss", "finite"], exc=(FloatingPointError,),
      post=lambda: "non-finite weights after train" if any(not torch.isfinite(p).all() for p in mm_nan.parameters()) else None,
      ok=lambda r: (not any(not torch.isfinite(p).all() for p in mm_nan.parameters())) or "weights non-finite")
    mm_nan2 = mk()
    with torch.no_grad(): mm_nan2.wte.weight[3] = NAN
    C("train(model with a NaN weight, stream) (FloatingPointError before the step)", lambda: tr(mm_nan2), err=["loss", "finite", "nan"],
      exc=(FloatingPointError,))
    C("flops_per_token(cfg, seq_len=0) (ok: projections only)", lambda: (G.flops_per_token(cfg(), seq_len=0), G.flops_per_token(cfg(), seq_len=1)), err="seq_len", ok=lambda r: 0 < r[0] < r[1])
    C("flops_per_token(cfg, seq_len=-1)", lambda: G.flops_per_token(cfg(), seq_len=-1), err="seq_len")
    C("flops_per_token(None)", lambda: G.flops_per_token(None), err="config")
    C("causal_mask(0, 0) (ok: empty)", lambda: G.causal_mask(0, 0), ok=lambda r: r.shape == (0, 0))
    C("causal_mask(-1, 2)", lambda: G.causal_mask(-1, 2), err="Tq")
    C("causal_mask(2.5, 2)", lambda: G.causal_mask(2.5, 2), err="Tq")
    C("causal_mask(3, 2) (ok: bottom-right)", lambda: G.causal_mask(3, 2), ok=lambda r: r.tolist() == [[False, False], [True, False], [True, True]])
    # attention
    q, k, v = R(1, 2, 4, 8), R(1, 2, 2, 8, seed=1), R(1, 2, 2, 8, seed=2)
    exp, _ = ref_attn(q, k, v, causal=True)
    C("attention_ref(q Tq=4, k Tk=2, causal) (fully masked rows -> 0)", lambda: G.attention_ref(q, k, v, True), ok=lambda r: close(r, exp))
    C("attention_sdpa(q Tq=4, k Tk=2, causal) (fully masked rows -> 0)", lambda: G.attention_sdpa(q, k, v, True), ok=lambda r: close(r, exp))
    C("attention_sdpa(3-D q, k, v)", lambda: G.attention_sdpa(q[0], k[0], v[0], False), err="q")
    C("attention_ref(3-D q, k, v)", lambda: G.attention_ref(q[0], k[0], v[0], False), err="q")
    C("attention_sdpa(q D=8, k D=4)", lambda: G.attention_sdpa(q, k[..., :4], v, False), err=["k", "D"])
    C("attention_ref(q H=2, k Hkv=3)", lambda: G.attention_ref(R(1, 2, 4, 8), R(1, 3, 4, 8), R(1, 3, 4, 8), False), err=["head", "Hkv", "k"])
    C("attention_sdpa(q H=4, k Hkv=3)", lambda: G.attention_sdpa(R(1, 4, 4, 8), R(1, 3, 4, 8), R(1, 3, 4, 8), False), err=["head", "Hkv", "k"])
    C("attention_ref(k Tk=2, v Tk=3)", lambda: G.attention_ref(q, k, R(1, 2, 3, 8), False), err="v")
    C("attention_sdpa(q float64, k float32)", lambda: G.attention_sdpa(q.double(), k, v, False), err="dtype")
    C("attention_ref(q int64)", lambda: G.attention_ref(q.long(), k.long(), v.long(), False), err="dtype")
    qn = R(1, 4, 2, 8).transpose(1, 2)
    C("attention_sdpa(non-contiguous q) (ok)", lambda: G.attention_sdpa(qn, k, v, False), ok=lambda r: close(r, ref_attn(qn, k, v)[0]))
    C("attention_ref(q*1e4) (huge scores, ok)", lambda: G.attention_ref(q * 1e4, k, v, False), ok=lambda r: close(r, ref_attn(q * 1e4, k, v)[0], 1e-3))
    C("RMSNorm(0)", lambda: G.RMSNorm(0), err="dim")
    C("RMSNorm(4, eps=nan)", lambda: G.RMSNorm(4, eps=NAN), err="eps")
    C("RMSNorm(4, eps=-1)", lambda: G.RMSNorm(4, eps=-1.0), err="eps")
    C("RMSNorm(4)(x (2,5))", lambda: G.RMSNorm(4)(R(2, 5)), err=["x", "dim"])
    C("RMSNorm(4)(zeros) (ok: zeros)", lambda: G.RMSNorm(4)(torch.zeros(2, 4)), ok=lambda r: is_zero(r))
    C("rope_tables(8, 7) (odd head_dim)", lambda: G.rope_tables(8, 7), err="head_dim")
    C("rope_tables(8, 8, base=nan)", lambda: G.rope_tables(8, 8, base=NAN), err="base")
    C("rope_tables(8, 8, base=0)", lambda: G.rope_tables(8, 8, base=0.0), err="base")
    C("rope_tables(8, 8, base=-1)", lambda: G.rope_tables(8, 8, base=-1.0), err="base")
    C("rope_tables(-1, 8)", lambda: G.rope_tables(-1, 8), err="ctx_len")
    cs, sn = G.rope_tables(8, 8)
    C("apply_rope(x T=4, cos T=2)", lambda: G.apply_rope(R(1, 1, 4, 8), cs[:2], sn[:2]), err=["cos", "T"])
    C("apply_rope(x D=6, cos D/2=4)", lambda: G.apply_rope(R(1, 1, 4, 6), cs[:4], sn[:4]), err=["x", "cos", "D"])
    C("apply_rope(x, cos, sin) (ok: norm preserved)", lambda: (G.apply_rope(R(1, 1, 8, 8), cs, sn), R(1, 1, 8, 8)),
      ok=lambda r: close(r[0].norm(dim=-1), r[1].norm(dim=-1)))
    C("KVCache(0)", lambda: G.KVCache(0), err="n_layer")
    C("KVCache(-1)", lambda: G.KVCache(-1), err="n_layer")
    C("KVCache(2.5)", lambda: G.KVCache(2.5), err="n_layer")
    C("KVCache(2).update(5, k, v)", lambda: G.KVCache(2).update(5, R(1, 1, 2, 4), R(1, 1, 2, 4)), err="layer", exc=(IndexError,))
    C("get_attention('bogus')", lambda: G.get_attention("bogus"), err="bogus", exc=(KeyError,))
    C("get_linear('bogus')", lambda: G.get_linear("bogus"), err="bogus", exc=(KeyError,))
    C("get_mlp('bogus')", lambda: G.get_mlp("bogus"), err="bogus", exc=(KeyError,))
    C("get_attention(None)", lambda: G.get_attention(None), err=["name", "attention"], exc=(KeyError,))
    # data helpers
    w = W.World(0); tok = W.Tokenizer.from_world(w)
    C("world_data(n_docs=0)", lambda: G.world_data(n_docs=0, val_docs=5, ctx_len=8), err="n_docs")
    C("world_data(n_docs=-1)", lambda: G.world_data(n_docs=-1, val_docs=5, ctx_len=8), err="n_docs")
    C("world_data(val_docs=-1)", lambda: G.world_data(n_docs=10, val_docs=-1, ctx_len=8), err="val_docs")
    C("world_data(ctx_len=0)", lambda: G.world_data(n_docs=10, val_docs=5, ctx_len=0), err="ctx_len")
    C("world_data(error_rate=2)", lambda: G.world_data(n_docs=10, val_docs=5, ctx_len=8, error_rate=2.0), err="error_rate")
    C("world_data(mix={'story': nan})", lambda: G.world_data(n_docs=10, val_docs=5, ctx_len=8, mix={"story": NAN}), err="mix")
    tr_d, va_d = G.world_data(n_docs=20, val_docs=10, ctx_len=8)
    C("ngram_baselines(train, val, vocab_size=0)", lambda: G.ngram_baselines(tr_d, va_d, 0), err="vocab_size")
    C("ngram_baselines(train, val, vocab_size=10) (ids beyond vocab)", lambda: G.ngram_baselines(tr_d, va_d, 10), err="vocab_size", exc=(IndexError,))
    C("ngram_baselines(..., alpha=0)", lambda: G.ngram_baselines(tr_d, va_d, tok.vocab_size, alpha=0.0), err="alpha",
      ok=lambda r: all(math.isfinite(x) for x in r.values()) or "non-finite")
    C("ngram_baselines(..., alpha=-1)", lambda: G.ngram_baselines(tr_d, va_d, tok.vocab_size, alpha=-1.0), err="alpha")
    C("ngram_baselines(..., alpha=nan)", lambda: G.ngram_baselines(tr_d, va_d, tok.vocab_size, alpha=NAN), err="alpha")
    mw = G.GPT(G.GPTConfig(vocab_size=tok.vocab_size, ctx_len=8, n_layer=1, n_head=2, d_model=16)).eval()
    empty = (torch.zeros(0, 8, dtype=torch.long), torch.zeros(0, 8, dtype=torch.long))
    C("dataset_loss(m, zero windows)", lambda: G.dataset_loss(mw, empty), err=["data", "window", "empty", "nothing"])
    C("dataset_loss(m, data, batch_size=0)", lambda: G.dataset_loss(mw, va_d, batch_size=0), err="batch_size")
    C("dataset_loss(m, val) (ok: = mean CE)", lambda: (G.dataset_loss(mw, va_d), mw(va_d.x, va_d.y)[1].item()),
      ok=lambda r: abs(r[0] - r[1]) < 1e-4 or f"{r}")
    C("task_accuracy(m, tok, [])", lambda: G.task_accuracy(mw, tok, []), err=["tasks", "empty", "nothing"])
    C("task_accuracy(m, tok, tasks, max_new_tokens=0) (ok: 0.0 or clear)", lambda: G.task_accuracy(mw, tok, w.arithmetic_tasks(2), max_new_tokens=0), err="max_new_tokens", ok=lambda r: r == 0.0)
    C("task_accuracy(m, tok, tasks, batch_size=0)", lambda: G.task_accuracy(mw, tok, w.arithmetic_tasks(2), batch_size=0), err="batch_size")
    C("sentiment_consistency(m, tok, w, n_samples=0)", lambda: G.sentiment_consistency(mw, tok, w, n_samples=0), err="n_samples")
    C("world_eval(m, tok, w, n_arith=-1)", lambda: G.world_eval(mw, tok, w, n_arith=-1), err="n_arith")
    C("pretrained('bogus')", lambda: G.pretrained("bogus"), err="bogus", exc=(KeyError,))
    C("pretrained('../x')", lambda: G.pretrained("../x"), err=["name", "../x"], exc=(KeyError,))
    C("world_of('bogus')", lambda: G.world_of("bogus"), err="bogus", exc=(KeyError,))
    C("world_of(123)", lambda: G.world_of(123), err=["model_or_name", "123", "world_of takes"], exc=(KeyError,))
    # more edges
    C("generate(m, idx, 3, top_k=1) (ok: = greedy)", lambda: (G.generate(m, idx, 3, top_k=1), G.generate(m, idx, 3, temperature=0.0)),
      ok=lambda r: torch.equal(r[0], r[1]) or "top_k=1 differs from greedy")
    C("generate(m, idx, 3, top_k=1.5)", lambda: G.generate(m, idx, 3, top_k=1.5), err="top_k")
    C("sample_logits(logits, temperature=1e-30) (ok: argmax, no NaN)", lambda: G.sample_logits(lg, 1e-30), err="temperature",
      ok=lambda r: torch.equal(r.view(-1), lg.argmax(-1)) or "not argmax")
    C("sample_logits(logits, top_k=1) (ok: argmax)", lambda: G.sample_logits(lg, 1.0, top_k=1), ok=lambda r: torch.equal(r.view(-1), lg.argmax(-1)))
    C("sample_logits(logits with some -inf, top_p=0.9) (ok: never a -inf token)",
      lambda: G.sample_logits(torch.tensor([[0.0, -INF, 1.0, -INF]] * 64), 1.0, top_p=0.9, generator=torch.Generator().manual_seed(0)),
      ok=lambda r: bool(((r.view(-1) == 0) | (r.view(-1) == 2)).all()) or "picked a masked token")
    def partial_ignore():
        t = idx.clone(); t[0, :3] = -100
        lo, loss = m(idx, t)
        ref = torch.nn.functional.cross_entropy(lo.reshape(-1, V).double(), t.reshape(-1), ignore_index=-100)
        return loss.item(), ref.item()
    C("model(idx, targets with some -100) (ok: mean over kept tokens)", partial_ignore, ok=lambda r: abs(r[0] - r[1]) < 1e-4 or f"{r}")
    C("lr_schedule(20, 10, 0.1, 2) (step past steps: ok min_frac*lr or refuse)", lambda: G.lr_schedule(20, 10, 0.1, 2), err="step",
      ok=lambda r: abs(r - 0.01) < 1e-9 or f"{r}")
    C("model.run_with_cache(idx, names='bogus')", lambda: m.run_with_cache(idx, names="bogus"), err=["names", "bogus", "hook"], exc=(KeyError,))
    def bad_hook_shape():
        with m.hooks({"blocks.0.resid_post": lambda x: x[..., :3]}): return m(idx)
    C("model.hooks({'blocks.0.resid_post': returns wrong shape})", bad_hook_shape, err=["hook", "shape", "blocks.0.resid_post"])
    def unknown_hook():
        with m.hooks({"bogus": lambda x: x}): return m(idx)
    C("model.hooks({'bogus': f})", unknown_hook, err=["bogus", "hook"], exc=(KeyError,))
    C("model.run_with_cache(idx) (ok: cached activations finite)", lambda: m.run_with_cache(idx), ok=lambda r: True)
    C("GPTConfig.from_dict({'vocab_size': '32'})", lambda: G.GPT(G.GPTConfig.from_dict({"vocab_size": "32"})), err="vocab_size")
    C("load(ckpt, device='bogus')", lambda: G.load(_saved(G, m, TMP / "ckpt" / "dev"), device="bogus"), err="device")
    C("load(path of a file)", lambda: G.load(TMP / "ckpt" / "file"), err=["path", "file", "checkpoint"], exc=(FileNotFoundError, NotADirectoryError))
    def kv_mismatch():
        c = G.KVCache(1); c.update(0, R(1, 2, 3, 8), R(1, 2, 3, 8)); return c.update(0, R(1, 2, 1, 4), R(1, 2, 1, 4))
    C("KVCache.update(0, k of another head dim than the cached keys)", kv_mismatch, err=["k", "shape", "cache"])
    def cache_equiv():
        i2 = torch.randint(0, V, (2, 8))
        return G.generate(m, i2[:, :3], 5, temperature=0.0, use_cache=True), G.generate(m, i2[:, :3], 5, temperature=0.0, use_cache=False)
    C("generate(..., use_cache=True) beyond ctx_len (3 + 5 tokens, ctx 8) = without cache (ok)", cache_equiv, ok=lambda r: torch.equal(r[0], r[1]) or "cache changes tokens")
    C("ngram_baselines(train, val with zero windows)", lambda: G.ngram_baselines(tr_d, type(va_d)(*(getattr(va_d, f)[:0] for f in ("x", "y", "tags", "sentiment", "kind"))), tok.vocab_size),
      err=["val", "empty", "window"])
    # checkpoints
    ck = TMP / "ckpt"
    def save_load():
        G.save(m, ck / "a", meta={"x": 1}); m2 = G.load(ck / "a")
        return [(k, close(v, m2.state_dict()[k], 0)) for k, v in m.state_dict().items()]
    C("save(m, dir) then load(dir) (ok: identical weights)", save_load, ok=lambda r: all(x is True for _, x in r) or str(r[:2]))
    fpath = ck / "file"; fpath.parent.mkdir(parents=True, exist_ok=True); fpath.write_text("x")
    C("save(m, path of an existing file)", lambda: G.save(m, fpath), err=["path", "file"], exc=(FileExistsError, NotADirectoryError))
    C("save(None, dir)", lambda: G.save(None, ck / "n"), err="model")
    C("save(m, dir, meta={'f': object()})", lambda: G.save(m, ck / "m", meta={"f": object()}), err=["meta", "JSON serializable"],
      post=lambda: "a half checkpoint was left" if (ck / "m" / "model.safetensors").exists() and not (ck / "m" / "config.json").exists() else None)
    C("load(nonexistent dir)", lambda: G.load(ck / "nope"), err="nope", exc=(FileNotFoundError,))
    def corrupt(name, how):
        d = ck / name; G.save(m, d)
        f = d / "model.safetensors"; b = bytearray(f.read_bytes())
        if how == "tail": b[-16:] = b"\x7f\xff\xff\xff" * 4
        elif how == "truncate": b = b[: len(b) // 2]
        elif how == "header": b[8:40] = b"x" * 32
        elif how == "mid": b[len(b) // 2: len(b) // 2 + 64] = b"\xff" * 64
        f.write_bytes(bytes(b))
        return G.load(d)
    for how in ("tail", "truncate", "header", "mid"):
        C(f"load(checkpoint with model.safetensors {how} corrupted)", lambda how=how: corrupt(how, how),
          err=["ckpt", "checksum", "corrupt", "sha", "safetensors", how], exc=(OSError, RuntimeError))
    def bad_config(txt):
        d = ck / f"cfg{abs(hash(txt))}"; G.save(m, d); (d / "config.json").write_text(txt); return G.load(d)
    C("load(checkpoint with config.json = '{broken')", lambda: bad_config("{broken"), err=["config.json", "cfg"], exc=(OSError,))
    C("load(checkpoint with config.json = '[]')", lambda: bad_config("[]"), err=["config.json", "cfg"], exc=(OSError, KeyError))
    def mixed():
        da, db = ck / "mixA", ck / "mixB"
        G.save(m, da)
        torch.manual_seed(5); other = mk(); G.save(other, db)
        shutil.copy(db / "model.safetensors", da / "model.safetensors")
        return G.load(da)
    C("load(dir with config/meta of one save and weights of another, same shapes)", mixed,
      err=["checksum", "sha", "mix", "match", "mixA"], exc=(OSError, RuntimeError))
    def other_cfg():
        da, db = ck / "ocA", ck / "ocB"
        G.save(m, da); G.save(mk(d_model=32), db)
        shutil.copy(db / "model.safetensors", da / "model.safetensors")
        return G.load(da)
    C("load(dir with weights of a different-size model)", other_cfg, err=["checksum", "sha", "size", "shape", "match", "ocA"], exc=(OSError, RuntimeError))
    def tamper_cfg():
        d = ck / "tamper"; G.save(m, d)
        info = json.loads((d / "config.json").read_text())
        info["config"]["rope_base"] = 10001.0
        (d / "config.json").write_text(json.dumps(info, indent=1))
        m2 = G.load(d)
        return m2.config.rope_base
    C("load(checkpoint whose config.json rope_base was changed 10000 -> 10001 on disk)", tamper_cfg,
      err=["checksum", "sha", "config", "tamper"], exc=(OSError, RuntimeError),
      ok=lambda r: "a different model loaded silently (config.json is not covered by the checksum)" if r != 10000.0 else True)
    def flip_bytes():
        import random
        rng = random.Random(0); silent = 0; errors = set()
        for trial in range(8):
            d = ck / f"flip{trial}"; G.save(m, d)
            f = d / "model.safetensors"; b = bytearray(f.read_bytes())
            for _ in range(3):
                i = rng.randrange(len(b)); b[i] ^= 1 << rng.randrange(8)
            f.write_bytes(bytes(b))
            try:
                m2 = G.load(d)
            except Exception as e:
                errors.add(type(e).__name__); continue
            if any(not torch.equal(v, m2.state_dict()[k]) for k, v in m.state_dict().items()): silent += 1
        return (silent == 0, f"{silent} silent of 8; errors {sorted(errors)}")
    C("load(8 checkpoints with 3 random bit flips each) (never silently different weights)", flip_bytes,
      ok=lambda r: r[0] or r[1])
    tr_small = torch.randint(0, V, (300,))
    C("train(..., val_data with zero windows, eval_every=1)", lambda: tr(val_data=torch.zeros(0, 9, dtype=torch.long), eval_every=1),
      err=["val_data", "data", "empty", "window"])
    C("race: 2 writer processes x 15 saves to one dir + reader loading meanwhile", lambda: race(ck / "race"), timeout=240,
      ok=lambda r: (isinstance(r, tuple) and r[0] is True) or r)

def _saved(G, m, d):
    G.save(m, d); return d

def race(d):
    from llmlab import gpt as G
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.getcwd())
    here = os.path.dirname(os.path.abspath(__file__))
    import importlib.util
    spec = importlib.util.spec_from_file_location("cw", os.path.join(here, "ckpt_writer.py"))
    def expected(tag):
        torch.manual_seed({"A": 1, "B": 2}[tag])
        c = dict(vocab_size=32, ctx_len=8, n_layer=1, n_head=2, d_model=16)
        if tag == "B": c["rope_base"] = 500.0
        return G.GPT(G.GPTConfig(**c)).state_dict(), c
    ref = {t: expected(t) for t in "AB"}
    ps = [subprocess.Popen([sys.executable, os.path.join(here, "ckpt_writer.py"), str(d), t, "15"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE) for t in "AB"]
    problems, loads, t0 = [], 0, time.time()
    while any(p.poll() is None for p in ps) and time.time() - t0 < 200:
        if not (d / "config.json").exists() and not any(d.glob("*")):
            time.sleep(0.05); continue
        try:
            mm = G.load(d)
        except FileNotFoundError:
            continue
        except Exception as e:
            problems.append(f"reader got {type(e).__name__}: {str(e)[:80]}"); continue
        loads += 1
        tag = mm.meta.get("writer")
        sd, c = ref[tag]
        if mm.config.rope_base != c.get("rope_base", 10000.0) or any(not torch.equal(v, mm.state_dict()[k]) for k, v in sd.items()):
            problems.append(f"mixed checkpoint: meta says writer {tag} but config/weights differ")
    for p in ps:
        out, err = p.communicate(timeout=60)
        if p.returncode != 0: problems.append(f"writer failed rc={p.returncode}: {err.decode()[-200:]}")
    try:
        mm = G.load(d); sd, c = ref[mm.meta["writer"]]
        if any(not torch.equal(v, mm.state_dict()[k]) for k, v in sd.items()): problems.append("final checkpoint mixed")
    except Exception as e: problems.append(f"final load failed: {type(e).__name__}: {e}")
    if problems:
        from collections import Counter
        return f"{len(problems)} problems in {loads} reads: " + "; ".join(f"{n}x {p}" for p, n in Counter(problems).most_common(4))
    return (True, f"{loads} consistent reads during the saves") if loads > 0 else "reader never loaded (inconclusive)"
