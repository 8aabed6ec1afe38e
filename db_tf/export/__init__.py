"""Deployable models from a DBNet: SavedModel (TF Serving), ONNX, TFLite. ``export.py`` is the CLI.

    export(model, settings, "exported", fmt="saved_model", version=1)   # -> exported/1/
    export(model, settings, "exported", fmt="onnx", name="ppocrv4_mobile")  # -> exported/ppocrv4_mobile.onnx
    export(model, settings, "exported", fmt="tflite", name="ppocrv4_mobile")
        # -> exported/ppocrv4_mobile_float32.tflite and exported/ppocrv4_mobile_dynamic_int8.tflite

``settings`` holds the preprocessing baked into the graph (``channel_order``, ``mean``, ``std``,
``short_side``, ``max_side``, optional fixed ``size``) and the post-processing a client should use;
``TextDetector.settings`` has exactly these keys. Every export also writes the settings as JSON
(``assets.extra/db_tf_export.json`` in a SavedModel, ``<name>.export.json`` beside ONNX / TFLite files)
so a client can post-process with the values the model was shipped with.

Modules: graph_preprocess (db_tf/preprocess.py in TF ops), signatures (the served functions),
saved_model, onnx, tflite.
"""
import json
from pathlib import Path

from db_tf.detector import POSTPROCESS_KEYS  # the post-processing settings a client needs, as TextDetector's

FORMATS = ("saved_model", "onnx", "tflite")
PREPROCESS_KEYS = ("channel_order", "mean", "std", "short_side", "max_side", "size")


def export_metadata(settings, model=None, name="dbnet", extra=None, fmt="saved_model", precision="float32"):
    """The JSON-able description written beside every export."""
    outputs = {"probability": "float32 (N, H, W, 1)", "original_size": "int32 (N, 2), serving_default",
               "resized_size": "int32 (N, 2), serving_default"}
    if settings.get("split_by_threshold"):
        outputs["threshold"] = "float32 (N, H, W, 1): threshold map, for postprocess split_by_threshold"
    inputs = {"serving_default": {"image_bytes": "tf.string (N,): encoded image files"},
              "serving_float / onnx / tflite": {"images": "float32 (N, H, W, 3): RGB 0..255"}}
    if fmt == "saved_model":
        inputs["boxes"] = {"image_bytes": "tf.string (N,): encoded image files"}
        inputs["boxes_tuned"] = {"image_bytes": "tf.string (N,)", "thresh": "float32 scalar",
                                 "box_thresh": "float32 scalar", "unclip_ratio": "float32 scalar"}
        outputs["original_size"] = "int32 (N, 2), serving_default, boxes, boxes_tuned"
        outputs.update({"boxes": "float32 (N, K, 4, 2), boxes, boxes_tuned: x, y in original-image pixels, "
                                 "clockwise from top-left; image i's are boxes[i, :num_boxes[i]]",
                        "scores": "float32 (N, K), boxes, boxes_tuned",
                        "num_boxes": "int32 (N,), boxes, boxes_tuned"})
    meta = {"name": name,
            "format": fmt,
            "precision": precision,
            "inputs": inputs,
            "outputs": outputs,
            "preprocess": {k: _plain(settings.get(k)) for k in PREPROCESS_KEYS},
            "postprocess": {k: _plain(settings[k]) for k in POSTPROCESS_KEYS if k in settings}}
    if model is not None and hasattr(model, "get_config"):
        from db_tf.models import constructor_kwargs

        meta["model"] = constructor_kwargs(model.get_config())
    meta.update(extra or {})
    return meta


def export(model, settings, output_dir, fmt="saved_model", version=1, name="dbnet", overwrite=False,
           opset=None, quantizations=("float32", "dynamic_int8"), extra_metadata=None, precision="float32"):
    """Export in one format; returns the list of written model paths (see the module doc for names).

    precision "bfloat16" (SavedModel only): the served network is a mixed_bfloat16 copy of ``model``
    (db_tf/models/precision.py): convolutions in bfloat16, inputs, variables and maps float32.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    if precision != "float32":
        if fmt != "saved_model":
            raise ValueError(f"precision {precision!r} is for SavedModel exports only: ONNX Runtime and TFLite "
                             f"have no bfloat16 convolutions on CPU (use float32, or tflite's dynamic_int8)")
        from db_tf.models.precision import inference_copy
        model = inference_copy(model, precision)
    for key in PREPROCESS_KEYS[:5]:
        if key not in settings:
            raise ValueError(f"export settings lack {key!r} (have {sorted(settings)})")
    if fmt == "tflite" and settings.get("split_by_threshold"):
        settings = {**settings, "split_by_threshold": False}   # TFLiteRunner reads one output: probability
    metadata = export_metadata(settings, model, name, extra_metadata, fmt, precision)
    output_dir = Path(output_dir)
    if fmt == "saved_model":
        from db_tf.export.saved_model import export_saved_model
        return [export_saved_model(model, settings, output_dir, version, overwrite, metadata)]
    if fmt == "onnx":
        from db_tf.export.onnx import DEFAULT_OPSET, export_onnx
        targets = [output_dir / f"{name}.onnx"]
        _refuse_existing(targets, overwrite)
        written = [export_onnx(model, settings, targets[0], opset or DEFAULT_OPSET)]
    else:
        from db_tf.export.tflite import export_tflite
        targets = [output_dir / f"{name}_{q}.tflite" for q in quantizations]
        _refuse_existing(targets, overwrite)
        written = [export_tflite(model, settings, path, q) for path, q in zip(targets, quantizations)]
    (output_dir / f"{name}.export.json").write_text(json.dumps(metadata, indent=1) + "\n", encoding="utf-8")
    return written


def _refuse_existing(paths, overwrite):
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} exists: pass --overwrite or another --output")


def _plain(value):
    """numpy / tuple values -> JSON types."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value
