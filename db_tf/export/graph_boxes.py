"""db_tf.postprocess's box mode in TensorFlow ops, so a SavedModel can answer with boxes (signature "boxes").

Same steps as db_tf.postprocess (box mode, "fast" score), each rewritten for graph ops:

1. candidates: 8-connected components of P > thresh (what cv2.findContours outlines). The bitmap is cut into
   horizontal runs; runs of adjacent rows that touch (8-connectivity) are joined by a union-find over runs
   (min-label hooking plus pointer jumping in a tf.while_loop, a few rounds), so the work is per run, not
   per pixel. With ``threshold`` (split_by_threshold) a component that P > T cuts into two or more pieces
   whose rectangles have a short side >= MIN_SIZE is replaced by those pieces, as in postprocess;
2. minimum-area rectangle of each candidate: the convex hull of a component is the hull of its runs' end
   pixels, and the best orientation is searched on those points (a 2-degree grid over 0..90 degrees, then
   0.2 and 0.02-degree grids around the best), with segment reductions over all candidates at once; then
   the angle is snapped to the hull edge the search ended next to (the optimum has a side on a hull
   edge); short side < MIN_SIZE is dropped;
3. score: mean P over the pixels cv2.fillPoly covers for the rectangle's corners truncated to integers (as
   box_scores): per covered row, one interval between the edges (rules fitted to fillPoly, see
   _row_intervals), summed with row prefix sums; score < box_thresh is dropped;
4. unclip: pyclipper offsets the integer-truncated rectangle by D' = A' r' / L' with round joins, and
   postprocess takes the minimum-area rectangle of the result. The offset polygon's integer vertices are
   generated as Clipper does (an arc of points per corner, rounded), and as it is convex its minimum-area
   rectangle has a side along one of its edges: all edge directions are tried; short side <
   MIN_SIZE_UNCLIPPED is dropped;
5. corners ordered as order_corners, scaled to the original image, rounded and clipped as postprocess.

Differences from db_tf.postprocess: hole contours (RETR_LIST also returns the inner outline of a
ring-shaped region) are not candidates; a blob with many hull edges can get a rectangle of slightly
larger area (the search can stop next to another hull edge); fillPoly's Bresenham ties are not all
modelled (about 0.5 % of a box's pixels); a corner that lands on .5 in the image can round the other
way; boxes come in component order (top row first), at most ``max_boxes`` (postprocess caps the
contours at max_candidates before filtering instead). On ICDAR 2015 validation maps
(bench/parity_boxes_signature.py) over 98 % of the boxes of either side have a partner of IoU >= 0.9.
"""
import numpy as np
import tensorflow as tf

from db_tf.postprocess import MIN_SIZE, MIN_SIZE_UNCLIPPED

# orientation search: (half-width of the window around the current best, number of angles) in degrees
ANGLE_STAGES = ((45.0, 46), (2.0, 21), (0.2, 21))


def batch_boxes(probability, resized_size, original_size, thresh, box_thresh, unclip_ratio, max_boxes,
                threshold=None):
    """Boxes of a batch of maps.

    probability: (N, H, W, 1) float32, padded; resized_size / original_size: (N, 2) int32 (the valid map
    region of each image and the image size the boxes are scaled to); thresh / box_thresh / unclip_ratio:
    scalars (Python or tensors); max_boxes: Python int; threshold: (N, H, W, 1) threshold maps for
    split_by_threshold, or None.
    Returns {"boxes": (N, K, 4, 2) float32, "scores": (N, K) float32, "num_boxes": (N,) int32}, K = the
    largest count of the batch (rows past num_boxes[i] are zero).
    """
    thresh, box_thresh, unclip_ratio = (tf.cast(v, tf.float32) for v in (thresh, box_thresh, unclip_ratio))
    elems = (probability[..., 0], tf.cast(resized_size, tf.int32), tf.cast(original_size, tf.int32))
    if threshold is not None:
        elems += (threshold[..., 0],)

    def one(args):
        prob, valid, dest = args[:3]
        return image_boxes(prob, valid, dest, thresh, box_thresh, unclip_ratio, max_boxes,
                           args[3] if len(args) > 3 else None)

    boxes, scores, counts = tf.map_fn(one, elems, fn_output_signature=(
        tf.TensorSpec([max_boxes, 4, 2], tf.float32), tf.TensorSpec([max_boxes], tf.float32),
        tf.TensorSpec([], tf.int32)))
    k = tf.reduce_max(tf.concat([counts, [0]], 0))
    return {"boxes": boxes[:, :k], "scores": scores[:, :k], "num_boxes": counts}


