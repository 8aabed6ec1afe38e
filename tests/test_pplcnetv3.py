"""PP-LCNetV3 backbone and RSEFPN neck: each layer against a numpy brute force, shapes, parameter count,
and the whole PP-OCR-style DBNet as a normal db-tf model (config round trip, a training step)."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.ops import convert_to_numpy as to_numpy

from db_tf.models.backbones import BACKBONES
from db_tf.models.backbones.pplcnetv3 import (
    STAGES,
    LCNetV3Block,
    LearnableAffine,
    RepConv,
    SqueezeExcite,
    StemConv,
    make_divisible,
    pplcnetv3_x0_75,
)
from db_tf.models.necks import NECKS
from db_tf.models.necks.rsefpn import RSEFPN

RNG = np.random.default_rng(7)


# ----------------------------------------------------------------------------- numpy references

def np_conv(x, kernel, stride=1, pad=0, depthwise=False):
    """Brute-force NHWC convolution (cross-correlation) with symmetric zero padding `pad`."""
    n, h, w, c = x.shape
    k = kernel.shape[0]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out_h = (h + 2 * pad - k) // stride + 1
    out_w = (w + 2 * pad - k) // stride + 1
    out = np.zeros((n, out_h, out_w, c if depthwise else kernel.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            patch = xp[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            if depthwise:
                out[:, i, j, :] = np.einsum("nabc,abc->nc", patch, kernel[..., 0])
            else:
                out[:, i, j, :] = np.einsum("nabc,abco->no", patch, kernel)
    return out


def np_hard_swish(x):
    return x * np.clip(x + 3, 0, 6) / 6


def np_hard_sigmoid(x, slope):
    return np.clip(slope * x + 0.5, 0, 1)


def np_se(x, se, slope):
    pooled = x.mean(axis=(1, 2))
    hidden = np.maximum(pooled @ se.squeeze.kernel.numpy() + se.squeeze.bias.numpy(), 0)
    gate = np_hard_sigmoid(hidden @ se.excite.kernel.numpy() + se.excite.bias.numpy(), slope)
    return x * gate[:, None, None, :]


def randomize(layer, scale=0.5):
    """Non-trivial values everywhere (default inits have zero biases and unit affine scales)."""
    for variable in layer.weights:
        offset = 1.0 if variable.path.endswith("scale") else 0.0
        variable.assign(RNG.normal(0, scale, variable.shape).astype("float32") + offset)


def np_affine(x, affine):
    return x * affine.scale.numpy() + affine.bias.numpy()


def np_rep_conv(x, layer, input_affine=None):
    """The unfolded layer: [input affine] -> zero-padded conv + bias -> affine [-> hard-swish -> act_affine]."""
    if input_affine is not None:
        x = np_affine(x, input_affine)
    y = np_conv(x, layer.kernel.numpy(), layer.strides, layer.kernel_size // 2, layer.depthwise) + layer.bias.numpy()
    y = np_affine(y, layer.affine)
    if layer.strides != 2:
        y = np_affine(np_hard_swish(y), layer.act_affine)
    return y


def np_block(x, block, input_affine=None):
    x = np_rep_conv(x, block.depthwise, input_affine)
    if block.se is not None:
        x = np_se(x, block.se, 1 / 6)
    return np_rep_conv(x, block.pointwise)


def pending_affine(scale, bias):
    affine = LearnableAffine()
    affine.build(None)
    affine.scale.assign(scale)
    affine.bias.assign(bias)
    return affine


# ----------------------------------------------------------------------------- layers

def test_make_divisible_hand_values():
    # PP-LCNetV3 x0.75 widths (ONNX graph of PP-OCRv4 det): 16*0.75=12 -> 16, 32*0.75=24 -> 32, then exact.
    assert [make_divisible(c * 0.75) for c in (16, 32, 64, 128, 256, 512)] == [16, 32, 48, 96, 192, 384]
    assert make_divisible(8) == 16          # never below the divisor
    assert make_divisible(40) == 48         # 40 rounds half up to 48
    assert make_divisible(100) == 96        # 96 >= 0.9 * 100: allowed to round down
    assert make_divisible(150) == 144       # 144 >= 135
    assert make_divisible(17.5) == 16       # 16 >= 15.75


@pytest.mark.parametrize("input_affine", [None, (1.7, 0.4), (-0.6, -1.3)])
@pytest.mark.parametrize("depthwise, kernel_size, strides, shape", [
    (True, 3, 2, (2, 9, 8, 4)),     # stride 2: symmetric padding, no activation (odd height too)
    (True, 5, 1, (1, 7, 6, 3)),     # 5x5 stride 1
    (False, 1, 1, (1, 5, 4, 6)),    # pointwise with activation
])
def test_rep_conv_with_folded_affines_matches_unfolded_numpy(depthwise, kernel_size, strides, shape, input_affine):
    """RepConv folds its own affine and the previous layer's pending affine into its weights (and pads
    with -b/s): the result equals the unfolded layer on the affine-transformed, zero-padded input."""
    layer = RepConv(filters=None if depthwise else 5, kernel_size=kernel_size, strides=strides, depthwise=depthwise)
    x = RNG.normal(size=shape).astype("float32")
    layer(x)
    randomize(layer)
    pending = None if input_affine is None else pending_affine(*input_affine)
    assert layer.activation == (strides != 2)
    got = to_numpy(layer(x, input_affine=pending))
    if layer.activation:   # the layer leaves its act_affine to the consumer
        got = np_affine(got, layer.act_affine)
    np.testing.assert_allclose(got, np_rep_conv(x, layer, pending), rtol=1e-4, atol=1e-4)


def test_stride2_padding_is_symmetric_unlike_keras_same():
    """A centred impulse must give a centred response: Paddle pads 1 on every side at stride 2."""
    layer = RepConv(kernel_size=3, strides=2, depthwise=True)
    x = np.zeros((1, 8, 8, 1), "float32")
    layer(x)
    kernel = np.zeros((3, 3, 1, 1), "float32")
    kernel[0, 0] = 1.0        # output(i, j) = padded input(2i, 2j) = input(2i - 1, 2j - 1)
    layer.kernel.assign(kernel)
    x[0, 3, 5, 0] = 1.0
    y = to_numpy(layer(x))[0, :, :, 0]
    assert y.shape == (4, 4)
    assert np.argwhere(y == 1.0).tolist() == [[2, 3]]   # (3 + 1) / 2, (5 + 1) / 2
    same = to_numpy(keras.ops.depthwise_conv(x, kernel, 2, padding="same"))[0, :, :, 0]
    assert not np.array_equal(same, y)  # 'same' pads bottom/right only: the map would shift


@pytest.mark.parametrize("squeeze_excite", [False, True])
def test_block_matches_unfolded_numpy(squeeze_excite):
    block = LCNetV3Block(6, 5, 1, squeeze_excite)
    x = RNG.normal(size=(2, 6, 7, 8)).astype("float32")
    block(x)
    randomize(block)
    pending = pending_affine(0.8, -0.3)
    got = np_affine(to_numpy(block(x, input_affine=pending)), block.output_affine)
    np.testing.assert_allclose(got, np_block(x, block, pending), rtol=1e-4, atol=1e-4)


def test_stem_folds_batch_norm_at_inference_and_uses_batch_statistics_in_training():
    stem = StemConv(4)
    x = RNG.normal(2.0, 3.0, size=(2, 8, 10, 3)).astype("float32")
    stem(x)
    randomize(stem)
    stem.bn.moving_variance.assign(RNG.uniform(0.5, 2.0, 4).astype("float32"))
    bn = stem.bn
    conv = np_conv(x, stem.conv.kernel.numpy(), 2, 1)
    expected = (conv - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + 1e-5) * bn.gamma.numpy() \
        + bn.beta.numpy()
    np.testing.assert_allclose(to_numpy(stem(x, training=False)), expected, rtol=1e-4, atol=1e-4)
    trained = to_numpy(stem(x, training=True))   # normalised with this batch's statistics
    mean, std = conv.mean(axis=(0, 1, 2)), conv.std(axis=(0, 1, 2))
    np.testing.assert_allclose(trained, (conv - mean) / np.sqrt(std ** 2 + 1e-5) * bn.gamma.numpy() + bn.beta.numpy(),
                               rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("slope", [1 / 6, 0.2])
def test_squeeze_excite_matches_numpy(slope):
    se = SqueezeExcite(slope=slope)
    x = RNG.normal(size=(2, 3, 4, 8)).astype("float32")
    se(x)
    randomize(se, 1.0)
    np.testing.assert_allclose(to_numpy(se(x)), np_se(x, se, slope), rtol=1e-5, atol=1e-5)


def test_learnable_affine():
    layer = pending_affine(-2.0, 0.5)
    x = np.arange(6, dtype="float32").reshape(1, 2, 3, 1)
    np.testing.assert_allclose(to_numpy(layer(x)), -2.0 * x + 0.5)


# ----------------------------------------------------------------------------- backbone

def hand_count():
    """Trainable parameters of PP-LCNetV3 x0.75 det, from the architecture table in the ONNX graph."""
    blocks = [  # (kernel, in, out, stride, se), read off the PP-OCRv4 det ONNX graph
        (3, 16, 32, 1, 0), (3, 32, 48, 2, 0), (3, 48, 48, 1, 0), (3, 48, 96, 2, 0), (3, 96, 96, 1, 0),
        (3, 96, 192, 2, 0), (5, 192, 192, 1, 0), (5, 192, 192, 1, 0), (5, 192, 192, 1, 0), (5, 192, 192, 1, 0),
        (5, 192, 384, 2, 1), (5, 384, 384, 1, 1), (5, 384, 384, 1, 0), (5, 384, 384, 1, 0)]
    total = 3 * 3 * 3 * 16 + 2 * 16                                 # stem conv + BN gamma/beta
    for k, cin, cout, stride, se in blocks:
        total += k * k * cin + cin + 2 + (2 if stride == 1 else 0)  # depthwise + bias + affine(s)
        total += se * (cin * cin // 4 + cin // 4 + cin // 4 * cin + cin)
        total += cin * cout + cout + 4                              # pointwise + bias + two affines
    total += sum(cin * cout + cout for cin, cout in ((48, 12), (96, 18), (192, 42), (384, 360)))
    return total


def np_backbone(images, model):
    """The backbone with every affine block applied where the architecture puts it (nothing folded)."""
    stem = model.get_layer("stem").bn
    x = np_conv(images, model.get_layer("stem").conv.kernel.numpy(), 2, 1)
    x = (x - stem.moving_mean.numpy()) / np.sqrt(stem.moving_variance.numpy() + stem.epsilon) \
        * stem.gamma.numpy() + stem.beta.numpy()
    features = []
    for stage_index, stage in enumerate(STAGES):
        for block_index in range(len(stage)):
            x = np_block(x, model.get_layer(f"stage{stage_index + 1}_block{block_index + 1}"))
        if stage_index > 0:
            projection = model.get_layer(f"c{len(features) + 2}_projection")
            features.append(np_conv(x, projection.kernel.numpy()) + projection.bias.numpy())
    return features


@pytest.fixture(scope="module")
def backbone():
    return pplcnetv3_x0_75()


def test_backbone_shapes_and_parameter_count(backbone):
    assert BACKBONES["pplcnetv3_x0_75"] is pplcnetv3_x0_75
    features = backbone(np.zeros((1, 64, 96, 3), "float32"))
    assert [tuple(f.shape) for f in features] == [
        (1, 16, 24, 12), (1, 8, 12, 18), (1, 4, 6, 42), (1, 2, 3, 360)]
    count = sum(int(np.prod(v.shape)) for v in backbone.trainable_variables)
    assert count == hand_count()


def test_backbone_with_folding_matches_unfolded_numpy(backbone):
    """The whole chain of deferred affines (blocks, SE blocks, projections) equals the plain network."""
    keras.utils.set_random_seed(5)
    for variable in backbone.weights:   # small random weights so activations stay in range
        if variable.path.endswith(("scale", "gamma", "moving_variance")):
            variable.assign(RNG.uniform(0.5, 1.5, variable.shape).astype("float32"))
        else:
            variable.assign(RNG.normal(0, 0.2, variable.shape).astype("float32"))
    images = RNG.normal(size=(1, 64, 64, 3)).astype("float32")
    for got, expected in zip(backbone(images, training=False), np_backbone(images, backbone)):
        np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


def test_backbone_loads_its_own_weights_file(backbone, tmp_path):
    for variable in backbone.weights:
        variable.assign(RNG.normal(0, 0.1, variable.shape).astype("float32"))
    path = tmp_path / "backbone.weights.h5"
    backbone.save_weights(path)
    loaded = pplcnetv3_x0_75(weights=str(path))
    for a, b in zip(backbone.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# ----------------------------------------------------------------------------- neck

def np_rse(x, rse):
    kernel = rse.conv.kernel.numpy()
    y = np_conv(x, kernel, 1, kernel.shape[0] // 2)
    return y + np_se(y, rse.se, 0.2)


def np_up(x, factor):
    return x.repeat(factor, axis=1).repeat(factor, axis=2)


def np_rsefpn(feats, neck, smooth=np_rse):
    """RSEFPN's wiring in numpy: laterals, top-down sums, `smooth(P, layer)` per level, upsample, concat."""
    l2, l3, l4, l5 = (np_rse(f, layer) for f, layer in zip(feats, neck.laterals))
    p4 = l4 + np_up(l5, 2)
    p3 = l3 + np_up(p4, 2)
    p2 = l2 + np_up(p3, 2)
    s2, s3, s4, s5 = (smooth(p, layer) for p, layer in zip((p2, p3, p4, l5), neck.smooth))
    return np.concatenate([np_up(s5, 8), np_up(s4, 4), np_up(s3, 2), s2], axis=-1)


