"""`import llmlab` and every module in it must work on a laptop: without CUDA, without Triton, and without touching
a GPU driver at import time. The checks run in a fresh interpreter where Triton cannot be imported; each module is
imported from scratch there (every `llmlab` module is dropped from `sys.modules` before the next one), so a module
that only imports because another llmlab module ran first is caught. One interpreter for all modules, not one each:
importing torch 20 times cost a minute of CI."""
import json, pkgutil, subprocess, sys
import pytest
import llmlab

MODULES = sorted(m.name for m in pkgutil.walk_packages(llmlab.__path__, "llmlab.") if not m.name.endswith("_modidx"))

CHECK = r"""
import importlib, json, sys, traceback
sys.modules['triton'] = None; sys.modules['triton.language'] = None        # `import triton` raises ImportError
out = {}
for mod in json.loads(sys.argv[1]):
    for name in [n for n in sys.modules if n == 'llmlab' or n.startswith('llmlab.')]: del sys.modules[name]
    try: importlib.import_module(mod); out[mod] = None
    except BaseException: out[mod] = traceback.format_exc()[-2000:]
import torch
out['<cuda initialised>'] = torch.cuda.is_initialized()
print('RESULT', json.dumps(out))
"""

@pytest.fixture(scope="module")
def imported():
    r = subprocess.run([sys.executable, "-c", CHECK, json.dumps(MODULES)], capture_output=True, text=True, timeout=300)
    line = next((l for l in r.stdout.splitlines() if l.startswith("RESULT ")), None)
    assert r.returncode == 0 and line, f"the import check itself failed:\n{r.stderr[-3000:]}"
    return json.loads(line[len("RESULT "):])

@pytest.mark.parametrize("mod", MODULES)
def test_module_imports_without_triton(mod, imported):
    assert imported[mod] is None, f"`import {mod}` fails when Triton is missing:\n{imported[mod]}"

def test_import_touches_no_gpu_driver(imported):
    "Importing every module must not initialise CUDA (torch.cuda.is_initialized stays False)."
    assert imported["<cuda initialised>"] is False, "a module initialised CUDA at import time"

def test_the_check_catches_a_module_that_needs_triton(tmp_path):
    "The check is not vacuous: a module importing Triton at top level is reported with its ImportError."
    pkg = tmp_path / "needs_triton.py"; pkg.write_text("import triton\n")
    code = CHECK.replace("import importlib, json, sys, traceback", f"import importlib, json, sys, traceback; sys.path.insert(0, {str(tmp_path)!r})")
    r = subprocess.run([sys.executable, "-c", code, json.dumps(["needs_triton", "llmlab.lab"])], capture_output=True, text=True, timeout=300)
    res = json.loads(next(l for l in r.stdout.splitlines() if l.startswith("RESULT "))[len("RESULT "):])
    assert res["llmlab.lab"] is None and ("ImportError" in (res["needs_triton"] or "") or "ModuleNotFoundError" in (res["needs_triton"] or "")), res