def image_boxes(prob, valid_size, dest_size, thresh, box_thresh, unclip_ratio, max_boxes, threshold=None):
    """One (H, W) map -> boxes (max_boxes, 4, 2), scores (max_boxes,), count (int32), zero-padded."""
    prob = prob[:valid_size[0], :valid_size[1]]
    binary = prob > thresh
    rects = candidate_rects(binary, None if threshold is None else
                            binary & (prob > threshold[:valid_size[0], :valid_size[1]]))
    centre, size, angle = rects
    keep = tf.reduce_min(size, axis=1) >= MIN_SIZE
    centre, size, angle = centre[keep], size[keep], angle[keep]
    corners = rect_corners(centre, size, angle)
    scores = box_scores(prob, corners)
    keep = scores >= box_thresh
    corners, size, scores = corners[keep], size[keep], scores[keep]
    distance = size[:, 0] * size[:, 1] * unclip_ratio / (2.0 * (size[:, 0] + size[:, 1]))
    centre, size, angle = grown_rects(tf.cast(tf.cast(corners, tf.int32), tf.float32), distance)
    keep = tf.reduce_min(size, axis=1) >= MIN_SIZE_UNCLIPPED
    boxes = order_corners(rect_corners(centre[keep], size[keep], angle[keep]))
    scores = scores[keep]
    boxes = _rescale(boxes, tf.cast(tf.shape(prob), tf.float32), tf.cast(dest_size, tf.float32))
    count = tf.minimum(tf.shape(scores)[0], max_boxes)
    pad = max_boxes - count
    boxes = tf.pad(boxes[:count], [[0, pad], [0, 0], [0, 0]])
    scores = tf.pad(scores[:count], [[0, pad]])
    return tf.ensure_shape(boxes, [max_boxes, 4, 2]), tf.ensure_shape(scores, [max_boxes]), count


# ------------------------------------------------------------------------------------------ components
def runs(binary):
    """Horizontal runs of True in an (h, w) bool map, in raster order: each run's row, first and last
    column, int32 (R,). The only whole-map work of the post-processing is here (two shifts, two scans)."""
    h = tf.shape(binary)[0]
    off = tf.zeros(tf.stack([h, 1]), tf.bool)
    start_rc = tf.cast(tf.where(binary & ~tf.concat([off, binary[:, :-1]], 1)), tf.int32)
    end_rc = tf.cast(tf.where(binary & ~tf.concat([binary[:, 1:], off], 1)), tf.int32)
    # same order: each run has one start and one end in its row
    return start_rc[:, 0], start_rc[:, 1], end_rc[:, 1]


def run_at(row, start, end, width, y, x):
    """Index of the run holding pixel (y, x) (int32 tensors of any shape), -1 where none does: a binary
    search over the runs' raster positions, so no per-pixel run map is built."""
    first = row * width + start  # raster order = sorted
    query = y * width + x
    index = tf.searchsorted(first, tf.reshape(query, [-1]), side="right") - 1
    index = tf.reshape(index, tf.shape(query))
    safe = tf.maximum(index, 0)
    inside = (index >= 0) & (tf.gather(row, safe) == y) & (x <= tf.gather(end, safe)) & (x >= 0)
    return tf.where(inside, index, -1)


def run_edges(row, start, end, width):
    """Pairs (run, touching run in the row above or below), 8-connectivity.

    Two runs of adjacent rows touch when their column ranges overlap or meet diagonally; then the one
    that starts later has a pixel of the other at its start column or the column before it, so looking
    up and down from every run's start at those two columns finds every touching pair.
    """
    sources, targets = [], []
    for dy in (-1, 1):
        for dx in (-1, 0):
            other = run_at(row, start, end, width, row + dy, start + dx)
            touching = other >= 0
            sources.append(tf.boolean_mask(tf.range(tf.shape(row)[0]), touching))
            targets.append(other[touching])
    return tf.concat(sources, 0), tf.concat(targets, 0)


