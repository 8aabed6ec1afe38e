"""Necks: name -> layer class; `cls(inner_channels=..., name=...)([C2, C3, C4, C5])` -> stride-4 fused map."""
from db_tf.models.necks.asf import ASFNeck
from db_tf.models.necks.asf_mmocr import MMOCRASFNeck
from db_tf.models.necks.fpn import DBFPN
from db_tf.models.necks.replkfpn import RepLKFPN
from db_tf.models.necks.rsefpn import RSEFPN

NECKS = {
    "fpn": DBFPN,
    "asf": ASFNeck,
    "asf_mmocr": MMOCRASFNeck,
    "rsefpn": RSEFPN,
    "replkfpn": RepLKFPN,
}
