"""Augmentation (db_tf/data/augment.py): image and polygons stay together; crop keeps every text."""
import cv2
import numpy as np
import pytest
import shapely
from easydict import EasyDict as edict

from db_config import cfg
from db_tf.data.augment import augment, clip_polygons, random_crop_region
from db_tf.data.labels import make_label_maps

FULL = cfg.DATA.AUG                                     # every augmentation on, project defaults


def only(**switches):
    """An AUG config with only the given steps on (missing keys mean off)."""
    return edict(switches)


def rasterise(polygon, h, w):
    """Pixels whose centre lies inside the polygon (exact geometry, not cv2.fillPoly)."""
    ys, xs = np.mgrid[0:h, 0:w]
    return shapely.contains_xy(shapely.polygons(np.asarray(polygon, np.float64)), xs, ys)


def scene(h=120, w=200):
    """A textured image with one white text-like quadrilateral drawn into it."""
    rng = np.random.default_rng(7)
    image = (rng.integers(0, 60, (h, w, 3))).astype(np.uint8)
    polygon = np.array([[40.3, 30.2], [150.6, 38.1], [146.2, 80.4], [36.9, 70.7]])
    image[rasterise(polygon, h, w)] = 255
    return image, polygon


def iou(a, b):
    return np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1)


# ----------------------------------------------------------------------------- image <-> polygon
@pytest.mark.parametrize("seed", range(8))
def test_polygon_follows_the_image(seed):
    image, polygon = scene()
    out, polygons, ignore = augment(image, [polygon], [False], FULL, 128, np.random.default_rng(seed))
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    assert len(polygons) == 1 and not ignore[0]         # the only text always survives the crop
    assert polygons[0].dtype == np.float32
    drawn = out.min(axis=2) > 160                       # the white quad after augmentation
    assert iou(drawn, rasterise(polygons[0], 128, 128)) > 0.9


def test_rotation_expands_the_canvas():
    image = np.full((60, 100, 3), 255, np.uint8)
    out, _, _, info = augment(image, [], [], only(ROTATE=10.0), (200, 200), np.random.default_rng(3),
                              return_info=True)
    k = np.sqrt(abs(np.linalg.det(info["matrix"][:2, :2])))
    white = (out.min(axis=2) > 127).sum()
    assert white == pytest.approx(60 * 100 * k * k, rel=0.03)   # the whole image is still there
    corners = np.array([[-0.5, -0.5, 1], [99.5, -0.5, 1], [99.5, 59.5, 1], [-0.5, 59.5, 1]]) @ info["matrix"].T
    assert corners[:, :2].min() >= -0.5 - 1e-6 and corners[:, :2].max() <= 199.5 + 1e-6


def test_flip_mirrors_image_and_polygons():
    image, polygon = scene()
    seen = set()
    for seed in range(12):
        out, polygons, _ = augment(image, [polygon], [False], only(FLIP=True), (120, 200),
                                   np.random.default_rng(seed))
        flipped = not np.array_equal(out, image)
        seen.add(flipped)
        if flipped:
            np.testing.assert_array_equal(out, image[:, ::-1])
            expected = np.stack([199 - polygon[:, 0], polygon[:, 1]], axis=1)[::-1]   # orientation kept
            np.testing.assert_allclose(polygons[0], expected, atol=1e-4)
        else:
            np.testing.assert_allclose(polygons[0], polygon, atol=1e-4)
    assert seen == {True, False}


