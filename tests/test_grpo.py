"""GRPO: advantages, log-probs, the clipped loss and its variants, the trainer on a toy task, the widget trace."""
import math
import pytest, torch, torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from llmlab.grpo import (group_advantages, sequence_logprobs, grpo_loss, sample_completions, greedy_accuracy,
                         GRPOTrainer, trace_grpo)

def test_group_advantages_by_hand():
    r = torch.tensor([1., 0, 0, 1, 2, 2, 2, 2])
    s = math.sqrt(1 / 3)                                  # sample std of (1, 0, 0, 1)
    torch.testing.assert_close(group_advantages(r, 4), torch.tensor([.5 / s, -.5 / s, -.5 / s, .5 / s, 0, 0, 0, 0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(group_advantages(r, 4, "none"), torch.tensor([.5, -.5, -.5, .5, 0, 0, 0, 0]))
    torch.testing.assert_close(group_advantages(r, 4, "batch"), torch.tensor([.5, -.5, -.5, .5, 0, 0, 0, 0]) / r.std(), atol=1e-5, rtol=0)

@given(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=2, max_size=8), st.integers(1, 4))
@settings(max_examples=40, deadline=None)
def test_group_advantages_properties(rs, n_groups):
    G = len(rs)
    r = torch.tensor(rs * n_groups)
    a = group_advantages(r, G)
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a.view(n_groups, G).sum(1), torch.zeros(n_groups), atol=1e-4, rtol=0)
    if len(set(rs)) == 1: assert (a == 0).all()        # all-equal group: exactly zero, never NaN

@pytest.mark.parametrize("bad, msg", [((torch.ones(6), 4), "does not divide"), ((torch.ones(2, 2), 2), "must be 1-D"),
                                      ((torch.ones(4), 0), "positive int"), ((torch.ones(4), 2, "std"), "scale must be")])
def test_group_advantages_errors(bad, msg):
    with pytest.raises(ValueError, match=msg): group_advantages(*bad)

class TinyLM(torch.nn.Module):
    def __init__(self, V=11, d=8):
        super().__init__(); self.emb = torch.nn.Embedding(V, d); self.rnn = torch.nn.GRU(d, d, batch_first=True); self.out = torch.nn.Linear(d, V)
    def forward(self, idx): return self.out(self.rnn(self.emb(idx))[0]), None     # (logits, loss) like llmlab.gpt

def test_sequence_logprobs_masks_prompt_and_padding():
    torch.manual_seed(0); m = TinyLM()
    prompts = [torch.tensor([1, 2, 3]), torch.tensor([4])]
    comp = torch.tensor([[5, 6, 7], [8, 9, 10]]); mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    lp = sequence_logprobs(m, prompts, comp, mask)
    assert lp.shape == (2, 3) and lp[0, 2] == 0
    for i, p in enumerate(prompts):            # each row alone, unpadded
        full = torch.cat([p, comp[i][mask[i].bool()]])
        ref = F.log_softmax(m(full[None, :-1])[0], -1)[0, len(p) - 1:].gather(1, full[len(p):, None]).squeeze(1)
        torch.testing.assert_close(lp[i][mask[i].bool()], ref)
    # changing a padded (masked) completion token changes nothing
    comp2 = comp.clone(); comp2[0, 2] = 1
    torch.testing.assert_close(sequence_logprobs(m, prompts, comp2, mask), lp)
    with pytest.raises(ValueError, match="must both be"): sequence_logprobs(m, prompts, comp, mask[:, :2])
    with pytest.raises(ValueError, match="2 prompts but 1"): sequence_logprobs(m, prompts, comp[:1], mask[:1])

@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_ratio_one_matches_reinforce_with_group_mean_baseline(loss_type):
    torch.manual_seed(1)
    r = torch.tensor([1., 0, 0, 1, 0, 1, 1, 1])
    mask = (torch.rand(8, 5) > 0.3).float(); mask[:, 0] = 1
    lp = torch.randn(8, 5, requires_grad=True)
    A = group_advantages(r, 4, "none")
    loss, m = grpo_loss(lp, lp.detach(), A, mask, loss_type=loss_type)
    assert abs(loss.item() + {"grpo": (A * 1).mean(), "dr_grpo": (A[:, None] * mask).sum() / 40, "dapo": (A[:, None] * mask).sum() / mask.sum()}[loss_type].item()) < 1e-6
    g = torch.autograd.grad(loss, lp)[0]
    norm = {"grpo": mask.sum(1, keepdim=True) * 8, "dr_grpo": torch.full((8, 1), 40.0), "dapo": mask.sum().expand(8, 1)}[loss_type]
    surrogate = -((r - r.view(2, 4).mean(1).repeat_interleave(4))[:, None] * lp * mask / norm).sum()   # REINFORCE
    torch.testing.assert_close(g, torch.autograd.grad(surrogate, lp)[0])
    assert m["mean_ratio"] == pytest.approx(1.0) and m["clip_fraction"] == 0.0

def test_clipping_active_exactly_outside_the_range():
    ratios = torch.tensor([[0.5, 0.69, 0.71, 1.0, 1.27, 1.29, 2.0]])
    for A, eps_low, eps_high in ((1.0, 0.3, 0.28), (-1.0, 0.3, 0.28)):
        lp = torch.log(ratios).clone().requires_grad_()
        loss, m = grpo_loss(lp, torch.zeros_like(lp), torch.tensor([A]), torch.ones_like(lp), eps_low=eps_low, eps_high=eps_high, loss_type="dapo")
        loss.backward()
        bound = ratios > 1 + eps_high if A > 0 else ratios < 1 - eps_low
        assert torch.equal(lp.grad == 0, bound), (A, lp.grad)
        assert m["clip_fraction"] == pytest.approx(bound.float().mean().item())

def test_k3_kl_nonnegative_and_zero_when_policies_match():
    torch.manual_seed(0)
    lp, ref = torch.randn(4, 7), torch.randn(4, 7)
    mask, A = torch.ones(4, 7), torch.zeros(4)
    _, m = grpo_loss(lp, lp, A, mask, logp_ref=ref, beta=0.1)
    assert m["kl"] > 0
    loss0, m0 = grpo_loss(lp, lp, A, mask, logp_ref=lp.clone(), beta=0.1)
    assert m0["kl"] == 0.0 and loss0.item() == 0.0
    with pytest.raises(ValueError, match="beta > 0 needs logp_ref"): grpo_loss(lp, lp, A, mask, beta=0.1)

def test_loss_shape_and_type_errors():
    lp = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="logp_old has shape"): grpo_loss(lp, torch.zeros(4, 2), torch.zeros(4), torch.ones(4, 3))
    with pytest.raises(ValueError, match="advantages must be"): grpo_loss(lp, lp, torch.zeros(3), torch.ones(4, 3))
    with pytest.raises(ValueError, match="loss_type must be"): grpo_loss(lp, lp, torch.zeros(4), torch.ones(4, 3), loss_type="ppo")

