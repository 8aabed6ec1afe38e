"""Label maps (db_tf/data/labels.py) against hand-worked values, analytic geometry and properties."""
import math

import cv2
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from db_tf.data.labels import (
    distance_to_polygon_edges,
    make_label_maps,
    make_shrink_map,
    make_threshold_map,
    shrink_distance,
)

SQUARE = np.array([[10, 10], [30, 10], [30, 30], [10, 30]], np.float32)


def rotated_rectangle(cx, cy, length, height, degrees):
    """Corners of a length x height rectangle centred on (cx, cy), rotated by `degrees`."""
    a = math.radians(degrees)
    u = np.array([math.cos(a), math.sin(a)])
    v = np.array([-math.sin(a), math.cos(a)])
    half_l, half_h = length / 2, height / 2
    return np.array([c + su * half_l * u + sv * half_h * v
                     for c, su, sv in [((cx, cy), -1, -1), ((cx, cy), 1, -1), ((cx, cy), 1, 1), ((cx, cy), -1, 1)]])


def box_frame(h, w, cx, cy, degrees):
    """Every pixel centre expressed in the rectangle's own (u, v) axes."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    a = math.radians(degrees)
    dx, dy = xs - cx, ys - cy
    return dx * math.cos(a) + dy * math.sin(a), -dx * math.sin(a) + dy * math.cos(a)


# ----------------------------------------------------------------------------- hand-worked square
def test_square_shrink_distance_by_hand():
    # A = 400, L = 80, r = 0.4: D = 400 * (1 - 0.16) / 80 = 4.2
    assert shrink_distance(SQUARE, 0.4) == pytest.approx(4.2)


def test_square_shrink_map_by_hand():
    gt, mask = make_shrink_map([SQUARE], [False], 40, 40)
    # Shrunk square spans [14.2, 25.8]; cv2.fillPoly rounds the (sub-pixel) vertices to 14 and 26
    # and fills boundary pixels: rows and columns 14..26.
    expected = np.zeros((40, 40), np.float32)
    expected[14:27, 14:27] = 1
    np.testing.assert_array_equal(gt, expected)
    np.testing.assert_array_equal(mask, np.ones((40, 40), np.float32))


def test_square_threshold_map_by_hand():
    thresh, thresh_mask = make_threshold_map([SQUARE], [False], 40, 40)
    d = 4.2

    def value(distance):
        return 0.3 + 0.4 * max(0.0, 1 - distance / d)
    for (x, y), distance in {(20, 8): 2.0, (20, 12): 2.0, (20, 20): 10.0, (10, 10): 0.0, (20, 10): 0.0,
                             (8, 8): math.sqrt(8), (5, 20): 5.0, (33, 20): 3.0, (27, 27): 3.0}.items():
        assert thresh[y, x] == pytest.approx(value(distance), abs=1e-6), (x, y)
    # dilated square with round corners of radius D (fill includes pixels ~half a pixel outside)
    for (x, y), inside in {(20, 6): 1, (20, 20): 1, (8, 8): 1, (20, 4): 0, (6, 6): 0, (35, 20): 0}.items():
        assert thresh_mask[y, x] == inside, (x, y)


# ----------------------------------------------------------------------------- rotated rectangle
def test_rotated_rectangle_against_analytic_geometry():
    h, w, cx, cy, length, height, degrees = 100, 100, 50.3, 49.6, 40.0, 16.0, 30.0
    polygon = rotated_rectangle(cx, cy, length, height, degrees)
    d = length * height * (1 - 0.4 ** 2) / (2 * (length + height))   # = 4.8
    assert shrink_distance(polygon) == pytest.approx(d)
    maps = make_label_maps([polygon], [False], h, w)
    u, v = box_frame(h, w, cx, cy, degrees)
    half_l, half_h = length / 2, height / 2
    # signed distance to the rectangle boundary: outside > 0, inside < 0
    outside = np.hypot(np.maximum(np.abs(u) - half_l, 0), np.maximum(np.abs(v) - half_h, 0))
    inside = np.minimum(half_l - np.abs(u), half_h - np.abs(v))
    edge_distance = np.where(inside > 0, inside, outside)
    expected = 0.3 + 0.4 * (1 - np.minimum(edge_distance / d, 1))
    np.testing.assert_allclose(maps["thresh_map"], expected, atol=2e-5)

    # shrunk rectangle is (length - 2D) x (height - 2D); rasterisation may differ within a pixel
    shrunk = np.minimum(half_l - d - np.abs(u), half_h - d - np.abs(v))   # > 0 inside the kernel
    assert np.all(maps["gt"][shrunk > 0.75] == 1)
    assert np.all(maps["gt"][shrunk < -1.0] == 0)
    signed = np.where(inside > 0, -inside, outside)
    assert np.all(maps["thresh_mask"][signed < d - 0.75] == 1)
    assert np.all(maps["thresh_mask"][signed > d + 1.0] == 0)
    assert np.all(maps["mask"] == 1)


# ----------------------------------------------------------------------------- official formula
def official_edge_distance(xs, ys, a, b):
    """Straightforward re-implementation of the official MakeBorderMap._distance formula:
    the perpendicular distance to the LINE through a, b, except where the angle APB is acute
    (cosine rule: cos(APB) > 0), where it takes the distance to the nearer end point."""
    d1 = (xs - a[0]) ** 2 + (ys - a[1]) ** 2
    d2 = (xs - b[0]) ** 2 + (ys - b[1]) ** 2
    d12 = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        minus_cos = (d12 - d1 - d2) / (2 * np.sqrt(d1 * d2))
        sin2 = np.nan_to_num(1 - minus_cos ** 2)
        result = np.sqrt(d1 * d2 * sin2 / d12)
    acute = minus_cos < 0
    result[acute] = np.sqrt(np.minimum(d1, d2))[acute]
    return result


def true_edge_distance(xs, ys, a, b):
    """Point-to-segment distance, written independently of the library (clamped projection)."""
    ab = np.subtract(b, a)
    t = np.clip(((xs - a[0]) * ab[0] + (ys - a[1]) * ab[1]) / (ab @ ab), 0, 1)
    return np.hypot(xs - a[0] - t * ab[0], ys - a[1] - t * ab[1])


def curved_band():
    """A CTW1500-like 14-point curved text: 7 points on an outer arc, 7 on an inner arc."""
    t = np.linspace(np.pi * 0.8, np.pi * 0.2, 7)
    outer = np.stack([60 + 50 * np.cos(t), 80 - 50 * np.sin(t)], axis=1)
    inner = np.stack([60 + 30 * np.cos(t[::-1]), 80 - 30 * np.sin(t[::-1])], axis=1)
    return np.concatenate([outer, inner])


def compare_with_official(polygon, h, w):
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    edges = list(zip(polygon, np.roll(polygon, -1, axis=0)))
    truth = np.min([true_edge_distance(xs, ys, a, b) for a, b in edges], axis=0)
    official = np.min([official_edge_distance(xs, ys, a, b) for a, b in edges], axis=0)
    return xs, ys, edges, truth, official


@pytest.mark.parametrize("name", ["word box", "curved 14-point"])
def test_official_distance_formula_vs_true_distance(name, capsys):
    """Where and by how much the official point-to-edge formula differs from the true distance."""
    polygon = rotated_rectangle(60, 40, 60, 12, 20) if name == "word box" else curved_band()
    h, w = (80, 120) if name == "word box" else (100, 120)
    d = shrink_distance(polygon)
    xs, ys, edges, truth, official = compare_with_official(polygon, h, w)
    ours = distance_to_polygon_edges(polygon, np.arange(w), np.arange(h))
    np.testing.assert_allclose(ours, truth, atol=1e-4)         # our vectorised code is the true distance
    assert np.all(official >= truth - 1e-6)                    # the official formula never underestimates

    # Per edge: they agree wherever the foot of the perpendicular is off the segment or the angle
    # at the pixel is obtuse; they differ exactly where the foot is on the segment and the pixel
    # lies outside the circle whose diameter is the edge (acute angle at the pixel).
    for a, b in edges:
        t = ((xs - a[0]) * (b[0] - a[0]) + (ys - a[1]) * (b[1] - a[1])) / np.sum((b - a) ** 2)
        centre, radius = (a + b) / 2, np.hypot(*(b - a)) / 2
        beyond_circle = np.hypot(xs - centre[0], ys - centre[1]) > radius + 1e-9
        wrong_branch = (t > 0) & (t < 1) & beyond_circle
        diff = official_edge_distance(xs, ys, a, b) - true_edge_distance(xs, ys, a, b)
        assert np.all(np.abs(diff[~wrong_branch]) < 1e-6)
        assert np.all(diff[wrong_branch & (np.abs(t - 0.5) < 0.49)] > 0)

    ours_map = 1 - np.minimum(truth / d, 1)
    official_map = 1 - np.minimum(official / d, 1)
    differ = np.abs(ours_map - official_map) > 1e-6
    band = truth < d                                            # pixels with a non-zero border value
    with capsys.disabled():
        print(f"\n[official vs true edge distance] {name}, D={d:.2f}: {differ.sum()} of {band.sum()} "
              f"border pixels differ ({100 * differ.sum() / band.sum():.1f}%), max |diff| of (1 - d/D) = "
              f"{np.abs(ours_map - official_map).max():.3f} (x0.4 in threshold-map units)")
    assert differ.any()
    if name == "word box":   # for a rectangle only pixels beyond the two SHORT edges differ
        u, _ = box_frame(h, w, 60, 40, 20)
        assert np.all(np.abs(u[differ]) > 30 - 0.1)


# ----------------------------------------------------------------------------- special cases
def test_thin_rotated_text_is_ignored_by_min_area_rect():
    # 60 x 5 rotated 45 deg: axis-aligned box ~46 x 46 (the official test keeps it), short side 5 < 8
    thin = rotated_rectangle(50, 50, 60, 5, 45)
    maps = make_label_maps([thin], [False], 100, 100)
    assert maps["gt"].sum() == 0
    assert maps["mask"][50, 50] == 0
    assert maps["thresh_mask"].sum() == 0 and np.all(maps["thresh_map"] == np.float32(0.3))
    wide = rotated_rectangle(50, 50, 60, 12, 45)
    assert make_label_maps([wide], [False], 100, 100)["gt"].sum() > 0


def test_shrink_that_splits_fills_every_piece():
    # two 30x30 squares joined by a 30x10 neck (D ~ 8.7 > 5): the shrink splits in two
    dumbbell = np.array([[0, 0], [30, 0], [30, 10], [60, 10], [60, 0], [90, 0], [90, 30], [60, 30],
                         [60, 20], [30, 20], [30, 30], [0, 30]], np.float64) + 5
    assert shrink_distance(dumbbell) > 5
    gt, mask = make_shrink_map([dumbbell], [False], 40, 100)
    count, labels = cv2.connectedComponents(gt.astype(np.uint8))
    assert count - 1 == 2
    assert gt[20, 20] == 1 and gt[20, 80] == 1 and gt[20, 50] == 0
    assert np.all(mask == 1)


def test_vanished_shrink_is_masked_out():
    tiny = np.array([[20.0, 20.0], [20.01, 20.0], [20.0, 20.01]])     # collapses on the 1/16 px grid
    maps = make_label_maps([tiny], [False], 40, 40, min_text_size=0)
    assert maps["gt"].sum() == 0
    assert maps["mask"][20, 20] == 0
    assert maps["thresh_mask"].sum() == 0


def test_degenerate_and_self_intersecting_polygons_are_masked_not_crashing():
    line = np.array([[5, 5], [30, 5], [20, 5]], np.float64)                 # zero area
    bowtie = np.array([[40, 5], [70, 35], [70, 5], [40, 35]], np.float64)   # self-intersecting
    maps = make_label_maps([line, bowtie], [False, False], 40, 80)
    assert maps["gt"].sum() == 0
    assert maps["mask"][5, 20] == 0 and maps["mask"][20, 45] == 0
    assert maps["thresh_mask"].sum() == 0


def test_ignored_text_masked_and_without_border():
    maps = make_label_maps([SQUARE], [True], 40, 40)
    assert maps["gt"].sum() == 0
    assert np.all(maps["mask"][10:31, 10:31] == 0) and maps["mask"][5, 5] == 1
    assert maps["thresh_mask"].sum() == 0 and np.all(maps["thresh_map"] == np.float32(0.3))


def test_points_outside_image_equal_a_window_of_a_larger_image():
    polygon = rotated_rectangle(5, 30, 50, 20, 15)              # sticks out on the left
    small = make_label_maps([polygon], [False], 64, 64)
    large = make_label_maps([polygon + 32], [False], 128, 128)
    for key in small:
        np.testing.assert_allclose(small[key], large[key][32:96, 32:96], atol=1e-5, err_msg=key)
    outside = make_label_maps([polygon - 200], [False], 64, 64)  # entirely outside: nothing drawn
    assert outside["gt"].sum() == 0 and outside["thresh_mask"].sum() == 0


def test_vertex_order_does_not_matter():
    polygon = rotated_rectangle(40, 30, 50, 18, -25)
    a = make_label_maps([polygon], [False], 64, 80)
    b = make_label_maps([polygon[::-1]], [False], 64, 80)
    for key in a:   # float32 sums in another edge order: equal up to rounding
        np.testing.assert_allclose(a[key], b[key], atol=1e-6, err_msg=key)


def test_no_polygons():
    maps = make_label_maps([], np.zeros(0, bool), 16, 24)
    assert maps["gt"].shape == (16, 24) and maps["gt"].dtype == np.float32
    assert np.all(maps["mask"] == 1) and np.all(maps["thresh_mask"] == 0)
    assert np.all(maps["thresh_map"] == np.float32(0.3))


# ----------------------------------------------------------------------------- random polygons
@st.composite
def random_polygon(draw):
    """A convex polygon (hull of random points) or a concave star-shaped one, in a 64x64 image."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    cx, cy = rng.uniform(-10, 74, size=2)
    if draw(st.booleans()):
        points = rng.uniform(-25, 25, size=(rng.integers(3, 12), 2)) + (cx, cy)
        hull = shapely.convex_hull(shapely.multipoints(points))
        if not isinstance(hull, shapely.Polygon):
            return np.array([[cx, cy], [cx + 9, cy], [cx, cy + 9]])
        return np.asarray(hull.exterior.coords)[:-1]
    k = int(rng.integers(5, 16))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = rng.uniform(2, 30, k)
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(random_polygon(), st.booleans()), min_size=1, max_size=4))
def test_random_polygons_give_valid_maps(texts):
    polygons = [p for p, _ in texts]
    ignore = np.array([flag for _, flag in texts])
    maps = make_label_maps(polygons, ignore, 64, 64)
    for key in ("gt", "mask", "thresh_mask"):
        assert maps[key].dtype == np.float32 and set(np.unique(maps[key])) <= {0.0, 1.0}, key
    assert maps["thresh_map"].min() >= np.float32(0.3) and maps["thresh_map"].max() <= np.float32(0.7)
    ys, xs = np.mgrid[0:64, 0:64]
    for polygon, ignored in zip(polygons, ignore):
        shape = shapely.polygons(polygon)
        if not shapely.is_valid(shape):
            continue
        # pixels well inside a text: masked out when ignored; when kept, never outside the text
        deep = shapely.contains_xy(shape.buffer(-0.75), xs, ys)
        if ignored:
            assert np.all(maps["mask"][deep] == 0)
    care = [shapely.polygons(p) for p, ig in zip(polygons, ignore) if not ig]
    near_care = np.zeros((64, 64), bool)
    for shape in care:
        near_care |= shapely.contains_xy(shape.buffer(1.0), xs, ys)
    assert np.all(maps["gt"][~near_care] == 0)             # kernels lie inside their texts
    if not care:
        assert maps["thresh_mask"].sum() == 0


