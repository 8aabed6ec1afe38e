"""db_tf.metrics: hand-built cases for each ICDAR 2015 rule, and agreement with independent computations
(IoU by rasterising polygons on a fine grid; matching by a literal loop over the official steps)."""
import numpy as np
import pytest
from matplotlib.path import Path as MplPath
from shapely.geometry import Polygon

from db_tf.metrics import (
    ImageResult,
    bootstrap_interval,
    combine,
    evaluate,
    evaluate_image,
    iou_matrix,
    paired_bootstrap,
    read_detections,
    to_geometry,
)


def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


# ------------------------------------------------------------------------------ hand-built rules
def test_dont_care_overlap_of_exactly_half_keeps_the_detection():
    det = rect(0, 0, 10, 10)
    half = evaluate_image([rect(5, -5, 20, 15)], [True], [det])  # 50 of the detection's 100 inside: not > 0.5
    assert half.det_dont_care == [] and half.det_care == 1 and half.gt_care == 0
    more = evaluate_image([rect(4.9, -5, 20, 15)], [True], [det])  # 51 inside
    assert more.det_dont_care == [0] and more.det_care == 0


def test_two_detections_on_one_gt_give_one_match():
    gt = [rect(0, 0, 10, 10)]
    dets = [rect(0, 0, 10, 8), rect(0, 0, 10, 9)]  # IoU 0.8 and 0.9: the FIRST in order matches
    result = evaluate_image(gt, [False], dets)
    assert result.pairs == [(0, 0)] and result.matched == 1
    assert result.precision == 0.5 and result.recall == 1.0


def test_iou_of_exactly_half_does_not_match():
    result = evaluate_image([rect(0, 0, 10, 10)], [False], [rect(0, 0, 10, 5)])  # 50 / 100
    assert result.matched == 0
    assert evaluate_image([rect(0, 0, 10, 10)], [False], [rect(0, 0, 10, 5.01)]).matched == 1


def test_matching_is_greedy_in_gt_order_not_optimal():
    # GT0 matches det0 first; GT1 could only have used det0, so it stays unmatched (an optimal assignment
    # would give two matches: GT0-det1, GT1-det0).
    gts = [rect(0, 0, 10, 10), rect(2, 0, 12, 10)]
    dets = [rect(1, 0, 11, 10), rect(-3, 0, 7, 10)]
    iou = iou_matrix([to_geometry(g) for g in gts], [to_geometry(d) for d in dets])
    assert iou[1, 0] > 0.5 and iou[1, 1] < 0.5 and iou[0, 1] > 0.5
    assert evaluate_image(gts, [False, False], dets).pairs == [(0, 0)]


def test_image_without_gt_counts_its_detections_as_false_positives():
    no_gt = evaluate_image([], [], [rect(0, 0, 10, 10)])
    assert (no_gt.gt_care, no_gt.det_care, no_gt.matched) == (0, 1, 0)
    assert (no_gt.recall, no_gt.precision) == (1.0, 0.0)  # official per-image values
    hit = evaluate_image([rect(0, 0, 10, 10)], [False], [rect(0, 0, 10, 10)])
    totals = combine([hit, no_gt])
    assert totals["recall"] == 1.0 and totals["precision"] == 0.5  # the FP of the GT-less image counts
    only_dont_care = evaluate_image([rect(0, 0, 10, 10)], [True], [rect(0, 0, 10, 10)])
    assert only_dont_care.det_care == 0 and combine([hit, only_dont_care])["precision"] == 1.0
    empty = evaluate_image([], [], [])
    assert (empty.recall, empty.precision) == (1.0, 1.0) and combine([empty])["hmean"] == 0.0


def test_image_without_detections():
    result = evaluate_image([rect(0, 0, 10, 10), rect(20, 0, 30, 10)], [False, True], [])
    assert (result.gt_care, result.det_care, result.matched) == (1, 0, 0)
    assert (result.recall, result.precision) == (0.0, 0.0)
    totals = combine([result, evaluate_image([rect(0, 0, 10, 10)], [False], [rect(0, 0, 10, 10)])])
    assert totals["recall"] == 0.5 and totals["precision"] == 1.0
    assert totals["hmean"] == pytest.approx(2 * 0.5 / 1.5)


