"""Training augmentation: image and polygons transformed together, numpy/cv2/shapely only.

Follows the official DB training pipeline (MhLiao/DB: imgaug Fliplr(0.5), Affine(rotate=-10..10),
Resize(0.5..3.0), then RandomCropData to 640x640 with keep-ratio resize and zero padding), plus
optional brightness / saturation jitter. Order: flip -> rotate -> scale -> crop -> resize+pad ->
colour. Each step is switched by cfg.DATA.AUG (a missing key means "off"; aug_cfg=None gives
resize+pad only, e.g. for validation):

  FLIP (bool, p = 0.5), ROTATE (max degrees, 0 = off), SCALE ([lo, hi], [] = off),
  CROP (bool), CROP_MODE ("resize" = the official EAST crop + keep-ratio resize, or "window"),
  MIN_CROP_SIDE_RATIO (0.1), CROP_TRIES (10), COLOR_JITTER (max brightness delta as a fraction of
  255, 0 = off), SATURATION (factor range 1 +- this, 0 = off).

Design and stated rules:

* One warp. Flip, rotation, scale, crop and resize are composed into a single affine matrix and the
  source image is warped once, straight into the output (bilinear). This is exact and fast: a 3x
  scale of a 1280x720 image is never materialised. When the total zoom is below 0.5 the source is
  first shrunk with INTER_AREA so the warp does not alias.
* Rotation EXPANDS the canvas: the rotated image's bounding box is kept whole (corners filled with
  black), so no text is rotated out of the picture. (imgaug's Affine keeps the size and cuts the
  corners.) Polygons go through the same matrix.
* Crop (EAST style, as the official RandomCropData): columns / rows covered by a care text's
  bounding box are "occupied"; a crop side is drawn from the free columns (one column in each of
  two distinct free runs when there are several runs, else two free columns), likewise for rows.
  A crop is accepted when both sides are >= MIN_CROP_SIDE_RATIO of the canvas side and at least
  one care text lies in it; after CROP_TRIES failures the whole canvas is used. Since crop edges
  lie in free columns/rows, a care text is never cut by the crop. (Official differences: its
  region splitter drops the last free run and it may draw both ends from the same run.)
* Window crop (CROP_MODE = "window", not in the official code): an S_w x S_h window of the scaled
  canvas, NOT resized, so SCALE alone sets the zoom the model sees (with the "resize" crop the
  keep-ratio resize undoes most of SCALE: the zoom is S / crop side). Use it to train at the zoom
  of the test-time short side. The window holds the centre of a random care text; among such
  positions, ones whose edges fall in free columns / rows (no care text cut) are preferred. A care
  text the window still cuts becomes "ignore" (its visible part is neither text nor background).
* Keep-ratio resize + pad: the crop is scaled by min(S_w / crop_w, S_h / crop_h) into the top-left
  corner of a zero (black) S_h x S_w image.
* Polygons after the crop: a polygon entirely inside the valid (unpadded) output area is kept
  unchanged; one entirely outside is dropped; one cut by the border (an ignored text cut by the
  crop, or text reaching past the image edge, as in MSRA-TD500) is clipped to the valid area with
  shapely, each remaining piece keeping the text's ignore flag. So no label ever lands on the
  padding, and no polygon lying inside the crop is lost.
* Polygons are float (K, 2) (x, y) with pixel centres on integer coordinates, like cv2.

Randomness comes only from the numpy Generator passed in, so a seed reproduces a sample.
Returns uint8 RGB; normalisation lives in db_tf/preprocess.py.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import shapely

CROP_MODES = ("resize", "window")
_OFF = {"FLIP": False, "ROTATE": 0.0, "SCALE": (), "CROP": False, "CROP_MODE": "resize", "MIN_CROP_SIDE_RATIO": 0.1,
        "CROP_TRIES": 10, "COLOR_JITTER": 0.0, "SATURATION": 0.0}


def _setting(aug_cfg, key):
    if aug_cfg is None:
        return _OFF[key]
    value = aug_cfg.get(key, _OFF[key]) if hasattr(aug_cfg, "get") else getattr(aug_cfg, key, _OFF[key])
    return _OFF[key] if value is None else value


def _size_pair(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    out_h, out_w = size
    return int(out_h), int(out_w)


# ----------------------------------------------------------------------------- affine helpers
# Geometry is built in "corner" coordinates, where an image of width W spans [0, W]; cv2 and our
# polygons use "centre" coordinates (pixel centres on integers): centre = corner - 0.5.
def _translate(tx, ty) -> np.ndarray:
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _scale(sx, sy) -> np.ndarray:
    return np.diag([float(sx), float(sy), 1.0])


def _rotate(degrees) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])   # counter-clockwise on screen


def corner_to_centre(matrix) -> np.ndarray:
    """The same mapping expressed for pixel-centre coordinates (what cv2.warpAffine expects)."""
    return _translate(-0.5, -0.5) @ matrix @ _translate(0.5, 0.5)


def transform_polygons(polygons, matrix) -> list[np.ndarray]:
    """Apply a 3x3 affine matrix to (K, 2) polygons; float64 out."""
    linear, shift = matrix[:2, :2], matrix[:2, 2]
    return [np.asarray(p, np.float64).reshape(-1, 2) @ linear.T + shift for p in polygons]


def _bounds_after(matrix, w, h):
    corners = np.array([[0.0, 0.0, 1.0], [w, 0.0, 1.0], [w, h, 1.0], [0.0, h, 1.0]]) @ matrix.T
    return corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max()


def random_geometry(w, h, aug_cfg, rng) -> tuple[np.ndarray, int, int]:
    """Flip, rotate (canvas expanded) and scale: (3x3 corner-coordinate matrix, canvas_w, canvas_h)."""
    matrix = np.eye(3)
    if _setting(aug_cfg, "FLIP") and rng.random() < 0.5:
        matrix = _translate(w, 0.0) @ _scale(-1.0, 1.0) @ matrix
    max_degrees = float(_setting(aug_cfg, "ROTATE"))
    if max_degrees > 0:
        matrix = _rotate(rng.uniform(-max_degrees, max_degrees)) @ matrix
        x0, y0, _, _ = _bounds_after(matrix, w, h)
        matrix = _translate(-x0, -y0) @ matrix
    scale_range = list(_setting(aug_cfg, "SCALE"))
    if scale_range:
        s = rng.uniform(float(scale_range[0]), float(scale_range[-1]))
        matrix = _scale(s, s) @ matrix
    _, _, x1, y1 = _bounds_after(matrix, w, h)
    return matrix, max(1, math.ceil(x1 - 1e-6)), max(1, math.ceil(y1 - 1e-6))


# ----------------------------------------------------------------------------- crop
def _free_runs(free: np.ndarray) -> list[np.ndarray]:
    """Split sorted free indices into runs of consecutive values (all runs, including the last)."""
    breaks = np.flatnonzero(np.diff(free) != 1) + 1
    return np.split(free, breaks)


def _pick_span(free, runs, rng) -> tuple[int, int]:
    if len(runs) > 1:
        first, second = rng.choice(len(runs), size=2, replace=False)
        ends = (int(rng.choice(runs[first])), int(rng.choice(runs[second])))
    else:
        ends = tuple(int(v) for v in rng.choice(free, size=2))
    return min(ends), max(ends)


def random_crop_region(polygons_corner, ignore, canvas_w, canvas_h, min_side_ratio, tries, rng):
    """EAST-style crop (x0, y0, crop_w, crop_h) in canvas pixels; polygons in corner coordinates.

    Crop edges only fall in columns / rows that no care text's bounding box covers, so care texts
    are never cut; falls back to the whole canvas after `tries` failures.
    """
    whole = (0, 0, canvas_w, canvas_h)
    care = [p for p, ignored in zip(polygons_corner, ignore) if not ignored and len(p)]
    if not care:
        return whole
    free_x = np.flatnonzero(~_occupied(care, canvas_w, 0))
    free_y = np.flatnonzero(~_occupied(care, canvas_h, 1))
    if free_x.size == 0 or free_y.size == 0:
        return whole
    runs_x, runs_y = _free_runs(free_x), _free_runs(free_y)
    for _ in range(int(tries)):
        xa, xb = _pick_span(free_x, runs_x, rng)
        ya, yb = _pick_span(free_y, runs_y, rng)
        crop_w, crop_h = xb - xa + 1, yb - ya + 1
        if crop_w < min_side_ratio * canvas_w or crop_h < min_side_ratio * canvas_h:
            continue
        if any(_overlaps(p, xa, ya, xb + 1, yb + 1) for p in care):
            return xa, ya, crop_w, crop_h
    return whole


def _occupied(care, size, axis) -> np.ndarray:
    """Columns (axis 0) or rows (axis 1) of a canvas side covered by a care text's bounding box."""
    occupied = np.zeros(size, bool)
    for p in care:
        occupied[_cover(p[:, axis], size)] = True
    return occupied


