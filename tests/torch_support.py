"""PyTorch for the tests that compare with it: skipped cleanly when torch is not installed."""
import pytest


def torch_or_skip(*submodules):
    """Import torch (and e.g. "torchvision.ops") the way db_tf.tools.torch_runtime does, or skip the test."""
    from db_tf.tools.torch_runtime import load_torch

    try:
        torch = load_torch()
    except ImportError as exc:
        pytest.skip(f"PyTorch not installed ({exc}); optional comparison skipped", allow_module_level=True)
    for name in submodules:
        pytest.importorskip(name)   # module level or inside a test, both skip cleanly
    return torch
