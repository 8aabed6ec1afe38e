"""PP-LCNetV4 small backbone and RepLKFPN neck (PP-OCRv6 small): each layer against a numpy brute force,
the widths and parameter count of the exported network, and the whole DBNet as a normal db-tf model."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.ops import convert_to_numpy as to_numpy

from db_tf.models.backbones import BACKBONES
from db_tf.models.backbones.pplcnetv4 import HGStem, LCNetV4Block, LCNetV4Downsample, pplcnetv4_small
from db_tf.models.necks import NECKS
from db_tf.models.necks.replkfpn import RepLKFPN
from tests.test_pplcnetv3 import np_conv, np_rse, np_rsefpn, np_se, randomize

RNG = np.random.default_rng(17)


def np_gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def np_dense_conv(x, layer, stride=1, pad=0, depthwise=False):
    return np_conv(x, layer.kernel.numpy(), stride, pad, depthwise) + layer.bias.numpy()


def np_pad_bottom_right(x, value=0.0):
    return np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=value)


def np_max_pool_2x2(x):
    """2x2 stride-1 max pool over a -inf padded map (ONNX MaxPool's SAME_UPPER padding)."""
    xp = np_pad_bottom_right(x, -np.inf)
    return np.maximum(np.maximum(xp[:, :-1, :-1], xp[:, 1:, :-1]), np.maximum(xp[:, :-1, 1:], xp[:, 1:, 1:]))


def build(layer, shape):
    x = RNG.normal(size=shape).astype("float32")
    layer(x)
    randomize(layer, 0.3)
    return x


def test_block_matches_numpy():
    for squeeze_excite in (True, False):
        block = LCNetV4Block(8, squeeze_excite)
        x = build(block, (2, 5, 6, 8))
        t = np_dense_conv(x, block.depthwise, 1, 1, depthwise=True)
        if squeeze_excite:
            t = np_se(t, block.se, 1 / 6)
        expected = t + np_dense_conv(np_gelu(np_dense_conv(t, block.expand)), block.reduce)
        np.testing.assert_allclose(to_numpy(block(x)), expected, rtol=1e-4, atol=1e-4)


def test_downsample_pads_symmetrically_and_matches_numpy():
    layer = LCNetV4Downsample(12)
    x = build(layer, (1, 7, 8, 6))
    t = np_dense_conv(x, layer.depthwise, 2, 1, depthwise=True)
    expected = np_dense_conv(np_gelu(np_dense_conv(t, layer.expand)), layer.project)
    out = to_numpy(layer(x))
    assert out.shape == (1, 4, 4, 12)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_stem_matches_numpy_with_bottom_right_padding_and_pool_first():
    stem = HGStem((6, 3, 10))
    x = build(stem, (1, 12, 10, 3))
    relu = lambda v: np.maximum(v, 0)
    s1 = relu(np_dense_conv(x, stem.conv1, 2, 1))
    branch = relu(np_dense_conv(np_pad_bottom_right(s1), stem.branch_a))
    branch = relu(np_dense_conv(np_pad_bottom_right(branch), stem.branch_b))
    joined = np.concatenate([np_max_pool_2x2(s1), branch], axis=-1)
    expected = relu(np_dense_conv(relu(np_dense_conv(joined, stem.conv3, 2, 1)), stem.conv4))
    out = to_numpy(stem(x))
    assert out.shape == (1, 3, 3, 10)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_backbone_widths_strides_and_weight_count():
    backbone = pplcnetv4_small()
    assert BACKBONES["pplcnetv4_small"] is pplcnetv4_small
    features = backbone(np.zeros((1, 64, 96, 3), "float32"))
    assert [tuple(f.shape) for f in features] == [(1, 16, 24, 48), (1, 8, 12, 96), (1, 4, 6, 192), (1, 2, 3, 384)]
    # The exported graph's backbone: 2,312,448 weights (sum of the ONNX tensors feeding C2..C5).
    assert backbone.count_params() == 2_312_448


def test_replkfpn_matches_numpy_reference():
    neck = RepLKFPN(inner_channels=16)
    assert NECKS["replkfpn"] is RepLKFPN
    shapes = [(2, 8, 16, 12), (2, 4, 8, 18), (2, 2, 4, 42), (2, 1, 2, 36)]
    feats = [RNG.normal(size=s).astype("float32") for s in shapes]
    neck(feats)
    randomize(neck, 0.3)
    out = to_numpy(neck(feats))

    def smooth(p, layer):
        return np_rse(np_dense_conv(p, layer.depthwise, 1, 3, depthwise=True), layer.pointwise)

    expected = np_rsefpn(feats, neck, smooth)
    assert out.shape == (2, 8, 16, 16)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_v6_small_dbnet_config_round_trip_and_gradients():
    from db_tf.losses import DBLoss
    from db_tf.models import DBNet

    keras.utils.set_random_seed(5)
    model = DBNet(backbone="pplcnetv4_small", neck="replkfpn", inner_channels=96, head_batch_norm=False)
    clone = DBNet.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    images = RNG.normal(size=(2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(to_numpy(clone(images)), to_numpy(model(images)), atol=1e-6)
    # backbone + neck + probability branch = the ONNX export's 2,453,353 weights (plus a threshold branch)
    assert model.backbone.count_params() + model.neck.count_params() + model.head.probability.count_params() \
        == 2_453_353

    gt = np.zeros((2, 64, 64), "float32")
    gt[:, 20:40, 10:50] = 1.0
    labels = {"gt": gt, "mask": np.ones_like(gt), "thresh_map": np.full_like(gt, 0.3) + 0.4 * gt,
              "thresh_mask": np.ones_like(gt)}
    with tf.GradientTape() as tape:
        losses = DBLoss()(labels, model(images, training=True))
    gradients = tape.gradient(losses["total_loss"], model.trainable_variables)
    assert np.isfinite(losses["total_loss"].numpy())
    assert [v.path for v, g in zip(model.trainable_variables, gradients) if g is None] == []


def test_gelu_is_built_from_erf_so_the_onnx_export_can_translate_it():
    """tf.nn.gelu(approximate=False) lowers to Erfc, an op tf2onnx cannot convert: the block must use Erf."""
    block = LCNetV4Block(4)
    x = tf.TensorSpec((1, 4, 4, 4), tf.float32)
    block(np.zeros((1, 4, 4, 4), "float32"))
    ops_used = {op.type for op in tf.function(block).get_concrete_function(x).graph.get_operations()}
    assert "Erf" in ops_used and "Erfc" not in ops_used
