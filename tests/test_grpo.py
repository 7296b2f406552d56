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
    with pytest.raises(ValueError, match=r"mask must have shape \(2 3\)"): sequence_logprobs(m, prompts, comp, mask[:, :2])
    with pytest.raises(ValueError, match="2 prompts but 1"): sequence_logprobs(m, prompts, comp[:1], mask[:1])

@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_ratio_one_matches_reinforce_with_group_mean_baseline(loss_type):
    torch.manual_seed(1)
    r = torch.tensor([1., 0, 0, 1, 0, 1, 1, 1])
    mask = (torch.rand(8, 5) > 0.3).float(); mask[:, 0] = 1
    lp = torch.randn(8, 5, requires_grad=True)
    A = group_advantages(r, 4, "none")
    loss, m = grpo_loss(lp, lp.detach(), A, mask, loss_type=loss_type, max_len=7)     # a budget of 7 tokens > C = 5
    assert abs(loss.item() + {"grpo": (A * 1).mean(), "dr_grpo": (A[:, None] * mask).sum() / 56, "dapo": (A[:, None] * mask).sum() / mask.sum()}[loss_type].item()) < 1e-6
    g = torch.autograd.grad(loss, lp)[0]
    norm = {"grpo": mask.sum(1, keepdim=True) * 8, "dr_grpo": torch.full((8, 1), 56.0), "dapo": mask.sum().expand(8, 1)}[loss_type]
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
    with pytest.raises(ValueError, match=r"logp_old must have shape \(4 3\)"): grpo_loss(lp, torch.zeros(4, 2), torch.zeros(4), torch.ones(4, 3))
    with pytest.raises(ValueError, match=r"advantages must have shape"): grpo_loss(lp, lp, torch.zeros(3), torch.ones(4, 3))
    with pytest.raises(ValueError, match="loss_type must be one of"): grpo_loss(lp, lp, torch.zeros(4), torch.ones(4, 3), loss_type="ppo")

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



# ---------------------------------------------------------------- Dr. GRPO's constant budget
def test_dr_grpo_divides_by_a_constant_budget_not_the_batch_width():
    "The same completions padded to 3 or 12 columns (a batch whose longest completion is 3 or 12) give the same loss."
    lp = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, -0.7, -0.9]]); mask = torch.tensor([[1., 1, 0], [1, 1, 1]])
    A = torch.tensor([1.0, -1.0])
    def run(width):
        x = F.pad(lp, (0, width - 3)).requires_grad_()
        loss, _ = grpo_loss(x, x.detach() + 0.1, A, F.pad(mask, (0, width - 3)), loss_type="dr_grpo", max_len=16)
        return loss, torch.autograd.grad(loss, x)[0][:, :3]
    (l3, g3), (l12, g12) = run(3), run(12)
    torch.testing.assert_close(l3, l12); torch.testing.assert_close(g3, g12)
    ratio = torch.exp(torch.tensor(-0.1))                      # pi/pi_old, inside the clip range
    expected = -(ratio * (A[:, None] * mask)).sum() / (2 * 16)  # N x max_len
    torch.testing.assert_close(l3, expected)
    with pytest.raises(ValueError, match="pass max_len"): grpo_loss(lp, lp, A, mask, loss_type="dr_grpo")
    with pytest.raises(ValueError, match="max_len must be an int >= 3"): grpo_loss(lp, lp, A, mask, loss_type="dr_grpo", max_len=2)

def test_trainer_passes_max_new_tokens_as_the_dr_grpo_budget(monkeypatch):
    import llmlab.grpo as g
    seen = []
    real = g.grpo_loss
    monkeypatch.setattr(g, "grpo_loss", lambda *a, **k: (seen.append(k.get("max_len")), real(*a, **k))[1])
    tr = GRPOTrainer(Bigram(), [FirstIsThree()], lambda t, x: float(t.check(x)), group_size=4, encode=lambda s: [0],
                     decode=lambda ids: " ".join(map(str, ids)), max_new_tokens=3, loss_type="dr_grpo", snapshot_every=0, plot=False)
    for _ in range(5): tr.step()
    assert seen and set(seen) == {3}

# ---------------------------------------------------------------- the widget trace against the reference
ENC, DEC = (lambda s: [0]), (lambda ids: " ".join(map(str, ids)))

