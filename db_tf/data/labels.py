"""DB training targets: the shrunk-text probability map and the threshold (border) map.

Paper (Liao et al., AAAI 2020, Sec. 3.3) and official code (MhLiao/DB, data/processes/
make_seg_detection_data.py and make_border_map.py). For a text polygon G with area A and
perimeter L the offset is D = A (1 - r^2) / L (r = shrink_ratio = 0.4):

* probability target `gt`: G shrunk by D (pyclipper, round joins) filled with 1;
  `mask` is 1 everywhere except over ignored texts, which are filled with 0.
* threshold target `thresh_map`: inside G dilated by D, 1 - (distance to the nearest edge of G) / D,
  clipped to [0, 1], maximum over texts, then rescaled to [thresh_min, thresh_max];
  `thresh_mask` = the dilated polygons. Ignored texts get no border.

Pixel (row y, column x) is the point (x, y): pixel centres sit on integer coordinates, as in
cv2.fillPoly and the official distance map.

Where we differ from the official code, and why:

* Distance to an edge: the official `MakeBorderMap._distance` switches to the distance to the
  nearer END POINT whenever the angle at the pixel between the two end points is acute, even when
  the pixel's foot lies inside the segment (e.g. any pixel beyond the circle whose diameter is a
  short edge). We use the true point-to-segment distance, the paper's definition; the official
  value is never smaller, and the two differ only off short edges (see tests/test_labels.py, which
  measures it, and bench/bench_labels.py).
* Too-small texts: a text whose minimum-area-rectangle short side is < min_text_size is ignored.
  The official code uses the axis-aligned bounding box, which lets thin rotated texts through.
* A shrink that splits into several pieces fills ALL pieces (the official code fills only the
  first piece pyclipper returns, labelling the rest of that text as background). A shrink that
  vanishes is masked out as ignored, as in the official code.
* Rasterisation: pyclipper works on integers, so coordinates are scaled to 1/16 px fixed point
  and filled with cv2.fillPoly(shift=4); the official code truncates float coordinates to whole
  pixels, shifting filled regions up-left by up to one pixel. cv2.fillPoly fills a pixel when its
  centre is within about half a pixel of the polygon (boundary pixels included), like the
  official code.
* Degenerate polygons (area or perimeter ~0) and self-intersecting ones are masked out as ignored
  instead of crashing or producing D = 0. Points outside the image are fine: everything is
  clipped to the image (the official code first clips vertex coordinates into the image, which
  distorts the polygon).
* Texts ignored by the shrink step (too small, vanished, degenerate) get no border either, as in
  the official pipeline, where MakeSegDetectionData flags them before MakeBorderMap runs.
  `make_label_maps` does this; `make_threshold_map` alone only skips `ignore`.

Distances are only computed inside each text's dilated bounding box intersected with the image,
vectorised over pixels (a Python loop runs over the K edges of a polygon, never over pixels).
"""
from __future__ import annotations

import cv2
import numpy as np
import pyclipper
import shapely

SUBPIXEL_BITS = 4                       # cv2.fillPoly `shift`: coordinates in 1/16 px
CLIPPER_SCALE = float(1 << SUBPIXEL_BITS)
ARC_TOLERANCE_PX = 0.25                 # pyclipper's default arc tolerance, in pixels (as official)


# ----------------------------------------------------------------------------- geometry helpers
def _as_polygon(points) -> np.ndarray:
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


def area_and_perimeter(polygon: np.ndarray) -> tuple[float, float]:
    """|shoelace area| and perimeter of a closed polygon (K, 2)."""
    x, y = polygon[:, 0], polygon[:, 1]
    x_next, y_next = np.roll(x, -1), np.roll(y, -1)
    area = 0.5 * abs(float(np.sum(x * y_next - x_next * y)))
    perimeter = float(np.sum(np.hypot(x_next - x, y_next - y)))
    return area, perimeter


def shrink_distance(polygon, shrink_ratio: float = 0.4) -> float:
    """D = A (1 - r^2) / L; 0.0 for a degenerate polygon."""
    area, perimeter = area_and_perimeter(_as_polygon(polygon))
    if area < 1e-6 or perimeter < 1e-6:
        return 0.0
    return area * (1.0 - shrink_ratio ** 2) / perimeter


def _ignore_flags(polygons, ignore) -> np.ndarray:
    if ignore is None:
        return np.zeros(len(polygons), bool)
    flags = np.asarray(ignore, bool).reshape(-1)
    if len(flags) != len(polygons):
        raise ValueError(f"{len(polygons)} polygons but {len(flags)} ignore flags")
    return flags


def _is_simple(polygon: np.ndarray) -> bool:
    return len(polygon) >= 3 and bool(shapely.is_valid(shapely.polygons(polygon)))


