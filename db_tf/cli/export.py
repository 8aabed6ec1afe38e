"""Export trained weights as a deployable model: SavedModel (TF Serving), ONNX or TFLite.

    python export.py --output exported                                   # shipped model -> exported/1/
    python export.py --weights runs/db_r18/final.weights.h5 --output models/dbnet --version 2
    python export.py --weights ppocrv4_mobile --format onnx --output exported
    python export.py --weights ppocrv4_mobile --format tflite --output exported [--quantize dynamic_int8]

saved_model: ``<output>/<version>/`` in TF Serving's layout, signatures "serving_default" (encoded image
files in, decode + resize + normalise in the graph) and "serving_float" (float RGB images in); see
db_tf/export/signatures.py. onnx: ``<output>/<name>.onnx``. tflite: ``<output>/<name>_float32.tflite``
and ``<output>/<name>_dynamic_int8.tflite``. ONNX and TFLite models take float RGB 0..255 images of any
size (normalisation inside). Each export writes its settings as JSON too (``<name>.export.json``, or
``assets.extra/db_tf_export.json`` in the SavedModel).

--weights: as inference.py (a .weights.h5 with cfg.MODEL's architecture unless a .json sits beside it, or a
pretrained name / .json); the preprocessing baked into the graph comes from the pretrained metadata or
cfg (DATA.MEAN / STD / CHANNEL_ORDER, POSTPROCESS.SHORT_SIDE / MAX_SIDE), then --short-side / --max-side.
After writing, the exported model is run once on a synthetic text image and compared with the Keras model.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from db_tf.cli.common import add_verbose_flag, non_negative_int, positive_int, start_tensorflow
from db_tf.config import ConfigError, add_config_args, config_from_args
from db_tf.defaults import PRECISIONS

QUANTIZE_CHOICES = {"both": ("float32", "dynamic_int8"), "float32": ("float32",),
                    "dynamic_int8": ("dynamic_int8",)}
CHECK_SIZE = (160, 256)  # the after-export check image: multiples of 32, so Keras takes it as it is


def build_parser(default_config=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--weights", help="a .weights.h5, a pretrained name or .json "
                                          "(default: cfg.MODEL.WEIGHTS, cfg.MODEL.NAME, then ppocrv4_mobile)")
    parser.add_argument("--output", help="output folder (default cfg.EXPORT.OUTPUT)")
    parser.add_argument("--format", choices=("saved_model", "onnx", "tflite"), help="default cfg.EXPORT.FORMAT")
    parser.add_argument("--version", type=positive_int, help="SavedModel version folder (default cfg.EXPORT.VERSION)")
    parser.add_argument("--name", help="file name stem of ONNX / TFLite files (default: the model's name)")
    parser.add_argument("--short-side", type=positive_int, help="resize policy of the image-bytes signature")
    parser.add_argument("--max-side", type=non_negative_int,
                        help="long-side limit of the image-bytes signature (0 = none)")
    parser.add_argument("--quantize", choices=sorted(QUANTIZE_CHOICES), default="both",
                        help="tflite: which models to write (default both)")
    parser.add_argument("--opset", type=positive_int, help="onnx: opset (default 17)")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="saved_model: bfloat16 serves the network in bfloat16 (faster on CPUs with "
                             "AVX512-BF16 / AMX; maps stay float32)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version / file")
    parser.add_argument("--no-check", action="store_true", help="skip running the exported model once")
    add_verbose_flag(parser)
    return add_config_args(parser, default_config)


def model_name(detector, weights):
    """The name of ONNX / TFLite files: the pretrained name, else the weights file's stem."""
    if detector.meta.get("name"):
        return detector.meta["name"]
    if weights:
        return Path(str(weights)).name.split(".")[0]
    return "dbnet"


def check_export(fmt, paths, model, settings):
    """(max, mean) |exported - Keras float32| of the map of one synthetic text image, per written file (None:
    not checked). A bfloat16 export differs by up to ~0.6 at a few edge pixels, where the map is steep."""
    from db_tf import preprocess as pre
    from db_tf.synth import generate

    pixels = generate(0, height=CHECK_SIZE[0], width=CHECK_SIZE[1]).image  # text, so a trained model responds
    image = pixels[None].astype(np.float32)
    expected = np.asarray(model(pre.normalize(pixels[None], settings["mean"], settings["std"],
                                              settings["channel_order"]), training=False))
    diffs = []
    for path in paths:
        if fmt == "saved_model":
            import tensorflow as tf
            served = tf.saved_model.load(str(path)).signatures["serving_float"]
            got = served(images=tf.constant(image))["probability"].numpy()
        elif fmt == "onnx":
            try:
                import onnxruntime
            except ImportError:
                diffs.append(None)
                continue
            got = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
                None, {"images": image})[0]
        else:
            from db_tf.export.tflite import TFLiteRunner
            got = TFLiteRunner(path)(image)
        difference = np.abs(got - expected)
        diffs.append((float(difference.max()), float(difference.mean())))
    return diffs


def main(argv=None, default_config=None, prog=None):
    args = build_parser(default_config, prog).parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    start_tensorflow(args.verbose)
    from db_tf.detector import TextDetector
    from db_tf.export import export
    from db_tf.presets import PresetError

    explicit = {item.split("=", 1)[0].strip() for item in args.set}
    try:
        detector = TextDetector.from_config(cfg, weights=args.weights, explicit_keys=explicit,
                                            short_side=args.short_side, max_side=args.max_side)
    except (PresetError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fmt = args.format or cfg.EXPORT.FORMAT
    output = args.output or cfg.EXPORT.OUTPUT
    version = cfg.EXPORT.VERSION if args.version is None else args.version
    weights = args.weights or cfg.MODEL.WEIGHTS or cfg.MODEL.NAME
    name = args.name or model_name(detector, weights)
    try:
        paths = export(detector.model, detector.settings, output, fmt=fmt, version=version, name=name,
                       overwrite=args.overwrite, opset=args.opset, quantizations=QUANTIZE_CHOICES[args.quantize],
                       precision=args.precision,
                       extra_metadata={"weights": str(weights or "default"), "source": detector.meta.get("source"),
                                       "license": detector.meta.get("license")})
    except (FileExistsError, ValueError, ImportError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = detector.settings
    kind = fmt if args.precision == "float32" else f"{fmt}, {args.precision}"
    print(f"exported {name} ({kind}); preprocessing baked in: {settings['channel_order']}, mean {settings['mean']}, "
          f"std {settings['std']}" + (f", short side {settings['short_side']}, max side {settings['max_side']}"
                                      if fmt == "saved_model" else ""))
    diffs = [None] * len(paths) if args.no_check else check_export(fmt, paths, detector.model, settings)
    for path, diff in zip(paths, diffs):
        size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) if Path(path).is_dir() \
            else Path(path).stat().st_size
        note = "" if diff is None else (f", |exported - Keras| on a synthetic text image: max {diff[0]:.2e}, "
                                        f"mean {diff[1]:.2e}")
        print(f"  {path} ({size / 1e6:.1f} MB{note})")
    if fmt == "saved_model":
        base = Path(output).resolve()
        print(f"serve it: docker run -p 8501:8501 -p 8500:8500 -v {base}:/models/dbnet -e MODEL_NAME=dbnet "
              f"tensorflow/serving")
    return 0


if __name__ == "__main__":
    sys.exit(main())
