"""DBNet models: `build_model(cfg.MODEL)` or `DBNet(...)` directly; `DBNetEnsemble` averages several."""
from db_tf.models.dbnet import DBNet, constructor_kwargs
from db_tf.models.ensemble import DBNetEnsemble

__all__ = ["DBNet", "DBNetEnsemble", "build_model", "constructor_kwargs", "model_from_kwargs"]


def build_model(model_cfg):
    """DBNet from cfg.MODEL (BACKBONE, NECK, INNER_CHANNELS, K, BACKBONE_WEIGHTS).

    cfg.MODEL.NAME (shipped presets) and cfg.MODEL.WEIGHTS are handled by the callers
    (db_tf.presets / the CLI), not here.
    """
    return DBNet(backbone=model_cfg.BACKBONE, neck=model_cfg.NECK, inner_channels=model_cfg.INNER_CHANNELS,
                 k=model_cfg.K, backbone_weights=model_cfg.BACKBONE_WEIGHTS or None)


def model_from_kwargs(kwargs):
    """The model a pretrained JSON's "model" object describes: DBNet keyword arguments, or {"members": [...]}
    for a DBNetEnsemble."""
    return DBNetEnsemble(**kwargs) if "members" in kwargs else DBNet(**kwargs)