def test_dont_care_gt_never_matches_and_removed_detection_cannot_match():
    gts = [rect(0, 0, 10, 10), rect(0, 0, 10, 10)]
    result = evaluate_image(gts, [True, False], [rect(0, 0, 10, 10)])
    assert result.det_dont_care == [0] and result.matched == 0 and result.gt_care == 1


def test_invalid_and_degenerate_polygons():
    bowtie = np.array([[0, 0], [10, 10], [10, 0], [0, 10]], np.float32)  # self-intersecting
    geom = to_geometry(bowtie)
    assert geom.is_valid and geom.area == pytest.approx(50.0)  # both triangles kept
    # two triangles (left and right) of a 10x10 square: IoU with the square = 50/100, not a match;
    # against the right triangle alone (area 25): IoU 25/50 = 0.5, not a match either
    assert evaluate_image([rect(0, 0, 10, 10)], [False], [bowtie]).matched == 0
    assert to_geometry([[0, 0], [1, 1]]).area == 0
    flat = evaluate_image([rect(0, 0, 10, 10)], [True], [np.array([[0, 0], [5, 0], [9, 0]], np.float32)])
    assert flat.det_care == 1 and flat.det_dont_care == []  # zero area: never don't care (official)


# ------------------------------------------------------------------------- independent checks
def _raster_iou(a, b, step=0.05):
    lo = np.minimum(a.min(0), b.min(0)) - 1
    hi = np.maximum(a.max(0), b.max(0)) + 1
    xs, ys = np.meshgrid(np.arange(lo[0], hi[0], step) + step / 2, np.arange(lo[1], hi[1], step) + step / 2)
    grid = np.stack([xs.ravel(), ys.ravel()], 1)
    in_a, in_b = MplPath(a).contains_points(grid), MplPath(b).contains_points(grid)
    union = np.logical_or(in_a, in_b).sum()
    return np.logical_and(in_a, in_b).sum() / union if union else 0.0


def _random_quad(rng, centre, size, jitter=0.3):
    """A jittered rotated rectangle; redrawn until valid (invalid polygons have their own test)."""
    while True:
        w, h = rng.uniform(2, size, 2)
        angle = rng.uniform(0, np.pi)
        corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        quad = (corners @ rot.T + centre + rng.normal(0, jitter, (4, 2))).astype(np.float32)
        if Polygon(quad).is_valid:
            return quad


def _jittered(rng, quad, sigma):
    while True:
        moved = quad + rng.normal(0, sigma, quad.shape).astype(np.float32)
        if Polygon(moved).is_valid:
            return moved


def test_iou_agrees_with_rasterised_polygons():
    rng = np.random.default_rng(0)
    for _ in range(25):
        a = _random_quad(rng, rng.uniform(10, 14, 2), 10)
        b = _random_quad(rng, rng.uniform(10, 14, 2), 10)
        ours = iou_matrix([to_geometry(a)], [to_geometry(b)])[0, 0]
        assert ours == pytest.approx(_raster_iou(a, b), abs=0.01)


def _literal_official(gts, ignore, dets):
    """The official script's loops, one pair at a time with plain shapely polygons."""
    gt_polys, det_polys = [Polygon(g) for g in gts], [Polygon(d) for d in dets]
    dont_care_gt = [i for i, flag in enumerate(ignore) if flag]
    dont_care_det = []
    for d, det in enumerate(det_polys):
        for g in dont_care_gt:
            inter = gt_polys[g].intersection(det).area
            if (0 if det.area == 0 else inter / det.area) > 0.5:
                dont_care_det.append(d)
                break
    gt_done, det_done, pairs = [0] * len(gts), [0] * len(dets), []
    for g in range(len(gts)):
        for d in range(len(dets)):
            if gt_done[g] or det_done[d] or g in dont_care_gt or d in dont_care_det:
                continue
            inter = gt_polys[g].intersection(det_polys[d]).area
            union = gt_polys[g].area + det_polys[d].area - inter
            if inter / union > 0.5:
                gt_done[g], det_done[d] = 1, 1
                pairs.append((g, d))
    return pairs, len(gts) - len(dont_care_gt), len(dets) - len(dont_care_det)


