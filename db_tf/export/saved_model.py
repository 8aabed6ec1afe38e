"""SavedModel export in the layout TensorFlow Serving loads: ``<output>/<version>/saved_model.pb``.

Signatures (see signatures.py for the tensors):
    serving_default  image_bytes (tf.string, encoded files)  -> probability, original_size, resized_size
    serving_float    images (float32 RGB 0..255)              -> probability
    boxes            image_bytes                              -> boxes, scores, num_boxes (in-graph post-processing)
    boxes_tuned      image_bytes, thresh, box_thresh, unclip_ratio -> boxes, scores, num_boxes
TF Serving's REST API base64-decodes inputs whose name ends in ``_bytes``, so clients send
``{"instances": [{"image_bytes": {"b64": "..."}}]}``; db_tf.serving builds such requests.

The SavedModel is a ``tf.Module`` holding the functions and the model's variables as plain
``tf.Variable`` objects (``keras.Variable.value`` on the TensorFlow backend). Two alternatives fall short in
TF 2.21 / Keras 3.15: Keras 3's ``ExportArchive`` stores every weight twice (once per Keras variable, once
per variable the functions capture), and tracking the Keras model itself saves a SavedModel that
``tf.saved_model.load`` reads but the TFLite converter reads without weights (NaN outputs). It is written
to a hidden temporary folder and then renamed into place: TF Serving polls the model folder and only
looks at numeric version folders, so it never sees a half-written version. The export settings
(preprocessing, post-processing, model) go to ``assets.extra/db_tf_export.json``, a folder TF Serving
leaves alone.
"""
import json
import os
import shutil
from pathlib import Path

import tensorflow as tf

from db_tf.export.signatures import (
    BYTES_SPEC,
    FLOAT_SPEC,
    SETTING_SPECS,
    encoded_images,
    encoded_images_to_boxes,
    float_images,
    tuned_boxes,
)

DEFAULT_SIGNATURE = "serving_default"
FLOAT_SIGNATURE = "serving_float"
BOXES_SIGNATURE = "boxes"
TUNED_BOXES_SIGNATURE = "boxes_tuned"
SIGNATURES = (DEFAULT_SIGNATURE, FLOAT_SIGNATURE, BOXES_SIGNATURE, TUNED_BOXES_SIGNATURE)
METADATA_FILE = "db_tf_export.json"


def export_saved_model(model, settings, output_dir, version=1, overwrite=False, metadata=None):
    """Write ``<output_dir>/<version>/`` with both signatures; returns its path.

    settings: preprocessing (``channel_order``, ``mean``, ``std``, ``short_side``, ``max_side``, optional
    ``size``), e.g. TextDetector.settings. metadata: a JSON-able dict written to assets.extra.
    An existing version folder is an error unless overwrite=True (TF Serving may be serving it).
    """
    version = int(version)
    if version < 0:
        raise ValueError(f"the version must be a non-negative integer (TF Serving's folder names), got {version}")
    target = Path(output_dir) / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists: choose another --version (TF Serving serves the highest) "
                              f"or pass --overwrite")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{version}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    write_saved_model(model, settings, staging)
    if metadata is not None:
        (staging / "assets.extra").mkdir(exist_ok=True)
        (staging / "assets.extra" / METADATA_FILE).write_text(json.dumps(metadata, indent=1) + "\n",
                                                               encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target


def write_saved_model(model, settings, path, signatures=SIGNATURES):
    """A SavedModel with the named signatures at ``path`` (no version folder, no metadata)."""
    module = tf.Module()
    module.model_variables = [variable.value for variable in model.variables]  # the tf.Variables (see above)
    functions = {}
    for name in signatures:
        setattr(module, name, _signature_function(name, model, settings, functions))
    tf.saved_model.save(module, str(path), signatures={name: functions[name].get_concrete_function()
                                                       for name in signatures})
    return Path(path)


def _signature_function(name, model, settings, functions):
    """The tf.function of one signature, memoised in ``functions``: "boxes" calls "boxes_tuned", which calls
    "serving_default", so the network and the post-processing are traced once for all of them."""
    if name not in functions:
        if name == DEFAULT_SIGNATURE:
            build, specs = encoded_images(model, settings), [BYTES_SPEC]
        elif name == FLOAT_SIGNATURE:
            build, specs = float_images(model, settings), [FLOAT_SPEC]
        elif name == TUNED_BOXES_SIGNATURE:
            maps = _signature_function(DEFAULT_SIGNATURE, model, settings, functions)
            build, specs = tuned_boxes(model, settings, maps), [BYTES_SPEC, *SETTING_SPECS]
        elif name == BOXES_SIGNATURE:
            tuned = _signature_function(TUNED_BOXES_SIGNATURE, model, settings, functions)
            build, specs = encoded_images_to_boxes(model, settings, tuned), [BYTES_SPEC]
        else:
            raise ValueError(f"unknown signature {name!r}; known: {', '.join(SIGNATURES)}")
        # autograph off: the functions have no Python control flow on tensors (loops are tf.while_loop)
        functions[name] = tf.function(build, input_signature=specs, autograph=False)
    return functions[name]


def read_metadata(saved_model_dir):
    """The export metadata of a version folder, or None when it has none."""
    path = Path(saved_model_dir) / "assets.extra" / METADATA_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
