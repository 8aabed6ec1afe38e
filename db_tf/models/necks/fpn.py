"""The DB feature pyramid (official MhLiao/DB `decoders/seg_detector.py`, also used by DBNet++).

    laterals  in_i = 1x1 conv(C_i) -> inner_channels          (no bias)
    top-down  out4 = in4 + up2(in5); out3 = in3 + up2(out4); out2 = in2 + up2(out3)   (nearest)
    smoothing p5 = 3x3 conv(in5), p4 = 3x3 conv(out4), ...  -> inner_channels // 4    (no bias)
    fuse      concat([up8(p5), up4(p4), up2(p3), p2])        -> inner_channels at stride 4

The 3x3 convolution runs BEFORE the upsampling (cheaper, and what the official code does), and the
concatenation order is the official [p5, p4, p3, p2] so official weights of the next layer line up.
Layer names are the official ones (in2..in5, out2..out5).
"""
import keras
from keras import layers, ops

from db_tf.models.upsample import upsample_nearest


# The official decoder initialises its convolutions with kaiming_normal_ (fan_in, ReLU gain).
def conv_init():
    """A fresh initializer per layer (a shared unseeded Keras 3 instance repeats its values)."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_in", distribution="untruncated_normal")
LEVELS = (2, 3, 4, 5)


class DBFPN(layers.Layer):
    """call([C2, C3, C4, C5]) -> (N, H/4, W/4, inner_channels)."""

    def __init__(self, inner_channels=256, **kwargs):
        super().__init__(**kwargs)
        if inner_channels % 4:
            raise ValueError(f"inner_channels must be a multiple of 4, got {inner_channels}")
        self.inner_channels = inner_channels
        # Index 0..3 = levels 2..5.
        self.laterals = [layers.Conv2D(inner_channels, 1, use_bias=False, kernel_initializer=conv_init(),
                                       name=f"in{level}") for level in LEVELS]
        self.smoothing = [layers.Conv2D(inner_channels // 4, 3, padding="same", use_bias=False,
                                        kernel_initializer=conv_init(), name=f"out{level}") for level in LEVELS]

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"{self.name} expects [C2, C3, C4, C5], got {len(input_shape)} feature maps")
        for lateral, smoothing, shape in zip(self.laterals, self.smoothing, input_shape):
            lateral.build(shape)
            smoothing.build((None, None, None, self.inner_channels))

    def scale_features(self, features):
        """The four smoothed levels [p5, p4, p3, p2], each upsampled to stride 4 (inner_channels // 4 each)."""
        if len(features) != 4:
            raise ValueError(f"{self.name} expects [C2, C3, C4, C5], got {len(features)} feature maps")
        merged = [lateral(c) for lateral, c in zip(self.laterals, features)]
        # Top-down path, coarse to fine: each level adds the (nearest x2) upsampled coarser merged level.
        for i in (2, 1, 0):
            merged[i] = merged[i] + upsample_nearest(merged[i + 1], 2)
        smoothed = [smoothing(m) for smoothing, m in zip(self.smoothing, merged)]
        return [upsample_nearest(smoothed[i], 2 ** i) for i in (3, 2, 1, 0)]

    def call(self, features):
        return ops.concatenate(self.scale_features(features), axis=-1)

    def compute_output_shape(self, input_shape):
        c2 = input_shape[0]
        return (c2[0], c2[1], c2[2], self.inner_channels)

    def get_config(self):
        return {**super().get_config(), "inner_channels": self.inner_channels}
