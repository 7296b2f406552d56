"""`import llmlab` and every module in it must work on a laptop: without CUDA, without Triton, and without touching
a GPU driver at import time. Each check runs in a fresh interpreter so nothing is imported already."""
import pkgutil, subprocess, sys, pathlib
import pytest
import llmlab

MODULES = sorted(m.name for m in pkgutil.walk_packages(llmlab.__path__, "llmlab.") if not m.name.endswith("_modidx"))

def _run(code: str):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

@pytest.mark.parametrize("mod", MODULES)
def test_module_imports_without_triton(mod):
    r = _run(f"import sys; sys.modules['triton'] = None; sys.modules['triton.language'] = None\nimport {mod}")
    assert r.returncode == 0, f"`import {mod}` fails when Triton is missing:\n{r.stderr[-2000:]}"

def test_import_touches_no_gpu_driver():
    "Importing every module must not initialise CUDA (torch.cuda.is_initialized stays False)."
    code = "import importlib, torch\n" + "".join(f"importlib.import_module({m!r})\n" for m in MODULES) + \
           "print('initialized' if torch.cuda.is_initialized() else 'clean')"
    r = _run(code)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().endswith("clean"), "a module initialised CUDA at import time"
