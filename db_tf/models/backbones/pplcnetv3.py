"""PP-LCNetV3: the backbone of PaddleOCR's PP-OCRv4 / PP-OCRv5 mobile text detectors.

We follow the network that PaddleOCR *exports* (its ONNX inference graph), not its training graph:

- PaddleOCR trains each convolution as several parallel conv+BN branches plus an identity BN
  ("learnable re-parameterisation") and merges them into ONE convolution with a bias for inference.
  We implement only the merged form. It computes the same function, it is what the published weights
  contain, and it fine-tunes normally (it has no batch normalisation, so it is not meant to be trained
  from scratch).
- Every merged convolution is followed by a learnable affine block y = s * x + b (s, b scalars). Layers
  with stride 1 then apply hard-swish and a second affine block; stride-2 layers stop after the first.
- Blocks are a depthwise kxk layer, an optional squeeze-excite, and a pointwise 1x1 layer.
- The detection variant ends with 1x1 convolutions that project C2..C5 to narrow widths
  (12/18/42/360 at scale 0.75) before the neck.

Stride-2 convolutions pad explicitly and symmetrically (as Paddle does) and then run 'valid': Keras
'same' padding puts the extra row/column at the bottom/right only, which shifts the feature map by
half a pixel and moves every detected box.

Speed (CPU inference is this model's main use): the scalar affine blocks are never run as separate
passes over the feature maps. They are folded, exactly, into the weights of the convolutions around
them (weights are tiny, feature maps are not): see `fold_input_affine`. What is left per layer is
convolution + bias + hard-swish in the form TensorFlow's graph optimizer fuses into one oneDNN
kernel. Outputs and gradients are those of the unfolded network (tests/test_pplcnetv3.py).
"""
import keras
import tensorflow as tf
from keras import layers, ops

from db_tf.models.global_context import spatial_mean

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
    """x * relu6(x + 3) / 6 (MobileNetV3), written in the op order TensorFlow's remapper fuses into
    the preceding convolution + bias (Mul(Mul(x, 1/6), Relu6(AddV2(x, 3))))."""
    return ops.multiply(ops.multiply(x, 1.0 / 6.0), ops.relu6(ops.add(x, 3.0)))


class LearnableAffine(layers.Layer):
    """y = scale * x + bias with two trainable scalars (PP-LCNetV3's "learnable affine block")."""

    def build(self, input_shape):
        # autocast off: under a mixed policy these scalars are folded into weights in float32 (see FoldingConv)
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones", autocast=False)
        self.bias = self.add_weight(name="bias", shape=(), initializer="zeros", autocast=False)

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

    def gate(self, pooled):
        """(N, C) channel means -> (N, C) channel weights in [0, 1]."""
        return hard_sigmoid(self.excite(self.squeeze(pooled)), self.slope)

    def call(self, x):
        return x * ops.cast(self.gate(spatial_mean(self, x))[:, None, None, :], x.dtype)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction, "slope": self.slope}


def fold_input_affine(kernel, bias, affine, depthwise):
    """Weights that make conv(x) equal conv(s * x + b) for an affine block (s, b) not yet applied to x.

    conv(s x + b) = conv_{s * kernel}(x) + b * (sum of the kernel over its input taps) + bias, exact
    for 1x1 kernels. For kxk kernels it also holds at the borders if x is padded with -b / s instead of
    zeros (then s * pad + b = 0, the zero padding the unfolded network sees): see `padding_value`.
    """
    scale = ops.cast(_nonzero(affine.scale), kernel.dtype)
    shift = ops.cast(affine.bias, kernel.dtype)
    tap_sum = ops.sum(kernel, axis=(0, 1, 3)) if depthwise else ops.sum(kernel, axis=(0, 1, 2))
    return kernel * scale, bias + shift * tap_sum


def padding_value(affine):
    """The input padding under which folding `affine` into a kxk convolution is exact (see above)."""
    return -affine.bias / _nonzero(affine.scale)


def _nonzero(scale):
    # A learned scale of exactly 0 would divide by zero in padding_value; 1e-12 changes nothing else.
    return ops.where(ops.equal(scale, 0.0), 1e-12, scale)