def connected_labels(num_nodes, a, b):
    """Component of each node 0..num_nodes-1 of the graph with edges (a[i], b[i]): the smallest node index
    of its component.

    Each round hooks, for every edge, the larger of its endpoints' labels to the smaller one, then halves
    the label chains twice (pointer jumping); labels only decrease, so the loop stops, and it stops once
    every edge joins equal labels that are their own labels, i.e. once components share one label.
    """
    def round_(labels, _):
        la, lb = tf.gather(labels, a), tf.gather(labels, b)
        hooked = tf.minimum(labels, tf.math.unsorted_segment_min(tf.minimum(la, lb), tf.maximum(la, lb),
                                                                 num_nodes))
        jumped = tf.gather(hooked, tf.gather(hooked, hooked))
        return jumped, tf.reduce_any(jumped != labels)

    labels, _ = tf.while_loop(lambda labels, changed: changed, round_, (tf.range(num_nodes), tf.constant(True)))
    return labels


def components(binary):
    """8-connected components of an (h, w) bool map as runs: (row, start, end, component of each run
    (0..C-1, numbered by first appearance in raster order), C)."""
    row, start, end = runs(binary)
    a, b = run_edges(row, start, end, tf.shape(binary)[1])
    labels = connected_labels(tf.shape(row)[0], a, b)
    _, component = tf.unique(labels)
    count = tf.reduce_max(tf.concat([component, [-1]], 0)) + 1
    return row, start, end, component, count


def candidate_rects(binary, split=None):
    """Minimum-area rectangles (centre (K, 2), size (K, 2), angle (K,) in radians) of the components of
    ``binary``; with ``split`` (binary & P > T) components that it cuts into >= 2 pieces with a short side
    >= MIN_SIZE are replaced by those pieces (db_tf.postprocess.split_by_threshold)."""
    row, start, end, component, count = components(binary)
    if split is None:
        return min_area_rects(*_run_points(row, start, end, component), count)
    row2, start2, end2, piece, pieces = components(split)
    # every piece lies in one component: the component of the run holding its first pixel
    parent_run = tf.gather(component, run_at(row, start, end, tf.shape(binary)[1], row2, start2))
    parent = tf.math.unsorted_segment_max(parent_run, piece, pieces)
    x, y, segment = _run_points(tf.concat([row, row2], 0), tf.concat([start, start2], 0),
                                tf.concat([end, end2], 0), tf.concat([component, piece + count], 0))
    centre, size, angle = min_area_rects(x, y, segment, count + pieces)
    big_piece = tf.reduce_min(size[count:], axis=1) >= MIN_SIZE
    big_pieces = tf.math.unsorted_segment_sum(tf.cast(big_piece, tf.int32), parent, count)
    keep = tf.concat([big_pieces < 2, big_piece & (tf.gather(big_pieces, parent) >= 2)], 0)
    return centre[keep], size[keep], angle[keep]


def _run_points(row, start, end, segment):
    """Both end pixels of every run as float (x, y) points with their segment: their convex hull is the
    hull of all pixels of the segment."""
    y = tf.cast(tf.concat([row, row], 0), tf.float32)
    x = tf.cast(tf.concat([start, end], 0), tf.float32)
    return x, y, tf.concat([segment, segment], 0)


