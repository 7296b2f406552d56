"""llmlab.merging: TIES equals a hand computation (trim, elect, disjoint mean, an exact sign tie, an all-zero column) and
its per-parameter reference; DARE drops the requested fraction and is unbiased over seeds; SLERP's endpoints, norm on
the arc and parallel fallback; weighted linear merges; merging a model with itself returns it; model stock's ratio;
soups; the interpolation curve and barrier; the widget trace; errors for mismatched tensors and bad arguments."""
import copy, math, pytest, torch, torch.nn as nn
from llmlab.merging import (task_vector, ties_ref, slerp, merge, soup, interpolation_curve, trace_merging, METHODS,
                            _trim, _elect_mean, _dare, _stock_ratio)
from llmlab.gpt import GPT, GPTConfig


def pair(seed=0, scale=0.1):
    torch.manual_seed(seed)
    b = nn.Linear(6, 4)
    fts = []
    for _ in range(2):
        f = copy.deepcopy(b)
        with torch.no_grad():
            for p in f.parameters(): p.add_(torch.randn_like(p) * scale)
        fts.append(f)
    return b, fts


def test_task_vector_and_state_dicts():
    b, (fa, _) = pair()
    tv = task_vector(fa, b.state_dict())
    torch.testing.assert_close(tv["weight"], fa.weight.detach() - b.weight.detach())
    assert set(tv) == {"weight", "bias"}


def test_ties_hand_computed():
    taus = [torch.tensor([3.0, -4.0, 2.0, 0.0, 0.1]), torch.tensor([2.0, 1.0, -2.0, 0.0, 0.0]),
            torch.tensor([1.0, 0.2, 0.0, 0.0, -1.5])]
    want = torch.tensor([2.0, -4.0, 0.0, 0.0, -1.5])      # agree / vote / exact tie / all-zero / trimmed 0.1
    torch.testing.assert_close(ties_ref(taus, 0.6), want)
    torch.testing.assert_close(_elect_mean(torch.stack([_trim(t, 0.6) for t in taus])), want)
    # no trim: column 4 is then 0.1 vs -1.5 -> sign -, mean -1.5; column 1: -4 + 1 + 0.2 < 0 -> -4
    torch.testing.assert_close(ties_ref(taus, 1.0), torch.tensor([2.0, -4.0, 0.0, 0.0, -1.5]))


def test_trim_keeps_ties_at_threshold():
    d = torch.tensor([1.0, -1.0, 0.5, 0.2])
    torch.testing.assert_close(_trim(d, 0.25), torch.tensor([1.0, -1.0, 0.0, 0.0]))   # k=1, but |1| == |-1|: both kept
    torch.testing.assert_close(_trim(d, 0.75), torch.tensor([1.0, -1.0, 0.5, 0.0]))


def test_ties_merge_matches_reference_and_is_odd():
    torch.manual_seed(1)
    ts = [torch.randn(7, 5) for _ in range(3)]
    for dens in (0.2, 0.5, 1.0):
        torch.testing.assert_close(_elect_mean(torch.stack([_trim(t, dens) for t in ts])), ties_ref(ts, dens))
        torch.testing.assert_close(ties_ref([-t for t in ts], dens), -ties_ref(ts, dens))
    b, fts = pair()
    got = merge(b, fts, method="ties", density=0.5, lam=0.7)["weight"]
    W0 = b.weight.detach()
    torch.testing.assert_close(got, W0 + 0.7 * ties_ref([f.weight.detach() - W0 for f in fts], 0.5))


def test_dare_fraction_and_unbiased():
    tau = torch.randn(4000)
    for p in (0.1, 0.5):
        out = _dare(tau, p, torch.Generator().manual_seed(0))
        assert abs((out == 0).float().mean().item() - (1 - p)) < 0.02
        kept = out != 0
        torch.testing.assert_close(out[kept], tau[kept] / p)
    draws = torch.stack([_dare(tau[:200], 0.2, torch.Generator().manual_seed(s)) for s in range(4000)])
    assert ((draws.mean(0) - tau[:200]).abs().mean() / tau[:200].abs().mean()).item() < 0.08
    b, fts = pair()
    m1 = merge(b, fts, method="dare_linear", density=0.3, seed=3)
    m2 = merge(b, fts, method="dare_linear", density=0.3, seed=3)
    m3 = merge(b, fts, method="dare_linear", density=0.3, seed=4)
    assert torch.equal(m1["weight"], m2["weight"]) and not torch.equal(m1["weight"], m3["weight"])


