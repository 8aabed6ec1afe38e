"""db-tf: DBNet and DBNet++ scene text detection for TensorFlow 2 / Keras 3."""
__version__ = "0.1.0"


def __getattr__(name):  # lazy: `import db_tf` stays light; TensorFlow loads only when a model is built
    if name == "TextDetector":
        from db_tf.detector import TextDetector
        return TextDetector
    raise AttributeError(f"module 'db_tf' has no attribute {name!r}")