class StemConv(layers.Layer):
    """3x3 stride-2 convolution (no bias, symmetric padding) -> batch norm, as PP-LCNetV3's stem.

    Outside training the batch norm is folded into the convolution (kernel * g / sqrt(var + eps),
    bias beta - mean * g / sqrt(var + eps)): the same result as one fused conv + bias op.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv = layers.Conv2D(filters, 3, 2, use_bias=False, name="conv")
        self.bn = layers.BatchNormalization(epsilon=BN_EPSILON, name="bn")

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bn.build((None, None, None, self.filters))

    def call(self, x, training=None):
        x = ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        if training and self.bn.trainable:   # batch statistics: the plain layers
            return self.bn(self.conv(x), training=True)
        bn = self.bn   # folded in float32, cast once (BN variables are float32 under any policy)
        scale = bn.gamma * ops.rsqrt(bn.moving_variance + bn.epsilon)
        shift = bn.beta - bn.moving_mean * scale
        kernel = ops.cast(self.conv.kernel, "float32") * scale
        y = ops.conv(x, ops.cast(kernel, x.dtype), 2, padding="valid")
        return tf.nn.bias_add(y, ops.cast(shift, x.dtype))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


class FoldingConv(layers.Layer):
    """Convolution + bias that can apply its input's pending affine block exactly (fold_input_affine).

    call(x, input_affine=None): `input_affine` is a LearnableAffine the PREVIOUS layer did not apply to
    x; this layer computes conv(input_affine(x)) without a pass over x. depthwise=True: depthwise kxk
    convolution; otherwise dense with `filters` outputs. Padding is explicit and symmetric.
    """

    def __init__(self, filters=None, kernel_size=1, strides=1, depthwise=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.depthwise = depthwise

    def build(self, input_shape):
        channels = input_shape[-1]
        out_channels = channels if self.depthwise else self.filters
        # Keras layouts: depthwise (k, k, channels, 1), dense (k, k, channels, filters).
        kernel_shape = (self.kernel_size, self.kernel_size, channels, 1 if self.depthwise else self.filters)
        # He initialisation with the true fan-in (k*k for a depthwise kernel: Keras' rules would count
        # k*k*channels and make it tiny).
        fan_in = self.kernel_size ** 2 * (1 if self.depthwise else channels)
        init = keras.initializers.RandomNormal(stddev=(2.0 / fan_in) ** 0.5)
        # autocast off: under a mixed policy (bfloat16) the folding arithmetic (sums over the kernel's taps,
        # bias shifts) runs in float32 and only the folded weights are cast; folding in bfloat16 flips map pixels
        self.kernel = self.add_weight(name="kernel", shape=kernel_shape, initializer=init, autocast=False)
        self.bias = self.add_weight(name="bias", shape=(out_channels,), initializer="zeros", autocast=False)

    def folded_weights(self, input_affine=None):
        """(kernel, bias) in float32 with ``input_affine`` folded in."""
        kernel, bias = ops.cast(self.kernel, "float32"), ops.cast(self.bias, "float32")
        if input_affine is not None:
            kernel, bias = fold_input_affine(kernel, bias, input_affine, self.depthwise)
        return kernel, bias

    def convolve(self, x, kernel, bias, input_affine=None):
        """bias_add(conv(pad(x), kernel), bias); the pad value keeps a folded input affine exact."""
        pad = self.kernel_size // 2
        padding = "valid"
        if pad and input_affine is None and self.strides == 1:
            padding = "same"   # symmetric zero padding for odd kernels at stride 1: no separate Pad op
        elif pad:
            value = 0.0 if input_affine is None else ops.cast(padding_value(input_affine), x.dtype)
            x = ops.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=value)
        kernel, bias = ops.cast(kernel, x.dtype), ops.cast(bias, x.dtype)
        if self.depthwise:
            y = ops.depthwise_conv(x, kernel, self.strides, padding=padding)
        else:
            y = ops.conv(x, kernel, self.strides, padding=padding)
        return tf.nn.bias_add(y, bias)   # a BiasAdd op: what the remapper fuses into the convolution

    def call(self, x, input_affine=None):
        kernel, bias = self.folded_weights(input_affine)
        return self.convolve(x, kernel, bias, input_affine)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "depthwise": self.depthwise}


class RepConv(FoldingConv):
    """One merged "learnable re-parameterisation" layer: conv + bias -> affine [-> hard-swish -> act_affine].

    Stride-2 layers have no activation (and no act_affine), following the exported graph.
    call() returns the hard-swish output WITHOUT act_affine: the consumer applies `act_affine`, folded
    into its own convolution when it is one (pass it as that layer's `input_affine`).
    """

    def __init__(self, filters=None, kernel_size=1, strides=1, depthwise=False, **kwargs):
        super().__init__(filters, kernel_size, strides, depthwise, **kwargs)
        self.activation = strides != 2

    def build(self, input_shape):
        super().build(input_shape)
        self.affine = LearnableAffine(name="affine")
        self.affine.build(None)
        self.act_affine = None
        if self.activation:
            self.act_affine = LearnableAffine(name="act_affine")
            self.act_affine.build(None)

    def call(self, x, input_affine=None):
        kernel, bias = self.folded_weights(input_affine)
        # affine(conv(x) + bias) = conv(x; s * kernel) + (s * bias + b): fold this layer's own affine too.
        scale, shift = self.affine.scale, self.affine.bias
        y = self.convolve(x, kernel * scale, bias * scale + shift, input_affine)
        return hard_swish(y) if self.activation else y


class LCNetV3Block(layers.Layer):
    """Depthwise kxk RepConv -> optional squeeze-excite -> pointwise 1x1 RepConv.

    Like RepConv, call(x, input_affine=None) takes a pending affine for x and returns the pointwise
    output without its act_affine (`self.output_affine`), which the consumer applies.
    """

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

    @property
    def output_affine(self):
        return self.pointwise.act_affine

    def call(self, x, input_affine=None):
        x = self.depthwise(x, input_affine=input_affine)
        pending = self.depthwise.act_affine
        if self.se is not None:
            if pending is not None:   # the gate needs the true values: apply the affine here
                x = pending(x)
                pending = None
            x = self.se(x)
        return self.pointwise(x, input_affine=pending)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "squeeze_excite": self.squeeze_excite}


def pplcnetv3(scale=0.75, weights=None, name=None):
    """PP-LCNetV3 detection backbone: images (N, H, W, 3) -> [C2, C3, C4, C5] (strides 4, 8, 16, 32).

    `weights` is None (random initialisation) or a `.weights.h5` file of this backbone alone. The
    pretrained detector weights are whole-model weights: use `db_tf.presets.load_preset`.
    """
    images = keras.Input((None, None, 3), name="images")
    x = StemConv(make_divisible(STEM_CHANNELS * scale), name="stem")(images)
    pending = None   # the affine block the previous layer left for its consumer (see RepConv)
    features = []
    for stage_index, blocks in enumerate(STAGES):
        for block_index, (kernel, channels, strides, se) in enumerate(blocks):
            block = LCNetV3Block(make_divisible(channels * scale), kernel, strides, se,
                                 name=f"stage{stage_index + 1}_block{block_index + 1}")
            x = block(x, input_affine=pending)
            pending = block.output_affine
        if stage_index > 0:
            level = len(features) + 2
            projection = FoldingConv(int(PROJECTION_CHANNELS[level - 2] * scale), 1, name=f"c{level}_projection")
            features.append(projection(x, input_affine=pending))
    model = keras.Model(images, features, name=name or f"pplcnetv3_x{scale:g}".replace(".", "_"))
    if weights is not None:
        model.load_weights(weights)
    return model


def pplcnetv3_x0_75(weights=None, name="pplcnetv3_x0_75"):
    """The PP-OCRv4 / PP-OCRv5 mobile detection backbone (scale 0.75); see `pplcnetv3`."""
    return pplcnetv3(0.75, weights=weights, name=name)