def _window_start(occupied, window, centre, rng) -> int:
    """Start of a `window`-long span of the side that holds `centre`; edges on free pixels preferred."""
    size = occupied.size
    if window >= size:
        return 0
    lo = min(max(0, math.floor(centre) - window + 1), size - window)
    hi = max(min(size - window, math.floor(centre)), lo)
    starts = np.arange(lo, hi + 1)
    clean = starts[~occupied[starts] & ~occupied[starts + window - 1]]
    return int(rng.choice(clean if clean.size else starts))


def random_window(polygons_corner, ignore, canvas_w, canvas_h, window_w, window_h, rng):
    """A window (x0, y0, w, h) of at most window_w x window_h canvas pixels, no resize (see module doc).

    It holds the centre of a random care text (anywhere when there is none); polygons in corner
    coordinates.
    """
    w, h = min(window_w, canvas_w), min(window_h, canvas_h)
    care = [p for p, ignored in zip(polygons_corner, ignore) if not ignored and len(p)]
    if not care:
        return int(rng.integers(0, canvas_w - w + 1)), int(rng.integers(0, canvas_h - h + 1)), w, h
    cx, cy = care[int(rng.integers(len(care)))].mean(axis=0)
    x0 = _window_start(_occupied(care, canvas_w, 0), w, cx, rng)
    y0 = _window_start(_occupied(care, canvas_h, 1), h, cy, rng)
    return x0, y0, w, h


