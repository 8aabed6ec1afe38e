"""PP-LCNetV3: the backbone of PaddleOCR's PP-OCRv4 / PP-OCRv5 mobile text detectors.

We follow the network that PaddleOCR *exports* (its ONNX inference graph), not its training graph:

- PaddleOCR trains each convolution as several parallel conv+BN branches plus an identity BN
  ("learnable re-parameterisation") and merges them into ONE convolution with a bias for inference.
  We implement only the merged form. It computes the same function, it is what the published weights
  contain, and it fine-tunes normally (it just has no batch normalisation after those convolutions).
- Every merged convolution is followed by a learnable affine block y = s * x + b (s, b scalars). Layers
  with stride 1 then apply hard-swish and a second affine block; stride-2 layers stop after the first.
- Blocks are a depthwise kxk layer, an optional squeeze-excite, and a pointwise 1x1 layer.
- The detection variant ends with 1x1 convolutions that project C2..C5 to narrow widths
  (12/18/42/360 at scale 0.75) before the neck.

Stride-2 convolutions pad explicitly and symmetrically (as Paddle does) and then run 'valid': Keras
'same' padding puts the extra row/column at the bottom/right only, which shifts the feature map by
half a pixel and moves every detected box.

Speed notes (CPU inference is this model's main use). The scalar affine right after a convolution is
folded into that convolution's kernel and bias inside `call` (the kernel is tiny, the feature map is
not), which gives the same outputs and the same gradients with one pass less over every feature map.
"""
import keras
from keras import layers, ops

BN_EPSILON = 1e-5          # PaddlePaddle's default; Keras' default 1e-3 would change the outputs
HARD_SIGMOID_SLOPE = 1.0 / 6.0  # the backbone's squeeze-excite gate; the RSEFPN neck uses 0.2

# One row per block: (depthwise kernel, output channels at scale 1.0, stride, squeeze-excite).
# The stem (3x3 stride 2, 16 channels at scale 1.0) comes first; the outputs of the last four
# stages are C2..C5 (strides 4, 8, 16, 32).
STAGES = (
    ((3, 32, 1, False),),
    ((3, 64, 2, False), (3, 64, 1, False)),
    ((3, 128, 2, False), (3, 128, 1, False)),
    ((3, 256, 2, False),) + ((5, 256, 1, False),) * 4,
    ((5, 512, 2, True), (5, 512, 1, True), (5, 512, 1, False), (5, 512, 1, False)),
)
STEM_CHANNELS = 16
PROJECTION_CHANNELS = (16, 24, 56, 480)  # C2..C5 widths after the detection projections, at scale 1.0