def test_sampler_masks_after_stop():
    class Const(torch.nn.Module):              # always emits token 2, which is a stop token
        def __init__(self): super().__init__(); self.w = torch.nn.Parameter(torch.zeros(1))
        def forward(self, idx): return F.one_hot(torch.full_like(idx, 2), 4).float() * 50 + self.w
    c, m = sample_completions(Const(), [0, 1], 3, 5, temperature=1.0, stop_ids=(2,), generator=torch.Generator().manual_seed(0))
    assert c.shape == (3, 1) and m.tolist() == [[1], [1], [1]]

class Bigram(torch.nn.Module):
    def __init__(self, V=6):
        super().__init__(); self.table = torch.nn.Embedding(V, V); torch.nn.init.zeros_(self.table.weight)
    def forward(self, idx): return self.table(idx)

class FirstIsThree:
    prompt = "go"
    def check(self, text): return text.split()[:1] == ["3"]

@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo"])
def test_trainer_raises_reward_on_a_toy_task(loss_type):
    torch.manual_seed(0)
    model = Bigram()
    enc, dec = (lambda s: [0]), (lambda ids: " ".join(map(str, ids)))
    tr = GRPOTrainer(model, [FirstIsThree()], lambda t, x: float(t.check(x)), group_size=8, encode=enc, decode=dec,
                     prompts_per_step=2, max_new_tokens=3, stop_ids=(5,), lr=0.05, loss_type=loss_type,
                     snapshot_every=10, plot=False, seed=0)
    before = greedy_accuracy(model, [FirstIsThree()], enc, dec, 3)
    hist = tr.train(60)
    first, last = sum(h["reward"] for h in hist[:10]) / 10, sum(h["reward"] for h in hist[-10:]) / 10
    assert last > first + 0.3, (first, last)
    assert greedy_accuracy(model, [FirstIsThree()], enc, dec, 3) == 1.0 and before == 0.0
    for k in ("reward", "zero_std_frac", "length", "clip_fraction", "kl", "loss"): assert k in hist[-1]
    t = trace_grpo(tr)
    assert len(t["snapshots"]) == 6 and len(t["snapshots"][0]["group"]) == 8
    assert t["curves"]["reward"] == [h["reward"] for h in hist]

def test_dynamic_sampling_drops_zero_variance_groups():
    torch.manual_seed(0)
    model = Bigram()
    tr = GRPOTrainer(model, [FirstIsThree()], lambda t, x: 1.0, group_size=4, encode=lambda s: [0],
                     decode=lambda ids: " ".join(map(str, ids)), prompts_per_step=1, max_new_tokens=2,
                     dynamic_sampling=True, snapshot_every=0, plot=False)
    w0 = model.table.weight.detach().clone()
    m, _, _ = tr.step()
    assert m["zero_std_frac"] == 1.0 and torch.equal(model.table.weight, w0)   # nothing to learn: no update

@pytest.mark.parametrize("kw, msg", [({"group_size": 1}, "group_size must be >= 2"), ({"mu": 0}, "mu"),
                                     ({"beta": 0.1}, "needs ref_model"), ({"loss_type": "x"}, "loss_type")])
def test_trainer_errors(kw, msg):
    args = dict(group_size=4, encode=lambda s: [0], decode=str, plot=False) | kw
    with pytest.raises(ValueError, match=msg): GRPOTrainer(Bigram(), [FirstIsThree()], lambda t, x: 0.0, **args)
    with pytest.raises(ValueError, match="tasks is empty"): GRPOTrainer(Bigram(), [], lambda t, x: 0.0, group_size=4, encode=str, decode=str)
