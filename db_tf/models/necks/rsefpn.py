"""RSEFPN: the neck of PaddleOCR's PP-OCRv4 / PP-OCRv5 mobile text detectors.

It is the DB FPN (1x1 laterals, nearest x2 top-down additions, 3x3 smoothing convolutions to
inner_channels / 4, upsampling to stride 4 and concatenation) in which every convolution is a
"residual squeeze-excite" layer: y = conv(x); out = y + y * hard_sigmoid(SE(y)), with the hard
sigmoid's slope 0.2 (Paddle's default) instead of the backbone's 1/6. Convolutions have no bias and
no batch normalisation, as in PaddleOCR. We follow the exported ONNX graph where it and PaddleOCR's
training code could be read differently.
"""
from keras import layers, ops

from db_tf.models.backbones.pplcnetv3 import SqueezeExcite
from db_tf.models.global_context import spatial_mean
from db_tf.models.upsample import upsample_nearest

NECK_SE_SLOPE = 0.2


class ResidualSEConv(layers.Layer):
    """y = conv(x) (no bias); return y + y * gate(y) with a squeeze-excite gate (reduction 4, slope 0.2).

    For 1x1 convolutions (the laterals) two exact shortcuts avoid passes over the wide output map:
    the convolution is linear without bias, so mean(conv(x)) = conv(mean(x)) pools the narrower input;
    and the gate scales output channels, so y * (1 + gate) = x @ (W * (1 + gate)), one batched matrix
    product per image with the gate folded into the kernel.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.conv = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name="conv")
        self.se = SqueezeExcite(reduction=4, slope=NECK_SE_SLOPE, name="se")

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.se.build((None, None, None, self.filters))

    def call(self, x):
        if self.kernel_size == 1:
            return self._pointwise(x)
        y = self.conv(x)
        gate = ops.cast(self.se.gate(spatial_mean(self, y)), y.dtype)
        return y * (1.0 + gate[:, None, None, :])

    def _pointwise(self, x):
        kernel = ops.cast(self.conv.kernel[0, 0], x.dtype)                 # (C_in, C_out)
        gate = ops.cast(self.se.gate(ops.matmul(spatial_mean(self, x), kernel)), x.dtype)
        per_image_kernel = kernel[None] * (1.0 + gate[:, None, :])           # (N, C_in, C_out)
        n, h, w = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
        y = ops.matmul(ops.reshape(x, (n, h * w, x.shape[-1])), per_image_kernel)
        return ops.reshape(y, (n, h, w, self.filters))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}


class RSEFPN(layers.Layer):
    """call([C2, C3, C4, C5]) -> (N, H/4, W/4, inner_channels) fused map.

    laterals: Ci -> inner_channels (1x1); top-down: Pi = Li + up2(P(i+1)); smoothing: Pi ->
    inner_channels // 4 (3x3); output: concat(up8(P5), up4(P4), up2(P3), P2) in that order.
    """

    def __init__(self, inner_channels=96, **kwargs):
        super().__init__(**kwargs)
        if inner_channels % 4:
            raise ValueError(f"inner_channels must be a multiple of 4, got {inner_channels}")
        self.inner_channels = inner_channels
        # Index 0..3 = C2..C5.
        self.laterals = [ResidualSEConv(inner_channels, 1, name=f"lateral_c{level}") for level in (2, 3, 4, 5)]
        self.smooth = [ResidualSEConv(inner_channels // 4, 3, name=f"smooth_p{level}") for level in (2, 3, 4, 5)]

    def build(self, input_shape):
        for lateral, shape in zip(self.laterals, input_shape):
            lateral.build(shape)
        for smooth in self.smooth:
            smooth.build((None, None, None, self.inner_channels))

    def call(self, features):
        if len(features) != 4:
            raise ValueError(f"RSEFPN expects [C2, C3, C4, C5], got {len(features)} feature maps")
        c2, c3, c4, c5 = features
        # PaddleOCR's evaluation order (C5 first); db_tf/tools/import_ppocr.py lists the weights in it.
        l5 = self.laterals[3](c5)
        l4 = self.laterals[2](c4)
        l3 = self.laterals[1](c3)
        l2 = self.laterals[0](c2)
        p4 = l4 + upsample_nearest(l5, 2)
        p3 = l3 + upsample_nearest(p4, 2)
        p2 = l2 + upsample_nearest(p3, 2)
        s5 = self.smooth[3](l5)
        s4 = self.smooth[2](p4)
        s3 = self.smooth[1](p3)
        s2 = self.smooth[0](p2)
        return ops.concatenate(
            [upsample_nearest(s5, 8), upsample_nearest(s4, 4), upsample_nearest(s3, 2), s2], axis=-1)

    def compute_output_shape(self, input_shape):
        n, h, w = input_shape[0][:3]
        return (n, h, w, self.inner_channels)

    def get_config(self):
        return {**super().get_config(), "inner_channels": self.inner_channels}