def test_matching_agrees_with_a_literal_loop_on_random_polygons():
    rng = np.random.default_rng(1)
    samples, expected = [], []
    for _ in range(30):
        gts = [_random_quad(rng, rng.uniform(0, 60, 2), 14) for _ in range(int(rng.integers(0, 8)))]
        ignore = list(rng.random(len(gts)) < 0.25)
        dets = [_jittered(rng, g, 1.5) for g in gts if rng.random() < 0.8]
        dets += [_jittered(rng, g, 1.0) for g in gts if rng.random() < 0.3]
        dets += [_random_quad(rng, rng.uniform(0, 60, 2), 14) for _ in range(int(rng.integers(0, 4)))]
        order = rng.permutation(len(dets))
        dets = [dets[i] for i in order]
        samples.append((gts, ignore, dets))
        expected.append(_literal_official(gts, ignore, dets))
    totals, results = evaluate(samples)
    for result, (pairs, gt_care, det_care) in zip(results, expected):
        assert result.pairs == pairs
        assert (result.gt_care, result.det_care) == (gt_care, det_care)
    matched = sum(len(p) for p, _, _ in expected)
    assert totals["recall"] == pytest.approx(matched / sum(g for _, g, _ in expected))
    assert totals["precision"] == pytest.approx(matched / sum(d for _, _, d in expected))
    assert 20 < matched  # the random sets really produce matches and misses
    assert any(r.det_dont_care for r in results) and totals["precision"] < 1 and totals["recall"] < 1


# ------------------------------------------------------------------------------- detection files
def test_read_detections_text_and_json(tmp_path):
    (tmp_path / "res_a.txt").write_text("\ufeff1,2,3,2,3,4,1,4\n\n5,5,9,5,9,9,5,9\n")
    polys, scores = read_detections(tmp_path / "res_a.txt")
    assert scores is None and len(polys) == 2
    np.testing.assert_array_equal(polys[0], [[1, 2], [3, 2], [3, 4], [1, 4]])
    (tmp_path / "mixed.txt").write_text("1,2,3,2,3,4,1,4\n5,5,9,5,9,9,5,9,0.75\n")
    with pytest.raises(ValueError, match="score"):
        read_detections(tmp_path / "mixed.txt")
    (tmp_path / "b.txt").write_text("1,2,3,2,3,4,1,4,0.5\n5,5,9,5,9,9,0.25\n")
    polys, scores = read_detections(tmp_path / "b.txt")
    assert [p.shape for p in polys] == [(4, 2), (3, 2)] and scores.tolist() == [0.5, 0.25]
    (tmp_path / "c.txt").write_text("1,2,3,2,3,4,1,4,some text\n")
    polys, scores = read_detections(tmp_path / "c.txt")
    assert len(polys) == 1 and scores is None
    (tmp_path / "d.json").write_text('{"polygons": [[[0, 0], [4, 0], [4, 4]]], "scores": [0.9]}')
    polys, scores = read_detections(tmp_path / "d.json")
    assert polys[0].shape == (3, 2) and scores.tolist() == pytest.approx([0.9])
    (tmp_path / "e.txt").write_text("1,2,3,2,3,4,1,4\n1,2\n")
    with pytest.raises(ValueError, match=r"e.txt:2"):
        read_detections(tmp_path / "e.txt")
    (tmp_path / "f.txt").write_text("1,2,3,nan,3,4,1,4\n")
    with pytest.raises(ValueError, match=r"f.txt:1: non-finite"):
        read_detections(tmp_path / "f.txt")