def test_trace_per_token_change_matches_logprobs_under_the_saved_models():
    import copy
    from llmlab.grpo import _pad_rows
    torch.manual_seed(0); model = Bigram()
    reward = lambda t, x: float(t.check(x))
    tr = GRPOTrainer(model, [FirstIsThree()], reward, group_size=8, encode=ENC, decode=DEC, prompts_per_step=2,
                     max_new_tokens=3, stop_ids=(5,), lr=0.05, snapshot_every=3, plot=False, seed=0)
    models = {0: copy.deepcopy(model)}
    for _ in range(3):
        tr.train(3); models[len(tr.history)] = copy.deepcopy(model)
    t = trace_grpo(tr)
    assert [(s["step"], s["until"]) for s in t["snapshots"]] == [(0, 3), (3, 6), (6, 9)]
    for s, raw in zip(t["snapshots"], tr.snapshots):
        comp, mask = _pad_rows([g["ids"] for g in raw["group"]])
        prompts = [torch.tensor([0])] * 8
        lp0 = sequence_logprobs(models[s["step"]], prompts, comp, mask)
        lp1 = sequence_logprobs(models[s["until"]], prompts, comp, mask)
        rewards = torch.tensor([reward(FirstIsThree(), DEC(g["ids"])) for g in raw["group"]])
        adv = group_advantages(rewards, 8)
        for i, g in enumerate(s["group"]):
            ids = raw["group"][i]["ids"]; n = len(ids)
            assert g["tokens"] == [DEC([x]) for x in ids] and g["reward"] == rewards[i].item()
            assert g["advantage"] == pytest.approx(adv[i].item(), abs=1e-5)
            torch.testing.assert_close(torch.tensor(g["logp"]), lp0[i, :n], atol=2e-5, rtol=0)
            torch.testing.assert_close(torch.tensor(g["dlogp"]), (lp1 - lp0)[i, :n], atol=2e-5, rtol=0)
    # the per-token signal says more than the sequence's advantage: tokens of one completion move differently
    assert any(len({round(d, 4) for d in g["dlogp"]}) > 1 for s in t["snapshots"] for g in s["group"])

def test_trace_accuracy_curve_holds_the_eval_fn_values():
    torch.manual_seed(0)
    model = Bigram()
    tr = GRPOTrainer(model, [FirstIsThree()], lambda t, x: float(t.check(x)), group_size=8, encode=ENC, decode=DEC,
                     prompts_per_step=2, max_new_tokens=3, stop_ids=(5,), lr=0.05, snapshot_every=5, plot=False)
    calls = []
    def eval_fn(m):
        calls.append(greedy_accuracy(m, [FirstIsThree()], ENC, DEC, 3, (5,))); return calls[-1]
    tr.train(12, eval_fn=eval_fn, eval_every=5)
    acc = trace_grpo(tr)["curves"]["accuracy"]
    assert [i for i, a in enumerate(acc) if a is not None] == [0, 5, 10, 11]
    assert [a for a in acc if a is not None] == calls
    assert all(s["until"] is not None and all(g["dlogp"] is not None for g in s["group"]) for s in trace_grpo(tr)["snapshots"])

# ---------------------------------------------------------------- non-finite values stop the run, weights intact
def buggy_reward(task, text): return float("nan") if text.startswith("3") else 0.0

def test_nan_reward_is_refused_with_the_function_and_the_completion_named():
    torch.manual_seed(0); model = Bigram()
    tr = GRPOTrainer(model, [FirstIsThree()], buggy_reward, group_size=8, encode=ENC, decode=DEC, max_new_tokens=3,
                     snapshot_every=0, plot=False)
    w0 = model.table.weight.detach().clone()
    with pytest.raises(ValueError, match=r"reward_fn buggy_reward on prompt 'go', completion '3.*returned nan"):
        tr.train(20)
    assert torch.isfinite(model.table.weight).all()
    for bad, err in ((lambda t, x: float("inf"), ValueError), (lambda t, x: "1", None), (lambda t, x: None, TypeError),
                     (lambda t, x: [1.0], TypeError)):
        tr = GRPOTrainer(Bigram(), [FirstIsThree()], bad, group_size=4, encode=ENC, decode=DEC, snapshot_every=0, plot=False)
        if err is None: tr.step()          # a numeric string is a number (float('1'))
        else:
            with pytest.raises(err, match="reward_fn"): tr.step()

