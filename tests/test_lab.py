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
