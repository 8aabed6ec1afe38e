"""DB FPN and DBNet++ ASF necks, checked against a numpy re-computation from the layers' weights."""
import numpy as np
import pytest
import tensorflow as tf
from keras.ops import convert_to_numpy as to_numpy

from db_tf.models.necks import DBFPN, NECKS, ASFNeck

INNER = 32  # small width keeps the numpy reference fast; the structure does not depend on it
CHANNELS = (8, 16, 24, 32)  # C2..C5


def conv_same(x, kernel, bias=None):
    """Stride-1 'same' convolution in numpy (odd kernels): x (N,H,W,Ci), kernel (kh,kw,Ci,Co)."""
    kh, kw = kernel.shape[:2]
    h, w = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = sum(padded[:, i:i + h, j:j + w, :] @ kernel[i, j] for i in range(kh) for j in range(kw))
    return out if bias is None else out + bias


def up(x, factor):
    return x.repeat(factor, axis=1).repeat(factor, axis=2)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def weights(layer):
    return [v.numpy().astype(np.float64) for v in layer.weights]


def random_features(rng, size=32):
    """C2..C5 for a size x size image (strides 4..32)."""
    return [rng.standard_normal((2, size // s, size // s, c)).astype(np.float32)
            for s, c in zip((4, 8, 16, 32), CHANNELS)]


def fpn_levels_numpy(neck, features):
    """Independent FPN: laterals, top-down x2 nearest adds, 3x3 smoothing, upsample; returns [p5, p4, p3, p2]."""
    c = [f.astype(np.float64) for f in features]
    lateral = [c[i] @ weights(neck.laterals[i])[0][0, 0] for i in range(4)]
    in5 = lateral[3]
    out4 = lateral[2] + up(in5, 2)
    out3 = lateral[1] + up(out4, 2)
    out2 = lateral[0] + up(out3, 2)
    smooth = [weights(neck.smoothing[i])[0] for i in range(4)]
    return [up(conv_same(in5, smooth[3]), 8), up(conv_same(out4, smooth[2]), 4),
            up(conv_same(out3, smooth[1]), 2), conv_same(out2, smooth[0])]


def build_neck(cls):
    neck = cls(inner_channels=INNER)
    neck.build([(None, None, None, c) for c in CHANNELS])
    return neck


def test_registry_has_the_official_necks():
    assert NECKS["fpn"] is DBFPN and NECKS["asf"] is ASFNeck


def test_fpn_matches_numpy_and_uses_official_concat_order():
    rng = np.random.default_rng(0)
    neck = build_neck(DBFPN)
    features = random_features(rng)
    out = to_numpy(neck(features))
    assert out.shape == (2, 8, 8, INNER)
    expected = np.concatenate(fpn_levels_numpy(neck, features), axis=-1)  # [p5, p4, p3, p2]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_fpn_has_no_bias_and_official_widths():
    neck = build_neck(DBFPN)
    for layer in neck.laterals + neck.smoothing:
        assert not layer.use_bias
    assert [layer.kernel.shape for layer in neck.laterals] == [(1, 1, c, INNER) for c in CHANNELS]
    assert all(layer.kernel.shape == (3, 3, INNER, INNER // 4) for layer in neck.smoothing)


def test_top_down_path_carries_c5_to_the_finest_level():
    """Changing only C5 must change every fused level, including p2 (stride 4, last quarter of channels)."""
    rng = np.random.default_rng(1)
    neck = build_neck(DBFPN)
    features = random_features(rng)
    before = to_numpy(neck(features))
    features[3] = features[3] + rng.standard_normal(features[3].shape).astype(np.float32)
    after = to_numpy(neck(features))
    quarter = INNER // 4
    for level, name in enumerate(("p5", "p4", "p3", "p2")):
        change = np.abs(after - before)[..., level * quarter:(level + 1) * quarter].max()
        assert change > 1e-3, f"{name} does not depend on C5: no top-down fusion"


def test_asf_matches_numpy_recomputation():
    rng = np.random.default_rng(2)
    neck = build_neck(ASFNeck)
    features = random_features(rng)
    out = to_numpy(neck(features))
    assert out.shape == (2, 8, 8, INNER)

    levels = fpn_levels_numpy(neck, features)
    conv_kernel, conv_bias = weights(neck.fuse_conv)
    x = conv_same(np.concatenate(levels, axis=-1), conv_kernel, conv_bias)
    # Channel attention on the global average, residual add on x.
    pooled = x.mean(axis=(1, 2), keepdims=True)
    hidden = np.maximum(pooled @ weights(neck.channel_reduce)[0][0, 0], 0.0)
    x1 = sigmoid(hidden @ weights(neck.channel_expand)[0][0, 0]) + x
    # Spatial attention on the channel mean of x1, residual add on x1.
    spatial = np.maximum(conv_same(x1.mean(axis=-1, keepdims=True), weights(neck.spatial_conv)[0]), 0.0)
    x2 = sigmoid(spatial * weights(neck.spatial_scale)[0][0, 0, 0, 0]) + x1
    scale = sigmoid(x2 @ weights(neck.scale_weights)[0][0, 0])  # (N, H, W, 4)
    expected = np.concatenate([scale[..., i:i + 1] * levels[i] for i in range(4)], axis=-1)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_asf_layer_shapes_and_biases():
    neck = build_neck(ASFNeck)
    c = INNER // 4
    expected = {"fuse_conv": ((3, 3, INNER, c), True), "channel_reduce": ((1, 1, c, c // 4), False),
                "channel_expand": ((1, 1, c // 4, c), False), "spatial_conv": ((3, 3, 1, 1), False),
                "spatial_scale": ((1, 1, 1, 1), False), "scale_weights": ((1, 1, c, 4), False)}
    for name, (shape, bias) in expected.items():
        layer = getattr(neck, name)
        assert tuple(layer.kernel.shape) == shape, name
        assert layer.use_bias == bias, name


@pytest.mark.parametrize("cls", [DBFPN, ASFNeck])
def test_necks_accept_dynamic_spatial_shapes(cls):
    rng = np.random.default_rng(3)
    neck = build_neck(cls)
    specs = [tf.TensorSpec((None, None, None, c)) for c in CHANNELS]
    fn = tf.function(lambda features: neck(features), input_signature=[specs])
    for size in (32, 64):
        out = fn(random_features(rng, size))
        assert out.shape == (2, size // 4, size // 4, INNER)


def test_fpn_rejects_wrong_number_of_levels():
    neck = build_neck(DBFPN)
    with pytest.raises(ValueError, match="C2, C3, C4, C5"):
        neck(random_features(np.random.default_rng(4))[:3])
