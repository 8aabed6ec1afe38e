"""How closely two computations of one network's maps must agree, for every test that compares eager Keras
with a graph, a frozen graph, a SavedModel, ONNX Runtime, TFLite or onnxruntime's PaddleOCR model.

Such paths run the same arithmetic with other kernels: oneDNN picks kernels by CPU (AVX2, AVX-512, AMX),
graph optimisation folds batch norms, converters fuse ops, so float sums are reordered. What that costs,
measured on the export tests' tiny model (maps of sigmoid outputs in (0, 1)):
- this CPU (Xeon with AVX-512 / AMX), eager vs graph: 2.0e-6 with oneDNN, 1.2e-6 with TF_ENABLE_ONEDNN_OPTS=0;
- an AMD EPYC (AVX-512): 1.25e-4 on the threshold map of the SavedModel (issue 18);
- imported PaddleOCR models vs onnxruntime at 736x1280: 1.3e-4.
MAP_ATOL = 1e-3 is 8x the worst of these. The bugs these tests exist for move the same maps far more
(tests/test_export_saved_model.py::test_broken_exports_are_caught measures them): a mean off by 0.02
(5 grey levels) 1.4e-2, ImageNet's mean in place of the model's 5.5e-2, a swapped std 8e-2, RGB for BGR
2.4e-1: at least 14x MAP_ATOL.
"""
import numpy as np
from shapely.geometry import Polygon

MAP_ATOL = 1e-3
# B = sigmoid(k (P - T)) with k = 50 has slope at most k / 4 = 12.5: P and T within MAP_ATOL keep B within
BINARY_ATOL = 50 / 4 * 2 * MAP_ATOL


def assert_maps_match(got, expected, atol=MAP_ATOL, what="map"):
    """Same shape, and every value within ``atol`` (see the module doc for why this bound)."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    difference = float(np.max(np.abs(got.astype(np.float64) - expected))) if got.size else 0.0
    assert difference <= atol, f"{what}: max |difference| {difference:.3g} > {atol:.3g}"
    return difference


def assert_same_detections(got, want, box_thresh, atol=MAP_ATOL):
    """Detections (polygons, scores) from maps that agree within ``atol``: each box of one side has a box of
    the other with IoU >= 0.9 and a score within 2 atol, except boxes whose score lies within 2 atol of
    box_thresh (a map difference that small may keep or drop them: they may go unmatched)."""
    (got_polys, got_scores), (want_polys, want_scores) = got, want
    for polys, scores, others, other_scores, side in ((got_polys, got_scores, want_polys, want_scores, "got"),
                                                      (want_polys, want_scores, got_polys, got_scores, "want")):
        for polygon, score in zip(polys, scores):
            if abs(score - box_thresh) <= 2 * atol:
                continue
            ious = [_iou(polygon, other) for other in others]
            best = int(np.argmax(ious)) if ious else -1
            assert best >= 0 and ious[best] >= 0.9, f"{side}: box {polygon.tolist()} (score {score:.4f}) unmatched"
            assert abs(other_scores[best] - score) <= 2 * atol, f"{side}: scores {score} vs {other_scores[best]}"


def _iou(a, b):
    a, b = Polygon(np.asarray(a, float)), Polygon(np.asarray(b, float))
    union = a.union(b).area
    return a.intersection(b).area / union if union else 0.0
