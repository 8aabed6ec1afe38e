"""TFLite export of the float-image function (signatures.float_images), float32 or dynamic-range int8.

Input ``images`` float32 (N, H, W, 3), RGB 0..255 with dynamic H and W (call ``resize_tensor_input``
before each new size: ``TFLiteRunner`` does), output ``probability`` float32 (N, H, W, 1).

Quantisation "dynamic_int8" is TFLite's dynamic-range quantisation: weights are stored as int8 (about
4x smaller) and supported kernels quantise activations on the fly; no calibration data is needed.

The converter reads a SavedModel written for the purpose: converting the tf.function directly
(``from_concrete_functions``) with Keras 3 variables gave NaN outputs in TF 2.21, while the SavedModel
route matches Keras within float rounding (tests/test_export_tflite.py).
"""
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from db_tf.export.saved_model import FLOAT_SIGNATURE, write_saved_model

QUANTIZATIONS = ("float32", "dynamic_int8")


def export_tflite(model, settings, path, quantization="float32"):
    """Write a .tflite file to ``path``; returns the path."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    with tempfile.TemporaryDirectory(prefix="db_tf_tflite_") as folder:
        saved = write_saved_model(model, settings, Path(folder) / "saved_model", signatures=(FLOAT_SIGNATURE,))
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=[FLOAT_SIGNATURE])
        if quantization == "dynamic_int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: dynamic range
        try:
            flatbuffer = converter.convert()
        except Exception as exc:  # the converter's ConverterError carries a whole MLIR dump: keep the gist
            raise RuntimeError(f"TFLite conversion of {model.name} failed (an op without a TFLite kernel, often "
                               f"because a convolution's input lost its static channel count):\n"
                               f"{_converter_summary(exc)}") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flatbuffer)
    return path


def _converter_summary(exc, max_lines=8):
    """The lines of a ConverterError that name the failing ops, without the MLIR listing."""
    lines = [line.strip() for line in str(exc).splitlines()]
    keep = [line.split("): ")[-1] if line.startswith("loc(") else line for line in lines
            if "error:" in line or line.startswith(("TF Select ops", "tf."))]
    return "\n".join(dict.fromkeys(keep[:max_lines])) or str(exc)[-2000:]


def interpreter_class():
    """LiteRT's Interpreter (``pip install ai-edge-litert``) when installed, else tf.lite.Interpreter.

    TensorFlow deprecated tf.lite.Interpreter in favour of LiteRT (the same runtime, packaged
    separately) but still ships it in 2.21; both give identical outputs here.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        return tf.lite.Interpreter


class TFLiteRunner:
    """Run an exported .tflite model on float32 (N, H, W, 3) batches of any size.

    The interpreter's tensors are re-allocated only when the input shape changes.
    """

    def __init__(self, model_path, num_threads=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # tf.lite's deprecation notice (see interpreter_class)
            self.interpreter = interpreter_class()(model_path=str(model_path), num_threads=num_threads)
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        self.shape = None

    def __call__(self, images):
        images = np.ascontiguousarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected float32 images of shape (N, H, W, 3), got {images.shape}")
        if images.shape != self.shape:
            self.interpreter.resize_tensor_input(self.input_index, images.shape, strict=False)
            self.interpreter.allocate_tensors()
            self.shape = images.shape
        self.interpreter.set_tensor(self.input_index, images)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_index)