# ------------------------------------------------------------------------------------------ rectangles
def min_area_rects(x, y, segment, count):
    """Minimum-area rectangle (centre (C, 2), size (C, 2) = extents along the angle and across it, angle
    (C,) in radians) of each segment's points, by an orientation search (ANGLE_STAGES). Coordinates are
    taken relative to each segment's bounding-box corner to keep float32 exact enough."""
    origin_x = tf.math.unsorted_segment_min(x, segment, count)
    origin_y = tf.math.unsorted_segment_min(y, segment, count)
    x = (x - tf.gather(origin_x, segment))[:, None]
    y = (y - tf.gather(origin_y, segment))[:, None]
    best = tf.zeros([count], tf.float32)
    for half_width, steps in ANGLE_STAGES:
        offsets = tf.constant(np.deg2rad(np.linspace(-half_width, half_width, steps)), tf.float32)
        candidates = best[:, None] + offsets  # (C, A)
        angles = tf.gather(candidates, segment)  # (P, A)
        lo_u, hi_u, lo_v, hi_v = _extents(x, y, angles, segment, count)
        choice = tf.argmin((hi_u - lo_u) * (hi_v - lo_v), axis=1, output_type=tf.int32)
        best = tf.gather(candidates, choice, batch_dims=1)
    candidates = best[:, None] + _edge_corrections(x[:, 0], y[:, 0], best, segment, count)
    lo_u, hi_u, lo_v, hi_v = _extents(x, y, tf.gather(candidates, segment), segment, count)
    choice = tf.argmin((hi_u - lo_u) * (hi_v - lo_v), axis=1, output_type=tf.int32)
    best = tf.gather(candidates, choice, batch_dims=1)
    lo_u, hi_u, lo_v, hi_v = (tf.gather(e, choice, batch_dims=1) for e in (lo_u, hi_u, lo_v, hi_v))
    cos, sin = tf.cos(best), tf.sin(best)
    mid_u, mid_v = (lo_u + hi_u) / 2, (lo_v + hi_v) / 2
    centre = tf.stack([origin_x + mid_u * cos - mid_v * sin, origin_y + mid_u * sin + mid_v * cos], axis=1)
    return centre, tf.stack([hi_u - lo_u, hi_v - lo_v], axis=1), best


def _edge_corrections(x, y, angle, segment, count, tolerance=0.05):
    """Angle corrections (C, 5) that put a side of the searched rectangle exactly on a hull edge: the
    optimum has a side along a hull edge, and the search ends within 0.01 degree of it, so the points
    within ``tolerance`` of a side are that edge's points; the direction between the two outermost ones
    is the edge's exact direction. Column 0 keeps the searched angle."""
    cos, sin = tf.cos(tf.gather(angle, segment)), tf.sin(tf.gather(angle, segment))
    u, v = x * cos + y * sin, y * cos - x * sin
    corrections = [tf.zeros([count])]
    for along, across in ((u, v), (v, u)):  # sides at the ends of v (parallel to u), then those at the ends of u
        low = tf.math.unsorted_segment_min(across, segment, count)
        high = tf.math.unsorted_segment_max(across, segment, count)
        for on_side in (across <= tf.gather(low, segment) + tolerance, across >= tf.gather(high, segment) - tolerance):
            first = _masked_extreme(along, on_side, segment, count, tf.math.unsorted_segment_min, np.inf)
            last = _masked_extreme(along, on_side, segment, count, tf.math.unsorted_segment_max, -np.inf)
            at_first = on_side & (along == tf.gather(first, segment))
            at_last = on_side & (along == tf.gather(last, segment))
            rise = (_masked_extreme(across, at_last, segment, count, tf.math.unsorted_segment_min, np.inf)
                    - _masked_extreme(across, at_first, segment, count, tf.math.unsorted_segment_min, np.inf))
            run = last - first
            turn = tf.atan2(rise, tf.maximum(run, 1e-6))
            corrections.append(tf.where(run > 0, turn if across is v else -turn, 0.0))
    return tf.stack(corrections, axis=1)


def _masked_extreme(values, mask, segment, count, reduce, fill):
    return reduce(tf.where(mask, values, tf.constant(fill, values.dtype)), segment, count)


def _extents(x, y, angles, segment, count):
    """Per segment and angle: min / max of the points projected on the angle's direction (u) and across it (v)."""
    cos, sin = tf.cos(angles), tf.sin(angles)
    u = x * cos + y * sin
    v = y * cos - x * sin
    return (tf.math.unsorted_segment_min(u, segment, count), tf.math.unsorted_segment_max(u, segment, count),
            tf.math.unsorted_segment_min(v, segment, count), tf.math.unsorted_segment_max(v, segment, count))


def rect_corners(centre, size, angle):
    """(K, 4, 2) corners of rotated rectangles (in rotation order; order_corners sorts them)."""
    half_u = (size[:, 0] / 2)[:, None] * tf.stack([tf.cos(angle), tf.sin(angle)], axis=1)
    half_v = (size[:, 1] / 2)[:, None] * tf.stack([-tf.sin(angle), tf.cos(angle)], axis=1)
    return tf.stack([centre - half_u - half_v, centre + half_u - half_v, centre + half_u + half_v,
                     centre - half_u + half_v], axis=1)