def test_read_detections_bad_files_name_the_file(tmp_path):
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match=r"binary.txt: not a UTF-8 text file"):
        read_detections(tmp_path / "binary.txt")
    (tmp_path / "short.json").write_text('{"polygons": [[[0, 0], [4, 0], [4, 4]]], "scores": [0.9, 0.8]}')
    with pytest.raises(ValueError, match=r"short.json: 2 scores for 1 polygons"):
        read_detections(tmp_path / "short.json")
    (tmp_path / "words.json").write_text('{"polygons": [[[0, 0], [4, 0], [4, 4]]], "scores": ["high"]}')
    with pytest.raises(ValueError, match=r"words.json: 'scores' must be a list of numbers"):
        read_detections(tmp_path / "words.json")


# ------------------------------------------------------------------------------ bootstrap interval
def test_bootstrap_interval_agrees_with_a_loop_over_combine():
    rng = np.random.default_rng(3)
    results = [ImageResult(gt_care=int(g), det_care=int(d), matched=int(min(g, d, m)))
               for g, d, m in rng.integers(0, 9, size=(40, 3))]
    draws = np.random.default_rng(11).integers(0, len(results), size=(300, len(results)))
    hmeans = [combine([results[i] for i in row])["hmean"] for row in draws]   # the same draws, one by one
    low, high = bootstrap_interval(results, resamples=300, level=0.9, seed=11)
    assert low == pytest.approx(np.percentile(hmeans, 5)) and high == pytest.approx(np.percentile(hmeans, 95))
    assert low < combine(results)["hmean"] < high


def test_bootstrap_interval_of_identical_images_is_a_point_and_narrows_with_more_images():
    same = [ImageResult(gt_care=5, det_care=4, matched=3)] * 10
    low, high = bootstrap_interval(same, resamples=200)
    assert low == pytest.approx(combine(same)["hmean"]) == pytest.approx(high)
    varied = [ImageResult(gt_care=5, det_care=5, matched=m) for m in (0, 5, 2, 4, 1)]
    few = np.subtract(*bootstrap_interval(varied, 2000)[::-1])
    many = np.subtract(*bootstrap_interval(varied * 20, 2000)[::-1])
    assert many < few / 2          # width ~ 1 / sqrt(images): 20x the images, about 4.5x narrower
    with pytest.raises(ValueError, match="at least one image"):
        bootstrap_interval([])


def test_paired_bootstrap_agrees_with_a_loop_over_combine():
    rng = np.random.default_rng(4)
    gt = rng.integers(1, 9, 30)
    model = [ImageResult(gt_care=int(g), det_care=int(g), matched=int(rng.integers(0, g + 1))) for g in gt]
    baseline = [ImageResult(gt_care=int(g), det_care=int(g) + 1, matched=int(rng.integers(0, g + 1))) for g in gt]
    draws = np.random.default_rng(2).integers(0, 30, size=(400, 30))
    differences = [combine([model[i] for i in row])["hmean"] - combine([baseline[i] for i in row])["hmean"]
                   for row in draws]   # both models on the same drawn images, one draw at a time
    difference, low, high, higher = paired_bootstrap(model, baseline, resamples=400, level=0.8, seed=2)
    assert difference == pytest.approx(combine(model)["hmean"] - combine(baseline)["hmean"])
    assert low == pytest.approx(np.percentile(differences, 10))
    assert high == pytest.approx(np.percentile(differences, 90))
    assert higher == pytest.approx(np.mean(np.array(differences) > 0))


def test_paired_bootstrap_of_a_model_against_itself_or_a_uniformly_better_one():
    results = [ImageResult(gt_care=5, det_care=5, matched=m) for m in (0, 5, 2, 4, 1)]
    assert paired_bootstrap(results, results, 200) == (0.0, 0.0, 0.0, 0.0)
    better = [ImageResult(gt_care=5, det_care=5, matched=min(5, m + 1)) for m in (0, 5, 2, 4, 1)]
    difference, low, high, higher = paired_bootstrap(better, results, 500)
    # unpaired intervals of these two overlap widely; paired, every resample but all-img_2 ones favours `better`
    assert difference == pytest.approx(4 / 25) and 0 < low <= high and higher > 0.99
    with pytest.raises(ValueError, match="same images"):
        paired_bootstrap(results, results[:3])
