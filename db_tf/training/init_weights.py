"""`--init`: start training from other weights, loading what matches and saying what did not.

A Keras `.weights.h5` file addresses every weight array by its place in the model (e.g.
`backbone/layers/conv2d_3/vars/0`: attribute and layer-class names with a counter, not the auto-generated
layer names), so "the same layer" means "the same place in the same architecture". We load every array whose
path AND shape match the model's, and report the model's arrays that stayed as initialised (missing from the
file, or of another shape) and the file's arrays that were not used. Typical uses: a DBNet++ start from a
DBNet (the backbone matches, the ASF neck does not), a different head width, or imported inference-only
weights without a threshold branch.

How: the model writes its own weights to a temporary file (so the paths are exactly Keras'), the matching
arrays of the source file are copied into it, and the model loads that file. Optimizer state is never taken.
"""
import tempfile
from pathlib import Path

import h5py
import numpy as np

SKIPPED_GROUPS = ("optimizer",)


def _arrays(handle):
    """{path: dataset} of every weight array in an open Keras weights file (optimizer state excluded)."""
    found = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset) and name.split("/")[0] not in SKIPPED_GROUPS:
            found[name] = item

    handle.visititems(visit)
    return found


def _layer_of(path):
    """'head/binarize/layers/conv2d/vars/0' -> 'head/binarize/layers/conv2d' (for grouped messages)."""
    return path.rsplit("/vars/", 1)[0]


def load_matching_weights(model, weights_path):
    """Load the arrays of `weights_path` whose path and shape match `model`'s; returns a report dict:
    loaded / missing / mismatched (path, model shape, file shape) / unused, each a list."""
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise FileNotFoundError(f"--init weights file not found: {weights_path}")
    if not str(weights_path).endswith(".weights.h5"):
        raise ValueError(f"--init expects a Keras .weights.h5 file, a pretrained .json or a pretrained name; "
                         f"got {weights_path}")
    report = {"loaded": [], "missing": [], "mismatched": [], "unused": []}
    with tempfile.TemporaryDirectory(prefix="db_tf_init_") as tmp:
        own_path = Path(tmp) / "own.weights.h5"
        model.save_weights(str(own_path))
        try:
            source_handle = h5py.File(weights_path, "r")
        except OSError as exc:
            raise ValueError(f"--init: {weights_path} is not a readable HDF5 weights file ({exc})") from None
        with source_handle as source, h5py.File(own_path, "r+") as own:
            source_arrays, own_arrays = _arrays(source), _arrays(own)
            for path, target in own_arrays.items():
                if path not in source_arrays:
                    report["missing"].append(path)
                elif source_arrays[path].shape != target.shape:
                    report["mismatched"].append((path, tuple(target.shape), tuple(source_arrays[path].shape)))
                else:
                    target[...] = np.asarray(source_arrays[path]).astype(target.dtype)
                    report["loaded"].append(path)
            report["unused"] = sorted(set(source_arrays) - set(own_arrays))
        model.load_weights(str(own_path))
    return report


def format_report(report, source):
    """Readable lines: counts first, then what was not loaded, grouped by layer."""
    total = len(report["loaded"]) + len(report["missing"]) + len(report["mismatched"])
    lines = [f"--init {source}: loaded {len(report['loaded'])} of {total} weight arrays of the model"]
    if report["mismatched"]:
        lines.append(f"  not loaded, shape differs ({len(report['mismatched'])}):")
        lines += [f"    {path}: model {model_shape} vs file {file_shape}"
                  for path, model_shape, file_shape in report["mismatched"]]
    for key, title in (("missing", "not loaded, not in the file"), ("unused", "in the file but not used")):
        if report[key]:
            layers = {}
            for path in report[key]:
                layers[_layer_of(path)] = layers.get(_layer_of(path), 0) + 1
            lines.append(f"  {title} ({len(report[key])} arrays in {len(layers)} layers):")
            lines += [f"    {layer} ({count})" for layer, count in layers.items()]
    return lines