def test_no_augmentation_is_keep_ratio_resize_and_pad():
    image, polygon = scene(h=100, w=200)
    out, polygons, _ = augment(image, [polygon], [False], None, 160, np.random.default_rng(0))
    # scale 0.8 into the top-left 80 x 160, zeros below; cv2.resize uses the same pixel-centre model
    reference = cv2.resize(image, (160, 80), interpolation=cv2.INTER_LINEAR)
    assert np.abs(out[:80].astype(int) - reference).max() <= 2
    assert np.all(out[80:] == 0)
    np.testing.assert_allclose(polygons[0], (polygon + 0.5) * 0.8 - 0.5, atol=1e-4)
    # scale 0.4 (< 0.5): area-averaged like cv2.resize(INTER_AREA)
    out, polygons, _ = augment(image, [polygon], [False], None, 80, np.random.default_rng(0))
    reference = cv2.resize(image, (80, 40), interpolation=cv2.INTER_AREA)
    assert np.abs(out[:40].astype(int) - reference).max() <= 2
    assert np.all(out[40:] == 0)
    np.testing.assert_allclose(polygons[0], (polygon + 0.5) * 0.4 - 0.5, atol=1e-4)


def test_strong_downscale_does_not_alias():
    checker = (np.indices((400, 400)).sum(axis=0) % 2 * 255).astype(np.uint8)
    image = np.repeat(checker[..., None], 3, axis=2)
    out, _, _ = augment(image, [], [], None, 64, np.random.default_rng(0))
    assert abs(out.mean() - 127.5) < 3 and out.std() < 3   # a bilinear-only warp gives 0/255 moire


# ----------------------------------------------------------------------------- crop
def random_texts(rng, n, h, w):
    polygons = []
    for _ in range(n):
        x, y = rng.uniform(0, w - 30), rng.uniform(0, h - 12)
        bw, bh = rng.uniform(8, 30), rng.uniform(6, 12)
        polygons.append(np.array([[x, y], [x + bw, y], [x + bw, y + bh], [x, y + bh]]))
    return polygons, rng.random(n) < 0.3


