"""tools/gpu_check.py (`make gpu`): its pytest-free runner counts like pytest, its table parsing finds the headline,
and without a GPU it says so and exits 0 after the CPU-side checks."""
import pathlib, subprocess, sys, textwrap
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gpu_check  # noqa: E402


def test_minimal_runner_expands_parametrize_and_skips(tmp_path, monkeypatch):
    f = tmp_path / "test_fake.py"
    f.write_text(textwrap.dedent('''
        import pytest
        @pytest.mark.parametrize("a", [1, 2, 3])
        @pytest.mark.parametrize("b, c", [(1, 1), (2, 2)])
        def test_grid(a, b, c): assert b == c and a != 2
        @pytest.mark.skipif(True, reason="never")
        def test_skipped(): raise AssertionError
        def test_raises():
            with pytest.raises(ValueError, match="bad"): raise ValueError("bad input")
    '''))
    monkeypatch.setitem(sys.modules, "pytest", gpu_check._fake_pytest())
    res = gpu_check.run_tests_minimal([f], collect_only=False)
    assert (res["collected"], res["passed"], res["failed"], res["skipped"]) == (8, 5, 2, 1), res
    assert all("a': 2" in x for x in res["failures"]), res["failures"]


def test_minimal_runner_collects_what_pytest_collects(monkeypatch):
    paths = sorted((ROOT / "tests" / "gpu").glob("test_*.py"))
    monkeypatch.setitem(sys.modules, "pytest", gpu_check._fake_pytest())
    ours = gpu_check.run_tests_minimal(paths, collect_only=True)["collected"]
    r = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "tests/gpu"],
                       cwd=ROOT, capture_output=True, text=True)
    theirs = int(r.stdout.strip().splitlines()[-1].split()[0])
    assert ours == theirs, f"built-in runner collected {ours} GPU tests, pytest {theirs}"


def test_headline_prefers_the_kernel_row():
    table = "# x\n\n| name | ms | speedup | TFLOP/s |\n|---|---|---|---|\n| sdpa | 2 | 1 | 100 |\n" \
            "| naive | 1 | 2 | 200 |\n| triton fwd | 1.6 | 1.25 | 125 |\n"
    rows = gpu_check.parse_tables(table)
    assert [r["name"] for r in rows] == ["sdpa", "naive", "triton fwd"]
    assert gpu_check.headline(rows) == "triton fwd: 1.25x, 125 TFLOP/s"
    assert gpu_check.headline(rows[:2]) == "naive: 2.00x, 200 TFLOP/s"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU path")
def test_without_a_gpu_it_says_so_and_exits_0():
    r = subprocess.run([sys.executable, "tools/gpu_check.py", "--skip-benches"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "NO GPU FOUND" in r.stdout
    assert "| imports without nbdev/anywidget |" in r.stdout and "| ok |" in r.stdout
    assert "collected, not run: no GPU" in r.stdout


def test_notebook_cells_run_in_order_and_gpu_cells_are_counted(tmp_path):
    import json
    cell = lambda src: {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": src}
    nb = {"cells": [cell("#| hide\nfrom fastcore.test import test_eq"), cell("x = 41"),
                    cell("#| slow\nraise RuntimeError('slow cells are not run')"),
                    cell("#| gpu\ntest_eq(x + 1, 42)"), cell("#| gpu\nassert x == 0, 'a failing gpu cell'")],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "99_fake.ipynb"; p.write_text(json.dumps(nb))
    r = gpu_check.run_notebook_gpu_cells(p, timeout=120)
    assert (r["gpu_passed"], r["gpu_failed"]) == (1, 1), r
    assert "a failing gpu cell" in r["failures"][0]