@settings(max_examples=25, deadline=None)
@given(random_polygon())
def test_threshold_values_match_shapely_distances(polygon):
    shape = shapely.polygons(polygon)
    if not shapely.is_valid(shape) or shape.area < 1:
        return
    d = shrink_distance(polygon)
    thresh, _ = make_threshold_map([polygon], [False], 64, 64)
    ys, xs = np.mgrid[0:64, 0:64]
    distance = shapely.distance(shape.exterior, shapely.points(xs.ravel(), ys.ravel())).reshape(64, 64)
    expected = 0.3 + 0.4 * (1 - np.minimum(distance / d, 1))
    np.testing.assert_allclose(thresh, expected, atol=5e-5)


def test_mismatched_ignore_flags_raise():
    with pytest.raises(ValueError, match="2 polygons but 1 ignore flags"):
        make_label_maps([SQUARE, SQUARE], [False], 40, 40)


def load_bench():
    """bench/bench_labels.py holds the official-style reference implementation (own re-write)."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "bench" / "bench_labels.py"
    spec = importlib.util.spec_from_file_location("bench_labels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_maps_equal_official_style_maps_except_along_borders():
    bench = load_bench()
    samples, _ = bench.synthetic_samples(4, seed=1)
    kernel = np.ones((5, 5), np.uint8)
    for polygons, ignore in samples:
        ours = make_label_maps(polygons, ignore, 640, 640)
        official = bench.official_label_maps(polygons, ignore, 640, 640)
        for key in ("gt", "mask", "thresh_mask"):
            binary, theirs = ours[key].astype(np.uint8), official[key].astype(np.uint8)
            near_border = ((cv2.dilate(binary, kernel) != cv2.erode(binary, kernel)) |   # within 2 px of
                           (cv2.dilate(theirs, kernel) != cv2.erode(theirs, kernel)))   # either border
            differ = ours[key] != official[key]
            assert np.all(near_border[differ]), key
            foreground = (binary == 0).sum() if key == "mask" else binary.sum()
            assert differ.sum() < 0.3 * foreground, key      # thin kernels: a 1 px rim is ~20 %
        # official distances are never shorter, so its border values are never higher
        assert np.all(ours["thresh_map"] >= official["thresh_map"] - 1e-5)