def grown_rects(quads, distance):
    """Minimum-area rectangle of what pyclipper's round-join offset of each integer quad (K, 4, 2) by
    distance (K,) returns, as db_tf.postprocess.unclip + cv2.minAreaRect: the offset polygon's integer
    vertices are generated as Clipper does (offset_vertices), and the rectangle is searched over the
    directions of its edges (a convex polygon's minimum-area rectangle has a side along one of them)."""
    points, valid = offset_vertices(quads, distance)  # (K, P, 2), (K, P)
    order = tf.argsort(tf.cast(~valid, tf.int32), axis=1, stable=True)  # the valid points first, in path order
    points, valid = tf.gather(points, order, batch_dims=1), tf.gather(valid, order, batch_dims=1)
    count = tf.reduce_sum(tf.cast(valid, tf.int32), 1, keepdims=True)
    following = tf.range(tf.shape(points)[1])[None] + 1
    following = tf.where(following < count, following, 0)  # the path is closed
    edges = tf.gather(points, following, batch_dims=1) - points
    angles = tf.atan2(edges[..., 1], edges[..., 0])  # (K, A = P): the direction of every edge
    usable = valid & (tf.reduce_sum(tf.abs(edges), -1) > 0)
    cos, sin = tf.cos(angles)[:, :, None], tf.sin(angles)[:, :, None]  # (K, A, 1)
    x, y = points[:, None, :, 0], points[:, None, :, 1]  # (K, 1, P)
    u, v = x * cos + y * sin, y * cos - x * sin
    inside = valid[:, None, :]
    inf = tf.constant(np.inf, tf.float32)
    lo_u, hi_u = tf.reduce_min(tf.where(inside, u, inf), 2), tf.reduce_max(tf.where(inside, u, -inf), 2)
    lo_v, hi_v = tf.reduce_min(tf.where(inside, v, inf), 2), tf.reduce_max(tf.where(inside, v, -inf), 2)
    area = tf.where(usable, (hi_u - lo_u) * (hi_v - lo_v), inf)
    choice = tf.argmin(area, axis=1, output_type=tf.int32)
    pick = lambda t: tf.gather(t, choice, batch_dims=1)  # noqa: E731
    angle, lo_u, hi_u, lo_v, hi_v = map(pick, (angles, lo_u, hi_u, lo_v, hi_v))
    cos, sin = tf.cos(angle), tf.sin(angle)
    mid_u, mid_v = (lo_u + hi_u) / 2, (lo_v + hi_v) / 2
    centre = tf.stack([mid_u * cos - mid_v * sin, mid_u * sin + mid_v * cos], axis=1)
    return centre, tf.stack([hi_u - lo_u, hi_v - lo_v], axis=1), angle


MAX_ARC_STEPS = 32  # per corner; Clipper takes about 11 for a 90-degree corner at distance 100