def test_slerp_endpoints_norm_and_fallback():
    torch.manual_seed(0)
    a, b = torch.randn(30), torch.randn(30)
    b = b / b.norm() * a.norm()
    torch.testing.assert_close(slerp(a, b, 0.0), a); torch.testing.assert_close(slerp(a, b, 1.0), b)
    for t in (0.25, 0.5, 0.8): assert abs(slerp(a, b, t).norm().item() - a.norm().item()) < 1e-4   # stays on the sphere
    assert torch.lerp(a, b, 0.5).norm() < a.norm()
    torch.testing.assert_close(slerp(a, 3 * a, 0.5), 2 * a)                  # parallel: linear
    torch.testing.assert_close(slerp(a, torch.zeros(30), 0.5), a / 2)        # zero: linear
    x, y = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    torch.testing.assert_close(slerp(x, y, 1 / 3), torch.tensor([math.cos(math.pi / 6), math.sin(math.pi / 6)]))


def test_linear_weights_and_average_equals_half_task_arithmetic():
    b, (fa, fb) = pair()
    got = merge(b, [fa, fb], method="linear", weights=[1, 3])
    torch.testing.assert_close(got["weight"], (0.25 * fa.weight + 0.75 * fb.weight).detach())
    torch.testing.assert_close(merge(b, [fa, fb])["bias"], merge(b, [fa, fb], method="task_arithmetic", weights=[0.5, 0.5])["bias"])
    ta = merge(b, [fa, fb], method="task_arithmetic")["weight"]
    torch.testing.assert_close(ta, (fa.weight + fb.weight - b.weight).detach())
    assert not torch.allclose(ta, merge(b, [fa, fb])["weight"])


@pytest.mark.parametrize("method,kw", [("linear", {}), ("task_arithmetic", {"weights": [0.5, 0.5]}), ("ties", {}),
                                       ("dare_ties", {}), ("dare_linear", {"weights": [0.5, 0.5]}), ("slerp", {}),
                                       ("model_stock", {})])
def test_self_merge_is_identity(method, kw):
    b, (fa, _) = pair()
    out = merge(b, [fa, fa], method=method, **kw)
    for k, v in fa.state_dict().items(): torch.testing.assert_close(out[k], v, atol=1e-6, rtol=0)
    single = merge(b, [fa], method="ties")
    torch.testing.assert_close(single["weight"], fa.weight.detach())


def test_model_stock_ratio():
    d = torch.randn(10)
    assert abs(_stock_ratio([d, d]) - 1.0) < 1e-9
    e = torch.tensor([1.0, 0.0]); f = torch.tensor([0.0, 1.0])
    assert _stock_ratio([e, f]) == 0.0                                      # orthogonal: stay at the base
    g = torch.tensor([1.0, 1.0]) / 2 ** 0.5
    c = 0.5 ** 0.5
    assert abs(_stock_ratio([e, g]) - 2 * c / (1 + c)) < 1e-9


def test_soups():
    toy = [{"w": torch.tensor([1.0])}, {"w": torch.tensor([3.0])}, {"w": torch.tensor([10.0])}]
    s, info = soup(toy, method="greedy", score_fn=lambda sd: -abs(sd["w"].item() - 2.0), return_info=True)
    assert s["w"].item() == 2.0 and info["kept"] == [0, 1] and info["soup_score"] >= max(info["scores"])
    torch.testing.assert_close(soup(toy)["w"], torch.tensor([14 / 3]))
    with pytest.raises(TypeError, match="score_fn"): soup(toy, method="greedy")
    with pytest.raises(ValueError, match="empty"): soup([])
    with pytest.raises(ValueError, match="method"): soup(toy, method="best")


