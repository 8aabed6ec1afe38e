"""Text boxes and polygons from a DB probability map (numpy, OpenCV, pyclipper; no TensorFlow).

The steps are those of the official code (MhLiao/DB, structure/representers/seg_detector_representer.py,
SegDetectorRepresenter.boxes_from_bitmap / polygons_from_bitmap), so the same map gives the same boxes:

1. binarize: pixel is text when probability > ``thresh`` (strict, as the official code); optional 2x2
   dilation of the bitmap (PaddleOCR's ``use_dilation``, off by default);
2. contours of the bitmap (``cv2.RETR_LIST``, ``CHAIN_APPROX_SIMPLE``: hole contours are candidates too, as in
   the official code), at most ``max_candidates`` of them in OpenCV's order;
3. box mode: minimum-area rectangle of the contour, dropped if its short side < 3; score = mean probability
   inside the rectangle ("fast", official) or inside the exact contour ("slow", PaddleOCR's score_mode);
   dropped if score < ``box_thresh``; the rectangle is unclipped (grown) by D' = A' r' / L' (A' area,
   L' perimeter, r' = ``unclip_ratio``, pyclipper round joins), then the minimum-area rectangle of the grown
   shape is the box, dropped if its short side < 5;
   polygon mode: ``approxPolyDP`` with epsilon = 0.002 x contour perimeter (dropped below 4 vertices), score on
   the approximated polygon ("fast") or the contour ("slow"), unclip with ratio 2.0 by default, dropped when
   the unclipped shape splits into several pieces or its minimum-area rectangle's short side < 5;
4. coordinates are scaled from the map to the original image (x / map width x image width, likewise y),
   rounded to integers (as the official code) and clipped to [0, width] x [0, height].

Where we differ from the official code (the boxes/polygons themselves are identical):
- only the kept detections are returned (the official box mode returns zero rows for dropped contours);
- an unclip result with no piece at all is dropped instead of crashing;
- polygons are returned clockwise (in image coordinates, y down) starting at the vertex nearest to the
  top-left (smallest x + y); boxes keep the official corner order, which already is top-left, top-right,
  bottom-right, bottom-left (clockwise);
- ``valid_size`` lets a map padded for batching be read only in its valid top-left part;
- optional (``threshold_map``, off by default; not in the official code): a candidate region that the
  network's own threshold map cuts into several pieces is replaced by those pieces (see split_by_threshold).

Speed: the per-contour work is the same OpenCV / pyclipper calls as the official code; everything else
(corner ordering, unclip distances, scaling, filters) is done on all candidates at once with numpy, and the
rectangle's area and perimeter come from a shoelace formula instead of building shapely polygons.
"""
import cv2
import numpy as np
import pyclipper

from db_tf.defaults import detector_defaults

MIN_SIZE = 3  # official `min_size`: short side of a candidate rectangle before unclipping
MIN_SIZE_UNCLIPPED = MIN_SIZE + 2  # short side of the unclipped box
POLYGON_EPSILON = 0.002  # approxPolyDP tolerance as a fraction of the contour perimeter
SCORE_MODES = ("fast", "slow")
_DEFAULT = detector_defaults()


