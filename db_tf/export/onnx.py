"""ONNX export of the float-image function (signatures.float_images) through tf2onnx.

The ONNX model has one input ``images`` float32 (batch, height, width, 3), RGB 0..255 of any size, and
one output ``probability`` float32 (batch, height, width, 1); normalisation is inside, as in the
SavedModel's "serving_float" signature. Height and width are dynamic (named dimensions), so one
file serves every image size; NHWC is kept (onnxruntime inserts the layout transposes itself).

tf2onnx (>= 1.17, the first release that works with TF 2.21 / numpy 2 / protobuf 7) is a dev extra,
imported only here.
"""
from pathlib import Path

import tensorflow as tf

from db_tf.export.signatures import FLOAT_SPEC, float_images

DEFAULT_OPSET = 17
DIMENSION_NAMES = ("batch", "height", "width")


def export_onnx(model, settings, path, opset=DEFAULT_OPSET):
    """Write the ONNX model to ``path``; returns the path."""
    try:
        import tf2onnx
    except ImportError:
        raise ImportError("ONNX export needs tf2onnx: pip install 'tf2onnx>=1.17' "
                          "(it is in requirements-dev.txt)") from None
    function = tf.function(float_images(model, settings), input_signature=[FLOAT_SPEC], autograph=False)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=[FLOAT_SPEC], opset=int(opset))
    _name_dynamic_dimensions(proto)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(proto.SerializeToString())
    return path


def _name_dynamic_dimensions(proto):
    """tf2onnx calls unknown dimensions "unk__123": name them batch / height / width instead."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        for dim, name in zip(value.type.tensor_type.shape.dim, DIMENSION_NAMES):
            if not dim.HasField("dim_value"):
                dim.dim_param = name