class NaNWhenTraining(Bigram):
    "Finite logits while sampling (no grad), NaN once gradients are on: the trainer must stop before the optimizer step."
    def forward(self, idx):
        out = self.table(idx)
        return out * float("nan") if torch.is_grad_enabled() else out

class InfGrad(Bigram):
    "Finite loss, infinite gradient (sqrt at 0)."
    def __init__(self):
        super().__init__(); self.s = torch.nn.Parameter(torch.zeros(1))
    def forward(self, idx): return self.table(idx) + torch.sqrt(self.s)

@pytest.mark.parametrize("cls, msg", [(NaNWhenTraining, "log-probabilities are not finite"), (InfGrad, "gradient norm is")])
def test_non_finite_loss_or_gradient_stops_before_the_optimizer_step(cls, msg):
    torch.manual_seed(0); model = cls()
    with torch.no_grad(): model.table.weight.normal_()
    w0 = [p.detach().clone() for p in model.parameters()]
    tr = GRPOTrainer(model, [FirstIsThree()], lambda t, x: float(t.check(x)), group_size=8, encode=ENC, decode=DEC,
                     prompts_per_step=2, max_new_tokens=3, snapshot_every=0, plot=False)
    with pytest.raises(FloatingPointError, match=msg):
        for _ in range(20): tr.step()      # a step whose groups all score the same has nothing to update
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), w0))

# ---------------------------------------------------------------- bad input: every public function
_lp, _m = torch.zeros(2, 3), torch.ones(2, 3)

class WithVocab(Bigram):
    "A model that states its vocabulary, as llmlab.gpt.GPT does."
    class config: vocab_size = 6
_tiny = TinyLM()
_ok = dict(group_size=4, encode=ENC, decode=DEC, plot=False)
_trainer = lambda **kw: GRPOTrainer(Bigram(), [FirstIsThree()], lambda t, x: 0.0, **(_ok | kw))
_nan = float("nan")

