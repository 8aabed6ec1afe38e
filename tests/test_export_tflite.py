"""TFLite export: float32 parity with the Keras model at several input sizes (one interpreter, resized
between calls), dynamic-range int8 size and closeness, runner input checks."""
import json

import numpy as np
import pytest
from export_support import keras_reference, tiny_model

from db_tf.export import export
from db_tf.export.tflite import TFLiteRunner, export_tflite

pytestmark = pytest.mark.slow   # not in the fast subset (python -m pytest -m "not slow")

SETTINGS = {"channel_order": "BGR", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "short_side": 64,
            "max_side": 128}


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def tflite_files(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tflite")
    float32, int8 = export(model, SETTINGS, folder, fmt="tflite", name="tiny")
    return float32, int8


def test_files_metadata_and_int8_is_about_four_times_smaller(tflite_files, model):
    float32, int8 = tflite_files
    assert (float32.name, int8.name) == ("tiny_float32.tflite", "tiny_dynamic_int8.tflite")
    weight_bytes = sum(int(np.prod(v.shape)) * 4 for v in model.weights)
    # the probability path holds all but the threshold branch's few weights
    assert 0.9 * weight_bytes < float32.stat().st_size < 1.1 * weight_bytes
    assert int8.stat().st_size < 0.3 * float32.stat().st_size
    assert json.loads((float32.parent / "tiny.export.json").read_text())["preprocess"]["short_side"] == 64


def test_float32_matches_keras_at_several_sizes(tflite_files, model):
    runner = TFLiteRunner(tflite_files[0])
    rng = np.random.default_rng(7)
    for shape in [(1, 64, 96, 3), (2, 128, 64, 3), (1, 50, 70, 3), (1, 64, 96, 3)]:
        images = rng.uniform(0, 255, shape).astype(np.float32)
        got = runner(images)
        expected = keras_reference(model, images, SETTINGS)
        assert got.shape == expected.shape == (*shape[:3], 1)
        assert expected.std() > 0.05
        np.testing.assert_allclose(got, expected, atol=1e-3)


def test_dynamic_int8_stays_close_to_float(tflite_files, model):
    images = np.random.default_rng(8).uniform(0, 255, (1, 64, 96, 3)).astype(np.float32)
    got = TFLiteRunner(tflite_files[1])(images)
    expected = keras_reference(model, images, SETTINGS)
    difference = np.abs(got - expected)
    # int8 weights: not bit-exact, but the map must be the same map (a broken conversion is far off)
    assert difference.mean() < 0.05 and np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.95


def test_runner_and_exporter_reject_bad_input(tflite_files, model, tmp_path):
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        TFLiteRunner(tflite_files[0])(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="quantization"):
        export_tflite(model, SETTINGS, tmp_path / "x.tflite", quantization="int4")


def test_tflite_exports_serve_probability_only_and_say_so(model, tmp_path, monkeypatch):
    """TFLiteRunner reads one output, so an export asked for split_by_threshold is written without it and
    its metadata says split_by_threshold False (clients then post-process as the file allows)."""
    import db_tf.export.tflite as tflite

    seen = []
    monkeypatch.setattr(tflite, "export_tflite", lambda m, settings, path, q: seen.append(settings) or path)
    export(model, {**SETTINGS, "split_by_threshold": True}, tmp_path, fmt="tflite", name="t",
           quantizations=("float32",))
    assert seen[0]["split_by_threshold"] is False
    meta = json.loads((tmp_path / "t.export.json").read_text())
    assert meta["postprocess"]["split_by_threshold"] is False and "threshold" not in meta["outputs"]
