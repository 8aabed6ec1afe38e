"""Importing PyTorch into a process that already runs TensorFlow (for the PyTorch importer and its tests).

PyTorch is an optional dependency of db_tf.tools.import_torch only; db-tf itself never imports it.

The PyPI torch wheel pulls in triton (a GPU kernel compiler). Importing triton after TensorFlow crashes
the process (segmentation fault: two LLVM builds in one process; seen with torch 2.14 / triton 3.8 and
TensorFlow 2.21), and torch imports it during its own import when it is installed. Converting weights
and running reference models on the CPU never needs triton, so it is hidden from torch.
"""
import sys


def load_torch():
    """`import torch` safely next to TensorFlow; raises ImportError when torch is not installed."""
    if "triton" not in sys.modules:
        sys.modules["triton"] = None    # makes `import triton` raise ImportError: torch then runs without it
    import torch

    return torch
