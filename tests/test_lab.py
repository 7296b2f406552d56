"""The lab bench: seeding, devices, backend choice, the interpreter switch, benchmarks, widgets."""
import os, subprocess, sys, json, random
import numpy as np, pytest, torch
from llmlab import lab

def test_seed_everything_repeats_every_library():
    lab.seed_everything(3); a = (random.random(), np.random.rand(), torch.rand(2).tolist())
    lab.seed_everything(3); b = (random.random(), np.random.rand(), torch.rand(2).tolist())
    assert a == b
    g = lab.seed_everything(3)
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=torch.Generator().manual_seed(3)))

@pytest.mark.parametrize("bad", [-1, 1.5, "0"])
def test_seed_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="seed must be"): lab.seed_everything(bad)

def test_get_device_and_errors(monkeypatch):
    assert lab.get_device("cpu").type == "cpu"
    monkeypatch.setenv("LLMLAB_DEVICE", "cpu")
    assert lab.get_device().type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"): lab.get_device("cuda")

def test_pick_backend():
    assert lab.pick_backend("auto", "cpu") == "torch"
    assert lab.pick_backend("torch", "cpu") == "torch"
    with pytest.raises(ValueError, match="backend must be"): lab.pick_backend("cuda", "cpu")
    if lab.HAS_TRITON and lab.interpreting():
        assert lab.pick_backend("triton", "cpu") == "triton"

def test_interpreter_switch_refuses_after_kernels_are_defined():
    code = ("import sys, types; from llmlab import lab; sys.modules['llmlab.kernels.fake'] = types.ModuleType('x');\n"
            "import os; os.environ['TRITON_INTERPRET']='0'\n"
            "try:\n    lab.use_triton_interpreter(True)\nexcept RuntimeError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "refused: TRITON_INTERPRET must be set before" in out.stdout, out.stderr

def test_import_without_triton_or_widgets():
    "import llmlab.lab works where triton and anywidget are missing, and kernels refuse to launch with a clear error."
    code = ("import sys; sys.modules['triton'] = None; sys.modules['anywidget'] = None\n"
            "from llmlab import lab\nassert not lab.HAS_TRITON and not lab.HAS_WIDGETS\n"
            "@lab.triton.jit\ndef k(x, B: lab.tl.constexpr): pass\n"
            "try:\n    k(1, 2)\nexcept RuntimeError as e: print('ok', e)\n"
            "try:\n    lab.LabWidget()\nexcept ImportError as e: print('ok', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.count("ok") == 2, out.stdout + out.stderr

def test_benchmark_ratios_and_markdown(tmp_path):
    res = lab.benchmark({"a": lambda: sum(range(1000)), "b": lambda: sum(range(10))}, rep=3, flops=1e3, n=1000)
    assert res["a"]["speedup"] == 1.0 and res["b"]["speedup"] > 1.0
    md = res.to_markdown()
    assert "| name | ms | speedup | TFLOP/s |" in md and "n: 1000" in md
    p = lab.save_result(res, "demo", root=tmp_path)
    assert p.parent.name == res.device and p.read_text().startswith("# demo")
    with pytest.raises(ValueError, match="baseline"): lab.benchmark({"a": lambda: 0}, baseline="z")
    with pytest.raises(KeyError, match="no benchmark row named"): res["zz"]

def test_cache_dir_respects_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path / "c"))
    assert lab.cache_dir("models") == tmp_path / "c" / "models" and (tmp_path / "c" / "models").is_dir()

def test_widget_trace_and_limits():
    t = lab.trace_running_max([2, 5, 1, 7])
    assert [s["max"] for s in t["steps"]] == [2.0, 5.0, 5.0, 7.0]
    with pytest.raises(ValueError, match="xs is empty"): lab.trace_running_max([])
    w = lab.RunningMaxWidget([1, 2])
    assert "export default" in w._esm and w.trace == lab.trace_running_max([1, 2])
    with pytest.raises(ValueError, match="keep it under"): lab.LabWidget(trace={"x": "a" * (lab.TRACE_LIMIT_BYTES + 1)})
    with pytest.raises(FileNotFoundError, match="llmlab/static"): lab.widget_esm("no_such_widget")