BAD = [
    # group_advantages
    (lambda: group_advantages(torch.ones(6), 4), ValueError, "does not divide"),
    (lambda: group_advantages(torch.ones(2, 2), 2), ValueError, "rewards must be 1-D"),
    (lambda: group_advantages(torch.ones(4), 0), ValueError, "group_size must be an int >= 1"),
    (lambda: group_advantages(torch.ones(4), 2.0), TypeError, "group_size must be an int"),
    (lambda: group_advantages(torch.ones(4), 2, "std"), ValueError, "scale must be one of"),
    (lambda: group_advantages([1.0, _nan, 0.0, 1.0], 2), ValueError, "rewards has 1 non-finite"),
    (lambda: group_advantages(torch.tensor([1.0, float("inf")]), 2), ValueError, "rewards has 1 non-finite"),
    (lambda: group_advantages(torch.ones(4), 2, "group", _nan), ValueError, "eps must be a finite number"),
    (lambda: group_advantages(torch.ones(4), 2, "group", -1.0), ValueError, "eps must be > 0"),
    (lambda: group_advantages(torch.tensor([]), 2), ValueError, "rewards is empty"),
    (lambda: group_advantages("abc", 2), TypeError, "rewards must be a 1-D tensor or a list of numbers"),
    (lambda: group_advantages(None, 2), TypeError, "rewards must be"),
    # sequence_logprobs
    (lambda: sequence_logprobs(_tiny, [torch.tensor([1])], torch.zeros(1, 2), torch.ones(1, 2)), TypeError, "integer token ids"),
    (lambda: sequence_logprobs(_tiny, [torch.tensor([1])], torch.ones(1, 2).long(), torch.ones(1, 3)), ValueError, "mask must have shape (1 2)"),
    (lambda: sequence_logprobs(_tiny, [torch.tensor([1])], torch.ones(2).long(), torch.ones(2)), ValueError, "completions must be 2-D"),
    (lambda: sequence_logprobs(_tiny, [torch.tensor([1])], torch.ones(1, 2).long(), torch.full((1, 2), 2)), ValueError, "only 0 and 1"),
    (lambda: sequence_logprobs(_tiny, [torch.tensor([1])] * 2, torch.ones(1, 2).long(), torch.ones(1, 2)), ValueError, "2 prompts but 1"),
    (lambda: sequence_logprobs(_tiny, [torch.tensor([], dtype=torch.long)], torch.ones(1, 2).long(), torch.ones(1, 2)), ValueError, "at least one token"),
    (lambda: sequence_logprobs(_tiny, [torch.tensor([1])], torch.tensor([[-1, 2]]), torch.ones(1, 2)), ValueError, "outside the vocabulary"),
    (lambda: sequence_logprobs(_tiny, [torch.tensor([1])], torch.tensor([[1, 11]]), torch.ones(1, 2)), ValueError, "outside the vocabulary [0, 11)"),
    (lambda: sequence_logprobs(_tiny, [torch.tensor([99])], torch.tensor([[1, 2]]), torch.ones(1, 2)), (ValueError, IndexError), ""),
    (lambda: sequence_logprobs(_tiny, [], torch.zeros(0, 2).long(), torch.zeros(0, 2)), ValueError, "completions is empty"),
    (lambda: sequence_logprobs(None, [torch.tensor([1])], torch.ones(1, 2).long(), torch.ones(1, 2)), TypeError, "model must be"),
    (lambda: sequence_logprobs(_tiny, 5, torch.ones(1, 2).long(), torch.ones(1, 2)), TypeError, "prompts must be"),
    (lambda: sequence_logprobs(_tiny, [torch.tensor([1.5])], torch.ones(1, 2).long(), torch.ones(1, 2)), TypeError, "prompts[0] must hold integer"),
    # grpo_loss
    (lambda: grpo_loss(torch.zeros(3), torch.zeros(3), torch.zeros(1), torch.ones(3)), ValueError, "logp must be 2-D"),
    (lambda: grpo_loss(_lp.long(), _lp, torch.zeros(2), _m), TypeError, "logp must have dtype float"),
    (lambda: grpo_loss(_lp, torch.zeros(2, 2), torch.zeros(2), _m), ValueError, "logp_old must have shape (2 3)"),
    (lambda: grpo_loss(_lp, _lp, torch.zeros(3), _m), ValueError, "advantages must have shape (2)"),
    (lambda: grpo_loss(_lp, _lp, torch.tensor([0.0, _nan]), _m), ValueError, "advantages has 1 non-finite"),
    (lambda: grpo_loss(_lp, torch.full((2, 3), _nan), torch.zeros(2), _m), ValueError, "logp_old has 6 non-finite"),
    (lambda: grpo_loss(torch.full((2, 3), _nan), _lp, torch.zeros(2), _m), ValueError, "logp has 6 non-finite"),
    (lambda: grpo_loss(_lp, _lp, torch.zeros(2), _m, eps_low=_nan), ValueError, "eps_low must be a finite number"),
    (lambda: grpo_loss(_lp, _lp, torch.zeros(2), _m, eps_low=-0.1), ValueError, "eps_low must be in [0, 1]"),
    (lambda: grpo_loss(_lp, _lp, torch.zeros(2), _m, eps_high=-1.0), ValueError, "eps_high must be >= 0"),
    (lambda: grpo_loss(_lp, _lp, torch.zeros(2), _m, eps_high=float("inf")), ValueError, "eps_high must be a finite"),
    (lambda: grpo_loss(_lp, _lp, torch.zeros(2), _m, _lp, beta=_nan), ValueError, "beta must be a finite"),
    (lambda: grpo_loss(_lp, _lp, torch.zeros(2), _m, beta=0.1), ValueError, "needs logp_ref"),
    (lambda: grpo_loss(_lp, _lp, torch.zeros(2), _m, loss_type="ppo"), ValueError, "loss_type must be one of"),
    (lambda: grpo_loss(_lp, _lp, torch.zeros(2), _m * 0.5), ValueError, "mask must hold only 0 and 1"),
    (lambda: grpo_loss(_lp, _lp, torch.zeros(2), _m, loss_type="dr_grpo", max_len=2.5), TypeError, "max_len must be an int"),
    (lambda: grpo_loss(_lp, _lp, torch.zeros(2), _m, logp_ref=torch.zeros(1, 3)), ValueError, "logp_ref must have shape"),
    (lambda: grpo_loss(_lp, _lp, torch.zeros(2), "mask"), TypeError, "mask must be a torch.Tensor"),
    # sample_completions, greedy_accuracy
    (lambda: sample_completions(Bigram(), [0], 0, 3), ValueError, "n must be an int >= 1"),
    (lambda: sample_completions(Bigram(), [0], 2, 0), ValueError, "max_new_tokens must be an int >= 1"),
    (lambda: sample_completions(Bigram(), [0], 2, 3, temperature=_nan), ValueError, "temperature must be a finite"),
    (lambda: sample_completions(Bigram(), [], 2, 3), ValueError, "prompt is empty"),
    (lambda: sample_completions(Bigram(), [-1], 2, 3), ValueError, "prompt ids must be an int >= 0"),
    (lambda: sample_completions("model", [0], 2, 3), TypeError, "model must be a torch.nn.Module"),
    (lambda: greedy_accuracy(Bigram(), [], ENC, DEC, 3), ValueError, "tasks is empty"),
    (lambda: greedy_accuracy(Bigram(), [1], ENC, DEC, 3), TypeError, "tasks[0] must have a str .prompt"),
    (lambda: greedy_accuracy(Bigram(), [FirstIsThree()], lambda s: [], DEC, 3), ValueError, "encode('go') must return a non-empty"),
    (lambda: greedy_accuracy(Bigram(), [FirstIsThree()], ENC, DEC, 0), ValueError, "max_new_tokens must be an int >= 1"),
    (lambda: greedy_accuracy(Bigram(), [FirstIsThree()], ENC, DEC, 3, batch_size=0), ValueError, "batch_size must be an int >= 1"),
    (lambda: greedy_accuracy(Bigram(), [FirstIsThree()], None, DEC, 3), TypeError, "encode must be callable"),
    # GRPOTrainer: every hyper-parameter at construction
    (lambda: _trainer(group_size=1), ValueError, "group_size must be an int >= 2"),
    (lambda: _trainer(mu=0), ValueError, "mu must be an int >= 1"),
    (lambda: _trainer(beta=_nan), ValueError, "beta must be a finite number"),
    (lambda: _trainer(beta=-0.1), ValueError, "beta must be >= 0"),
    (lambda: _trainer(beta=0.1), ValueError, "needs ref_model"),
    (lambda: _trainer(loss_type="x"), ValueError, "loss_type must be one of"),
    (lambda: _trainer(eps_low=_nan), ValueError, "eps_low must be a finite number"),
    (lambda: _trainer(eps_low=-0.2), ValueError, "eps_low must be in [0, 1]"),
    (lambda: _trainer(eps_high=float("inf")), ValueError, "eps_high must be a finite number"),
    (lambda: _trainer(lr=0.0), ValueError, "lr must be > 0"),
    (lambda: _trainer(lr=_nan), ValueError, "lr must be a finite number"),
    (lambda: _trainer(temperature=0.0), ValueError, "temperature must be > 0"),
    (lambda: _trainer(grad_clip=-1.0), ValueError, "grad_clip must be >= 0"),
    (lambda: _trainer(prompts_per_step=0), ValueError, "prompts_per_step must be an int >= 1"),
    (lambda: _trainer(max_new_tokens=0), ValueError, "max_new_tokens must be an int >= 1"),
    (lambda: _trainer(snapshot_every=-1), ValueError, "snapshot_every must be an int >= 0"),
    (lambda: _trainer(seed=-1), ValueError, "seed must be an int >= 0"),
    (lambda: _trainer(scale="x"), ValueError, "scale must be one of"),
    (lambda: _trainer(stop_ids=("a",)), TypeError, "stop_ids must be an int"),
    (lambda: _trainer(dynamic_sampling="yes"), TypeError, "dynamic_sampling must be a bool"),
    (lambda: _trainer(plot="no"), TypeError, "plot must be None or a bool"),
    (lambda: _trainer(probe_task=object()), TypeError, "tasks[0] must have a str .prompt"),
    (lambda: _trainer(ref_model="ref", beta=0.1), TypeError, "ref_model must be a torch.nn.Module"),
    (lambda: _trainer(encode=None), TypeError, "encode must be callable"),
    (lambda: GRPOTrainer(Bigram(), [FirstIsThree()], None, **_ok), TypeError, "reward_fn must be callable"),
    (lambda: GRPOTrainer("model", [FirstIsThree()], lambda t, x: 0.0, **_ok), TypeError, "model must be a torch.nn.Module"),
    (lambda: GRPOTrainer(Bigram(), [], lambda t, x: 0.0, **_ok), ValueError, "tasks is empty"),
    (lambda: GRPOTrainer(Bigram(), 5, lambda t, x: 0.0, **_ok), TypeError, "tasks must be a sequence"),
    (lambda: GRPOTrainer(Bigram().requires_grad_(False), [FirstIsThree()], lambda t, x: 0.0, **_ok), ValueError, "no trainable parameters"),
    # GRPOTrainer at run time
    (lambda: _trainer().train(0), ValueError, "steps must be an int >= 1"),
    (lambda: _trainer().train(2, eval_fn=3), TypeError, "eval_fn must be callable"),
    (lambda: _trainer().train(2, eval_fn=lambda m: 1.0, eval_every=0), ValueError, "eval_every must be an int >= 1"),
    (lambda: _trainer(snapshot_every=0).train(1, eval_fn=lambda m: _nan), ValueError, "eval_fn(model) must be a finite number"),
    (lambda: _trainer(encode=lambda s: "go").step(), ValueError, "encode('go') must return a non-empty list"),
    (lambda: trace_grpo("trainer"), TypeError, "trainer must be a GRPOTrainer"),
    (lambda: _trainer().rollout([]), ValueError, "tasks is empty"),
    (lambda: sample_completions(WithVocab(), [0], 2, 3, stop_ids=(6,)), ValueError, "stop_ids must be an int in [0, 5], got 6"),
    (lambda: sample_completions(WithVocab(), [6], 2, 3), ValueError, "prompt ids must be an int in [0, 5], got 6"),
    (lambda: sample_completions(WithVocab(), [0], 2, 3, stop_ids="5"), TypeError, "stop_ids must be ints"),
    (lambda: GRPOTrainer(WithVocab(), [FirstIsThree()], lambda t, x: 0.0, **(_ok | {"stop_ids": (9,)})), ValueError, "stop_ids must be an int in [0, 5]"),
]

