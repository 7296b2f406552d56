"""llmlab.diffusion_lm: the masked diffusion loss (masked positions only, 1/t weight, SFT prompt), the unmasking sampler
(no mask left, prompt kept, scheduled counts, determinism), the bidirectional backbone, the likelihood bound, bad input."""
import pytest, torch
import torch.nn.functional as F
from llmlab.gpt import GPT, GPTConfig
from llmlab.diffusion_lm import (MASK_ID, masked_diffusion_loss, masked_ce_loss, forward_mask, unmask_schedule,
                                 diffusion_generate, diffusion_infill, diffusion_loglik)

V = 40

def model(causal=False, attention="sdpa", seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=V, ctx_len=24, n_layer=1, n_head=2, d_model=16, causal=causal, attention=attention)).eval()

def test_loss_touches_only_masked_targets_with_1_over_t():
    g = torch.Generator().manual_seed(0)
    logits, x = torch.randn(3, 8, V, generator=g), torch.randint(5, V, (3, 8), generator=g)
    masked, t = forward_mask(x, 0.4, generator=g)
    base = masked_ce_loss(logits, x, masked, t)
    y = x.clone(); r, c = (~masked).nonzero()[0]; y[r, c] = (x[r, c] + 1) % V
    assert torch.allclose(masked_ce_loss(logits, y, masked, t), base)          # unmasked target: no effect
    r, c = masked.nonzero()[0]; y = x.clone(); y[r, c] = (x[r, c] + 1) % V
    assert not torch.allclose(masked_ce_loss(logits, y, masked, t), base)      # masked target: counts
    assert torch.allclose(masked_ce_loss(logits, x, masked, 2 * t), base / 2)   # weight 1/t
    ce = F.cross_entropy(logits.transpose(1, 2), x, reduction="none")
    assert torch.allclose(base, ((ce * masked).sum(1) / t / 8).mean())

def test_prompt_never_masked_in_sft():
    x = torch.randint(5, V, (64, 12)); pm = torch.zeros_like(x, dtype=torch.bool); pm[:, :5] = True
    masked, _ = forward_mask(x, 1.0, prompt_mask=pm)
    assert not masked[:, :5].any() and masked[:, 5:].all()
    loss, m, t = masked_diffusion_loss(model(), x, prompt_mask=pm, return_mask=True)
    assert not m[pm].any() and torch.isfinite(loss)

@pytest.mark.parametrize("attention", ["sdpa", "flash"])
def test_noncausal_model_sees_the_future(attention):
    x = torch.randint(5, V, (1, 8)); y = x.clone(); y[0, -1] = (x[0, -1] + 1) % V
    def causal_ok(m): return torch.allclose(m(x)[0][0, 0], m(y)[0][0, 0])
    assert causal_ok(model(True, attention))          # the causal model passes the causality test...
    assert not causal_ok(model(False, attention))     # ...and the bidirectional one fails it, as it must

@pytest.mark.parametrize("remasking", ["low_confidence", "random"])
@pytest.mark.parametrize("steps,block", [(8, None), (4, 4), (3, None), (16, 2)])
def test_generation_schedule_prompt_and_no_mask(remasking, steps, block):
    m, prompt = model(), torch.randint(5, V, (3, 5))
    out, tr = diffusion_generate(m, prompt, 8, steps=steps, block_length=block, remasking=remasking, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 13) and torch.equal(out[:, :5], prompt) and not (out == MASK_ID).any()
    bl = block or 8
    want = unmask_schedule(bl, steps // (8 // bl)) * (8 // bl)
    assert [int(s["revealed"][0].sum()) for s in tr] == want and len(tr) == steps
    assert torch.equal(tr[-1]["x"], out[:, 5:])

def test_deterministic_at_temperature_0_and_cfg_runs():
    m, prompt = model(), torch.randint(5, V, (2, 4))
    a, _ = diffusion_generate(m, prompt, 6, steps=3); b, _ = diffusion_generate(m, prompt, 6, steps=3)
    assert torch.equal(a, b)
    c, _ = diffusion_generate(m, prompt, 6, steps=3, cfg_scale=1.0)
    assert not (c == MASK_ID).any()

def test_infill_fills_only_masks():
    m = model(); x = torch.randint(5, V, (2, 8)); x[:, 2:4] = MASK_ID
    out, _ = diffusion_infill(m, x, steps=2)
    keep = x != MASK_ID
    assert torch.equal(out[keep], x[keep]) and not (out == MASK_ID).any()

def test_loglik_exact_for_one_token_answers():
    m, p = model(), [6, 7, 8]
    est = diffusion_loglik(m, [p, p], [[9], [10]], n_mc=4)
    logp = m(torch.tensor([p + [MASK_ID]]))[0][0, -1].log_softmax(-1)
    assert torch.allclose(est, logp[[9, 10]], atol=1e-5)

def test_errors():
    m, prompt = model(), torch.randint(5, V, (1, 4))
    with pytest.raises(ValueError, match="steps must be an int >= 1"): diffusion_generate(m, prompt, 8, steps=0)
    with pytest.raises(ValueError, match="divisible by block_length"): diffusion_generate(m, prompt, 8, steps=4, block_length=3)
    with pytest.raises(ValueError, match="built causal"): diffusion_generate(model(True), prompt, 8, steps=4)
    with pytest.raises(ValueError, match="built causal"): masked_diffusion_loss(model(True), prompt)
    with pytest.raises(ValueError, match="remasking must be one of"): diffusion_generate(m, prompt, 8, steps=4, remasking="x")

def test_more_errors():
    from llmlab.diffusion_lm import train_lm
    m, prompt = model(), torch.randint(5, V, (1, 4))
    with pytest.raises(ValueError, match="must be divisible by the number of blocks"): diffusion_generate(m, prompt, 8, steps=3, block_length=4)
    with pytest.raises(ValueError, match="exceeds ctx_len"): diffusion_generate(m, prompt, 24, steps=4)
    with pytest.raises(ValueError, match="holds the mask id"): diffusion_generate(m, [[5, MASK_ID]], 4, steps=2)
    with pytest.raises(ValueError, match="built causal"): diffusion_loglik(model(True), [[5, 6]], [[7]])
    with pytest.raises(ValueError, match="rows"): diffusion_loglik(m, [[5, 6], [6, 7]], [[7], [8], [9]])
    with pytest.raises(ValueError, match="n_mc"): diffusion_loglik(m, [[5, 6]], [[7]], n_mc=0)
    with pytest.raises(ValueError, match="needs a causal model"): train_lm(m, torch.randint(5, V, (4, 6)), objective="ar", steps=1)
    with pytest.raises(ValueError, match="built causal"): train_lm(model(True), torch.randint(5, V, (4, 6)), objective="diffusion", steps=1)
    with pytest.raises(ValueError, match="objective"): train_lm(m, torch.randint(5, V, (4, 6)), objective="bert", steps=1)

def test_loglik_prefers_the_trained_answer():
    from llmlab.diffusion_lm import train_lm
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=V, ctx_len=8, n_layer=1, n_head=2, d_model=32, causal=False))
    data = torch.tensor([[5, 6, 7, 8, 9, 10]] * 8)
    train_lm(m, data, objective="diffusion", steps=150, lr=1e-2, bar=False)
    s = diffusion_loglik(m, [[5, 6, 7]], [[8, 9, 10], [11, 12, 13]], n_mc=16)
    assert s[0] > s[1] + 1
