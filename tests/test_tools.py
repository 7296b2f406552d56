"The repository's tools: the notebook-test scheduler's order and its recorded times."
import importlib.util, json, pathlib
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
