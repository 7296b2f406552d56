"""Shared test setup. Kernels run through Triton's interpreter when no GPU is present: the switch must be set
before any llmlab.kernels module is imported, so it is set here, before collection imports test modules."""
import os, pathlib, sys
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("LLMLAB_PROGRESS", "0")
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

ROOT = pathlib.Path(__file__).resolve().parents[1]
