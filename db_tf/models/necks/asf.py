"""Adaptive Scale Fusion (DBNet++, Liao et al. TPAMI 2022): the DB FPN with attention-weighted levels.

We follow the official code's "scale_channel_spatial" variant (MhLiao/DB
`decoders/feature_attention.py`, ScaleFeatureSelection + ScaleChannelSpatialAttention), which is
what the released DBNet++ models use. With p = [p5, p4, p3, p2] the FPN levels at stride 4
(inner_channels // 4 = C channels each) and X = concat(p):

    x  = conv3x3(X)                      inner_channels -> C, with bias
    x1 = sigmoid(channel(x)) + x         channel = global average pool -> 1x1 C->C/4 -> ReLU -> 1x1 C/4->C
    x2 = sigmoid(spatial(mean_c(x1))) + x1
                                         spatial = 3x3 1->1 -> ReLU -> 1x1 1->1 on the channel mean of x1
    A  = sigmoid(conv1x1(x2))            C -> 4 per-pixel scale weights
    out = concat(A_0 * p5, A_1 * p4, A_2 * p3, A_3 * p2)      inner_channels

The attention convolutions have no bias (official code). Note that the spatial branch sees x1 (after
the channel residual), not x, and both residual adds are on the un-squashed features.
The paper's figure shows the same structure; where it is less precise we follow the code.
"""
from keras import layers, ops

from db_tf.models.global_context import spatial_mean
from db_tf.models.necks.fpn import DBFPN, conv_init


def _conv(filters, kernel_size, use_bias, name):
    return layers.Conv2D(filters, kernel_size, padding="same", use_bias=use_bias, kernel_initializer=conv_init(),
                         name=name)


class ASFNeck(DBFPN):
    """call([C2, C3, C4, C5]) -> (N, H/4, W/4, inner_channels) scale-attention-weighted fused map."""

    num_levels = 4

    def __init__(self, inner_channels=256, **kwargs):
        super().__init__(inner_channels=inner_channels, **kwargs)
        level_channels = inner_channels // 4
        self.fuse_conv = _conv(level_channels, 3, True, "fuse_conv")
        self.channel_reduce = _conv(level_channels // 4, 1, False, "channel_reduce")
        self.channel_expand = _conv(level_channels, 1, False, "channel_expand")
        self.spatial_conv = _conv(1, 3, False, "spatial_conv")
        self.spatial_scale = _conv(1, 1, False, "spatial_scale")
        self.scale_weights = _conv(self.num_levels, 1, False, "scale_weights")

    def build(self, input_shape):
        super().build(input_shape)
        c = self.inner_channels // 4
        self.fuse_conv.build((None, None, None, self.inner_channels))
        self.channel_reduce.build((None, 1, 1, c))
        self.channel_expand.build((None, 1, 1, c // 4))
        self.spatial_conv.build((None, None, None, 1))
        self.spatial_scale.build((None, None, None, 1))
        self.scale_weights.build((None, None, None, c))

    def attention(self, fused):
        """Per-pixel weights (N, H, W, 4) of the four levels, from the concatenated levels."""
        x = self.fuse_conv(fused)
        pooled = spatial_mean(self, x)[:, None, None, :]   # (N, 1, 1, C)
        channel = self.channel_expand(ops.relu(self.channel_reduce(pooled)))
        x1 = ops.sigmoid(channel) + x
        spatial = self.spatial_scale(ops.relu(self.spatial_conv(ops.mean(x1, axis=-1, keepdims=True))))
        x2 = ops.sigmoid(spatial) + x1
        return ops.sigmoid(self.scale_weights(x2))

    def call(self, features):
        levels = self.scale_features(features)
        weights = self.attention(ops.concatenate(levels, axis=-1))
        return ops.concatenate([weights[..., i:i + 1] * level for i, level in enumerate(levels)], axis=-1)