def test_rsefpn_matches_numpy_reference():
    neck = RSEFPN(inner_channels=16)
    assert NECKS["rsefpn"] is RSEFPN
    shapes = [(2, 8, 16, 12), (2, 4, 8, 18), (2, 2, 4, 42), (2, 1, 2, 36)]   # 2 images: per-image gates
    feats = [RNG.normal(size=s).astype("float32") for s in shapes]
    neck(feats)
    randomize(neck, 0.3)
    out = to_numpy(neck(feats))
    expected = np_rsefpn(feats, neck)
    assert out.shape == (2, 8, 16, 16) == neck.compute_output_shape(shapes)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- the whole model

PPOCR_KWARGS = {"backbone": "pplcnetv3_x0_75", "neck": "rsefpn", "inner_channels": 96, "head_batch_norm": True}


@pytest.mark.slow
def test_ppocr_dbnet_config_round_trip_and_gradients():
    from db_tf.losses import DBLoss
    from db_tf.models import DBNet

    keras.utils.set_random_seed(3)
    model = DBNet(**PPOCR_KWARGS)
    clone = DBNet.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    images = RNG.normal(size=(2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(to_numpy(clone(images)), to_numpy(model(images)), atol=1e-6)
    assert model.head.probability.mid_channels == 24   # 96 // 4, the ONNX head width

    gt = np.zeros((2, 64, 64), "float32")
    gt[:, 20:40, 10:50] = 1.0
    labels = {"gt": gt, "mask": np.ones_like(gt), "thresh_map": np.full_like(gt, 0.3) + 0.4 * gt,
              "thresh_mask": np.ones_like(gt)}
    with tf.GradientTape() as tape:    # eager: tracing model.fit's train step would take ~15 s here
        losses = DBLoss()(labels, model(images, training=True))
    gradients = dict(zip((v.path for v in model.trainable_variables),
                         tape.gradient(losses["total_loss"], model.trainable_variables)))
    assert np.isfinite(losses["total_loss"].numpy())
    # Every trainable variable is connected to the loss; the fresh threshold branch and the backbone's
    # affine scales (folded into the convolutions inside RepConv) get non-zero gradients. (From random
    # init, deep SE gates may sit in a flat part of the hard sigmoid: only connectivity is required.)
    assert [path for path, g in gradients.items() if g is None] == []
    for path, g in gradients.items():
        if "threshold" in path or path.endswith("affine/scale"):
            assert np.any(g.numpy()), path
    assert sum("threshold" in path for path in gradients) >= 5
    assert sum(path.endswith("affine/scale") for path in gradients) == 52   # one per ONNX affine block
