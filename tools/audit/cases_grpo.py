from cases_common import *

def build(C):
    from llmlab import grpo as GR, gpt, world as W
    w = W.World(0); tok = W.Tokenizer.from_world(w); V = tok.vocab_size
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=V, ctx_len=32, n_layer=1, n_head=2, d_model=16))
    tasks = w.arithmetic_tasks(4, seed=1)
    rw = lambda task, text: float(task.check(text))
    ga = GR.group_advantages
    C("group_advantages([1, nan, 0, 1], 2)", lambda: ga([1.0, NAN, 0.0, 1.0], 2), err="rewards")
    C("group_advantages([1, inf, 0, 1], 2)", lambda: ga([1.0, INF, 0.0, 1.0], 2), err="rewards")
    C("group_advantages([1, 0, 1], 2) (not a multiple)", lambda: ga([1.0, 0.0, 1.0], 2), err="group_size")
    C("group_advantages([1, 0], 0)", lambda: ga([1.0, 0.0], 0), err="group_size")
    C("group_advantages([1, 0], 2.0)", lambda: ga([1.0, 0.0], 2.0), err="group_size")
    C("group_advantages([1, 0], 2, scale='bogus')", lambda: ga([1.0, 0.0], 2, scale="bogus"), err="scale")
    C("group_advantages([1, 0], 2, eps=nan)", lambda: ga([1.0, 0.0], 2, eps=NAN), err="eps")
    C("group_advantages([1, 0], 2, eps=-1)", lambda: ga([1.0, 0.0], 2, eps=-1.0), err="eps")
    C("group_advantages([1, 1, 1, 1], 2, eps=0) (equal rewards: 0 or refuse eps)", lambda: ga([1.0, 1.0, 1.0, 1.0], 2, eps=0.0), err="eps", ok=is_zero)
    C("group_advantages([1, 1, 0, 0], 2) (flat groups -> 0)", lambda: ga([1.0, 1.0, 0.0, 0.0], 2), ok=lambda r: is_zero(r) or f"{r}")
    C("group_advantages([1, 0, 0, 0], 1) (group of one -> 0)", lambda: ga([1.0, 0.0, 0.0, 0.0], 1), ok=lambda r: is_zero(r) or f"{r}")
    C("group_advantages(None, 2)", lambda: ga(None, 2), err="rewards")
    C("group_advantages(['a', 'b'], 2)", lambda: ga(["a", "b"], 2), err="rewards")
    C("group_advantages([], 2)", lambda: ga([], 2), err="rewards", ok=lambda r: r.numel() == 0)
    C("group_advantages(2-D rewards (2,2), 2)", lambda: ga(torch.ones(2, 2), 2), err="rewards", ok=lambda r: r.numel() == 4)
    C("group_advantages([1, 0, 1, 0], 2, 'none') (ok: +-0.5)", lambda: ga([1.0, 0.0, 1.0, 0.0], 2, "none"), ok=lambda r: r.tolist() == [0.5, -0.5, 0.5, -0.5])
    C("group_advantages([1e30, -1e30], 2) (huge; finite)", lambda: ga([1e30, -1e30], 2), ok=lambda r: bool(torch.isfinite(r).all()))
    # grpo_loss
    N, Cc = 2, 4
    lp = R(N, Cc).clamp(max=0) - 0.1; adv = torch.tensor([1.0, -1.0]); mask = torch.ones(N, Cc)
    def zero_tok():
        l = lp.clone().requires_grad_(); loss, _ = GR.grpo_loss(l, lp, adv, torch.zeros(N, Cc)); loss.backward(); return loss.item(), l.grad
    C("grpo_loss(mask all 0) (zero tokens: loss 0, grad 0)", zero_tok, ok=lambda r: (r[0] == 0 and is_zero(r[1])) or f"loss {r[0]}")
    for kw, nm in [(dict(eps_low=NAN), "eps_low"), (dict(eps_low=-0.1), "eps_low"), (dict(eps_low=1.5), "eps_low"), (dict(eps_high=NAN), "eps_high"),
                   (dict(eps_high=-1.0), "eps_high"), (dict(beta=-1.0), "beta"), (dict(beta=NAN), "beta"), (dict(loss_type="bogus"), "loss_type")]:
        C(f"grpo_loss(..., **{kw})", lambda kw=kw: GR.grpo_loss(lp, lp, adv, mask, **kw), err=nm)
    C("grpo_loss(logp (2,4), mask (2,3))", lambda: GR.grpo_loss(lp, lp, adv, mask[:, :3]), err="mask")
    C("grpo_loss(logp_old (2,3))", lambda: GR.grpo_loss(lp, lp[:, :3], adv, mask), err="logp_old")
    C("grpo_loss(advantages (3,))", lambda: GR.grpo_loss(lp, lp, torch.ones(3), mask), err="advantages")
    C("grpo_loss(advantages with NaN)", lambda: GR.grpo_loss(lp, lp, torch.tensor([NAN, 1.0]), mask), err="advantages")
    C("grpo_loss(logp with NaN)", lambda: GR.grpo_loss(torch.full((N, Cc), NAN), lp, adv, mask), err="logp")
    C("grpo_loss(beta=0.1, logp_ref=None)", lambda: GR.grpo_loss(lp, lp, adv, mask, beta=0.1), err="logp_ref")
    C("grpo_loss(logp, logp, adv, mask) (ok: = -mean adv = 0)", lambda: GR.grpo_loss(lp, lp, adv, mask)[0], ok=lambda r: abs(float(r)) < 1e-6 or f"{float(r)}")
    C("grpo_loss(logp_ref with NaN, beta=0.1)", lambda: GR.grpo_loss(lp, lp, adv, mask, logp_ref=torch.full((N, Cc), NAN), beta=0.1), err="logp_ref")
    C("grpo_loss(logp - logp_old = 30) (ratio 1e13; finite)", lambda: GR.grpo_loss(lp, lp - 30, adv, mask)[0], ok=lambda r: bool(torch.isfinite(r)))
    # sequence_logprobs / sampling
    prompts = [torch.tensor(tok.encode(tasks[0].prompt))]
    comp = torch.randint(0, V, (1, 4)); cm = torch.ones(1, 4)
    C("sequence_logprobs(mask (1,3) for completions (1,4))", lambda: GR.sequence_logprobs(model, prompts, comp, cm[:, :3]), err="mask")
    C("sequence_logprobs(completions with id V)", lambda: GR.sequence_logprobs(model, prompts, torch.full((1, 4), V), cm), err="completions")
    C("sequence_logprobs(prompts [])", lambda: GR.sequence_logprobs(model, [], comp, cm), err="prompts")
    C("sequence_logprobs(prompt empty tensor)", lambda: GR.sequence_logprobs(model, [torch.zeros(0, dtype=torch.long)], comp, cm), err="prompt")
    C("sequence_logprobs(model=None)", lambda: GR.sequence_logprobs(None, prompts, comp, cm), err="model")
    C("sequence_logprobs(mask all 0) (ok: zeros)", lambda: GR.sequence_logprobs(model, prompts, comp, torch.zeros(1, 4)), ok=is_zero)
    p0 = tok.encode(tasks[0].prompt)
    for kw, nm in [(dict(n=0), "n"), (dict(max_new_tokens=0), "max_new_tokens"), (dict(temperature=-1.0), "temperature"),
                   (dict(temperature=NAN), "temperature"), (dict(pad_id=-1), "pad_id"), (dict(stop_ids=[-3]), "stop_ids")]:
        C(f"sample_completions(model, prompt, **{kw})", lambda kw=kw: GR.sample_completions(model, p0, **{**dict(n=2, max_new_tokens=3), **kw}), err=nm)
    C("sample_completions(model, [], 2, 3)", lambda: GR.sample_completions(model, [], 2, 3), err="prompt")
    C("sample_completions(model, [V+1], 2, 3)", lambda: GR.sample_completions(model, [V + 1], 2, 3), err=["prompt", "token ids"])
    C("sample_completions(prompt of ctx_len tokens, 2, 3) (crop or refuse)", lambda: GR.sample_completions(model, [1] * 32, 2, 3), err=["prompt", "ctx_len"],
      ok=lambda r: r[0].shape == (2, 3))
    C("sample_completions(model, prompt, 2, 3) (ok: mask 0/1)", lambda: GR.sample_completions(model, p0, 2, 3, generator=torch.Generator().manual_seed(0)),
      ok=lambda r: r[0].shape == (2, 3) and set(r[1].flatten().tolist()) <= {0, 1, 0.0, 1.0, True, False})
    enc, dec = tok.encode, tok.decode
    C("greedy_accuracy(model, [], ...)", lambda: GR.greedy_accuracy(model, [], enc, dec, 4), err="tasks")
    C("greedy_accuracy(..., batch_size=0)", lambda: GR.greedy_accuracy(model, tasks, enc, dec, 4, batch_size=0), err="batch_size")
    C("greedy_accuracy(..., max_new_tokens=0)", lambda: GR.greedy_accuracy(model, tasks, enc, dec, 0), err="max_new_tokens", ok=lambda r: r == 0.0)
    C("greedy_accuracy(..., encode=None)", lambda: GR.greedy_accuracy(model, tasks, None, dec, 4), err="encode")
    C("greedy_accuracy(model, tasks, ...) (ok: in [0, 1])", lambda: GR.greedy_accuracy(model, tasks, enc, dec, 4), ok=lambda r: 0 <= r <= 1)
    # trainer
    base = dict(encode=enc, decode=dec, prompts_per_step=2, max_new_tokens=4, group_size=2, plot=False)
    T = lambda **k: GR.GRPOTrainer(model, tasks, rw, **{**base, **k})
    for kw, nm in [(dict(group_size=0), "group_size"), (dict(group_size=1), "group_size"), (dict(prompts_per_step=0), "prompts_per_step"),
                   (dict(max_new_tokens=0), "max_new_tokens"), (dict(temperature=NAN), "temperature"), (dict(lr=NAN), "lr"), (dict(lr=-1.0), "lr"),
                   (dict(mu=0), "mu"), (dict(beta=NAN), "beta"), (dict(eps_low=NAN), "eps_low"), (dict(loss_type="bogus"), "loss_type"),
                   (dict(scale="bogus"), "scale"), (dict(grad_clip=-1.0), "grad_clip"), (dict(grad_clip=NAN), "grad_clip"), (dict(snapshot_every=-1), "snapshot_every"),
                   (dict(beta=0.1), "ref_model"), (dict(encode=None), "encode"), (dict(seed=-1), "seed"), (dict(stop_ids=[-1]), "stop_ids")]:
        C(f"GRPOTrainer(model, tasks, reward_fn, **{kw})", lambda kw=kw: T(**kw), err=nm)
    C("GRPOTrainer(model, [], reward_fn)", lambda: GR.GRPOTrainer(model, [], rw, **base), err="tasks")
    C("GRPOTrainer(model, tasks, None)", lambda: GR.GRPOTrainer(model, tasks, None, **base), err="reward_fn")
    C("GRPOTrainer(None, tasks, reward_fn)", lambda: GR.GRPOTrainer(None, tasks, rw, **base), err="model")
    C("GRPOTrainer(model, ['not a task'], reward_fn)", lambda: GR.GRPOTrainer(model, ["x"], rw, **base), err="tasks")
    def nan_once():
        torch.manual_seed(1)
        m2 = gpt.GPT(gpt.GPTConfig(vocab_size=V, ctx_len=32, n_layer=1, n_head=2, d_model=16))
        calls = {"n": 0}
        def bad_rw(task, text):
            calls["n"] += 1; return NAN if calls["n"] == 2 else 1.0
        tr = GR.GRPOTrainer(m2, tasks, bad_rw, **base)
        try: tr.step()
        finally:
            global _m2; _m2 = m2
    C("GRPOTrainer(reward_fn returns NaN once).step() (refuse; weights finite)", nan_once, err=["reward"], exc=(FloatingPointError,),
      post=lambda: "NaN in the weights" if any(not torch.isfinite(p).all() for p in _m2.parameters()) else None)
    def str_reward():
        tr = GR.GRPOTrainer(model, tasks, lambda t, s: "good", **base); return tr.step()
    C("GRPOTrainer(reward_fn returns 'good').step()", str_reward, err=["reward"])
    def none_reward():
        tr = GR.GRPOTrainer(model, tasks, lambda t, s: None, **base); return tr.step()
    C("GRPOTrainer(reward_fn returns None).step()", none_reward, err=["reward"])
    def inf_reward():
        torch.manual_seed(2)
        m3 = gpt.GPT(gpt.GPTConfig(vocab_size=V, ctx_len=32, n_layer=1, n_head=2, d_model=16)); global _m3; _m3 = m3
        tr = GR.GRPOTrainer(m3, tasks, lambda t, s: INF, **base); return tr.step()
    C("GRPOTrainer(reward_fn returns inf).step() (refuse; weights finite)", inf_reward, err=["reward"], exc=(FloatingPointError,),
      post=lambda: "non-finite weights" if any(not torch.isfinite(p).all() for p in _m3.parameters()) else None)
    def ok_step():
        torch.manual_seed(3)
        m4 = gpt.GPT(gpt.GPTConfig(vocab_size=V, ctx_len=32, n_layer=1, n_head=2, d_model=16))
        tr = GR.GRPOTrainer(m4, tasks, rw, **base); st = tr.step(); return st, [p for p in m4.parameters()]
    C("GRPOTrainer(...).step() all-zero rewards (ok: finite metrics, finite weights)", ok_step,
      ok=lambda r: all(torch.isfinite(p).all() for p in r[1]) or "non-finite weights")
    def dyn_zero():
        torch.manual_seed(4)
        m5 = gpt.GPT(gpt.GPTConfig(vocab_size=V, ctx_len=32, n_layer=1, n_head=2, d_model=16))
        tr = GR.GRPOTrainer(m5, tasks, lambda t, s: 0.0, **{**base, "dynamic_sampling": True}); return tr.step()
    C("GRPOTrainer(dynamic_sampling=True, rewards always 0).step() (no hang: skip or clear error)", dyn_zero, timeout=90,
      err=["dynamic_sampling", "reward", "group"], ok=lambda r: isinstance(r, dict) or (isinstance(r, tuple) and isinstance(r[0], dict)))
    def other_loss(lt, mu):
        torch.manual_seed(5)
        m6 = gpt.GPT(gpt.GPTConfig(vocab_size=V, ctx_len=32, n_layer=1, n_head=2, d_model=16))
        tr = GR.GRPOTrainer(m6, tasks, lambda t, s: float(len(s) % 2), **{**base, "loss_type": lt, "mu": mu}); tr.step()
        return [p for p in m6.parameters()]
    for lt in GR.LOSS_TYPES:
        C(f"GRPOTrainer(loss_type='{lt}', mu=2).step() (ok: finite weights)", lambda lt=lt: other_loss(lt, 2), ok=lambda ps: all(torch.isfinite(p).all() for p in ps))
    C("group_advantages([1, 1, 1, 1], 2, 'batch') (flat batch -> 0)", lambda: ga([1.0, 1.0, 1.0, 1.0], 2, "batch"), ok=lambda r: is_zero(r) or f"{r}")
    tr0 = T()
    C("GRPOTrainer.train(steps=-1)", lambda: tr0.train(-1), err="steps")
    C("GRPOTrainer.train(steps=2.5)", lambda: tr0.train(2.5), err="steps")
    C("GRPOTrainer.train(1, eval_fn=f, eval_every=0)", lambda: tr0.train(1, eval_fn=lambda m: 0.0, eval_every=0), err="eval_every")
    C("GRPOTrainer.rollout([])", lambda: tr0.rollout([]), err="tasks")
    C("trace_grpo(None)", lambda: GR.trace_grpo(None), err="trainer")
    C("GRPOWidget(None)", lambda: GR.GRPOWidget(None), err="trainer")