def make_divisible(value, divisor=16):
    """Scale-adjusted channel count: nearest multiple of `divisor`, never more than 10 % below `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def hard_sigmoid(x, slope):
    """Paddle's hard sigmoid: clip(slope * x + 0.5, 0, 1) (PyTorch's fixed slope is 1/6)."""
    return ops.clip(x * slope + 0.5, 0.0, 1.0)


def hard_swish(x):
    """x * relu6(x + 3) / 6, as in MobileNetV3 and the exported graph."""
    return x * ops.relu6(x + 3.0) * (1.0 / 6.0)


class LearnableAffine(layers.Layer):
    """y = scale * x + bias with two trainable scalars (PP-LCNetV3's "learnable affine block")."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones")
        self.bias = self.add_weight(name="bias", shape=(), initializer="zeros")

    def call(self, x):
        return x * ops.cast(self.scale, x.dtype) + ops.cast(self.bias, x.dtype)


class SqueezeExcite(layers.Layer):
    """x * hard_sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2): channel attention with a hard gate.

    `reduction` divides the channels in the bottleneck; `slope` is the hard sigmoid's slope.
    """

    def __init__(self, reduction=4, slope=HARD_SIGMOID_SLOPE, **kwargs):
        super().__init__(**kwargs)
        self.reduction = reduction
        self.slope = slope

    def build(self, input_shape):
        channels = input_shape[-1]
        self.squeeze = layers.Dense(channels // self.reduction, activation="relu", name="squeeze")
        self.excite = layers.Dense(channels, name="excite")
        self.squeeze.build((None, channels))
        self.excite.build((None, channels // self.reduction))

    def call(self, x):
        pooled = ops.mean(x, axis=(1, 2))
        gate = hard_sigmoid(self.excite(self.squeeze(pooled)), self.slope)
        return x * ops.cast(gate[:, None, None, :], x.dtype)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction, "slope": self.slope}


class RepConv(layers.Layer):
    """One merged "learnable re-parameterisation" layer: conv(+bias) -> affine [-> hard-swish -> affine].

    depthwise=True gives a depthwise kxk convolution (channels unchanged), otherwise a dense 1x1 one
    (`filters` outputs). Stride-2 layers have no activation, following the exported graph.
    """

    def __init__(self, filters=None, kernel_size=1, strides=1, depthwise=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.depthwise = depthwise
        self.activation = strides != 2

    def build(self, input_shape):
        channels = input_shape[-1]
        out_channels = channels if self.depthwise else self.filters
        # A depthwise kernel is (k, k, channels, 1), a dense one (k, k, channels, filters): Keras' layouts.
        kernel_shape = (self.kernel_size, self.kernel_size, channels, 1 if self.depthwise else self.filters)
        # He initialisation with the true fan-in (k*k for a depthwise kernel: Keras' rules would count
        # k*k*channels and make it tiny). This merged form has no batch norm, so a deep stack of these
        # layers does not keep unit activations from scratch: it is meant to be fine-tuned from the
        # imported PaddleOCR weights (which PaddleOCR trained in the re-parameterised, BN form).
        fan_in = self.kernel_size ** 2 * (1 if self.depthwise else channels)
        init = keras.initializers.RandomNormal(stddev=(2.0 / fan_in) ** 0.5)
        self.kernel = self.add_weight(name="kernel", shape=kernel_shape, initializer=init)
        self.bias = self.add_weight(name="bias", shape=(out_channels,), initializer="zeros")
        self.affine = LearnableAffine(name="affine")
        self.affine.build(None)
        if self.activation:
            self.act_affine = LearnableAffine(name="act_affine")
            self.act_affine.build(None)

    def call(self, x):
        padding = "same"  # symmetric for odd kernels at stride 1
        if self.strides == 2:
            pad = self.kernel_size // 2
            x = ops.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            padding = "valid"
        # affine(conv(x) + b) == conv(x; s * kernel) + (s * b + bias): fold the scalars into the weights.
        scale = ops.cast(self.affine.scale, x.dtype)
        kernel = ops.cast(self.kernel, x.dtype) * scale
        bias = ops.cast(self.bias, x.dtype) * scale + ops.cast(self.affine.bias, x.dtype)
        if self.depthwise:
            y = ops.depthwise_conv(x, kernel, self.strides, padding=padding)
        else:
            y = ops.conv(x, kernel, self.strides, padding=padding)
        y = y + bias
        if self.activation:
            y = self.act_affine(hard_swish(y))
        return y

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "depthwise": self.depthwise}


class LCNetV3Block(layers.Layer):
    """Depthwise kxk RepConv -> optional squeeze-excite -> pointwise 1x1 RepConv."""

    def __init__(self, filters, kernel_size=3, strides=1, squeeze_excite=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.squeeze_excite = squeeze_excite
        self.depthwise = RepConv(kernel_size=kernel_size, strides=strides, depthwise=True, name="depthwise")
        self.se = SqueezeExcite(name="se") if squeeze_excite else None
        self.pointwise = RepConv(filters, 1, name="pointwise")

    def build(self, input_shape):
        self.depthwise.build(input_shape)
        if self.se is not None:
            self.se.build(input_shape)
        self.pointwise.build(input_shape)  # the depthwise layer keeps the channel count

    def call(self, x):
        x = self.depthwise(x)
        if self.se is not None:
            x = self.se(x)
        return self.pointwise(x)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "squeeze_excite": self.squeeze_excite}


def pplcnetv3(scale=0.75, weights=None, name=None):
    """PP-LCNetV3 detection backbone: images (N, H, W, 3) -> [C2, C3, C4, C5] (strides 4, 8, 16, 32).

    `weights` is None (random initialisation) or a `.weights.h5` file of this backbone alone. The
    pretrained detector weights are whole-model weights: use `db_tf.pretrained.load_pretrained`.
    """
    images = keras.Input((None, None, 3), name="images")
    x = layers.ZeroPadding2D(1, name="stem_pad")(images)
    x = layers.Conv2D(make_divisible(STEM_CHANNELS * scale), 3, 2, use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="stem_bn")(x)
    features = []
    for stage_index, blocks in enumerate(STAGES):
        for block_index, (kernel, channels, strides, se) in enumerate(blocks):
            x = LCNetV3Block(make_divisible(channels * scale), kernel, strides, se,
                             name=f"stage{stage_index + 1}_block{block_index + 1}")(x)
        if stage_index > 0:
            features.append(x)
    outputs = [
        layers.Conv2D(int(channels * scale), 1, name=f"c{level}_projection")(feature)
        for level, channels, feature in zip((2, 3, 4, 5), PROJECTION_CHANNELS, features)
    ]
    model = keras.Model(images, outputs, name=name or f"pplcnetv3_x{scale:g}".replace(".", "_"))
    if weights is not None:
        model.load_weights(weights)
    return model


def pplcnetv3_x0_75(weights=None, name="pplcnetv3_x0_75"):
    """The PP-OCRv4 / PP-OCRv5 mobile detection backbone (scale 0.75)."""
    return pplcnetv3(0.75, weights=weights, name=name)