def test_interpolation_curve_and_barrier():
    cfg = GPTConfig(vocab_size=20, ctx_len=8, n_layer=1, n_head=2, d_model=16)
    torch.manual_seed(0); m0 = GPT(cfg); torch.manual_seed(1); m1 = GPT(cfg)
    x = torch.randint(0, 20, (4, 8)); y = torch.randint(0, 20, (4, 8))
    same = interpolation_curve(m0, copy.deepcopy(m0), (x, y), n=5)
    assert len(same["loss"]) == 5 and abs(same["barrier"]) < 1e-5 and max(same["loss"]) - min(same["loss"]) < 1e-5
    c = interpolation_curve(m0, m1.state_dict(), (x, y), n=3)
    assert c["t"] == [0.0, 0.5, 1.0] and c["barrier"] >= 0
    with pytest.raises(ValueError, match="n must be"): interpolation_curve(m0, m1, (x, y), n=1)
    with pytest.raises(ValueError, match="does not match"):
        interpolation_curve(m0, GPT(GPTConfig(vocab_size=21, ctx_len=8, n_layer=1, n_head=2, d_model=16)), (x, y))


def test_errors_name_what_is_wrong():
    b, (fa, fb) = pair()
    with pytest.raises(ValueError, match=r"'weight' \(4, 5\) vs \(4, 6\)"): merge(b, [fa, nn.Linear(5, 4)])
    with pytest.raises(ValueError, match=r"missing tensors \['bias'\]"): merge(b, [fa, nn.Linear(6, 4, bias=False)])
    with pytest.raises(ValueError, match="empty"): merge(b, [])
    with pytest.raises(TypeError, match="list"): merge(b, fa)
    with pytest.raises(ValueError, match="density"): merge(b, [fa, fb], method="ties", density=0.0)
    with pytest.raises(ValueError, match="density"): merge(b, [fa, fb], method="dare_linear", density=1.5)
    with pytest.raises(ValueError, match="density applies"): merge(b, [fa, fb], method="linear", density=0.5)
    with pytest.raises(ValueError, match="t applies"): merge(b, [fa, fb], method="ties", t=0.3)
    with pytest.raises(ValueError, match="lam"): merge(b, [fa, fb], method="linear", lam=2.0)
    with pytest.raises(ValueError, match="exactly 2"): merge(b, [fa], method="slerp")
    with pytest.raises(ValueError, match="at least 2"): merge(b, [fa], method="model_stock")
    with pytest.raises(ValueError, match="weights must be a list of 2"): merge(b, [fa, fb], weights=[1.0])
    with pytest.raises(ValueError, match="positive sum"): merge(b, [fa, fb], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="method must be one of"): merge(b, [fa, fb], method="avg")
    with pytest.raises(TypeError, match="nn.Module or a state dict"): task_vector([1, 2], b)
    with pytest.raises(ValueError, match="non-empty"): ties_ref([])
    with pytest.raises(ValueError, match="shape"): slerp(torch.zeros(3), torch.zeros(4), 0.5)
    assert set(METHODS) == {"linear", "task_arithmetic", "ties", "dare_linear", "dare_ties", "slerp", "model_stock"}


def test_trace_merging_numbers_and_errors():
    lams = [0.0, 1.0]
    maps = {("task_arithmetic", 1.0): {"a": [[0.0, 0.1], [1.0, 0.2]], "b": [[0.0, 1.0], [0.0, 0.5]]},
            ("ties", 0.2): {"a": [[0.0, 0.0], [0.5, 0.4]], "b": [[0.0, 0.3], [0.0, 0.6]]},
            ("ties", 0.5): {"a": [[0.0, 0.0], [0.7, 0.4]], "b": [[0.0, 0.3], [0.0, 0.6]]}}
    curves = {"x": {"t": [0.0, 1.0], "loss": [1.0, 1.0], "barrier": 0.0}}
    t = trace_merging(lams, maps, {"a": 1.0, "b": 1.0}, curves)
    assert [m["name"] for m in t["methods"]] == ["task_arithmetic", "ties"] and t["methods"][1]["densities"] == [0.2, 0.5]
    assert t["methods"][1]["a"][1][1][0] == 0.7
    with pytest.raises(ValueError, match="2 x 2"): trace_merging(lams, {("ties", 0.2): {"a": [[0.0]], "b": [[0.0]]}}, {"a": 1.0, "b": 1.0}, curves)
    with pytest.raises(ValueError, match="own"): trace_merging(lams, maps, {"a": 1.0}, curves)
    with pytest.raises(ValueError, match="method"): trace_merging(lams, {("avg", 1.0): maps[("ties", 0.2)]}, {"a": 1.0, "b": 1.0}, curves)
    pytest.importorskip("anywidget")
    from llmlab.merging import MergingWidget
    w = MergingWidget(t)
    assert w.trace["lams"] == lams
    with pytest.raises(TypeError): MergingWidget({"x": 1})
