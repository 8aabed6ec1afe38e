"""ONNX export through tf2onnx: dynamic batch / height / width, parity with the Keras model in onnxruntime.

Skipped only when tf2onnx or onnxruntime is not installed (both are in requirements-dev.txt)."""
import json

import numpy as np
import pytest

pytest.importorskip("tf2onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from export_support import keras_reference, tiny_model  # noqa: E402
from tolerances import assert_maps_match  # noqa: E402

from db_tf.export import export  # noqa: E402

pytestmark = pytest.mark.slow   # not in the fast subset (python -m pytest -m "not slow")

SETTINGS = {"channel_order": "BGR", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "short_side": 64,
            "max_side": 128, "thresh": 0.25}


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def onnx_file(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    (path,) = export(model, SETTINGS, folder, fmt="onnx", name="tiny")
    return path


def test_files_and_metadata(onnx_file, model):
    assert onnx_file.name == "tiny.onnx" and onnx_file.stat().st_size > 0
    meta = json.loads((onnx_file.parent / "tiny.export.json").read_text())
    assert meta["preprocess"]["channel_order"] == "BGR" and meta["postprocess"] == {"thresh": 0.25}
    assert meta["model"]["backbone"] == "resnet18"
    with pytest.raises(FileExistsError, match="--overwrite"):
        export(model, SETTINGS, onnx_file.parent, fmt="onnx", name="tiny")


def test_inputs_and_outputs_have_dynamic_named_dimensions(onnx_file):
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape) == ("images", "tensor(float)", ["batch", "height", "width", 3])
    assert (out.name, out.type, out.shape) == ("probability", "tensor(float)", ["batch", "height", "width", 1])


@pytest.mark.parametrize("shape", [(2, 64, 96, 3), (1, 128, 64, 3), (1, 50, 70, 3)])
def test_onnxruntime_matches_keras(onnx_file, model, shape):
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    images = np.random.default_rng(sum(shape)).uniform(0, 255, shape).astype(np.float32)
    (got,) = session.run(None, {"images": images})
    expected = keras_reference(model, images, SETTINGS)
    assert got.shape == expected.shape == (*shape[:3], 1)
    assert expected.std() > 0.05
    assert_maps_match(got, expected)