@pytest.mark.parametrize("k", range(len(BAD)))
def test_bad_input(k):
    call, err, msg = BAD[k]
    with pytest.raises(err) as e: call()
    assert msg in str(e.value), (k, str(e.value))

def test_degenerate_input_documented_results():
    # a batch of zero tokens (all masked) has loss 0 and zero gradient, for every loss_type
    for lt in ("grpo", "dapo", "dr_grpo"):
        lp = torch.randn(2, 3, requires_grad=True)
        loss, m = grpo_loss(lp, lp.detach(), torch.tensor([1.0, -1.0]), torch.zeros(2, 3), loss_type=lt, max_len=3)
        assert loss.item() == 0.0 and m["clip_fraction"] == 0.0
        assert torch.equal(torch.autograd.grad(loss, lp)[0], torch.zeros(2, 3))
    # zero completions: loss 0 too
    lp0 = torch.zeros(0, 3, requires_grad=True)
    assert grpo_loss(lp0, lp0.detach(), torch.zeros(0), torch.zeros(0, 3))[0].item() == 0.0
    # boolean rewards are numbers; one group of one reward has advantage 0
    assert group_advantages([True, False], 2).tolist() == pytest.approx([0.7071, -0.7071], abs=1e-3)
    assert group_advantages([3.0], 1).tolist() == [0.0]