def offset_vertices(quads, distance, arc_tolerance=0.25):
    """The integer vertices (K, 4 * (MAX_ARC_STEPS + 1), 2) and their validity mask of Clipper's
    (pyclipper's) closed-polygon offset of convex quads with round joins (ClipperOffset.DoOffset /
    DoRound): the path is made positively oriented, each corner gets an arc of points at ``distance``
    around it from the previous edge's normal to the next edge's, the step count from the arc
    tolerance, every point rounded half away from zero."""
    following = tf.roll(quads, -1, axis=1)
    area2 = tf.reduce_sum(quads[..., 0] * following[..., 1] - following[..., 0] * quads[..., 1], 1)  # shoelace
    quads = tf.where((area2 < 0)[:, None, None], tf.reverse(quads, [1]), quads)  # Clipper's orientation fix
    edges = tf.roll(quads, -1, axis=1) - quads
    length = tf.maximum(tf.norm(edges, axis=-1, keepdims=True), 1e-12)
    normals = tf.stack([edges[..., 1], -edges[..., 0]], axis=-1) / length  # of edge j -> j + 1
    previous = tf.roll(normals, 1, axis=1)  # of edge j - 1 -> j
    sin_a = tf.clip_by_value(previous[..., 0] * normals[..., 1] - normals[..., 0] * previous[..., 1], -1.0, 1.0)
    cos_a = tf.reduce_sum(previous * normals, -1)
    delta = tf.cast(distance, tf.float64)
    tolerance = tf.where(delta < 1.0, delta * 0.25, arc_tolerance)  # Clipper: min(ArcTolerance, |delta| / 4)
    steps_per_turn = tf.minimum(np.pi / tf.acos(1.0 - tolerance / delta), delta * np.pi)
    step_angle = tf.cast(2.0 * np.pi / steps_per_turn, tf.float32)[:, None, None]
    turn = tf.abs(tf.atan2(sin_a, cos_a))
    steps = tf.maximum(_round_away(tf.cast(steps_per_turn, tf.float32)[:, None] / (2 * np.pi) * turn), 1.0)
    steps = tf.minimum(steps, MAX_ARC_STEPS)[..., None]  # (K, 4, 1)
    index = tf.range(MAX_ARC_STEPS + 1, dtype=tf.float32)  # arc points 0..steps-1, then the next normal
    start = tf.atan2(previous[..., 1], previous[..., 0])[..., None]
    rotated = tf.stack([tf.cos(start + index * step_angle), tf.sin(start + index * step_angle)], -1)
    direction = tf.where((index == steps)[..., None], normals[:, :, None, :], rotated)
    # a nearly straight corner gets the previous normal's point only (Clipper's |sinA delta| < 1 case)
    straight = (tf.abs(sin_a) * tf.cast(distance, tf.float32)[:, None] < 1.0) & (cos_a > 0)
    valid = tf.where(straight[..., None], index == 0, index <= steps)
    points = _round_away(quads[:, :, None, :] + direction * tf.cast(distance, tf.float32)[:, None, None, None])
    count = 4 * (MAX_ARC_STEPS + 1)
    return tf.reshape(points, [-1, count, 2]), tf.reshape(valid, [-1, count])


def _round_away(value):
    """Clipper's Round: half away from zero."""
    return tf.sign(value) * tf.floor(tf.abs(value) + 0.5)


def order_corners(boxes):
    """db_tf.postprocess.order_corners in graph ops: top-left, top-right, bottom-right, bottom-left."""
    order = tf.argsort(boxes[:, :, 0], axis=1, stable=True)
    pts = tf.gather(boxes, order, batch_dims=1)
    left_down = (pts[:, 1, 1] > pts[:, 0, 1])[:, None]
    right_down = (pts[:, 3, 1] > pts[:, 2, 1])[:, None]
    return tf.stack([tf.where(left_down, pts[:, 0], pts[:, 1]), tf.where(right_down, pts[:, 2], pts[:, 3]),
                     tf.where(right_down, pts[:, 3], pts[:, 2]), tf.where(left_down, pts[:, 1], pts[:, 0])], axis=1)


# --------------------------------------------------------------------------------------------- scores
def box_scores(prob, boxes):
    """Mean of ``prob`` (h, w) over the pixels cv2.fillPoly covers for each box (K, 4, 2) with corners
    truncated to integers inside its clipped bounding-box crop, as db_tf.postprocess.box_scores.

    Per (box, row) pair the covered pixels are one interval (the quad is convex) whose ends come from
    the edges (see _row_intervals); the covered pixels are gathered (only they are read).
    """
    h, w = tf.shape(prob)[0], tf.shape(prob)[1]
    limit = tf.cast(tf.stack([w - 1, h - 1]), tf.float32)
    low = tf.clip_by_value(tf.floor(tf.reduce_min(boxes, 1)), 0.0, limit)  # (K, 2) crop corner, as postprocess
    high = tf.clip_by_value(tf.math.ceil(tf.reduce_max(boxes, 1)), 0.0, limit)
    quads = tf.cast(tf.cast(boxes - low[:, None], tf.int32), tf.float32) + low[:, None]  # truncation, as official
    first = tf.cast(tf.maximum(tf.reduce_min(quads[..., 1], 1), low[:, 1]), tf.int32)
    last = tf.cast(tf.minimum(tf.reduce_max(quads[..., 1], 1), high[:, 1]), tf.int32)
    rows_per_box = tf.maximum(last - first + 1, 0)
    box = tf.repeat(tf.range(tf.shape(boxes)[0]), rows_per_box)
    row = tf.gather(first, box) + tf.range(tf.size(box)) - tf.gather(tf.cumsum(rows_per_box, exclusive=True), box)
    left, right = _row_intervals(tf.gather(quads, box), tf.cast(row, tf.float32))
    left = tf.maximum(left, tf.gather(low[:, 0], box))
    right = tf.minimum(right, tf.gather(high[:, 0], box))
    covered = right >= left  # false for a row no edge reaches (both ends infinite)
    width = tf.where(covered, tf.cast(right - left, tf.int32) + 1, 0)  # pixels per (box, row)
    left = tf.cast(tf.where(covered, left, 0.0), tf.int32)
    # one entry per covered pixel: its (box, row) pair and column
    pair = tf.repeat(tf.range(tf.size(width)), width)
    column = tf.gather(left, pair) + tf.range(tf.size(pair)) - tf.gather(tf.cumsum(width, exclusive=True), pair)
    values = tf.gather(tf.reshape(prob, [-1]), tf.gather(row, pair) * w + column)
    count = tf.shape(boxes)[0]
    total = tf.math.unsorted_segment_sum(tf.cast(values, tf.float64), tf.gather(box, pair), count)
    pixels = tf.cast(tf.math.unsorted_segment_sum(width, box, count), tf.float64)
    return tf.cast(total / tf.maximum(pixels, 1.0), tf.float32)


