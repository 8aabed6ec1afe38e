"""TextDetector(precision="bfloat16"): the forward runs in bfloat16 (a mixed_bfloat16 copy of the model),
maps come back float32 and close to the float32 ones."""
import keras
import numpy as np
import pytest
from test_detector import PixelModel
from test_train_support import register_tiny_backbone

from db_tf import TextDetector

# Measured on the tiny DBNet below, random weights, seeds 0-5, 96x128 noise images (oneDNN on and off):
# worst max |difference| P 0.0056, T 0.0080, B 0.072 (B = sigmoid(50 (P - T)) amplifies by up to 50 / 4).
# bfloat16 keeps 8 mantissa bits (relative rounding 2^-9 = 0.002 per operation); the tolerances leave 2.5x.
TOLERANCE = {"probability": 0.02, "threshold": 0.02, "binary": 0.2}


@pytest.fixture
def tiny(monkeypatch):
    from db_tf.models.backbones import BACKBONES
    monkeypatch.setitem(BACKBONES, "tiny", register_tiny_backbone())


@pytest.mark.parametrize("seed", [0, 3])
def test_bfloat16_maps_are_float32_and_close_to_float32_maps(tiny, seed):
    from db_tf.models import DBNet

    keras.utils.set_random_seed(seed)
    model = DBNet("tiny", inner_channels=16)
    image = np.random.default_rng(seed).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    full = TextDetector(model=model, short_side=96, max_side=0).predict_maps([image], return_maps=True)[0]
    half = TextDetector(model=model, short_side=96, max_side=0, precision="bfloat16")
    reduced = half.predict_maps([image], return_maps=True)[0]
    assert keras.config.dtype_policy().name == "float32"     # the global policy is left as found
    for key, tolerance in TOLERANCE.items():
        assert reduced[key].dtype == np.float32 and reduced[key].shape == full[key].shape == (96, 128)
        np.testing.assert_allclose(reduced[key], full[key], atol=tolerance, err_msg=key)
    assert np.abs(reduced["probability"] - full["probability"]).max() > 0   # it really ran in bfloat16


def test_the_bfloat16_copy_computes_in_bfloat16_with_the_same_float32_weights(tiny):
    from db_tf.models import DBNet
    from db_tf.models.precision import inference_copy

    model = DBNet("tiny", inner_channels=16)
    copy = inference_copy(model, "bfloat16")
    assert copy is not model and inference_copy(model, "float32") is model
    assert copy.backbone.layers[1].compute_dtype == "bfloat16"
    assert copy.head.probability.conv.compute_dtype == "bfloat16"
    for a, b in zip(model.weights, copy.weights):
        assert b.dtype == "float32"
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_bad_precision_settings_are_named():
    with pytest.raises(ValueError, match="precision must be one of"):
        TextDetector(model=PixelModel(), precision="float16")
    with pytest.raises(TypeError, match="rebuilds a Keras model"):
        TextDetector(model=PixelModel(), precision="bfloat16")


def test_pplcnetv3_layers_fold_in_float32_under_mixed_bfloat16():
    """PP-LCNetV3 folds its affine blocks into the convolution weights: under mixed_bfloat16 the folding runs
    on float32 variables (autocast off) and the layer's output stays within bfloat16 rounding of float32's.
    Measured worst relative error (max |diff| / max |y|, seeds 0-3): 0.011; tolerance 3x that."""
    from db_tf.models.backbones.pplcnetv3 import LearnableAffine, RepConv

    def build(policy):
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            conv, affine = RepConv(64, kernel_size=3), LearnableAffine()
            conv.build((None, None, None, 96))
            affine.build(None)
        finally:
            keras.config.set_dtype_policy(previous)
        return conv, affine

    keras.utils.set_random_seed(0)
    full, full_affine = build("float32")
    half, half_affine = build("mixed_bfloat16")
    half.set_weights(full.get_weights())
    for affine in (full_affine, half_affine):
        affine.scale.assign(0.7)
        affine.bias.assign(2.5)   # a large shift: folded as bias + shift * (sum of the kernel's taps)
    assert all(v.dtype == "float32" for v in half.weights)
    x = np.random.default_rng(0).normal(size=(1, 24, 24, 96)).astype(np.float32)
    want = np.asarray(full(x, input_affine=full_affine))
    got = half(x, input_affine=half_affine)
    assert got.dtype == "bfloat16"
    got = np.asarray(keras.ops.cast(got, "float32"))
    assert np.abs(got - want).max() <= 0.033 * np.abs(want).max()


def test_a_bfloat16_saved_model_serves_bfloat16_convolutions_with_float32_maps(tiny, tmp_path):
    import tensorflow as tf

    from db_tf.export import export
    from db_tf.export.saved_model import read_metadata
    from db_tf.models import DBNet

    keras.utils.set_random_seed(1)
    model = DBNet("tiny", inner_channels=16)
    settings = {**TextDetector(model=model).settings, "short_side": 96, "max_side": 0}
    path = export(model, settings, tmp_path / "exported", precision="bfloat16")[0]
    assert read_metadata(path)["precision"] == "bfloat16"
    assert {"boxes", "boxes_tuned"} <= set(read_metadata(path)["inputs"])
    served = tf.saved_model.load(str(path)).signatures["serving_float"]
    convolutions = [node for function in served.graph.as_graph_def().library.function for node in function.node_def
                    if node.op.startswith("Conv2D")]
    assert convolutions and all(node.attr["T"].type == tf.bfloat16.as_datatype_enum for node in convolutions)
    image = np.random.default_rng(1).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    got = served(images=tf.constant(image[None].astype(np.float32)))["probability"].numpy()[0, :, :, 0]
    full = TextDetector(model=model, short_side=96, max_side=0).predict_maps([image])[0]["probability"]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, full, atol=TOLERANCE["probability"])
    assert np.abs(got - full).max() > 0


def test_bfloat16_exports_other_than_saved_model_are_refused(tiny, tmp_path):
    from db_tf.export import export
    from db_tf.models import DBNet

    model = DBNet("tiny", inner_channels=16)
    with pytest.raises(ValueError, match="SavedModel exports only"):
        export(model, TextDetector(model=model).settings, tmp_path, fmt="onnx", precision="bfloat16")
