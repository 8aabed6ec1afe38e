"""DB head: shapes, stable names, official initialisation, and a numpy re-computation of a branch."""
import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as to_numpy

from db_tf.models.head import DBHead

BRANCH_LAYERS = ("conv", "bn1", "deconv1", "bn2", "deconv2")


def build_head(in_channels=16, **kwargs):
    head = DBHead(**kwargs)
    head.build((None, None, None, in_channels))
    return head


def conv3x3_same(x, kernel, bias):
    h, w = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return sum(padded[:, i:i + h, j:j + w, :] @ kernel[i, j] for i in range(3) for j in range(3)) + bias


def deconv2x2_stride2(x, kernel, bias):
    """Transposed 2x2 stride-2 convolution: out[2i+a, 2j+b] = kernel[a, b] @ x[i, j] + bias.

    (PyTorch's ConvTranspose2d weight W[cin, cout, a, b] is kernel[a, b, cout, cin], no flip.)
    """
    n, h, w, _ = x.shape
    out = np.zeros((n, 2 * h, 2 * w, kernel.shape[2]))
    for a in range(2):
        for b in range(2):
            out[:, a::2, b::2, :] = x @ kernel[a, b].T + bias
    return out


def batch_norm_inference(x, bn):
    gamma, beta, mean, var = (v.numpy().astype(np.float64) for v in (bn.gamma, bn.beta, bn.moving_mean,
                                                                       bn.moving_variance))
    return (x - mean) / np.sqrt(var + bn.epsilon) * gamma + beta


def branch_numpy(branch, x):
    """The official branch in inference mode: conv-BN-ReLU-deconv-BN-ReLU-deconv (pre-activation)."""
    def bias(layer):
        return layer.bias.numpy() if layer.use_bias else 0.0

    y = conv3x3_same(x, branch.conv.kernel.numpy(), bias(branch.conv))
    if branch.batch_norm:
        y = batch_norm_inference(y, branch.bn1)
    y = deconv2x2_stride2(np.maximum(y, 0), branch.deconv1.kernel.numpy(), branch.deconv1.bias.numpy())
    if branch.batch_norm:
        y = batch_norm_inference(y, branch.bn2)
    return deconv2x2_stride2(np.maximum(y, 0), branch.deconv2.kernel.numpy(), branch.deconv2.bias.numpy())


def randomise_batch_norms(head, rng):
    """Non-trivial BN statistics so the numpy comparison really checks the BN placement."""
    for layer in head._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.moving_mean.assign(rng.standard_normal(c))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, c))
            layer.gamma.assign(rng.uniform(0.5, 1.5, c))
            layer.beta.assign(rng.standard_normal(c))


@pytest.mark.parametrize("batch_norm", [True, False])
def test_head_matches_numpy_branches(batch_norm):
    rng = np.random.default_rng(0)
    head = build_head(16, batch_norm=batch_norm)
    randomise_batch_norms(head, rng)
    x = rng.standard_normal((2, 4, 6, 16)).astype(np.float32)
    logits, threshold = head(x, training=False)
    assert logits.shape == threshold.shape == (2, 16, 24, 1)
    assert logits.dtype == threshold.dtype == "float32"
    np.testing.assert_allclose(to_numpy(logits), branch_numpy(head.probability, x), rtol=1e-4, atol=1e-4)
    expected_threshold = 1.0 / (1.0 + np.exp(-branch_numpy(head.threshold, x)))
    np.testing.assert_allclose(to_numpy(threshold), expected_threshold, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_inference_form_equals_the_layer_by_layer_training_path(batch_norm):
    """Inference runs the deconvolutions as low-resolution matrix products; with BN frozen (moving
    statistics in both modes) the training path, which runs the Keras layers, must give the same map."""
    rng = np.random.default_rng(1)
    head = build_head(16, batch_norm=batch_norm, mid_channels=5)
    randomise_batch_norms(head, rng)
    for layer in head._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    x = rng.standard_normal((3, 5, 7, 16)).astype(np.float32)
    inference, _ = head(x, training=False)
    layer_by_layer, _ = head(x, training=True)
    np.testing.assert_allclose(to_numpy(inference), to_numpy(layer_by_layer), rtol=1e-5, atol=1e-5)


def test_stable_layer_names_for_weight_importers():
    head = build_head(16)
    paths = {v.path for v in head.weights}
    for branch in ("probability", "threshold"):
        for layer in BRANCH_LAYERS:
            assert any(f"{branch}/{layer}/" in path for path in paths), f"{branch}/{layer} missing"


def test_official_initialisation_and_channels():
    head = build_head(32)
    branch = head.probability
    assert branch.conv.kernel.shape == (3, 3, 32, 8)  # mid_channels = in_channels // 4
    assert not branch.conv.use_bias  # conv followed by BN has no bias
    assert branch.deconv2.kernel.shape == (2, 2, 1, 8)
    for bn in (branch.bn1, branch.bn2):
        np.testing.assert_array_equal(bn.gamma.numpy(), 1.0)
        np.testing.assert_allclose(bn.beta.numpy(), 1e-4)
        assert bn.epsilon == 1e-5 and bn.momentum == 0.9


def test_batch_norm_false_and_mid_channels_for_imported_weights():
    head = build_head(32, batch_norm=False, mid_channels=6)
    for branch in (head.probability, head.threshold):
        assert branch.conv.use_bias and branch.conv.kernel.shape == (3, 3, 32, 6)
        assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in branch._flatten_layers())


def test_without_threshold_returns_none():
    head = build_head(16)
    logits, threshold = head(np.zeros((1, 2, 2, 16), np.float32), with_threshold=False)
    assert logits.shape == (1, 8, 8, 1) and threshold is None