def _row_intervals(quads, row, eps=1e-4):
    """First and last covered column of each (quad (M, 4, 2), row (M,)) pair, as floats (+-inf: none).

    The rules were fitted to cv2.fillPoly on random truncated rectangles (it agrees on all but about
    0.6 boundary pixels per box): a shallow edge covers the columns whose line height lies in
    [row - 0.5, row + 0.5), a steep one (|dx| <= |dy|) the column of its crossing rounded half down.
    """
    p, q = quads, tf.roll(quads, -1, axis=1)
    x1, y1, x2, y2 = p[..., 0], p[..., 1], q[..., 0], q[..., 1]
    dx, dy = x2 - x1, y2 - y1
    y = row[:, None]
    inverse_slope = dx / tf.where(dy == 0, 1.0, dy)
    inf = tf.constant(np.inf, tf.float32)
    # shallow: x where the line is at row - 0.5 (included) and row + 0.5 (excluded), within the edge
    at_low, at_high = x1 + (y - 0.5 - y1) * inverse_slope, x1 + (y + 0.5 - y1) * inverse_slope
    rising = dx * dy > 0  # x grows with the line's height: the band is [at_low, at_high)
    first = tf.where(rising, tf.math.ceil(at_low - eps), tf.floor(at_high + eps) + 1)
    last = tf.where(rising, tf.math.ceil(at_high - eps) - 1, tf.floor(at_low + eps))
    flat = dy == 0  # a horizontal edge lies on its row
    first = tf.where(flat, tf.where(y1 == y, tf.minimum(x1, x2), inf), tf.maximum(first, tf.minimum(x1, x2)))
    last = tf.where(flat, tf.where(y1 == y, tf.maximum(x1, x2), -inf), tf.minimum(last, tf.maximum(x1, x2)))
    shallow = (tf.abs(dx) > tf.abs(dy)) & (first <= last)
    # steep: the crossing, rounded half down
    crossing = tf.math.ceil(x1 + (y - y1) * inverse_slope - 0.5 - eps)
    steep = (tf.abs(dx) <= tf.abs(dy)) & (tf.minimum(y1, y2) <= y) & (y <= tf.maximum(y1, y2)) & (dy != 0)
    left = tf.reduce_min(tf.where(shallow, first, tf.where(steep, crossing, inf)), axis=1)
    right = tf.reduce_max(tf.where(shallow, last, tf.where(steep, crossing, -inf)), axis=1)
    return left, right


def _rescale(boxes, map_size, dest_size):
    """Map (x, y) -> original image pixels, rounded and clipped as db_tf.postprocess._rescale_all."""
    x = tf.clip_by_value(tf.round(boxes[..., 0] / map_size[1] * dest_size[1]), 0.0, dest_size[1])
    y = tf.clip_by_value(tf.round(boxes[..., 1] / map_size[0] * dest_size[0]), 0.0, dest_size[0])
    return tf.stack([x, y], axis=-1)
