"""Modulated deformable convolution (DCNv2, Zhu et al. CVPR 2019) in plain TensorFlow ops.

Each output pixel p of a k x k convolution reads its k*k taps at p_k + Δp_k instead of p_k, samples the input
there bilinearly (the input counts as zero outside the image) and scales each tap by a mask m_k in (0, 1):

    y(p) = sum_k w_k * m_k(p) * x(p + p_k + Δp_k(p))

`deform_conv2d` is that operation given the offsets and masks; `ModulatedDeformConv2D` is the Keras layer that
predicts them with its own convolution (`conv_offset`, zero-initialised as in the official DB and mmcv code, so
a fresh layer starts as a plain convolution scaled by sigmoid(0) = 0.5).

Channel layout (the one of torchvision.ops.deform_conv2d, mmcv's modulated_deform_conv2d and MhLiao/DB's CUDA
op, so converted weights mean the same thing): with G deformable groups and K = kh * kw kernel positions in
row-major order, the offset map has 2 * G * K channels ordered (group, position, (dy, dx)) and the mask map
G * K channels ordered (group, position); input channel c belongs to group c // (C / G). The offset
convolution outputs 3 * G * K channels: the offsets, then the mask logits (mmcv's chunk-and-concatenate and
DB's [:18] / [-9:] slices both read them that way).

Implementation: the four bilinear corners of every tap are fetched with one flat `tf.gather` each from the
input padded by one zero pixel (clamping the sampling point into [-1, H] x [-1, W] then reproduces the
reference's "zero outside" rule exactly), weighted, and the (taps x channels) matrix multiplied by the
kernel. Exportable to SavedModel and ONNX (Gather, Floor, Clip, MatMul); dynamic image sizes.
"""
import keras
import tensorflow as tf
from keras import layers


def output_size(size, kernel_size, stride, padding, dilation):
    """PyTorch's convolution output size (works on Python ints and scalar tensors)."""
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def sampling_points(height, width, offset, kernel_size, strides, padding, dilation, groups):
    """Absolute sampling coordinates (y, x), each (N, Ho, Wo, G, K), of every tap.

    offset: (N, Ho, Wo, 2 * G * K) in the (group, position, (dy, dx)) channel order. Coordinates are float32
    (float64 for float64 offsets), also under mixed precision: float16 cannot hold fractions of large indices.
    """
    kh, kw = kernel_size
    dtype = tf.float64 if offset.dtype == tf.float64 else tf.float32
    shape = tf.shape(offset)
    offset = tf.reshape(tf.cast(offset, dtype), [shape[0], shape[1], shape[2], groups, kh * kw, 2])
    rows = tf.cast(tf.range(shape[1]) * strides[0] - padding[0], dtype)
    cols = tf.cast(tf.range(shape[2]) * strides[1] - padding[1], dtype)
    tap_rows = tf.cast(tf.repeat(tf.range(kh) * dilation[0], kw), dtype)     # position k = i * kw + j
    tap_cols = tf.cast(tf.tile(tf.range(kw) * dilation[1], [kh]), dtype)
    y = rows[:, None, None, None] + tap_rows + offset[..., 0]
    x = cols[None, :, None, None] + tap_cols + offset[..., 1]
    return y, x


