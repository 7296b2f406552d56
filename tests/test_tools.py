"The repository's tools: the notebook-test scheduler's order and its recorded times; the fragility check's soft asserts."
import ast, importlib.util, json, pathlib
ROOT = pathlib.Path(__file__).resolve().parents[1]

def _tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); return mod

def test_nbtests_start_longest_first_and_unknown_ones_early():
    rt = _tool("run_nbtests")
    paths = [pathlib.Path(f"nbs/{n}.ipynb") for n in ("00_lab", "03_gpt", "31_grpo", "99_new", "20_bitnet")]
    got = [p.stem for p in rt.order(paths, {"00_lab": 5, "03_gpt": 10, "31_grpo": 300, "20_bitnet": 100})]
    assert got == ["03_gpt", "31_grpo", "99_new", "20_bitnet", "00_lab"]      # 99_new: no time, counted as UNKNOWN_S=240

def test_recorded_times_cover_every_notebook():
    times = json.loads((ROOT / "tools" / "nbtest_times.json").read_text())
    names = {p.stem for p in (ROOT / "nbs").glob("*.ipynb")}
    assert all(isinstance(v, (int, float)) and v >= 0 for v in times.values())
    assert not set(times) - names, f"tools/nbtest_times.json times notebooks that no longer exist: {sorted(set(times) - names)}"

def test_fragility_soften_records_every_failed_assert_with_its_operands():
    fr = _tool("fragility")
    src = "#| hide\nx = {'a': 1}\nassert x['a'] > 2 and 1 < 2\nfor i in range(2):\n    assert i < 1, 'msg'\nassert x['a'] == 1"
    out = fr.soften(src, 7)
    assert not any(isinstance(n, ast.Assert) for n in ast.walk(ast.parse(out)))    # every assert became a record
    ns = {}; exec(fr.HELPER, ns); exec(out, ns)
    fails = ns["_llmlab_fails"]
    assert [(c, l) for c, l, _ in fails] == [(7, 2), (7, 4)]                 # the true one is not recorded; the loop stops nothing
    assert "x['a'] = 1" in fails[0][2] and "i = 1" in fails[1][2]           # with the values it compared
    assert fr.soften("%time y = 1\nassert y", 0) == "%time y = 1\nassert y"   # a cell with magics is left as it is
    assert fr.soften("y = 1", 0) == "y = 1"
