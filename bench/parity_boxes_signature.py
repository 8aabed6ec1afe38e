"""In-graph boxes (SavedModel signature "boxes") against db_tf.postprocess on ICDAR 2015 validation images.

    python bench/parity_boxes_signature.py                       # ppocrv4_ic15 and ppocrv4_mobile
    python bench/parity_boxes_signature.py --weights ppocrv4_mobile --first 901 --last 910

Needs ../shared/data/icdar2015_train (img_901..img_1000 = the validation split). Each preset is exported
as a SavedModel (export.py's code) to a temporary folder and loaded back; for every image the JPEG bytes
go to "serving_default" (maps; db_tf.serving.detections runs db_tf.postprocess with the shipped settings,
as ServingClient does) and to "boxes" (post-processing in the graph). Reported per preset:
  - the fraction of Python boxes that have an in-graph box with IoU >= 0.9, and the reverse;
  - ICDAR 2015 P / R / hmean of both against the ground truth (db_tf.metrics), and the hmean difference;
  - the largest score difference between matched boxes.
"""
import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from db_tf import metrics  # noqa: E402
from db_tf.data.readers import read_annotation  # noqa: E402
from db_tf.detector import POSTPROCESS_KEYS, TextDetector  # noqa: E402
from db_tf.export import export  # noqa: E402
from db_tf.serving import ServedMaps, detections  # noqa: E402

VAL_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "icdar2015_train"
MATCH_IOU = 0.9


def matched_fractions(python_boxes, graph_boxes, iou=MATCH_IOU):
    """(number of Python boxes with a graph box of IoU >= iou, number of graph boxes with such a Python box,
    score pairs of the best matches)."""
    if not len(python_boxes) or not len(graph_boxes):
        return 0, 0, np.zeros((0, 2))
    matrix = metrics.iou_matrix([metrics.to_geometry(b) for b in python_boxes],
                                [metrics.to_geometry(b) for b in graph_boxes])
    return int((matrix.max(1) >= iou).sum()), int((matrix.max(0) >= iou).sum()), matrix


def run_preset(name, first, last, show=False):
    detector = TextDetector(weights=name)
    settings = detector.settings
    with tempfile.TemporaryDirectory() as folder:
        path = export(detector.model, settings, folder, fmt="saved_model", version=1, name=name)[0]
        loaded = tf.saved_model.load(str(path))
        serve_maps, serve_boxes = loaded.signatures["serving_default"], loaded.signatures["boxes"]
        post_settings = {k: settings[k] for k in POSTPROCESS_KEYS}
        totals = {"python": 0, "graph": 0, "python_matched": 0, "graph_matched": 0}
        samples = {"python": [], "graph": []}
        score_diffs = []
        for i in range(first, last + 1):
            data = (VAL_DIR / "imgs" / f"img_{i}.jpg").read_bytes()
            gt, ignore, _ = read_annotation(VAL_DIR / "gts" / f"gt_img_{i}.txt", "icdar2015")
            out = serve_maps(image_bytes=tf.constant([data]))
            (rh, rw), original = out["resized_size"][0].numpy(), tuple(out["original_size"][0].numpy())
            threshold = out["threshold"][0, :rh, :rw, 0].numpy() if "threshold" in out else None
            maps = ServedMaps(out["probability"][0, :rh, :rw, 0].numpy(), original, (rh, rw), threshold)
            python = detections(maps, **post_settings)
            boxed = serve_boxes(image_bytes=tf.constant([data]))
            count = int(boxed["num_boxes"][0])
            graph_boxes, graph_scores = boxed["boxes"][0, :count].numpy(), boxed["scores"][0, :count].numpy()
            py_matched, g_matched, matrix = matched_fractions(python.polygons, graph_boxes)
            totals["python"] += len(python.polygons)
            totals["graph"] += count
            totals["python_matched"] += py_matched
            totals["graph_matched"] += g_matched
            if show:
                _show_mismatches(i, python, graph_boxes, matrix)
            if len(python.polygons) and count:
                best = matrix.argmax(1)
                good = matrix.max(1) >= MATCH_IOU
                score_diffs += np.abs(np.asarray(python.scores)[good] - graph_scores[best[good]]).tolist()
            samples["python"].append((gt, ignore, python.polygons))
            samples["graph"].append((gt, ignore, list(graph_boxes)))
    result = {"preset": name, "images": f"img_{first}..img_{last}",
              "split_by_threshold": bool(settings.get("split_by_threshold")), **totals,
              "python_matched_fraction": totals["python_matched"] / max(totals["python"], 1),
              "graph_matched_fraction": totals["graph_matched"] / max(totals["graph"], 1),
              "max_score_diff": max(score_diffs, default=0.0)}
    for key, values in samples.items():
        scores, _ = metrics.evaluate(values)
        result[f"{key}_prh"] = [round(scores[k], 4) for k in ("precision", "recall", "hmean")]
    result["hmean_diff"] = abs(result["python_prh"][2] - result["graph_prh"][2])
    return result


def _show_mismatches(image, python, graph_boxes, matrix):
    for k, polygon in enumerate(python.polygons):
        best = matrix[k].max() if np.size(matrix) else 0.0
        if best < MATCH_IOU:
            print(f"img_{image}: Python box {polygon.astype(int).tolist()} (score {python.scores[k]:.3f}): "
                  f"best graph IoU {best:.3f}")
    for k, box in enumerate(graph_boxes):
        best = matrix[:, k].max() if np.size(matrix) else 0.0
        if best < MATCH_IOU:
            print(f"img_{image}: graph box {box.astype(int).tolist()}: best Python IoU {best:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", nargs="+", default=["ppocrv4_ic15", "ppocrv4_mobile"])
    parser.add_argument("--first", type=int, default=901)
    parser.add_argument("--last", type=int, default=1000)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--show", action="store_true", help="print every box without a partner")
    args = parser.parse_args()
    if not VAL_DIR.is_dir():
        sys.exit(f"{VAL_DIR} is absent: this parity check needs the ICDAR 2015 train images (../shared)")
    results = []
    for name in args.weights:
        result = run_preset(name, args.first, args.last, args.show)
        results.append(result)
        print(json.dumps(result), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