def test_runaway_ratio_gives_a_large_finite_loss():
    lp = torch.tensor([[0.0, -1.0]], requires_grad=True)
    for lt in ("grpo", "dapo", "dr_grpo"):
        loss, m = grpo_loss(lp, lp.detach() - 1000.0, torch.tensor([-1.0]), torch.ones(1, 2), loss_type=lt, max_len=2,
                            logp_ref=lp.detach() - 1000.0, beta=0.1)
        assert torch.isfinite(loss) and loss.item() > 1e8 and math.isfinite(m["kl"]) and math.isfinite(m["mean_ratio"])
        assert torch.isfinite(torch.autograd.grad(loss, lp)[0]).all()


# ---- the fused log-prob path (issue 19): model(idx, return_hidden=True) + fused_linear_logprobs ----
def _tiny_gpt(V=11, seed=0):
    from llmlab.gpt import GPT, GPTConfig
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=V, ctx_len=16, n_layer=2, n_head=2, d_model=16))

def _logps_and_grads(model, prompts, comp, mask, **kw):
    model.zero_grad()
    lp = sequence_logprobs(model, prompts, comp, mask, **kw)
    (lp * torch.linspace(-1, 1, lp.numel()).view_as(lp)).sum().backward()
    return lp.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

@pytest.mark.parametrize("backend,chunk", [("fused", 7), ("fused", 4096), ("torch", 3), ("triton", 5), ("auto", 4)])
def test_fused_path_equals_the_logits_path_values_and_gradients(backend, chunk):
    m = _tiny_gpt()
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(0, 11, (n,), generator=g) for n in (3, 1, 5)]
    comp = torch.randint(0, 11, (3, 6), generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]])
    lp0, g0 = _logps_and_grads(m, prompts, comp, mask, backend="logits")
    lp1, g1 = _logps_and_grads(m, prompts, comp, mask, backend=backend, chunk_size=chunk)
    torch.testing.assert_close(lp1, lp0, atol=2e-6, rtol=1e-5)
    assert lp1.dtype == torch.float32 and (lp1[mask == 0] == 0).all()
    for n in g0: torch.testing.assert_close(g1[n], g0[n], atol=2e-6, rtol=1e-5, msg=f"gradient of {n} differs")