def postprocess(prob_map, dest_size=None, valid_size=None, *, thresh=_DEFAULT["thresh"],
                box_thresh=_DEFAULT["box_thresh"], unclip_ratio=None, polygon=False,
                score_mode=_DEFAULT["score_mode"], dilate=False, max_candidates=_DEFAULT["max_candidates"],
                threshold_map=None):
    """Detections of one probability map.

    prob_map: (H, W) or (H, W, 1) probabilities in [0, 1].
    valid_size: (h, w) of the part of the map that belongs to the image (the rest is batch padding);
        default: the whole map.
    dest_size: (height, width) of the original image the coordinates are scaled to; default: valid_size.
    unclip_ratio: default 1.5 for boxes, 2.0 for polygons (the official values; db_tf/defaults.py).
    threshold_map: the network's threshold map T (same shape as prob_map): when given, candidates are split
        where T cuts them (split_by_threshold).
    Returns (polygons, scores): a list of float32 (K, 2) arrays of integer-valued (x, y) and a float32 (n,)
    array. Boxes have K = 4.
    """
    prob = _as_map(prob_map)
    if valid_size is not None:
        vh, vw = int(valid_size[0]), int(valid_size[1])
        if not (0 < vh <= prob.shape[0] and 0 < vw <= prob.shape[1]):
            raise ValueError(f"valid_size {tuple(valid_size)} does not fit in the map of shape {prob.shape}")
        prob = prob[:vh, :vw]
    dest_size = prob.shape if dest_size is None else (int(dest_size[0]), int(dest_size[1]))
    if score_mode not in SCORE_MODES:
        raise ValueError(f"score_mode must be one of {SCORE_MODES}, got {score_mode!r}")
    if unclip_ratio is None:
        unclip_ratio = _DEFAULT["poly_unclip_ratio" if polygon else "unclip_ratio"]
    prob = np.ascontiguousarray(prob)  # cv2.mean needs contiguous rows
    contours = find_candidates(prob, thresh, dilate, max_candidates)
    if threshold_map is not None:
        threshold = _as_map(threshold_map)
        if threshold.shape[0] < prob.shape[0] or threshold.shape[1] < prob.shape[1]:
            raise ValueError(f"threshold_map of shape {threshold.shape} is smaller than the probability map "
                             f"{prob.shape}")
        contours = split_by_threshold(prob, threshold[:prob.shape[0], :prob.shape[1]], contours, thresh)
    if polygon:
        polygons, scores = _polygons_from_contours(prob, contours, box_thresh, unclip_ratio, score_mode)
    else:
        polygons, scores = _boxes_from_contours(prob, contours, box_thresh, unclip_ratio, score_mode)
    polygons = _rescale_all(polygons, prob.shape, dest_size)
    if polygon:
        polygons = [clockwise_from_top_left(p) for p in polygons]
    return polygons, np.asarray(scores, dtype=np.float32)


def find_candidates(prob, thresh, dilate=False, max_candidates=1000):
    """Contours of the binarized map (probability > thresh), at most max_candidates, in OpenCV's order."""
    bitmap = (prob > thresh).view(np.uint8)  # bool -> uint8 without a copy; non-zero = text
    if dilate:
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    return contours[:max_candidates]


def split_by_threshold(prob, threshold, contours, thresh):
    """Candidates with the regions that the threshold map cuts apart replaced by their pieces.

    DB's threshold map T is learned to be high on text borders, and the approximate binary map is
    B = sigmoid(k (P - T)). Two neighbouring words can stay joined in P > thresh when P does not dip below
    thresh between them, while P > T parts them. Each candidate region (the filled contour, restricted to
    P > thresh) is cut with P > T; when that leaves two or more pieces whose minimum-area rectangles have a
    short side >= MIN_SIZE, the pieces are the candidates instead (scored and unclipped as any other);
    otherwise the region stays whole, so words that P > T would only erode are left as they are.
    """
    above = (prob > thresh) & (prob > threshold)
    out = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        region = np.zeros((h, w), np.uint8)
        cv2.drawContours(region, [contour], -1, 1, thickness=-1, offset=(-x, -y))
        region &= above[y:y + h, x:x + w]
        pieces, _ = cv2.findContours(region, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE, offset=(x, y))
        pieces = [p for p in pieces if min(cv2.minAreaRect(p)[1]) >= MIN_SIZE]
        out.extend(pieces if len(pieces) >= 2 else [contour])
    return out


