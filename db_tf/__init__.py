"""db-tf: DBNet and DBNet++ scene text detection for TensorFlow 2 / Keras 3.

    from db_tf import TextDetector, DBNet, list_presets
"""
__version__ = "0.1.0"

_LAZY = {"TextDetector": ("db_tf.detector", "TextDetector"), "Detections": ("db_tf.detector", "Detections"),
         "DBNet": ("db_tf.models", "DBNet"), "DBNetEnsemble": ("db_tf.models", "DBNetEnsemble"),
         "list_presets": ("db_tf.presets", "list_presets")}
__all__ = sorted(_LAZY)


def __getattr__(name):  # lazy: `import db_tf` stays light; TensorFlow loads only when a model is built
    if name not in _LAZY:
        raise AttributeError(f"module 'db_tf' has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    return getattr(importlib.import_module(module), attribute)