def _fixed_point(polygon: np.ndarray) -> np.ndarray:
    """Float pixel coordinates -> int32 1/16-px fixed point (pyclipper input, fillPoly shift=4)."""
    return np.round(polygon * CLIPPER_SCALE).astype(np.int32)


def _offset(polygon: np.ndarray, distance_px: float) -> list[np.ndarray]:
    """Round-join offset of a closed polygon (negative = shrink); pieces in fixed point."""
    offsetter = pyclipper.PyclipperOffset(arc_tolerance=ARC_TOLERANCE_PX * CLIPPER_SCALE)
    offsetter.AddPath(_fixed_point(polygon).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    pieces = offsetter.Execute(distance_px * CLIPPER_SCALE)
    return [np.asarray(piece, dtype=np.int32) for piece in pieces if len(piece) >= 3]


def _fill(canvas: np.ndarray, pieces_fixed: list[np.ndarray], value: float) -> None:
    """cv2.fillPoly, made independent of where the image border cuts the polygon.

    cv2 clips a polygon that crosses the border before filling, which moves its slanted edges by
    up to half a pixel. A polygon crossing the border is therefore filled on a scratch canvas
    holding all of it and the visible window copied, so a map equals the window of the same map
    over a larger image.
    """
    if not pieces_fixed:
        return
    h, w = canvas.shape
    stacked = np.concatenate(pieces_fixed)
    lo = np.floor(stacked.min(axis=0) / CLIPPER_SCALE).astype(int) - 1     # (x, y) in pixels
    hi = np.ceil(stacked.max(axis=0) / CLIPPER_SCALE).astype(int) + 1
    if hi[0] < 0 or hi[1] < 0 or lo[0] >= w or lo[1] >= h:
        return
    size = hi - lo + 1
    inside = lo[0] >= 0 and lo[1] >= 0 and hi[0] < w and hi[1] < h
    if inside or size[0] * size[1] > 4 * h * w:        # (a huge polygon: accept cv2's clipping)
        cv2.fillPoly(canvas, pieces_fixed, value, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
        return
    scratch = np.zeros((size[1], size[0]), np.uint8)
    shift = (lo * int(CLIPPER_SCALE)).astype(np.int32)
    cv2.fillPoly(scratch, [p - shift for p in pieces_fixed], 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w - 1), min(hi[1], h - 1)
    window = scratch[y0 - lo[1]:y1 - lo[1] + 1, x0 - lo[0]:x1 - lo[0] + 1].astype(bool)
    canvas[y0:y1 + 1, x0:x1 + 1][window] = value


def min_area_rect_short_side(polygon) -> float:
    (_, _), (width, height), _ = cv2.minAreaRect(_as_polygon(polygon).astype(np.float32))
    return float(min(width, height))


def distance_to_polygon_edges(polygon, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """True Euclidean distance from each point (xs[j], ys[i]) to the nearest edge of `polygon`.

    Returns float32 (len(ys), len(xs)). Vectorised over the grid; loops over the K edges only.
    Point-to-segment: project onto the edge, clamp the projection parameter t to [0, 1], measure
    to the projected point. Work arrays are reused in place (about 3x faster than temporaries).
    """
    polygon = _as_polygon(polygon)
    px = np.asarray(xs, np.float32)[None, :]
    py = np.asarray(ys, np.float32)[:, None]
    shape = (py.shape[0], px.shape[1])
    best = np.full(shape, np.inf, np.float32)
    t, ex, ey = (np.empty(shape, np.float32) for _ in range(3))
    for (ax, ay), (bx, by) in zip(polygon, np.roll(polygon, -1, axis=0)):
        dx, dy = bx - ax, by - ay
        rx, ry = px - np.float32(ax), py - np.float32(ay)     # (1, W) and (H, 1): broadcast
        length2 = dx * dx + dy * dy
        if length2 > 0:
            np.add(rx * np.float32(dx / length2), ry * np.float32(dy / length2), out=t)
            np.clip(t, 0.0, 1.0, out=t)
            np.multiply(t, np.float32(-dx), out=ex)
            np.multiply(t, np.float32(-dy), out=ey)
            ex += rx                                            # ex, ey = r - t * (b - a)
            ey += ry
        else:                                                   # zero-length edge: a point
            ex[...], ey[...] = rx, ry
        np.square(ex, out=ex)
        np.square(ey, out=ey)
        ex += ey
        np.minimum(best, ex, out=best)
    return np.sqrt(best, out=best)


# ----------------------------------------------------------------------------- shrink map
def _shrink_maps(polygons, ignore, h, w, shrink_ratio, min_text_size):
    """gt, mask and the per-text flag `trained` (False = masked out as ignored)."""
    gt = np.zeros((h, w), np.float32)
    mask = np.ones((h, w), np.float32)
    ignore = _ignore_flags(polygons, ignore)
    trained = np.zeros(len(polygons), bool)
    for i, points in enumerate(polygons):
        polygon = _as_polygon(points)
        kernels = [] if ignore[i] else _text_kernels(polygon, shrink_ratio, min_text_size)
        if kernels:
            _fill(gt, kernels, 1.0)
            trained[i] = True
        elif len(polygon) >= 3 and np.all(np.isfinite(polygon)):
            _fill(mask, [_fixed_point(polygon)], 0.0)
    return gt, mask, trained


def _text_kernels(polygon, shrink_ratio, min_text_size) -> list[np.ndarray]:
    """The shrunk pieces of one care text; [] means "treat this text as ignored"."""
    if len(polygon) < 3 or not np.all(np.isfinite(polygon)) or not _is_simple(polygon):
        return []
    if min_area_rect_short_side(polygon) < min_text_size:
        return []
    distance = shrink_distance(polygon, shrink_ratio)
    if distance <= 0:
        return []
    return _offset(polygon, -distance)                  # all pieces; [] when it vanishes


def make_shrink_map(polygons, ignore, h, w, shrink_ratio=0.4, min_text_size=8):
    """Probability target: (gt, mask), float32 (h, w) with values in {0, 1}.

    gt = 1 inside every care text shrunk by D. mask = 0 over ignored texts and over texts that
    are too small (min-area-rect short side < min_text_size), degenerate, self-intersecting or
    whose shrink vanishes; 1 elsewhere.
    """
    gt, mask, _ = _shrink_maps(polygons, ignore, int(h), int(w), shrink_ratio, min_text_size)
    return gt, mask


# ----------------------------------------------------------------------------- threshold map
def _draw_border(polygon, shrink_ratio, canvas, mask) -> None:
    distance = shrink_distance(polygon, shrink_ratio)
    if distance <= 0 or not _is_simple(polygon):
        return
    _fill(mask, _offset(polygon, distance), 1.0)
    h, w = canvas.shape
    x0 = max(int(np.floor(polygon[:, 0].min() - distance)), 0)
    x1 = min(int(np.ceil(polygon[:, 0].max() + distance)), w - 1)
    y0 = max(int(np.floor(polygon[:, 1].min() - distance)), 0)
    y1 = min(int(np.ceil(polygon[:, 1].max() + distance)), h - 1)
    if x0 > x1 or y0 > y1:                              # entirely outside the image
        return
    xs = np.arange(x0, x1 + 1, dtype=np.float32)
    ys = np.arange(y0, y1 + 1, dtype=np.float32)
    closeness = 1.0 - np.minimum(distance_to_polygon_edges(polygon, xs, ys) / distance, 1.0)
    window = canvas[y0:y1 + 1, x0:x1 + 1]
    np.maximum(window, closeness, out=window)


def make_threshold_map(polygons, ignore, h, w, shrink_ratio=0.4, thresh_min=0.3, thresh_max=0.7):
    """Threshold target: (thresh_map, thresh_mask), float32 (h, w).

    thresh_map in [thresh_min, thresh_max]: thresh_min + (thresh_max - thresh_min) *
    max over care texts of (1 - min(dist_to_edges / D, 1)); thresh_mask = 1 inside the care texts
    dilated by D. Ignored texts are skipped.
    """
    canvas = np.zeros((int(h), int(w)), np.float32)
    mask = np.zeros((int(h), int(w)), np.float32)
    ignore = _ignore_flags(polygons, ignore)
    for points, ignored in zip(polygons, ignore):
        polygon = _as_polygon(points)
        if not ignored and len(polygon) >= 3 and np.all(np.isfinite(polygon)):
            _draw_border(polygon, shrink_ratio, canvas, mask)
    canvas *= np.float32(thresh_max - thresh_min)
    canvas += np.float32(thresh_min)
    return canvas, mask


# ----------------------------------------------------------------------------- both
def make_label_maps(polygons, ignore, h, w, shrink_ratio=0.4, min_text_size=8, thresh_min=0.3,
                    thresh_max=0.7) -> dict:
    """All four DB targets for one image: dict gt, mask, thresh_map, thresh_mask (float32 (h, w)).

    Texts that the shrink step masks out (too small, vanished, degenerate) get no border, as in
    the official pipeline.
    """
    gt, mask, trained = _shrink_maps(polygons, ignore, int(h), int(w), shrink_ratio, min_text_size)
    thresh_map, thresh_mask = make_threshold_map(polygons, ~trained, h, w, shrink_ratio, thresh_min,
                                                 thresh_max)
    return {"gt": gt, "mask": mask, "thresh_map": thresh_map, "thresh_mask": thresh_mask}


def label_kwargs(data_cfg) -> dict:
    """make_label_maps keyword arguments from cfg.DATA."""
    return {
        "shrink_ratio": float(data_cfg.SHRINK_RATIO),
        "min_text_size": float(data_cfg.MIN_TEXT_SIZE),
        "thresh_min": float(data_cfg.THRESH_MIN),
        "thresh_max": float(data_cfg.THRESH_MAX),
    }
