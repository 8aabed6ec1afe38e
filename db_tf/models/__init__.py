"""DBNet models: `build_model(cfg.MODEL)` or `DBNet(...)` directly."""
from db_tf.models.dbnet import DBNet


def build_model(model_cfg):
    """DBNet from cfg.MODEL (BACKBONE, NECK, INNER_CHANNELS, K, BACKBONE_WEIGHTS).

    cfg.MODEL.NAME (shipped presets) and cfg.MODEL.WEIGHTS are handled by the callers
    (db_tf.pretrained / the scripts), not here.
    """
    return DBNet(backbone=model_cfg.BACKBONE, neck=model_cfg.NECK, inner_channels=model_cfg.INNER_CHANNELS,
                 k=model_cfg.K, backbone_weights=model_cfg.BACKBONE_WEIGHTS or None)