# ------------------------------------------------------------------------------------------- box mode
def _boxes_from_contours(prob, contours, box_thresh, unclip_ratio, score_mode):
    if not contours:
        return [], []
    rects = [cv2.minAreaRect(c) for c in contours]
    short_sides = np.array([min(r[1]) for r in rects])
    keep = np.flatnonzero(short_sides >= MIN_SIZE)
    if keep.size == 0:
        return [], []
    boxes = order_corners(np.stack([cv2.boxPoints(rects[i]) for i in keep]))
    if score_mode == "fast":
        scores = box_scores(prob, boxes)
    else:
        scores = np.array([integer_region_score(prob, contours[i].reshape(-1, 2)) for i in keep])
    passed = scores >= box_thresh
    boxes, scores = boxes[passed], scores[passed]
    distances = polygon_areas(boxes) * unclip_ratio / polygon_perimeters(boxes)
    final_boxes, final_scores = [], []
    for box, distance, score in zip(boxes, distances, scores):
        pieces = unclip(box, distance)
        if not pieces:
            continue
        # the official code feeds all pieces' points to minAreaRect (a rectangle never splits anyway)
        rect = cv2.minAreaRect(np.concatenate(pieces).astype(np.int32).reshape(-1, 1, 2))
        if min(rect[1]) < MIN_SIZE_UNCLIPPED:
            continue
        final_boxes.append(cv2.boxPoints(rect))
        final_scores.append(score)
    if not final_boxes:
        return [], []
    return list(order_corners(np.stack(final_boxes))), final_scores


def order_corners(boxes):
    """(n, 4, 2) rectangle corners -> top-left, top-right, bottom-right, bottom-left (the official rule).

    The two corners with the smallest x (stable sort) form the left side; of each side the corner with the
    smaller y comes first (on a y tie, the later one in x order, as the official code).
    """
    order = np.argsort(boxes[:, :, 0], axis=1, kind="stable")
    pts = np.take_along_axis(boxes, order[:, :, None], axis=1)
    left_down = pts[:, 1, 1] > pts[:, 0, 1]  # second-leftmost corner lies lower: first one is top-left
    right_down = pts[:, 3, 1] > pts[:, 2, 1]
    top_left = np.where(left_down[:, None], pts[:, 0], pts[:, 1])
    bottom_left = np.where(left_down[:, None], pts[:, 1], pts[:, 0])
    top_right = np.where(right_down[:, None], pts[:, 2], pts[:, 3])
    bottom_right = np.where(right_down[:, None], pts[:, 3], pts[:, 2])
    return np.stack([top_left, top_right, bottom_right, bottom_left], axis=1)


# --------------------------------------------------------------------------------------- polygon mode
def _polygons_from_contours(prob, contours, box_thresh, unclip_ratio, score_mode):
    polygons, scores = [], []
    for contour in contours:
        epsilon = POLYGON_EPSILON * cv2.arcLength(contour, True)
        points = cv2.approxPolyDP(contour, epsilon, True).reshape(-1, 2)
        if len(points) < 4:
            continue
        score = integer_region_score(prob, points if score_mode == "fast" else contour.reshape(-1, 2))
        if score < box_thresh:
            continue
        # shoelace area and perimeter of the approximated polygon (what shapely's area / length give)
        distance = abs(cv2.contourArea(points)) * unclip_ratio / cv2.arcLength(points, True)
        pieces = unclip(points, distance)
        if len(pieces) != 1:  # several pieces: the text is not one region (official rule); none: nothing left
            continue
        expanded = np.asarray(pieces[0], dtype=np.int32).reshape(-1, 2)  # OpenCV 4 wants int32, not int64
        if min(cv2.minAreaRect(expanded.reshape(-1, 1, 2))[1]) < MIN_SIZE_UNCLIPPED:
            continue
        polygons.append(expanded)
        scores.append(score)
    return polygons, scores


def clockwise_from_top_left(polygon):
    """Same polygon, vertices clockwise in image coordinates (y down), starting at the smallest x + y."""
    if signed_area(polygon) < 0:
        polygon = polygon[::-1]
    start = int(np.argmin(polygon[:, 0] + polygon[:, 1]))
    return np.concatenate([polygon[start:], polygon[:start]])