def random_scene(seed, h=150, w=240):
    """(generator, noise image, 1..11 random texts, their ignore flags)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (h, w, 3)).astype(np.uint8)
    polygons, ignore = random_texts(rng, int(rng.integers(1, 12)), h, w)
    return rng, image, polygons, ignore


@pytest.mark.parametrize("seed", range(20))
def test_crop_never_loses_a_polygon_inside_it(seed):
    rng, image, polygons, ignore = random_scene(seed)
    size = 96
    out, kept, kept_ignore, info = augment(image, polygons, ignore, FULL, size, rng, return_info=True)
    valid_h, valid_w = info["valid_size"]
    lo, hi_x, hi_y = -0.5 - 1e-6, valid_w - 0.5 + 1e-6, valid_h - 0.5 + 1e-6
    moved = [p @ info["matrix"][:2, :2].T + info["matrix"][:2, 2] for p in polygons]
    for p, ignored in zip(moved, ignore):
        inside = p[:, 0].min() >= lo and p[:, 1].min() >= lo and p[:, 0].max() <= hi_x and p[:, 1].max() <= hi_y
        if inside:   # must be in the output, unchanged (up to vertex order after a flip)
            assert any(q.shape == p.shape and kept_ignore[j] == ignored and
                       (np.allclose(q, p, atol=1e-3) or np.allclose(q, p[::-1], atol=1e-3))
                       for j, q in enumerate(kept)), "a polygon inside the crop was lost"
        elif not ignored:   # EAST rule: a care text is never cut, so it is entirely outside
            assert (p[:, 0].max() <= lo + 1e-3 or p[:, 0].min() >= hi_x - 1e-3 or
                    p[:, 1].max() <= lo + 1e-3 or p[:, 1].min() >= hi_y - 1e-3)
    for q in kept:                                      # nothing lands on the padding
        assert q[:, 0].min() >= lo and q[:, 1].min() >= lo and q[:, 0].max() <= hi_x and q[:, 1].max() <= hi_y
    assert np.all(out[valid_h:] == 0) and np.all(out[:, valid_w:] == 0)
    assert (~kept_ignore).sum() >= 1 or (~ignore).sum() == 0


def test_crop_region_rule():
    rng = np.random.default_rng(0)
    texts = [np.array([[50.0, 40], [90, 40], [90, 50], [50, 50]]),
             np.array([[120.0, 90], [170, 90], [170, 104], [120, 104]])]
    for _ in range(50):
        x0, y0, cw, ch = random_crop_region(texts, [False, False], 200, 150, 0.1, 10, rng)
        assert cw >= 20 and ch >= 15
        for t in texts:   # each text is fully inside or fully outside [x0, x0 + cw] x [y0, y0 + ch]
            (tx0, ty0), (tx1, ty1) = t.min(axis=0), t.max(axis=0)
            inside = tx0 >= x0 and tx1 <= x0 + cw and ty0 >= y0 and ty1 <= y0 + ch
            outside = tx1 <= x0 or tx0 >= x0 + cw or ty1 <= y0 or ty0 >= y0 + ch
            assert inside or outside
    whole = random_crop_region([np.array([[0.0, 0], [200, 0], [200, 150], [0, 150]])], [False], 200, 150, 0.1, 10, rng)
    assert whole == (0, 0, 200, 150)                    # no free column: the whole canvas
    assert random_crop_region(texts, [True, True], 200, 150, 0.1, 10, rng) == (0, 0, 200, 150)


# ----------------------------------------------------------------------------- window crop
WINDOW = edict(FLIP=True, ROTATE=10.0, SCALE=[1.0, 2.5], CROP=True, CROP_MODE="window")


def test_window_is_not_resized_so_scale_is_the_zoom():
    image, polygon = scene()
    out, polygons, ignore, info = augment(image, [polygon], [False], only(SCALE=[2.0, 2.0], CROP=True,
                                          CROP_MODE="window"), 96, np.random.default_rng(1), return_info=True)
    assert np.sqrt(abs(np.linalg.det(info["matrix"][:2, :2]))) == pytest.approx(2.0)
    assert info["valid_size"] == (96, 96) and info["crop"][2:] == (96, 96)
    x0, y0 = info["crop"][:2]                           # the output is the 2x image's window, pixel for pixel
    big = cv2.resize(image, (400, 240), interpolation=cv2.INTER_LINEAR)
    assert np.abs(out.astype(int) - big[y0:y0 + 96, x0:x0 + 96]).mean() < 2.0
    centre = (polygon.mean(axis=0) + 0.5) * 2.0         # the text's centre, canvas corner coordinates
    assert x0 <= centre[0] < x0 + 96 and y0 <= centre[1] < y0 + 96
    assert len(polygons) == 1 and ignore[0]             # a 220 px wide text never fits: cut, so ignored


@pytest.mark.parametrize("seed", range(12))
def test_window_keeps_whole_care_texts_and_ignores_cut_ones(seed):
    rng, image, polygons, ignore = random_scene(seed)
    out, kept, kept_ignore, info = augment(image, polygons, ignore, WINDOW, 96, rng, return_info=True)
    assert out.shape == (96, 96, 3)
    moved = [p @ info["matrix"][:2, :2].T + info["matrix"][:2, 2] for p in polygons]
    for q, flag in zip(kept, kept_ignore):
        if not flag:                                    # a care text in the output is a whole input care text
            assert any(not ignored and q.shape == p.shape and
                       (np.allclose(q, p, atol=1e-3) or np.allclose(q, p[::-1], atol=1e-3))
                       for p, ignored in zip(moved, ignore))
    x0, y0, cw, ch = info["crop"]                       # the window holds some care text's centre
    geometry_centres = [(p.mean(axis=0) @ info["matrix"][:2, :2].T + info["matrix"][:2, 2])
                        for p, ignored in zip(polygons, ignore) if not ignored]
    if geometry_centres:
        assert any(-1 <= c[0] <= cw and -1 <= c[1] <= ch for c in geometry_centres)


def test_window_prefers_positions_that_cut_no_care_text():
    texts = [np.array([[40.0, 40], [70, 40], [70, 50], [40, 50]]),
             np.array([[150.0, 100], [180, 100], [180, 110], [150, 110]])]
    image = np.zeros((150, 240, 3), np.uint8)
    for seed in range(40):
        _, kept, flags = augment(image, texts, [False, False], only(CROP=True, CROP_MODE="window"), 64,
                                 np.random.default_rng(seed))
        assert len(kept) >= 1 and not flags.any()       # a clean window always exists here


def test_unknown_crop_mode_is_an_error():
    with pytest.raises(ValueError, match="CROP_MODE"):
        augment(np.zeros((8, 8, 3), np.uint8), [], [], only(CROP=True, CROP_MODE="zoom"), 8,
                np.random.default_rng(0))


def test_clip_rule_for_cut_polygons():
    across = np.array([[-10.0, 5], [20, 5], [20, 15], [-10, 15]])      # cut by the left border
    inside = np.array([[30.0, 5], [40, 5], [40, 15], [30, 15]])
    outside = np.array([[100.0, 5], [120, 5], [120, 15], [100, 15]])
    kept, flags = clip_polygons([across, inside, outside], np.array([True, False, False]), 64, 32)
    assert len(kept) == 2 and flags.tolist() == [True, False]
    assert shapely.polygons(kept[0]).area == pytest.approx(20.5 * 10)  # x from -0.5 to 20
    assert kept[1] is inside


def test_polygons_without_area_are_dropped_not_a_crash():
    empty, segment = np.zeros((0, 2)), np.array([[-10.0, 5], [20, 5]])   # segment crosses the border
    square = np.array([[30.0, 5], [40, 5], [40, 15], [30, 15]])
    kept, flags = clip_polygons([empty, segment, square], np.array([False, False, True]), 64, 32)
    assert len(kept) == 1 and kept[0] is square and flags.tolist() == [True]


def test_text_past_the_image_border_is_clipped_and_kept():
    image = np.zeros((50, 80, 3), np.uint8)
    msra_like = np.array([[60.0, 10], [100, 10], [100, 30], [60, 30]])   # reaches past x = 80
    _, polygons, ignore = augment(image, [msra_like], [False], None, (50, 80), np.random.default_rng(0))
    assert len(polygons) == 1 and not ignore[0]
    assert polygons[0][:, 0].max() == pytest.approx(79.5)
    maps = make_label_maps(polygons, ignore, 50, 80)
    assert maps["gt"].sum() > 0


# ----------------------------------------------------------------------------- colour, reproducibility
def test_brightness_and_saturation():
    grey = np.full((20, 30, 3), 100, np.uint8)
    shifts = set()
    for seed in range(5):
        out, _, _ = augment(grey, [], [], only(COLOR_JITTER=32 / 255, SATURATION=0.5), (20, 30),
                            np.random.default_rng(seed))
        assert np.all(out == out[0, 0]) and np.all(np.abs(out.astype(int) - 100) <= 32)
        shifts.add(int(out[0, 0, 0]))
    assert len(shifts) > 1
    colour = np.random.default_rng(1).integers(40, 215, (20, 30, 3)).astype(np.uint8)
    out, _, _ = augment(colour, [], [], only(SATURATION=0.5), (20, 30), np.random.default_rng(2))
    luma = cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY).astype(float)
    assert np.abs(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY) - luma).max() <= 2   # brightness kept
    chroma_in = colour - luma[..., None]
    chroma_out = out - luma[..., None]
    factor = (chroma_in * chroma_out).sum() / (chroma_in ** 2).sum()
    assert 0.5 <= factor <= 1.5 and abs(factor - 1) > 1e-3
    np.testing.assert_allclose(chroma_out, factor * chroma_in, atol=2.5)  # one common factor


def test_seeded_generator_reproduces():
    image, polygon = scene()
    a = augment(image, [polygon], [False], FULL, 96, np.random.default_rng(42))
    b = augment(image, [polygon], [False], FULL, 96, np.random.default_rng(42))
    c = augment(image, [polygon], [False], FULL, 96, np.random.default_rng(43))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1][0], b[1][0])
    assert not np.array_equal(a[0], c[0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="uint8"):
        augment(np.zeros((8, 8), np.uint8), [], [], None, 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match="ignore flags"):
        augment(np.zeros((8, 8, 3), np.uint8), [np.zeros((4, 2))], [], None, 8, np.random.default_rng(0))