def test_triton_kernel_through_interpreter():
    if not (lab.HAS_TRITON and (lab.interpreting() or torch.cuda.is_available())):
        pytest.skip("needs Triton with a GPU or TRITON_INTERPRET=1 (set by conftest when no GPU)")
    triton, tl = lab.triton, lab.tl
    @lab.autotune([triton.Config({"BLOCK": 32}), triton.Config({"BLOCK": 64})], key=["n"])
    @triton.jit
    def add_one(x_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) + 1, mask=offs < n)
    x = torch.zeros(100, device=lab.get_device())
    add_one[lambda m: (triton.cdiv(100, m["BLOCK"]),)](x, 100)
    assert torch.equal(x.cpu(), torch.ones(100))


# Bad input (issue 17): each call, the error it must raise and a fragment of its message.
def _f(): return 1

BAD = [
    (lambda: lab.seed_everything(2**70), ValueError, "seed must be < 2**63"),
    (lambda: lab.get_device("bogus"), ValueError, "prefer must be a device name"),
    (lambda: lab.get_device(1.5), TypeError, "prefer must be a device name"),
    (lambda: lab.device_name("bogus"), ValueError, "device must be a device name"),
    (lambda: lab.triton_ready("bogus"), ValueError, "device must be a device name"),
    (lambda: lab.pick_backend("auto", "bogus"), ValueError, "device must be a device name"),
    (lambda: lab.pick_backend("auto", 3.5), TypeError, "device must be a device name"),
    (lambda: lab.pick_backend("fast", "cpu"), ValueError, "backend must be"),
    (lambda: lab.benchmark({"a": _f}, device="bogus"), ValueError, "device must be a device name"),
    (lambda: lab.benchmark({}), ValueError, "fns must be a non-empty dict"),
    (lambda: lab.benchmark({"a": 1}), TypeError, "fns['a'] must be a no-argument callable"),
    (lambda: lab.benchmark({"a": _f}, rep=0), ValueError, "rep must be an int >= 1"),
    (lambda: lab.benchmark({"a": _f}, flops=float("nan")), ValueError, "flops must be a finite number"),
    (lambda: lab.save_result(lab.BenchResult([], "a", "cpu"), "../../x"), ValueError, "name must be a plain file name"),
    (lambda: lab.save_result(lab.BenchResult([], "a", "../.."), "x"), ValueError, "result.device must be a plain file name"),
    (lambda: lab.widget_esm("../.."), ValueError, "slug must be a plain file name"),
    (lambda: lab.cache_dir("..", "x"), ValueError, "parts[0] must be a plain file name"),
    (lambda: lab.cache_dir("models", "../escape"), ValueError, "parts[1] must be a plain file name"),
    (lambda: lab.trace_size(object()), TypeError, "trace must hold only JSON values"),
    (lambda: lab.trace_running_max(None), TypeError, "xs must be a list of numbers"),
    (lambda: lab.trace_running_max(["a"]), TypeError, "xs[0] must be a number"),
    (lambda: lab.trace_running_max([float("nan"), 1.0]), ValueError, "xs[0] must be finite"),
    (lambda: lab.LivePlot(every=0), ValueError, "every must be an int >= 1"),
    (lambda: lab.LivePlot(every=2.5), TypeError, "every must be an int"),
    (lambda: lab.show_source(_f, lines=(5, 2)), ValueError, "first <= last"),
    (lambda: lab.show_source(_f, lines=(0, 3)), ValueError, "lines[0] must be an int >= 1"),
    (lambda: lab.show_source(_f, lines=3), TypeError, "lines must be a pair"),
    (lambda: lab.show_source(123), TypeError, "no source for 123"),
    (lambda: lab.claim("00_lab", "c", "p", "s", 1.0, "proved"), ValueError, "verdict must be one of"),
    (lambda: lab.claim("00_lab", "c", "p", "s", float("nan"), "reproduced"), ValueError, "measured must be finite"),
    (lambda: lab.claim("00_lab", "c", "p", "s", None, "reproduced"), TypeError, "measured must be a number or a str"),
    (lambda: lab.claim("", "c", "p", "s", 1, "reproduced"), ValueError, "notebook must be a non-empty str"),
    (lambda: lab.collect_claims(None), TypeError, "paths must be a list of notebook paths"),
    (lambda: lab.claims_markdown(None), TypeError, "claims must be a list of claim records"),
    (lambda: lab.check_tensor("q", torch.zeros(2, 3), shape=("B", 4)), ValueError, "q must have shape (B 4), got (2, 3)"),
    (lambda: lab.check_float("beta", float("inf")), ValueError, "beta must be a finite number"),
    (lambda: lab.check_choice("mode", ["a"], ("a", "b")), ValueError, "mode must be one of 'a', 'b'"),
]


