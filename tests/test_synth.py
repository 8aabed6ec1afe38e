"""Synthetic scene-text generator: the GT polygons must enclose the rendered ink tightly.

The ink is measured independently of the generator: images are rendered on a flat grey
background without distractors, panels or global effects, and every pixel that differs from the
grey is ink.
"""
import math

import cv2
import numpy as np
import pytest

from db_tf import synth
from db_tf.data.readers import read_annotation
from db_tf.synth_text import Arc, apply_homography, box_outline, camera_homography

GREY = 128
SIZE = 320
CLEAN = dict(background=f"flat:{GREY},{GREY},{GREY}", distractors=False, panels=False, effects=False)
EDGE_TOLERANCE = 3.5   # px: a tight side passes this close to some ink pixel


def _ink(image):
    return (np.abs(image.astype(np.int32) - GREY).max(axis=2) > 15).astype(np.uint8)


def _fill(polygons, shape):
    mask = np.zeros(shape, np.uint8)
    for polygon in polygons:
        cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 1, shift=4)
    return mask


def _sides(polygon):
    """The four sides of a polygon with 2n points: top chain, right end, bottom chain, left end."""
    k = len(polygon)
    n = k // 2
    return [polygon[:n], polygon[[n - 1, n]], polygon[n:], polygon[[k - 1, 0]]]


def _side_gap(side, distance_to_ink):
    """Closest approach of a side (poly-line) to the ink, minus its allowed tolerance.

    A bent side is a chain of chords of an arc; a chord may stand off the arc by its sagitta, so the
    tolerance grows with the chord length (10 % is above the 20-degree chords' worst case).
    """
    points = []
    for a, b in zip(side[:-1], side[1:]):
        steps = int(math.ceil(np.linalg.norm(b - a) * 2)) + 1
        points.append(a + (b - a) * np.linspace(0, 1, steps)[:, None])
    points = np.round(np.concatenate(points)).astype(int)
    h, w = distance_to_ink.shape
    points[:, 0] = np.clip(points[:, 0], 0, w - 1)
    points[:, 1] = np.clip(points[:, 1], 0, h - 1)
    longest = np.linalg.norm(np.diff(side, axis=0), axis=1).max()
    tolerance = EDGE_TOLERANCE + (0.1 * longest if len(side) > 2 else 0.0)
    return distance_to_ink[points[:, 1], points[:, 0]].min() - tolerance


def _clean_samples(level, count=16):
    return [synth.generate((11, i), SIZE, SIZE, level=level, **CLEAN) for i in range(count)]


@pytest.mark.parametrize("level", ["word", "line"])
def test_polygons_enclose_all_ink(level):
    for sample in _clean_samples(level):
        ink = _ink(sample.image)
        inside = _fill(sample.polygons, ink.shape)
        covered = (ink & inside).sum() / max(ink.sum(), 1)
        assert covered >= 0.998, f"only {covered:.4f} of the ink lies inside the GT polygons"


@pytest.mark.parametrize("level", ["word", "line"])
def test_every_polygon_side_touches_its_ink(level):
    """Tightness: no side of any polygon can move inwards by more than ~3 px without cutting ink."""
    straight_loose_gaps = []
    for sample in _clean_samples(level):
        ink = _ink(sample.image)
        distance = cv2.distanceTransform(1 - ink, cv2.DIST_L2, 5)
        for polygon in sample.polygons:
            gaps = [_side_gap(side, distance) for side in _sides(polygon)]
            assert max(gaps) <= 0, f"a side of {polygon.tolist()} is {max(gaps):.1f} px too far from the ink"
            if len(polygon) == 4:
                # the check has teeth: the same polygon grown by >= 6 px per side fails it
                h = min(cv2.minAreaRect(polygon)[1])
                center = polygon.mean(0)
                grown = center + (polygon - center) * (1 + 12 / h)
                straight_loose_gaps.append(max(_side_gap(side, distance) for side in _sides(grown)))
    assert straight_loose_gaps and min(straight_loose_gaps) > 0


def test_polygons_are_not_much_bigger_than_their_ink():
    """Area check: a polygon holds at least 30 % ink-hull (closed ink) area; a padded box would not."""
    for sample in _clean_samples("word", 8):
        ink = _ink(sample.image)
        for polygon in sample.polygons:
            own = _fill([polygon], ink.shape) & ink
            if own.sum() < 20:
                continue
            # close the gaps between strokes with a kernel of ~ the stroke spacing
            h = max(3, int(min(cv2.minAreaRect(polygon)[1]) * 0.5) | 1)
            solid = cv2.morphologyEx(own, cv2.MORPH_CLOSE, np.ones((h, h), np.uint8))
            ratio = solid.sum() / max(cv2.contourArea(polygon), 1.0)
            assert ratio > 0.3, f"polygon around {sample.texts} is {1 / ratio:.1f}x its ink area"