def _cover(values, size) -> slice:
    """Pixel indices whose [i, i+1] span meets [min(values), max(values)] (corner coordinates)."""
    lo, hi = math.floor(values.min()), math.ceil(values.max())
    hi = max(hi, lo + 1)                                 # a zero-width text still occupies a column
    return slice(min(max(lo, 0), size), min(max(hi, 0), size))


def _overlaps(p, x0, y0, x1, y1) -> bool:
    return p[:, 0].max() > x0 and p[:, 0].min() < x1 and p[:, 1].max() > y0 and p[:, 1].min() < y1


# ----------------------------------------------------------------------------- polygon clipping
def clip_polygons(polygons, ignore, valid_w, valid_h):
    """Keep polygons inside [-0.5, valid_w - 0.5] x [-0.5, valid_h - 0.5] (centre coordinates).

    Inside: unchanged. Outside: dropped. Cut: clipped with shapely; each piece keeps the flag.
    Fewer than 3 points (not an area; the readers never produce it): dropped.
    """
    kept, flags = [], []
    for p, ignored in zip(polygons, ignore):
        if len(p) < 3:
            continue
        place = _placement(p, valid_w, valid_h)
        if place == "outside":
            continue
        pieces = [p] if place == "inside" else _clip_to_box(p, -0.5, -0.5, valid_w - 0.5, valid_h - 0.5)
        kept.extend(pieces)
        flags.extend([bool(ignored)] * len(pieces))
    return kept, np.asarray(flags, bool)


def _placement(p, valid_w, valid_h, eps=1e-6) -> str:
    """"inside", "outside" or "cut": where p lies w.r.t. [-0.5, valid - 0.5] (centre coordinates)."""
    lo_x, lo_y, hi_x, hi_y = -0.5, -0.5, valid_w - 0.5, valid_h - 0.5
    (xmin, ymin), (xmax, ymax) = p.min(axis=0), p.max(axis=0)
    if xmin >= lo_x - eps and ymin >= lo_y - eps and xmax <= hi_x + eps and ymax <= hi_y + eps:
        return "inside"
    if xmax <= lo_x or ymax <= lo_y or xmin >= hi_x or ymin >= hi_y:
        return "outside"
    return "cut"


def _clip_to_box(polygon, lo_x, lo_y, hi_x, hi_y) -> list[np.ndarray]:
    shape = shapely.polygons(polygon)
    if not shapely.is_valid(shape):
        shape = shapely.make_valid(shape)
    clipped = shapely.intersection(shape, shapely.box(lo_x, lo_y, hi_x, hi_y))
    pieces = []
    for part in shapely.get_parts(clipped):
        if isinstance(part, shapely.Polygon) and part.area > 1e-6:
            pieces.append(np.asarray(part.exterior.coords, np.float64)[:-1])
    return pieces


