"""The `db-tf` command: one entry point for every job (installed by `pip install .`).

    db-tf detect --imgpath photo.jpg          # = python inference.py
    db-tf train --config my_config.py         # = python train.py
    db-tf evaluate --images imgs/ --gt gts/ --weights ppocrv4_ic15
    db-tf export --weights ppocrv4_ic15 --format saved_model
    db-tf presets                             # the shipped presets
    db-tf demo                                # a local web page to try presets and tune thresholds
    db-tf <tool> ...                          # sweep-postprocess, package-weights, import-ppocr, import-torch,
                                              # plot-curves, detection-sheet
Each subcommand takes the options of its module's ``main`` (``db-tf detect --help``). Without --config the
commands start from db-tf's defaults (db_tf/defaults.py); the scripts at the repository root default to the
db_config.py beside them.
"""
import importlib
import sys

# subcommand -> (module with main(argv), one line of help)
COMMANDS = {
    "detect": ("db_tf.cli.detect", "detect text in images (polygons, boxes, figures)"),
    "train": ("db_tf.cli.train", "train or fine-tune a DBNet from a config"),
    "evaluate": ("db_tf.cli.evaluate", "score a model or detection files with the ICDAR 2015 protocol"),
    "export": ("db_tf.cli.export", "export to SavedModel (TF Serving), ONNX or TFLite"),
    "presets": ("db_tf.cli.presets", "list the shipped presets and their validation scores"),
    "demo": ("db_tf.cli.demo", "a local web page: try presets on images, tune thresholds live"),
    "sweep-postprocess": ("db_tf.tools.sweep_postprocess", "choose post-processing settings on a validation set"),
    "package-weights": ("db_tf.tools.package_weights", "a run, a weight average or an ensemble -> a preset"),
    "import-ppocr": ("db_tf.tools.import_ppocr", "convert a PaddleOCR DB detector (ONNX) to Keras"),
    "import-torch": ("db_tf.tools.import_torch", "convert a MhLiao/DB or MMOCR checkpoint (PyTorch) to Keras"),
    "plot-curves": ("db_tf.tools.plot_curves", "training curves of runs as PNG"),
    "detection-sheet": ("db_tf.tools.detection_sheet", "detections beside the ground truth, tiled"),
}
JOBS_WITH_CONFIG = ("detect", "train", "evaluate", "export")


def usage():
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "usage: db-tf COMMAND [options]   (db-tf COMMAND --help)\n\ncommands:\n" + "\n".join(lines) + "\n"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), end="")
        return 0 if argv else 2
    if argv[0] == "--version":
        from db_tf import __version__

        print(f"db-tf {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(usage() + f"\nerror: unknown command {command!r}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    if command in JOBS_WITH_CONFIG:
        return module.main(rest, prog=f"db-tf {command}")
    return module.main(rest)
