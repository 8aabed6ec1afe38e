"""db-tf: DBNet and DBNet++ scene text detection for TensorFlow 2 / Keras 3."""
__version__ = "0.1.0"