# ---------------------------------------------------------------------------------------- shared steps
def integer_region_score(prob, points):
    """Mean probability over the pixels cv2.fillPoly covers for integer points inside the map (contours and
    their approximations), as box_scores / PaddleOCR's box_score_slow: the crop is their bounding
    rectangle, so no rounding or clipping is needed."""
    x, y, w, h = cv2.boundingRect(points)
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(mask, (points - np.array([x, y], dtype=points.dtype)).reshape(1, -1, 2), 1)
    return cv2.mean(prob[y:y + h, x:x + w], mask)[0]


def box_scores(prob, boxes):
    """Mean probability over the pixels cv2.fillPoly covers for each (n, 4, 2) float box, as the official
    box_score_fast: a bounding-box crop (floor / ceil, clipped to the map) and a filled mask inside it; the
    corners are truncated to integers after the shift into the crop, as the official code does. The crop
    bounds of all boxes are computed at once."""
    h, w = prob.shape
    low = np.floor(boxes.min(axis=1)).astype(np.int64)  # (n, 2) x, y
    high = np.ceil(boxes.max(axis=1)).astype(np.int64)
    low = np.clip(low, 0, [w - 1, h - 1])
    high = np.clip(high, 0, [w - 1, h - 1])
    shifted = (boxes - low[:, None, :].astype(boxes.dtype)).astype(np.int32)  # truncation, as official
    scores = np.empty(len(boxes))
    for i, ((x0, y0), (x1, y1)) in enumerate(zip(low.tolist(), high.tolist())):
        mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
        cv2.fillPoly(mask, shifted[i:i + 1], 1)
        scores[i] = cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], mask)[0]
    return scores


def unclip(points, distance):
    """Grow a polygon by ``distance`` with round joins (pyclipper; float coordinates are truncated to
    integers by pyclipper, as in the official code). Returns the list of resulting paths."""
    offset = pyclipper.PyclipperOffset()
    # a list is read faster than a numpy array; float32 -> Python float is exact, so the same path
    offset.AddPath(np.asarray(points).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return offset.Execute(float(distance))


def signed_area(polygon):
    """Shoelace area; positive for clockwise vertices in image coordinates (y down), as OpenCV's."""
    return cv2.contourArea(np.asarray(polygon, np.float32), oriented=True)


def polygon_areas(polygons):
    """Absolute shoelace areas of (n, K, 2) polygons (what shapely's Polygon.area gives for these rings)."""
    p = polygons.astype(np.float64)
    nxt = np.roll(p, -1, axis=1)
    return 0.5 * np.abs(np.sum(p[..., 0] * nxt[..., 1] - nxt[..., 0] * p[..., 1], axis=1))


def polygon_perimeters(polygons):
    p = polygons.astype(np.float64)
    return np.sum(np.linalg.norm(np.roll(p, -1, axis=1) - p, axis=2), axis=1)


def _rescale_all(polygons, map_size, dest_size):
    """Map coordinates -> original image coordinates, rounded and clipped as the official code does, for
    all polygons in one numpy pass. The arithmetic keeps the points' dtype as the official code (float32
    for boxes; integer polygons from pyclipper -> float64)."""
    if not polygons:
        return []
    (map_h, map_w), (dest_h, dest_w) = map_size, dest_size
    points = np.concatenate(polygons)
    x = np.clip(np.round(points[:, 0] / map_w * dest_w), 0, dest_w)
    y = np.clip(np.round(points[:, 1] / map_h * dest_h), 0, dest_h)
    scaled = np.stack([x, y], axis=1).astype(np.float32)
    return np.split(scaled, np.cumsum([len(p) for p in polygons])[:-1])


def _as_map(prob_map):
    prob = np.asarray(prob_map)
    if prob.ndim == 3 and prob.shape[-1] == 1:
        prob = prob[..., 0]
    if prob.ndim != 2:
        raise ValueError(f"expected a (H, W) or (H, W, 1) probability map, got shape {prob.shape}")
    if prob.size == 0:
        raise ValueError(f"empty probability map of shape {prob.shape}")
    return prob.astype(np.float32, copy=False)
