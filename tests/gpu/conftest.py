"""tests/gpu/: fp16/bf16 and speed-sensitive checks that need CUDA. Skipped, with the reason, on machines without a
GPU (CI has none); run them whenever a GPU is lent: `.venv/bin/python -m pytest tests/gpu`."""
import pytest, torch

def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available(): return
    skip = pytest.mark.skip(reason="needs CUDA: run tests/gpu on a GPU machine")
    for item in items:
        if "/gpu/" in str(item.fspath): item.add_marker(skip)
