"""The DB head: a probability branch and a threshold branch on the stride-4 fused feature map.

Each branch (official MhLiao/DB `binarize` / `thresh` modules of `decoders/seg_detector.py`):

    conv 3x3 -> mid (no bias) -> BN -> ReLU -> ConvTranspose 2x2/2 -> BN -> ReLU -> ConvTranspose 2x2/2 -> 1

so the maps come out at the input resolution. BN starts at gamma 1, beta 1e-4 (the official
`weights_init`). Differences from the official modules, both for numerical reasons:
- the probability branch returns LOGITS (the sigmoid is applied by DBNet and inside a stable
  BCE-with-logits in the loss) while the threshold branch applies its sigmoid as the official one does;
- both outputs are cast to float32 before the sigmoid, so mixed-precision models give float32 maps.

`batch_norm=False` replaces each conv + BN pair by the same conv with a bias and no BN (for weights
whose BN was folded into the convolutions, e.g. PaddleOCR exports).

Inference (training falsy) computes the same function in a cheaper form: a 2x2 stride-2 transposed
convolution maps each input pixel to its own 2x2 output block, so the two of them (with BN2 folded into
the first) are per-pixel matrix products at the INPUT resolution, and one reshuffle at the end lays
the 4x4 blocks out. No full-resolution intermediate map is written (`_upsampling_inference`). Sub-layer names are stable
("probability/conv", "probability/bn1", "probability/deconv1", "probability/bn2",
"probability/deconv2", same under "threshold/") because weight importers map weights by these paths.
"""
import keras
import tensorflow as tf
from keras import layers, ops

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9
def conv_init():
    """A fresh initializer per layer (a shared unseeded Keras 3 instance repeats its values)."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_in", distribution="untruncated_normal")


def _float32(variable):
    return ops.cast(variable, "float32")


class DBHeadBranch(layers.Layer):
    """One branch: (N, h, w, C) -> (N, 4h, 4w, 1) pre-activation map in float32."""

    def __init__(self, mid_channels, batch_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.mid_channels = mid_channels
        self.batch_norm = batch_norm
        self.conv = layers.Conv2D(mid_channels, 3, padding="same", use_bias=not batch_norm,
                                  kernel_initializer=conv_init(), name="conv")
        self.deconv1 = layers.Conv2DTranspose(mid_channels, 2, strides=2, kernel_initializer=conv_init(),
                                              name="deconv1")
        self.deconv2 = layers.Conv2DTranspose(1, 2, strides=2, kernel_initializer=conv_init(), name="deconv2")
        if batch_norm:
            self.bn1 = self._batch_norm("bn1")
            self.bn2 = self._batch_norm("bn2")

    @staticmethod
    def _batch_norm(name):
        return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, gamma_initializer="ones",
                                         beta_initializer=keras.initializers.Constant(1e-4), name=name)

    def build(self, input_shape):
        mid_shape = (None, None, None, self.mid_channels)
        self.conv.build(input_shape)
        self.deconv1.build(mid_shape)
        self.deconv2.build(mid_shape)
        if self.batch_norm:
            self.bn1.build(mid_shape)
            self.bn2.build(mid_shape)

    def call(self, x, training=None):
        x = self.conv(x)
        if self.batch_norm:
            x = self.bn1(x, training=training)
        if not training:
            return ops.cast(self._upsampling_inference(ops.relu(x)), "float32")
        x = self.deconv1(ops.relu(x))
        if self.batch_norm:
            x = self.bn2(x, training=training)
        x = self.deconv2(ops.relu(x))
        return ops.cast(x, "float32")

    def _upsampling_inference(self, x):
        """deconv2(relu(bn2(deconv1(x)))) for (N, h, w, C) -> (N, 4h, 4w, 1), with BN2 in inference mode.

        deconv1 writes x[i, j] @ K1[a, b]^T to output pixel (2i + a, 2j + b): for all four (a, b) at once
        that is x @ W1 with W1 (C, 4 * mid). deconv2 does the same to each of those pixels with K2, i.e. a
        block-diagonal (4 * mid, 16) matrix. Output channel (a, b, c, d) then belongs to full-resolution
        pixel (4i + 2a + c, 4j + 2b + d): two depth-to-space steps (blocks (a, b), then (c, d)) put it there.
        """
        dtype = x.dtype
        # Under a mixed policy conv weights read as the compute dtype (autocast) but BN's stay float32:
        # fold in float32, then cast the folded weights once to the compute dtype.
        kernel1, bias1 = _float32(self.deconv1.kernel), _float32(self.deconv1.bias)   # (2, 2, mid, C), (mid,)
        if self.batch_norm:   # BN2 scales and shifts deconv1's output channels: fold it into deconv1
            bn = self.bn2
            gamma, beta, mean, variance = (_float32(v) for v in (bn.gamma, bn.beta, bn.moving_mean,
                                                                 bn.moving_variance))
            scale = gamma * ops.rsqrt(variance + bn.epsilon)
            kernel1 = kernel1 * scale[None, None, :, None]
            bias1 = bias1 * scale + beta - mean * scale
        mid = self.mid_channels
        w1 = ops.reshape(ops.transpose(kernel1, (3, 0, 1, 2)), (-1, 4 * mid))           # rows C, cols (a, b, o)
        kernel2 = _float32(self.deconv2.kernel)
        w2 = ops.reshape(ops.transpose(kernel2[:, :, 0, :], (2, 0, 1)), (mid, 4))   # (o, (c, d))
        block_diagonal = ops.reshape(ops.eye(4, dtype="float32")[:, None, :, None] * w2[None, :, None, :],
                                     (4 * mid, 16))
        y = ops.relu(ops.conv(x, ops.cast(w1[None, None], dtype)) + ops.cast(ops.tile(bias1, [4]), dtype))
        y = ops.conv(y, ops.cast(block_diagonal[None, None], dtype)) + ops.cast(self.deconv2.bias, dtype)
        return tf.nn.depth_to_space(tf.nn.depth_to_space(y, 2), 2)

    def get_config(self):
        return {**super().get_config(), "mid_channels": self.mid_channels, "batch_norm": self.batch_norm}


class DBHead(layers.Layer):
    """call(x, training=None, with_threshold=True) -> (probability_logits, threshold or None).

    Both maps are (N, 4h, 4w, 1) float32; the threshold map is already sigmoid-ed. With
    with_threshold=False the threshold branch is not run at all (inference needs only P).
    mid_channels defaults to in_channels // 4 (64 for the usual 256-channel neck).
    """

    def __init__(self, mid_channels=None, batch_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.mid_channels = mid_channels
        self.batch_norm = batch_norm
        self.probability = None
        self.threshold = None

    def build(self, input_shape):
        mid_channels = self.mid_channels or input_shape[-1] // 4
        self.probability = DBHeadBranch(mid_channels, self.batch_norm, name="probability")
        self.threshold = DBHeadBranch(mid_channels, self.batch_norm, name="threshold")
        self.probability.build(input_shape)
        self.threshold.build(input_shape)

    def call(self, x, training=None, with_threshold=True):
        logits = self.probability(x, training=training)
        if not with_threshold:
            return logits, None
        return logits, ops.sigmoid(self.threshold(x, training=training))

    def get_config(self):
        return {**super().get_config(), "mid_channels": self.mid_channels, "batch_norm": self.batch_norm}