def test_sample_structure_and_annotation_rules():
    bent = 0
    for i in range(12):
        sample = synth.generate((5, i), 256, 256, level="mixed")
        assert sample.image.dtype == np.uint8 and sample.image.shape == (256, 256, 3)
        assert len(sample.polygons) == len(sample.ignore) == len(sample.texts) > 0
        assert sample.ignore.dtype == bool
        for polygon, ignored, text in zip(sample.polygons, sample.ignore, sample.texts):
            assert polygon.dtype == np.float32 and polygon.ndim == 2 and polygon.shape[1] == 2
            assert 4 <= len(polygon) <= 16 and len(polygon) % 2 == 0
            assert np.all(polygon >= -1) and np.all(polygon <= 256), "texts are placed inside the image"
            assert (text == synth.IGNORE_TEXT) == bool(ignored)
            assert cv2.contourArea(polygon) > 1
            bent += len(polygon) > 4
    assert bent > 0, "some curved texts are expected in 12 images"


def test_word_level_polygons_do_not_overlap():
    for sample in _clean_samples("word", 8):
        total = np.zeros(sample.image.shape[:2], np.int32)
        for polygon in sample.polygons:
            total += _fill([polygon], total.shape)
        assert (total > 1).sum() <= 0.01 * (total > 0).sum()


def test_same_seed_same_sample_and_different_seed_different_sample():
    a, b, c = synth.generate((3, 7), 128, 128), synth.generate((3, 7), 128, 128), synth.generate((3, 8), 128, 128)
    assert np.array_equal(a.image, b.image) and a.texts == b.texts
    assert all(np.array_equal(p, q) for p, q in zip(a.polygons, b.polygons))
    assert not np.array_equal(a.image, c.image)


def test_arc_inverse_undoes_forward():
    rng = np.random.default_rng(0)
    for sign in (1, -1):
        arc = Arc(radius=80.0, sign=sign, u_mid=50.0, v_mid=10.0)
        u, v = rng.uniform(0, 100, 200), rng.uniform(-5, 25, 200)
        back_u, back_v = arc.inverse(*arc.forward(u, v))
        np.testing.assert_allclose(back_u, u, atol=1e-9)
        np.testing.assert_allclose(back_v, v, atol=1e-9)
        # the middle row is bent onto a circle of the given radius
        x, y = arc.forward(np.linspace(0, 100, 9), np.full(9, 10.0))
        np.testing.assert_allclose(np.hypot(x - 50.0, y - (10.0 + sign * 80.0)), 80.0)


@pytest.mark.parametrize("sign", [1, -1])
def test_bent_box_outline_encloses_the_bent_rectangle(sign):
    arc = Arc(radius=60.0, sign=sign, u_mid=60.0, v_mid=15.0)
    box = (0.0, 120.0, 0.0, 30.0)                 # about 115 degrees of arc
    outline = box_outline(box, arc).astype(np.float32)
    assert 6 <= len(outline) <= 16 and len(outline) % 2 == 0
    uu, vv = np.meshgrid(np.linspace(0, 120, 241), np.linspace(0, 30, 61))
    xs, ys = arc.forward(uu.ravel(), vv.ravel())
    inside = [cv2.pointPolygonTest(outline, (float(x), float(y)), True) for x, y in zip(xs, ys)]
    assert min(inside) >= -1e-3
    # ...and is tight: its area exceeds the exact annulus-sector area by little
    exact = 120.0 / 60.0 / 2 * ((60 + 15) ** 2 - (60 - 15) ** 2)
    assert exact <= cv2.contourArea(outline) <= 1.05 * exact


def test_camera_homography_without_tilt_is_a_rotation_about_the_centre():
    angle = 0.3
    matrix = camera_homography(0.0, 0.0, angle, 500.0, (40.0, 20.0))
    points = np.array([[40.0, 20.0], [50.0, 20.0], [40.0, 35.0]])
    moved = apply_homography(matrix, points)
    c, s = math.cos(angle), math.sin(angle)
    expected = (points - (40, 20)) @ np.array([[c, s], [-s, c]]) + (40, 20)
    np.testing.assert_allclose(moved, expected, atol=1e-9)


def test_camera_tilt_foreshortens_the_far_side():
    matrix = camera_homography(0.0, 0.6, 0.0, 300.0, (0.0, 0.0))
    corners = apply_homography(matrix, np.array([[-50, -10], [-50, 10], [50, -10], [50, 10.0]]))
    left_height, right_height = corners[1, 1] - corners[0, 1], corners[3, 1] - corners[2, 1]
    assert abs(left_height / right_height - 1) > 0.05, "a tilted plane must show perspective"


def test_cli_writes_files_the_polygon_txt_reader_reads_back(tmp_path):
    synth.main(["--out", str(tmp_path), "--num", "2", "--size", "128", "--seed", "4"])
    for index in range(2):
        image = cv2.imread(str(tmp_path / "images" / f"img_{index}.jpg"))
        assert image.shape == (128, 128, 3)
        polygons, ignore, texts = read_annotation(tmp_path / "labels" / f"gt_img_{index}.txt", "polygon_txt",
                                                  strict=True)
        expected = synth.generate((4, index), 128, 128)
        assert texts == expected.texts
        assert np.array_equal(ignore, expected.ignore)
        for got, want in zip(polygons, expected.polygons):
            np.testing.assert_allclose(got, want, atol=0.051)
