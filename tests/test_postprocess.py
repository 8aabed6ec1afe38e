"""db_tf.postprocess against hand-worked cases and an independent, straightforward re-implementation of the
official steps (MhLiao/DB SegDetectorRepresenter, written here loop by loop with shapely, as the official code
does; it shares nothing with db_tf.postprocess). bench/bench_postprocess.py imports `reference_postprocess`
and `random_blob_map` from here."""
import math

import cv2
import numpy as np
import pyclipper
import pytest
from shapely.geometry import Polygon

from db_tf.postprocess import clockwise_from_top_left, order_corners, postprocess


# ----------------------------------------------------------------------- independent reference
def _ref_mini_box(points):
    rect = cv2.minAreaRect(points)
    pts = sorted(list(cv2.boxPoints(rect)), key=lambda p: p[0])
    first, fourth = (0, 1) if pts[1][1] > pts[0][1] else (1, 0)
    second, third = (2, 3) if pts[3][1] > pts[2][1] else (3, 2)
    return np.array([pts[first], pts[second], pts[third], pts[fourth]]), min(rect[1])


def _ref_mean_inside(prob, poly):
    h, w = prob.shape
    poly = poly.copy()
    x0 = int(np.clip(np.floor(poly[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(poly[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(poly[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(poly[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    poly[:, 0] = poly[:, 0] - x0
    poly[:, 1] = poly[:, 1] - y0
    cv2.fillPoly(mask, poly.reshape(1, -1, 2).astype(np.int32), 1)
    return cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], mask)[0]


def _ref_unclip(poly, ratio):
    shape = Polygon(poly)
    distance = shape.area * ratio / shape.length
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(poly, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return offset.Execute(distance)


def reference_postprocess(prob, dest_size, thresh=0.3, box_thresh=0.6, unclip_ratio=None, polygon=False,
                          score_mode="fast", dilate=False, max_candidates=1000):
    """One contour at a time, exactly the official order of operations; returns (list of (K,2) int, scores)."""
    height, width = prob.shape
    dest_h, dest_w = dest_size
    bitmap = (prob > thresh).astype(np.uint8) * 255
    if dilate:
        bitmap = cv2.dilate(bitmap, np.array([[1, 1], [1, 1]], np.uint8))
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out, scores = [], []
    for contour in contours[:max_candidates]:
        if polygon:
            approx = cv2.approxPolyDP(contour, 0.002 * cv2.arcLength(contour, True), True)
            points = approx.reshape(-1, 2)
            if points.shape[0] < 4:
                continue
            score = _ref_mean_inside(prob, points if score_mode == "fast" else contour.reshape(-1, 2))
            if score < box_thresh:
                continue
            grown = _ref_unclip(points, 2.0 if unclip_ratio is None else unclip_ratio)
            if len(grown) != 1:
                continue
            result = np.array(grown[0]).reshape(-1, 2)
            if _ref_mini_box(result.reshape(-1, 1, 2))[1] < 5:
                continue
        else:
            points, side = _ref_mini_box(contour)
            if side < 3:
                continue
            score = _ref_mean_inside(prob, points if score_mode == "fast" else contour.reshape(-1, 2))
            if score < box_thresh:
                continue
            grown = np.array(_ref_unclip(points, 1.5 if unclip_ratio is None else unclip_ratio))
            result, side = _ref_mini_box(grown.reshape(-1, 1, 2))
            if side < 5:
                continue
        result = result.copy()
        result[:, 0] = np.clip(np.round(result[:, 0] / width * dest_w), 0, dest_w)
        result[:, 1] = np.clip(np.round(result[:, 1] / height * dest_h), 0, dest_h)
        out.append(result.astype(np.int64))
        scores.append(score)
    return out, scores


def random_blob_map(rng, height, width, num_texts, min_height=4, max_height=40, min_peak=0.4):
    """A DB-like probability map: rotated, blurred text-line blobs of random size and peak probability
    (mostly confident, some weak), placed without overlapping, plus sparse speckle."""
    prob = np.zeros((height, width), np.float32)
    occupied = np.zeros((height, width), np.uint8)
    for _ in range(num_texts):
        for _attempt in range(20):  # look for a free spot, as text lines rarely overlap
            text_h = rng.uniform(min_height, max_height)
            text_w = min(text_h * rng.uniform(1.0, 12.0), 0.8 * width)
            angle = rng.uniform(-30, 30) if rng.random() < 0.5 else 0.0
            centre = (rng.uniform(0, width), rng.uniform(0, height))
            corners = np.round(cv2.boxPoints((centre, (text_w, text_h), angle))).astype(np.int32)
            blob = np.zeros_like(occupied)
            cv2.fillPoly(blob, [corners], 1)
            if not (blob & occupied).any():
                break
        occupied |= cv2.dilate(blob, np.ones((5, 5), np.uint8))
        peak = rng.uniform(0.85, 1.0) if rng.random() < 0.8 else rng.uniform(min_peak, 0.85)
        prob[blob > 0] = np.float32(peak)
    prob = cv2.GaussianBlur(prob, (0, 0), 1.5)
    # sparse speckle: about one speck in 8000 pixels crosses thresh 0.3 and becomes a tiny candidate
    prob += rng.uniform(0, 0.32, prob.shape).astype(np.float32) * (rng.random(prob.shape) < 0.002)
    return np.clip(prob, 0, 1)


def _same_detections(ours, reference, polygon):
    polys, scores = ours
    ref_polys, ref_scores = reference
    assert len(polys) == len(ref_polys)
    for poly, ref in zip(polys, ref_polys):
        if polygon:  # ours is re-ordered (clockwise from top-left): compare as the same cyclic sequence
            ref = clockwise_from_top_left(ref.astype(np.float32))
        np.testing.assert_array_equal(poly, ref.astype(np.float32))
    np.testing.assert_allclose(scores, np.asarray(ref_scores, np.float32), rtol=1e-6)


# --------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("polygon", [False, True])
@pytest.mark.parametrize("score_mode", ["fast", "slow"])
def test_matches_reference_on_random_blob_maps(polygon, score_mode):
    rng = np.random.default_rng(7 + polygon + 2 * (score_mode == "slow"))
    total = 0
    for trial in range(6):
        prob = random_blob_map(rng, 160, 192, num_texts=int(rng.integers(3, 15)), max_height=24)
        dest = (int(rng.integers(50, 400)), int(rng.integers(50, 400))) if trial % 2 else prob.shape
        kwargs = dict(thresh=0.3, box_thresh=float(rng.uniform(0.3, 0.7)), polygon=polygon,
                      score_mode=score_mode, dilate=bool(trial % 3 == 0))
        ours = postprocess(prob, dest, **kwargs)
        _same_detections(ours, reference_postprocess(prob, dest, **kwargs), polygon)
        total += len(ours[0])
    assert total > 10  # the comparison really compared detections


def test_max_candidates_limits_contours_like_the_reference():
    prob = np.zeros((96, 128), np.float32)
    for row in range(4):  # 8 separate 12x7 blobs
        prob[4 + 24 * row:11 + 24 * row, 10:22] = 1.0
        prob[4 + 24 * row:11 + 24 * row, 60:72] = 1.0
    assert len(postprocess(prob)[0]) == 8
    for limit in (1, 3, 5):
        ours = postprocess(prob, max_candidates=limit)
        _same_detections(ours, reference_postprocess(prob, prob.shape, max_candidates=limit), False)
        assert len(ours[0]) == limit


def _rectangle_blob(x0, y0, x1, y1, shape=(96, 128), value=1.0):
    prob = np.zeros(shape, np.float32)
    prob[y0:y1 + 1, x0:x1 + 1] = value
    return prob


def test_rectangle_blob_gives_the_hand_worked_unclipped_box():
    # Pixels x 20..60, y 30..40: the contour runs through the border pixel centres, so the min-area rectangle
    # is 40 x 10; D' = A' r' / L' = 400 * 1.5 / 100 = 6, so the box grows by 6 on every side.
    polys, scores = postprocess(_rectangle_blob(20, 30, 60, 40))
    assert len(polys) == 1
    np.testing.assert_array_equal(polys[0], [[14, 24], [66, 24], [66, 46], [14, 46]])
    assert scores[0] == pytest.approx(1.0)


def test_rectangle_blob_is_scaled_to_the_original_image():
    # The map is the 96x128 resized image of a 192x384 original: x scales by 3, y by 2.
    polys, _ = postprocess(_rectangle_blob(20, 30, 60, 40), dest_size=(192, 384))
    np.testing.assert_array_equal(polys[0], [[42, 48], [198, 48], [198, 92], [42, 92]])


def test_padded_area_is_ignored_and_valid_part_is_scaled():
    # Text in the valid 64x96 part, and "text" in the padding, which must be ignored.
    prob = _rectangle_blob(10, 20, 50, 30, shape=(96, 128))
    prob[70:90, 100:120] = 1.0
    polys, _ = postprocess(prob, dest_size=(128, 192), valid_size=(64, 96))
    assert len(polys) == 1
    # 40 x 10 rectangle grown by 6 -> x 4..56, y 14..36 in the map; x2 to the 128x192 original
    np.testing.assert_array_equal(polys[0], [[8, 28], [112, 28], [112, 72], [8, 72]])


def test_box_score_filter_and_small_boxes():
    prob = _rectangle_blob(20, 30, 60, 40, value=0.5)
    assert len(postprocess(prob, box_thresh=0.6)[0]) == 0  # mean 0.5 < 0.6
    kept, scores = postprocess(prob, box_thresh=0.5)  # score >= box_thresh is kept, as official
    assert len(kept) == 1 and scores[0] == pytest.approx(0.5)
    # a blob 2 pixels high has a 1-pixel short side (< 3): dropped before scoring
    assert len(postprocess(_rectangle_blob(20, 30, 60, 31))[0]) == 0
    # nothing above thresh (strict >): nothing found
    assert len(postprocess(np.full((64, 64), 0.3, np.float32))[0]) == 0


def test_polygon_mode_rectangle_blob_is_grown_by_the_polygon_distance():
    # Same 40 x 10 rectangle; polygon unclip ratio 2.0 -> D' = 400 * 2 / 100 = 8, round corners.
    polys, scores = postprocess(_rectangle_blob(20, 30, 60, 40), polygon=True)
    assert len(polys) == 1 and scores[0] == pytest.approx(1.0)
    poly = polys[0]
    assert poly[:, 0].min() == 12 and poly[:, 0].max() == 68
    assert poly[:, 1].min() == 22 and poly[:, 1].max() == 48
    expected_area = 40 * 10 + 8 * 2 * (40 + 10) + math.pi * 8 ** 2  # rectangle + sides + 4 quarter discs
    assert Polygon(poly).area == pytest.approx(expected_area, rel=0.02)


def test_polygons_are_clockwise_from_top_left():
    prob = random_blob_map(np.random.default_rng(11), 160, 160, num_texts=10)
    for polygon in (False, True):
        polys, _ = postprocess(prob, polygon=polygon, box_thresh=0.3)
        assert polys
        for poly in polys:
            x, y = poly[:, 0].astype(float), poly[:, 1].astype(float)
            assert np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0  # clockwise with y pointing down
            if polygon:
                assert np.argmin(x + y) == 0


def test_order_corners_on_hand_made_rectangles():
    # A 45-degree square: stable sort by x gives left (0,5), bottom (5,10), top (5,0), right (10,5); the left
    # side is (left, bottom) with left on top, the right side (top, right) with top on top.
    diamond = np.array([[[5, 10], [10, 5], [0, 5], [5, 0]]], np.float32)
    np.testing.assert_array_equal(order_corners(diamond)[0], [[0, 5], [5, 0], [10, 5], [5, 10]])
    tilted = np.array([[[2, 4], [0, 0], [-1, 0.5], [1, 4.5]]], np.float32)
    np.testing.assert_array_equal(order_corners(tilted)[0], [[0, 0], [2, 4], [1, 4.5], [-1, 0.5]])


def test_box_threshold_only_filters_scores():
    # What evaluate.py --sweep relies on: running at box_thresh=t equals running at 0 and keeping score >= t.
    prob = random_blob_map(np.random.default_rng(5), 160, 160, num_texts=14)
    for polygon in (False, True):
        all_polys, all_scores = postprocess(prob, box_thresh=0.0, polygon=polygon)
        for t in (0.3, 0.5, 0.7):
            polys, scores = postprocess(prob, box_thresh=t, polygon=polygon)
            kept = [p for p, s in zip(all_polys, all_scores) if s >= t]
            assert len(polys) == len(kept)
            for a, b in zip(polys, kept):
                np.testing.assert_array_equal(a, b)


def test_bad_maps_get_clear_errors():
    with pytest.raises(ValueError, match="probability map"):
        postprocess(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="empty"):
        postprocess(np.zeros((0, 5), np.float32))
    with pytest.raises(ValueError, match="valid_size"):
        postprocess(np.zeros((32, 32), np.float32), valid_size=(64, 32))
    with pytest.raises(ValueError, match="score_mode"):
        postprocess(np.zeros((32, 32), np.float32), score_mode="medium")


# ------------------------------------------------------------------------------- split_by_threshold
def _two_words_with_a_bridge():
    """Two 0.9 'words' joined by a 0.5 bridge: one region of P > 0.3. The threshold map is 0.7 on the
    bridge (a text border, where DB's T is high) and 0.3 elsewhere, so P > T parts the words."""
    prob = np.full((60, 120), 0.05, np.float32)
    threshold = np.full_like(prob, 0.3)
    prob[20:36, 10:50] = 0.9
    prob[20:36, 60:110] = 0.9
    prob[22:34, 50:60] = 0.5
    threshold[18:38, 50:60] = 0.7
    return prob, threshold


@pytest.mark.parametrize("polygon", [False, True])
def test_split_by_threshold_gives_each_word_as_if_alone(polygon):
    prob, threshold = _two_words_with_a_bridge()
    joined, _ = postprocess(prob, box_thresh=0.5, polygon=polygon)
    assert len(joined) == 1   # without the threshold map: one merged detection
    # independent expectation: each word on a map of its own (the bridge and the other word removed)
    expected = []
    for x0, x1 in ((10, 50), (60, 110)):
        alone = np.full_like(prob, 0.05)
        alone[20:36, x0:x1] = 0.9
        expected += postprocess(alone, box_thresh=0.5, polygon=polygon)[0]
    split, scores = postprocess(prob, box_thresh=0.5, polygon=polygon, threshold_map=threshold)
    assert sorted(p.tolist() for p in split) == sorted(p.tolist() for p in expected)
    np.testing.assert_allclose(scores, 0.9, atol=1e-6)


def test_split_by_threshold_keeps_regions_it_does_not_cut_into_sizeable_pieces():
    prob, threshold = _two_words_with_a_bridge()
    plain = postprocess(prob, box_thresh=0.5)[0]
    # a threshold map below P everywhere: nothing is cut
    low = postprocess(prob, box_thresh=0.5, threshold_map=np.zeros_like(threshold))[0]
    assert [p.tolist() for p in low] == [p.tolist() for p in plain]
    # a map that only cuts a 2-pixel-wide sliver off the left end (short side < MIN_SIZE = 3): one sizeable
    # piece is left, so the region stays whole (P > T must not merely erode a word)
    sliver = np.full_like(threshold, 0.3)
    sliver[20:36, 12:14] = 0.95       # pieces: x 10..11 (2 px) and x 14..109 (bridge not cut)
    kept = postprocess(prob, box_thresh=0.5, threshold_map=sliver)[0]
    assert [p.tolist() for p in kept] == [p.tolist() for p in plain]


def test_split_by_threshold_rejects_a_smaller_threshold_map():
    prob, threshold = _two_words_with_a_bridge()
    with pytest.raises(ValueError, match="threshold_map of shape"):
        postprocess(prob, threshold_map=threshold[:10])
