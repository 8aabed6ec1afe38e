"""RepLKFPN: the neck of PaddleOCR's PP-OCRv6 small text detector.

RSEFPN (rsefpn.py) with large-kernel smoothing: each level's 3x3 smoothing convolution becomes a
depthwise 7x7 convolution (with bias) followed by a 1x1 residual squeeze-excite convolution to
inner_channels / 4. PaddleOCR trains the 7x7 layer as several dilated, re-parameterisable depthwise
branches; the exported graph (which we follow) holds their merged 7x7 kernel.
"""
from keras import layers

from db_tf.models.necks.rsefpn import RSEFPN, ResidualSEConv

LARGE_KERNEL = 7


class LargeKernelSmooth(layers.Layer):
    """Depthwise 7x7 (bias) -> 1x1 residual squeeze-excite conv to `filters` (no bias)."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.depthwise = layers.DepthwiseConv2D(LARGE_KERNEL, padding="same", name="depthwise")
        self.pointwise = ResidualSEConv(filters, 1, name="pointwise")

    def build(self, input_shape):
        self.depthwise.build(input_shape)
        self.pointwise.build(input_shape)

    def call(self, x):
        return self.pointwise(self.depthwise(x))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


class RepLKFPN(RSEFPN):
    """call([C2, C3, C4, C5]) -> (N, H/4, W/4, inner_channels); RSEFPN with LargeKernelSmooth smoothing."""

    def __init__(self, inner_channels=96, **kwargs):
        super().__init__(inner_channels, **kwargs)
        self.smooth = [LargeKernelSmooth(inner_channels // 4, name=f"smooth_p{level}") for level in (2, 3, 4, 5)]