# ----------------------------------------------------------------------------- image warp + colour
def _warp(image, matrix_corner, out_w, out_h) -> np.ndarray:
    """Warp `image` by a corner-coordinate matrix into an out_h x out_w image (black outside)."""
    h, w = image.shape[:2]
    zoom = math.sqrt(abs(np.linalg.det(matrix_corner[:2, :2])))
    if zoom < 0.5:                                       # pre-shrink: bilinear would alias
        small_w, small_h = max(1, round(w * zoom)), max(1, round(h * zoom))
        image = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        matrix_corner = matrix_corner @ _scale(w / small_w, h / small_h)
    return cv2.warpAffine(image, corner_to_centre(matrix_corner)[:2], (out_w, out_h),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def jitter_colour(image, brightness, saturation, rng) -> np.ndarray:
    """out = f * image + (1 - f) * gray(image) + delta: saturation factor f, brightness delta."""
    delta = rng.uniform(-brightness, brightness) * 255.0 if brightness > 0 else 0.0
    factor = rng.uniform(1.0 - saturation, 1.0 + saturation) if saturation > 0 else 1.0
    if delta == 0.0 and factor == 1.0:
        return image
    gray = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(image, factor, gray, 1.0 - factor, delta)   # saturates to uint8


# ----------------------------------------------------------------------------- the whole thing
def augment(image, polygons, ignore, aug_cfg, size, rng: np.random.Generator, return_info=False):
    """Augment one sample; see the module docstring for the steps and rules.

    image: uint8 (H, W, 3) RGB; polygons: list of (K, 2) arrays; ignore: bool (n,);
    aug_cfg: cfg.DATA.AUG-like (None = resize + pad only); size: int or (height, width).
    Returns (image uint8 (S_h, S_w, 3), polygons list of float32 (K, 2), ignore bool (m,)), plus,
    with return_info=True, a dict: "matrix" (3x3, input -> output pixel-centre coordinates),
    "valid_size" (h, w) of the unpadded area, "crop" (x0, y0, w, h) in canvas pixels, "canvas_size".
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"augment expects a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    out_h, out_w = _size_pair(size)
    h, w = image.shape[:2]
    polygons = [np.asarray(p, np.float64).reshape(-1, 2) for p in polygons]
    ignore = np.asarray(ignore, bool).reshape(-1)
    if len(ignore) != len(polygons):
        raise ValueError(f"{len(polygons)} polygons but {len(ignore)} ignore flags")

    crop_mode = _setting(aug_cfg, "CROP_MODE")
    if crop_mode not in CROP_MODES:
        raise ValueError(f"DATA.AUG.CROP_MODE must be one of {CROP_MODES}, got {crop_mode!r}")
    cropping = bool(_setting(aug_cfg, "CROP"))
    window = cropping and crop_mode == "window"

    geometry, canvas_w, canvas_h = random_geometry(w, h, aug_cfg, rng)
    crop = (0, 0, canvas_w, canvas_h)
    if cropping:
        moved = transform_polygons([p + 0.5 for p in polygons], geometry)   # corner coordinates
        if window:
            crop = random_window(moved, ignore, canvas_w, canvas_h, out_w, out_h, rng)
        else:
            crop = random_crop_region(moved, ignore, canvas_w, canvas_h,
                                      float(_setting(aug_cfg, "MIN_CROP_SIDE_RATIO")),
                                      int(_setting(aug_cfg, "CROP_TRIES")), rng)
    x0, y0, crop_w, crop_h = crop
    k = 1.0 if window else min(out_w / crop_w, out_h / crop_h)
    total = _scale(k, k) @ _translate(-x0, -y0) @ geometry
    valid_w, valid_h = min(out_w, max(1, round(crop_w * k))), min(out_h, max(1, round(crop_h * k)))

    out = np.zeros((out_h, out_w, 3), np.uint8)
    out[:valid_h, :valid_w] = _warp(image, total, valid_w, valid_h)
    out[:valid_h, :valid_w] = jitter_colour(out[:valid_h, :valid_w],
                                            float(_setting(aug_cfg, "COLOR_JITTER")),
                                            float(_setting(aug_cfg, "SATURATION")), rng)

    matrix = corner_to_centre(total)
    moved = transform_polygons(polygons, matrix)
    if np.linalg.det(matrix[:2, :2]) < 0:               # a flip mirrors: keep the vertex orientation
        moved = [p[::-1] for p in moved]
    if window:
        ignore = ignore | np.array([_placement(p, valid_w, valid_h) == "cut" for p in moved], bool)
    moved, ignore = clip_polygons(moved, ignore, valid_w, valid_h)
    result = (out, [p.astype(np.float32) for p in moved], ignore)
    if return_info:
        info = {"matrix": matrix, "valid_size": (valid_h, valid_w), "crop": crop,
                "canvas_size": (canvas_h, canvas_w)}
        return result + (info,)
    return result
