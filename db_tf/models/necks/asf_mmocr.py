"""DBNet++'s Adaptive Scale Fusion as MMOCR builds it (FPNC with asf_cfg ScaleChannelSpatial).

The same computation as ASFNeck (see asf.py for the formulas), with MMOCR's widths: its attention works on all
inner_channels of the concatenated levels (MhLiao/DB's first reduces them to inner_channels // 4):

    x = conv3x3(X)                 inner -> inner, with bias       (MMOCR asf_conv; DB: inner -> inner / 4)
    channel attention              inner -> inner / 4 -> inner     (DB: inner / 4 -> inner / 16 -> inner / 4)
    A = sigmoid(conv1x1(x2))       inner -> 4

MMOCR concatenates the levels as [p2, p3, p4, p5] where db-tf uses the official [p5, p4, p3, p2]; the importer
(db_tf.tools.import_torch) permutes the affected weights, so this layer keeps db-tf's order.
"""
from db_tf.models.necks.asf import ASFNeck, _conv
from db_tf.models.necks.fpn import DBFPN


class MMOCRASFNeck(ASFNeck):
    """call([C2, C3, C4, C5]) -> (N, H/4, W/4, inner_channels); ASFNeck's attention at full width."""

    def __init__(self, inner_channels=256, **kwargs):
        # DBFPN's layers only: ASFNeck.__init__ would create the narrow attention layers this class replaces.
        DBFPN.__init__(self, inner_channels=inner_channels, **kwargs)
        self.fuse_conv = _conv(inner_channels, 3, True, "fuse_conv")
        self.channel_reduce = _conv(inner_channels // 4, 1, False, "channel_reduce")
        self.channel_expand = _conv(inner_channels, 1, False, "channel_expand")
        self.spatial_conv = _conv(1, 3, False, "spatial_conv")
        self.spatial_scale = _conv(1, 1, False, "spatial_scale")
        self.scale_weights = _conv(self.num_levels, 1, False, "scale_weights")

    def build(self, input_shape):
        DBFPN.build(self, input_shape)
        c = self.inner_channels
        self.fuse_conv.build((None, None, None, c))
        self.channel_reduce.build((None, 1, 1, c))
        self.channel_expand.build((None, 1, 1, c // 4))
        self.spatial_conv.build((None, None, None, 1))
        self.spatial_scale.build((None, None, None, 1))
        self.scale_weights.build((None, None, None, c))