def bilinear_taps(images, y, x, groups, scale=None):
    """Bilinear samples of `images` (N, H, W, C) at (y, x) (N, Ho, Wo, G, K), zero outside the image, each
    times `scale` (N, Ho, Wo, G, K) when given (the mask: folded into the corner weights, one pass less over
    the large result).

    Returns (N, Ho, Wo, G, K, C / G) in the images' dtype; channel block g is sampled at group g's points.
    """
    shape = tf.shape(images)
    n, height, width, channels = shape[0], shape[1], shape[2], images.shape[-1]
    # One zero pixel around the image: a point in (-1, 0) or (H-1, H) then blends a real pixel with zero,
    # and a point clamped to -1 or H reads only zeros (the reference returns 0 for y <= -1 or y >= H).
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    flat = tf.reshape(padded, [-1, channels // groups])           # row = ((n * Hp + y) * Wp + x) * G + g
    y = tf.clip_by_value(y, tf.constant(-1.0, y.dtype), tf.cast(height, y.dtype))
    x = tf.clip_by_value(x, tf.constant(-1.0, x.dtype), tf.cast(width, x.dtype))
    y0, x0 = tf.floor(y), tf.floor(x)
    dy, dx = y - y0, x - x0                                          # the gradient w.r.t. the offsets flows here
    # padded coordinates of the top-left corner and of the one below / to the right, kept inside the padding
    top = tf.cast(y0, tf.int32) + 1
    left = tf.cast(x0, tf.int32) + 1
    bottom = tf.minimum(top + 1, height + 1)
    right = tf.minimum(left + 1, width + 1)
    batch = tf.reshape(tf.range(n), [-1, 1, 1, 1, 1])
    group = tf.range(groups)[:, None]

    scale = 1.0 if scale is None else tf.cast(scale, y.dtype)

    def corner(rows, cols, weight):
        index = ((batch * (height + 2) + rows) * (width + 2) + cols) * groups + group
        return tf.gather(flat, index) * tf.cast(weight * scale, images.dtype)[..., None]

    return (corner(top, left, (1 - dy) * (1 - dx)) + corner(top, right, (1 - dy) * dx)
            + corner(bottom, left, dy * (1 - dx)) + corner(bottom, right, dy * dx))


def deform_conv2d(images, offset, mask, kernel, strides=1, padding=None, dilation=1, groups=1):
    """Modulated deformable convolution, NHWC.

    images (N, H, W, C); offset (N, Ho, Wo, 2 * G * K); mask (N, Ho, Wo, G * K) or None (all ones);
    kernel (kh, kw, C, F) as a Keras Conv2D kernel; `groups` = G deformable (offset) groups, dividing C.
    padding defaults to dilation * (k - 1) // 2 (PyTorch's "same" for odd k). Returns (N, Ho, Wo, F).
    """
    kh, kw, channels, filters = kernel.shape
    strides, dilation = _pair(strides), _pair(dilation)
    padding = _pair(padding) if padding is not None else (dilation[0] * (kh - 1) // 2, dilation[1] * (kw - 1) // 2)
    if channels % groups:
        raise ValueError(f"deform_conv2d: {channels} input channels do not split into {groups} offset groups")
    if offset.shape[-1] is not None and offset.shape[-1] != 2 * groups * kh * kw:
        raise ValueError(f"deform_conv2d: offset has {offset.shape[-1]} channels, expected 2 * {groups} * "
                         f"{kh * kw} = {2 * groups * kh * kw}")
    shape = tf.shape(images)
    y, x = sampling_points(shape[1], shape[2], offset, (kh, kw), strides, padding, dilation, groups)
    if mask is not None:
        mask = tf.reshape(mask, tf.shape(y))
    taps = bilinear_taps(images, y, x, groups, mask)                # (N, Ho, Wo, G, K, C / G)
    # Multiply with the kernel rearranged to the taps' (group, position, channel-in-group) order.
    kernel = tf.reshape(tf.cast(kernel, taps.dtype), [kh * kw, groups, channels // groups, filters])
    kernel = tf.reshape(tf.transpose(kernel, [1, 0, 2, 3]), [-1, filters])
    taps_shape = tf.shape(taps)
    columns = tf.reshape(taps, [-1, groups * kh * kw * (channels // groups)])
    return tf.reshape(tf.matmul(columns, kernel), [taps_shape[0], taps_shape[1], taps_shape[2], filters])


def memory_as(maps, height, width):
    """(N, h, w, C) -> (N, height, width, C) holding the first C * height * width values of each sample's
    NCHW memory, as a CUDA kernel that indexes a (C, h, w) tensor as if it were (C, height, width) reads it."""
    n, channels = tf.shape(maps)[0], maps.shape[-1]
    flat = tf.reshape(tf.transpose(maps, [0, 3, 1, 2]), [n, -1])[:, : channels * height * width]
    return tf.transpose(tf.reshape(flat, [n, channels, height, width]), [0, 2, 3, 1])


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


@keras.saving.register_keras_serializable(package="db_tf")
class ModulatedDeformConv2D(layers.Layer):
    """DCNv2 layer: (N, H, W, C) -> (N, Ho, Wo, filters), with its own offset / mask convolution.

    filters, kernel_size, strides, dilation_rate, use_bias, kernel_initializer: as Conv2D; padding is PyTorch's
    dilation * (k - 1) // 2 on every side. deformable_groups: offset groups (1 in DB and MMOCR).
    unstrided_offsets: reproduce MhLiao/DB's deformable ResNet-50, whose offset convolution ignores the
    block's stride (DB issue #250): the offset map comes out at the input resolution and its CUDA kernel reads
    the first Ho * Wo positions' worth of that map's memory (see `memory_as`). Only matters when strides > 1;
    needed to run converted official DB R50-DCN weights, not for training from scratch.

    Sub-layer `conv_offset` (3 * G * K outputs, with bias, zero-initialised) is named like mmcv's.
    """

    def __init__(self, filters, kernel_size=3, strides=1, dilation_rate=1, deformable_groups=1, use_bias=False,
                 unstrided_offsets=False, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = _pair(kernel_size)
        self.strides = _pair(strides)
        self.dilation_rate = _pair(dilation_rate)
        self.deformable_groups = deformable_groups
        self.use_bias = use_bias
        self.unstrided_offsets = unstrided_offsets
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.padding = tuple(d * (k - 1) // 2 for d, k in zip(self.dilation_rate, self.kernel_size))
        taps = self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset = layers.Conv2D(3 * deformable_groups * taps, self.kernel_size,
                                         strides=(1, 1) if unstrided_offsets else self.strides,
                                         dilation_rate=self.dilation_rate, padding="valid",
                                         kernel_initializer="zeros", bias_initializer="zeros", name="conv_offset")

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.deformable_groups:
            raise ValueError(f"{self.name}: {channels} input channels do not split into "
                             f"{self.deformable_groups} deformable groups")
        self.kernel = self.add_weight(name="kernel", shape=(*self.kernel_size, channels, self.filters),
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None
        self.conv_offset.build((*input_shape[:-1], channels))

    def call(self, images):
        offset, mask = self.offsets_and_mask(images)
        y = deform_conv2d(images, offset, mask, self.kernel, self.strides, self.padding, self.dilation_rate,
                          self.deformable_groups)
        return y + tf.cast(self.bias, y.dtype) if self.use_bias else y

    def offsets_and_mask(self, images):
        """(offset (N, Ho, Wo, 2GK), mask (N, Ho, Wo, GK) in (0, 1)) predicted from the input."""
        padded = tf.pad(images, [[0, 0], [self.padding[0]] * 2, [self.padding[1]] * 2, [0, 0]])
        raw = self.conv_offset(padded)
        split = 2 * self.deformable_groups * self.kernel_size[0] * self.kernel_size[1]
        offset, mask = raw[..., :split], tf.sigmoid(raw[..., split:])
        if self.unstrided_offsets and self.strides != (1, 1):
            shape = tf.shape(images)
            height = output_size(shape[1], self.kernel_size[0], self.strides[0], self.padding[0], self.dilation_rate[0])
            width = output_size(shape[2], self.kernel_size[1], self.strides[1], self.padding[1], self.dilation_rate[1])
            offset, mask = memory_as(offset, height, width), memory_as(mask, height, width)
        return offset, mask

    def compute_output_shape(self, input_shape):
        def size(value, axis):
            if value is None:
                return None
            return output_size(value, self.kernel_size[axis], self.strides[axis], self.padding[axis],
                               self.dilation_rate[axis])
        return (input_shape[0], size(input_shape[1], 0), size(input_shape[2], 1), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "dilation_rate": self.dilation_rate,
                "deformable_groups": self.deformable_groups, "use_bias": self.use_bias,
                "unstrided_offsets": self.unstrided_offsets,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