@pytest.mark.parametrize("call, exc, fragment", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_is_named(call, exc, fragment):
    with pytest.raises(exc) as e:
        call()
    assert fragment in str(e.value), f"message {str(e.value)!r} does not say {fragment!r}"


def test_corrupt_notebook_is_named(tmp_path):
    p = tmp_path / "bad.ipynb"; p.write_text("{not json")
    with pytest.raises(ValueError, match="bad.ipynb is not a readable notebook"):
        lab.collect_claims([p])


def test_claims_round_trip(tmp_path):
    "A claim's record, saved in a cell output under CLAIM_MIME, is what collect_claims reads back (with its cell link)."
    rec = lab.claim("00_lab", "c", "p", "s", 0.25, "partly", unit="x", show=False)
    nb = {"cells": [{"cell_type": "code", "id": "abc123", "source": "", "metadata": {},
                     "outputs": [{"output_type": "display_data", "data": {lab.CLAIM_MIME: rec}, "metadata": {}}]}]}
    p = tmp_path / "00_lab.ipynb"; p.write_text(__import__("json").dumps(nb))
    got = lab.collect_claims([p])
    assert len(got) == 1 and got[0]["measured"] == 0.25 and got[0]["measured_text"] == "0.25 x"
    assert got[0]["href"] == "00_lab.html#cell-abc123"
    md = lab.claims_markdown(got)
    assert "[cell](00_lab.html#cell-abc123)" in md and "**0.25 x**" in md


def test_threads_restores_counts():
    before = torch.get_num_threads()
    with lab.threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_show_source_reaches_through_autotune_and_jit():
    pytest.importorskip("triton")
    from llmlab.kernels.flash_attention import _attn_fwd          # autotune(jit(fn))
    src = lab.show_source(_attn_fwd).data
    assert "def _attn_fwd(" in src and src.startswith("```python")
    assert lab.show_source(_attn_fwd, lines=(1, 1)).data.count("\n") == 2

def test_liveplot_panels_put_each_scale_on_its_own_axis():
    from llmlab.lab import LivePlot
    lp = LivePlot("t", enabled=False, panels={"small": ["acc"], "large": ["kl", "len"]})
    for s in range(3): lp.update(s, acc=0.1 * s, kl=10.0 * s, len=20 + s, extra=float(s), nan=float("nan"))
    fig = lp.figure()
    assert [a.get_title() for a in fig.axes] == ["small", "large", "other"]
    assert [len(a.lines) for a in fig.axes] == [1, 2, 1] and "nan" not in lp.history      # non-finite values are skipped
    with pytest.raises(TypeError, match="panels must be a dict"): LivePlot(panels={"a": "kl"})
