import os, pathlib
from cases_common import *

def build(C):
    os.environ["LLMLAB_CACHE"] = str(TMP / "cache")
    from llmlab import lab
    ci, cf = lab.check_int, lab.check_float
    # check_* helpers themselves
    C("check_int('steps', 0, lo=1)", lambda: ci("steps", 0, lo=1), err="steps")
    C("check_int('steps', 2.0)", lambda: ci("steps", 2.0), err="steps")
    C("check_int('steps', None)", lambda: ci("steps", None), err="steps")
    C("check_int('steps', '3')", lambda: ci("steps", "3"), err="steps")
    C("check_int('steps', True)", lambda: ci("steps", True), err="steps")
    C("check_int('steps', 5, hi=4)", lambda: ci("steps", 5, hi=4), err="steps")
    C("check_int('n', np.int64(3), lo=1) (ok: 3)", lambda: ci("n", np.int64(3), lo=1), ok=lambda r: r == 3 and type(r) is int)
    C("check_float('beta', nan)", lambda: cf("beta", NAN), err="beta")
    C("check_float('beta', inf)", lambda: cf("beta", INF), err="beta")
    C("check_float('beta', -inf, lo=0)", lambda: cf("beta", -INF, lo=0), err="beta")
    C("check_float('beta', 'x')", lambda: cf("beta", "x"), err="beta")
    C("check_float('beta', None)", lambda: cf("beta", None), err="beta")
    C("check_float('beta', 0, lo=0, lo_open=True)", lambda: cf("beta", 0, lo=0, lo_open=True), err="beta")
    C("check_float('p', 1.0, hi=1, hi_open=True)", lambda: cf("p", 1.0, hi=1, hi_open=True), err="p")
    C("check_float('beta', torch.tensor(0.5))", lambda: cf("beta", torch.tensor(0.5)), err="beta",
      ok=lambda r: r == 0.5)
    C("check_choice('mode', 'x', ('a','b'))", lambda: lab.check_choice("mode", "x", ("a", "b")), err="mode")
    C("check_choice('mode', ['a'], ('a','b')) (unhashable)", lambda: lab.check_choice("mode", ["a"], ("a", "b")), err="mode")
    C("check_tensor('q', [1,2])", lambda: lab.check_tensor("q", [1, 2]), err="q")
    C("check_tensor('q', randn(2,3), shape=('B',4))", lambda: lab.check_tensor("q", R(2, 3), shape=("B", 4)), err="q")
    C("check_tensor('q', long tensor, dtype='float')", lambda: lab.check_tensor("q", torch.ones(2, dtype=torch.long), dtype="float"), err="q")
    C("check_tensor('x', [1, nan], finite=True)", lambda: lab.check_tensor("x", torch.tensor([1.0, NAN]), finite=True), err="x")
    C("check_tensor('x', cpu tensor, device='cuda')", lambda: lab.check_tensor("x", R(2), device="cuda"), err="x")
    C("check_tensor('x', randn(2,3), ndim=3)", lambda: lab.check_tensor("x", R(2, 3), ndim=3), err="x")
    for v in ["../x", "a/b", "", ".", "..", "~x", "a\\b", "a\0b", None, 3]:
        C(f"check_name('name', {v!r})", lambda v=v: lab.check_name("name", v), err="name")
    C("check_name('name', 'abc') (ok)", lambda: lab.check_name("name", "abc"), ok=lambda r: r == "abc")
    # devices
    C("get_device('bogus')", lambda: lab.get_device("bogus"), err="prefer")
    C("get_device(123)", lambda: lab.get_device(123), err="prefer")
    C("get_device('cuda') without CUDA", lambda: lab.get_device("cuda"), err="cuda", exc=(RuntimeError,))
    C("get_device('cpu') (ok)", lambda: lab.get_device("cpu"), ok=lambda r: r == torch.device("cpu"))
    C("device_name('bogus')", lambda: lab.device_name("bogus"), err="device")
    C("triton_ready('bogus')", lambda: lab.triton_ready("bogus"), err="device")
    # threads
    C("blas_threads(0)", lambda: lab.blas_threads(0), err="n")
    C("blas_threads(-1)", lambda: lab.blas_threads(-1), err="n")
    C("blas_threads(2.5)", lambda: lab.blas_threads(2.5), err="n")
    def th(n):
        with lab.threads(n): pass
    C("with threads(0): ...", lambda: th(0), err="n")
    C("with threads(None): ...", lambda: th(None), err="n")
    C("with threads('2'): ...", lambda: th("2"), err="n")
    C("seed_everything(-1)", lambda: lab.seed_everything(-1), err="seed")
    C("seed_everything('a')", lambda: lab.seed_everything("a"), err="seed")
    C("seed_everything(2**70)", lambda: lab.seed_everything(2 ** 70), err="seed")
    C("seed_everything(1.5)", lambda: lab.seed_everything(1.5), err="seed")
    # backends
    C("pick_backend('fast', 'cpu')", lambda: lab.pick_backend("fast", "cpu"), err="backend")
    C("pick_backend(None, 'cpu')", lambda: lab.pick_backend(None, "cpu"), err="backend")
    C("pick_backend('auto', 'bogus')", lambda: lab.pick_backend("auto", "bogus"), err="device")
    C("pick_backend('auto', 3.5)", lambda: lab.pick_backend("auto", 3.5), err="device")
    # benchmark
    f = lambda: None
    C("benchmark({})", lambda: lab.benchmark({}), err="fns")
    C("benchmark(None)", lambda: lab.benchmark(None), err="fns")
    C("benchmark({'a': 1})", lambda: lab.benchmark({"a": 1}), err="fns")
    C("benchmark({'a': f}, rep=0)", lambda: lab.benchmark({"a": f}, rep=0), err="rep")
    C("benchmark({'a': f}, warmup=-1)", lambda: lab.benchmark({"a": f}, warmup=-1), err="warmup")
    C("benchmark({'a': f}, baseline='zz')", lambda: lab.benchmark({"a": f}, baseline="zz"), err="baseline")
    C("benchmark({'a': f}, flops=nan)", lambda: lab.benchmark({"a": f}, flops=NAN), err="flops")
    C("benchmark({'a': f}, nbytes=-1)", lambda: lab.benchmark({"a": f}, nbytes=-1), err="nbytes")
    C("benchmark({'a': f}, device='bogus')", lambda: lab.benchmark({"a": f}, device="bogus", rep=1), err="device")
    res = lab.BenchResult([{"name": "a", "ms": 1.0, "speedup": 1.0}], "a", "cpu-test")
    root = TMP / "results"
    def stays(r):
        return str(pathlib.Path(r).resolve()).startswith(str(root.resolve())) or f"wrote outside root: {r}"
    C("save_result(r, '../../x', root=tmp)", lambda: lab.save_result(res, "../../x", root=root), err="name", ok=None,
      post=lambda: "a file was written outside root" if (TMP.parent / "x.md").exists() or (root.parent / "x.md").exists() else None)
    C("save_result(r, 'a/b', root=tmp)", lambda: lab.save_result(res, "a/b", root=root), err="name")
    C("save_result(r, '', root=tmp)", lambda: lab.save_result(res, "", root=root), err="name")
    C("save_result('not a result', 'x', root=tmp)", lambda: lab.save_result("nope", "x", root=root), err="result")
    bad_dev = lab.BenchResult([{"name": "a", "ms": 1.0, "speedup": 1.0}], "a", "../..")
    C("save_result(BenchResult(device='../..'), 'x', root=tmp)", lambda: lab.save_result(bad_dev, "x", root=root), err="device")
    C("save_result(r, 'ok', root=tmp) (ok: inside root)", lambda: lab.save_result(res, "ok", root=root), ok=stays)
    C("BenchResult['missing']", lambda: res["missing"], err="missing", exc=(KeyError,))
    # widgets / files
    C("widget_esm('../..')", lambda: lab.widget_esm("../.."), err="slug")
    C("widget_esm('../gpt')", lambda: lab.widget_esm("../gpt"), err="slug")
    C("widget_esm('no_such_widget')", lambda: lab.widget_esm("no_such_widget"), err="no_such_widget", exc=(FileNotFoundError,))
    C("widget_esm(None)", lambda: lab.widget_esm(None), err="slug")
    C("widget_esm('lab') (ok)", lambda: lab.widget_esm("lab"), ok=lambda r: isinstance(r, str) and len(r) > 0)
    C("cache_dir('..', 'x')", lambda: lab.cache_dir("..", "x"), err=["part", "name", ".."],
      ok=lambda r: str(r.resolve()).startswith(str((TMP / 'cache').resolve())) or f"left the cache: {r}")
    C("cache_dir('../escape')", lambda: lab.cache_dir("../escape"), err=["part", "name", ".."],
      ok=lambda r: str(r.resolve()).startswith(str((TMP / 'cache').resolve())) or f"left the cache: {r}")
    C("cache_dir(None)", lambda: lab.cache_dir(None), err=["part", "name", "str"])
    C("trace_size(object())", lambda: lab.trace_size(object()), err=["trace", "JSON serializable"])
    C("trace_running_max([])", lambda: lab.trace_running_max([]), err="xs", ok=lambda r: isinstance(r, dict))
    C("trace_running_max([nan, 1.0])", lambda: lab.trace_running_max([NAN, 1.0]), err="xs")
    C("trace_running_max(None)", lambda: lab.trace_running_max(None), err="xs")
    C("trace_running_max(['a', 'b'])", lambda: lab.trace_running_max(["a", "b"]), err="xs")
    C("trace_running_max([3.0, 1.0, 5.0]) (ok: max 5)", lambda: lab.trace_running_max([3.0, 1.0, 5.0]),
      ok=lambda r: isinstance(r, dict) and r['steps'][-1]['max'] == 5.0)
    C("LivePlot(every=0)", lambda: lab.LivePlot(every=0), err="every")
    C("LivePlot(every=-1)", lambda: lab.LivePlot(every=-1), err="every")
    C("LivePlot(every=2.5)", lambda: lab.LivePlot(every=2.5), err="every")
    C("show_source(123)", lambda: lab.show_source(123), err=["obj", "source", "123", "int"])
    C("show_source(f, lines=(5, 2))", lambda: lab.show_source(lab.check_int, lines=(5, 2)), err="lines")
    C("show_source(f, lines=(0, 3))", lambda: lab.show_source(lab.check_int, lines=(0, 3)), err="lines")
    # claims
    kw = dict(notebook="nb", claim="c", paper_value="1", setting="s", show=False)
    C("claim(..., verdict='bogus')", lambda: lab.claim(measured=1.0, verdict="bogus", **kw), err="verdict")
    C("claim(..., measured=nan)", lambda: lab.claim(measured=NAN, verdict="partly", **kw), err="measured")
    C("claim(..., measured=None)", lambda: lab.claim(measured=None, verdict="partly", **kw), err="measured")
    C("claim(..., measured=tensor([1,2]))", lambda: lab.claim(measured=torch.ones(2), verdict="partly", **kw), err="measured")
    C("claim(..., seconds=-1)", lambda: lab.claim(measured=1.0, verdict="partly", seconds=-1, **kw), err="seconds")
    C("claim(..., seconds=nan)", lambda: lab.claim(measured=1.0, verdict="partly", seconds=NAN, **kw), err="seconds")
    C("claim(notebook=None, ...)", lambda: lab.claim(None, "c", "1", "s", 1.0, "partly", show=False), err="notebook")
    C("collect_claims(['/nonexistent.ipynb'])", lambda: lab.collect_claims(["/nonexistent.ipynb"]), err="nonexistent",
      exc=(FileNotFoundError,))
    C("collect_claims(None)", lambda: lab.collect_claims(None), err="paths")
    bad_nb = TMP / "bad.ipynb"; bad_nb.write_text("{not json")
    C("collect_claims([corrupt .ipynb])", lambda: lab.collect_claims([bad_nb]), err="bad.ipynb")
    C("claims_markdown(None)", lambda: lab.claims_markdown(None), err="claims")
    C("claims_markdown([]) (ok: header only)", lambda: lab.claims_markdown([]), ok=lambda r: isinstance(r, str))