def test_fused_path_fully_masked_gives_zeros_and_zero_gradients():
    m = _tiny_gpt()
    prompts, comp = [torch.tensor([1, 2])], torch.tensor([[3, 4]])
    lp, grads = _logps_and_grads(m, prompts, comp, torch.zeros(1, 2), backend="fused")
    assert (lp == 0).all() and all((v == 0).all() for v in grads.values())

def test_auto_falls_back_for_a_model_without_hidden_states_and_fused_is_refused():
    from llmlab.grpo import has_hidden_path
    torch.manual_seed(0); m = TinyLM()
    prompts, comp, mask = [torch.tensor([1, 2])], torch.tensor([[3, 4]]), torch.ones(1, 2)
    assert not has_hidden_path(m) and has_hidden_path(_tiny_gpt())
    torch.testing.assert_close(sequence_logprobs(m, prompts, comp, mask), sequence_logprobs(m, prompts, comp, mask, backend="logits"))
    with pytest.raises(ValueError, match=r"needs a model with forward\(idx, return_hidden=True\)"):
        sequence_logprobs(m, prompts, comp, mask, backend="fused")
    with pytest.raises(ValueError, match="backend must be one of"): sequence_logprobs(m, prompts, comp, mask, backend="cuda")
    with pytest.raises(ValueError, match="chunk_size must be an int >= 1"): sequence_logprobs(_tiny_gpt(), prompts, comp, mask, chunk_size=0)

def test_grpo_trainer_step_is_the_same_through_both_paths():
    import copy
    digit_sum = lambda t, x: float(sum(map(int, x.split())))
    def step(backend):
        pol = _tiny_gpt()
        tr = GRPOTrainer(pol, [FirstIsThree()], digit_sum, group_size=8, encode=lambda s: [0],
                         decode=lambda ids: " ".join(map(str, ids)), max_new_tokens=3, stop_ids=(5,), lr=0.05,
                         ref_model=copy.deepcopy(pol), beta=0.05, mu=2, plot=False, backend=backend)
        m, _, _ = tr.step()
        return m, torch.cat([p.detach().flatten() for p in pol.parameters()])
    (m0, w0), (m1, w1) = step("logits"), step("fused")
    for k in ("loss", "kl", "reward"): assert m1[k] == pytest.approx(m0[k], abs=1e-5), k
    assert m0["kl"] > 0 and m0["loss"] != 0
    torch.testing.assert_close(w1, w0, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="backend must be one of"):
        GRPOTrainer(_tiny_gpt(), [FirstIsThree()], digit_sum, encode=lambda s: [0], decode=str, backend="gpu")
