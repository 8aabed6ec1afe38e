"""Tiled inference: the window geometry (db_tf/tiling.py, numpy only) and TextDetector(tile=...) with fake
models whose receptive field is known, so the stitched map can be compared with the whole image's exactly."""
import numpy as np
import pytest
from test_detector import PixelModel, white_rectangle

from db_tf import TextDetector
from db_tf.tiling import TileError, TileSpec, axis_windows, pad_tile, plan_tiles, policy_scale


class BoxFilterModel:
    """Output pixel = mean of the first input channel over a (2r+1)^2 window, zeros outside the input
    ('same' padding). Each output depends on inputs within r pixels only, and sums them in a fixed order, so
    the result for a pixel is bit-identical whenever its window sees the same inputs."""

    def __init__(self, radius):
        self.radius = radius
        self.batch_shapes = []

    def __call__(self, images, training=False, return_maps=False):
        images = np.asarray(images, np.float32)
        self.batch_shapes.append(images.shape)
        r = self.radius
        channel = np.pad(images[..., 0], ((0, 0), (r, r), (r, r)))
        height, width = images.shape[1:3]
        total = np.zeros(images.shape[:3], np.float32)
        for dy in range(2 * r + 1):
            for dx in range(2 * r + 1):
                total += channel[:, dy:dy + height, dx:dx + width]
        out = (total / np.float32((2 * r + 1) ** 2))[..., None]
        if return_maps:
            return {"probability": out, "threshold": out * np.float32(0.5), "binary": out}
        return out


# ------------------------------------------------------------------------------------------- geometry
def test_windows_of_one_axis_worked_by_hand():
    # 100 pixels, windows of 64 every 48: starts 0 and (moved back to end at 100) 36; overlap 36..64 split at 50
    windows = axis_windows(100, 64, 16)
    assert [(s.start, s.stop) for s, _, _ in windows] == [(0, 64), (36, 100)]
    assert [(o.start, o.stop) for _, o, _ in windows] == [(0, 50), (50, 100)]
    assert [(i.start, i.stop) for _, _, i in windows] == [(0, 50), (14, 64)]
    # a side up to the window size: one window, rounded up to a multiple of 32 (the rest is padding)
    assert [(s.start, s.stop, o.stop) for s, o, _ in axis_windows(70, 128, 16)] == [(0, 96, 70)]


@pytest.mark.parametrize("size,overlap", [(64, 0), (64, 16), (64, 17), (96, 32), (128, 100), (32, 31)])
def test_owned_regions_partition_the_axis_and_keep_half_the_overlap_from_inner_borders(size, overlap):
    for length in range(1, 400, 7):
        windows = axis_windows(length, size, overlap)
        covered = np.zeros(length, int)
        for source, owned, inside in windows:
            covered[owned] += 1
            assert inside.start == owned.start - source.start and inside.stop - inside.start == owned.stop - owned.start
            assert 0 <= source.start and (source.stop <= length or len(windows) == 1)
            if source.start > 0:                 # an inner border: at least overlap // 2 away
                assert owned.start - source.start >= overlap // 2
            if source.stop < length:
                assert source.stop - owned.stop >= overlap // 2
        assert np.all(covered == 1), (length, size, overlap)


def test_plan_at_the_policy_zoom_and_at_an_explicit_one():
    plan = plan_tiles((2160, 3840), TileSpec(size=1024, overlap=128), short_side=736)
    assert plan.scale == pytest.approx(736 / 2160) == policy_scale((2160, 3840), 736)
    assert plan.scaled_size == (736, 1308) and plan.tile_shape == (736, 1024)   # one row of windows, padded
    assert len(plan.windows) == 2
    plan = plan_tiles((6000, 8000), TileSpec(size=1024, overlap=0.25, scale=1.0), short_side=736)
    assert plan.scaled_size == (6000, 8000) and plan.tile_shape == (1024, 1024)
    assert len(plan.windows) == 8 * 11   # stride 768: ceil((6000 - 1024) / 768) + 1 = 8 rows, 11 columns


def test_pad_tile_pads_bottom_right_only():
    crop = np.ones((3, 5, 2), np.float32)
    padded = pad_tile(crop, (4, 6))
    assert padded.shape == (4, 6, 2) and padded[:3, :5].min() == 1 and padded.sum() == crop.sum()


@pytest.mark.parametrize("tile,message", [
    (100, "multiple of 32"), (0, "multiple of 32"), ({"size": 64.0}, "multiple of 32"),
    ({"size": 64, "overlap": 64}, "smaller than the tile size"), ({"size": 64, "overlap": -1}, "non-negative"),
    ({"size": 64, "overlap": 1.0}, "fraction"), ({"size": 64, "overlap": "8"}, "overlap"),
    ({"size": 64, "scale": 0}, "positive number"), ({"size": 64, "scale": float("nan")}, "positive number"),
    ({"size": 64, "scale": "1"}, "positive number"), ({"size": 64, "stride": 8}, "unknown tile keys"),
    ("big", "tile must be")])
def test_bad_tile_settings_are_named(tile, message):
    with pytest.raises(TileError, match=message):
        TileSpec.parse(tile)
    with pytest.raises(ValueError, match=message):
        TextDetector(model=PixelModel(), tile=tile)


def test_tile_and_fixed_size_exclude_each_other():
    with pytest.raises(ValueError, match="tile and size"):
        TextDetector(model=PixelModel(), tile=64, size=(64, 64))


# ------------------------------------------------------------------------------------------- stitching
def noise_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def whole_image_map(model, image, return_maps=False):
    # short side -> itself, no cap: scale 1 (the sides are multiples of 32, so nothing is resized)
    detector = TextDetector(model=model, short_side=min(image.shape[:2]), max_side=0)
    return detector.predict_maps([image], return_maps=return_maps)[0]


@pytest.mark.parametrize("radius,overlap", [(3, 6), (3, 7), (4, 20), (0, 0)])
def test_stitched_map_equals_the_whole_image_map_when_the_overlap_covers_the_receptive_field(radius, overlap):
    image = noise_image(160, 224)
    model = BoxFilterModel(radius)
    want = whole_image_map(model, image, return_maps=True)
    detector = TextDetector(model=model, tile={"size": 64, "overlap": overlap, "scale": 1.0}, batch_size=3)
    got = detector.predict_maps([image], return_maps=True)[0]
    assert set(got) == {"probability", "threshold", "binary"}
    for key in got:
        assert got[key].dtype == np.float32 and got[key].shape == (160, 224)
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_too_small_an_overlap_shows_at_the_seams():
    image = noise_image(160, 224)
    model = BoxFilterModel(3)
    want = whole_image_map(model, image)["probability"]
    got = TextDetector(model=model, tile={"size": 64, "overlap": 4, "scale": 1.0}).predict_maps([image])[0]
    differs = np.argwhere(got["probability"] != want)
    assert len(differs) > 0

    def near_a_seam(coordinates, length):   # within radius of the owning window's inner border
        seams = np.array([owned.start for _, owned, _ in axis_windows(length, 64, 4)[1:]])
        return np.min(np.abs(coordinates[:, None] - seams[None]), axis=1) <= 3 + 4 // 2

    assert np.all(near_a_seam(differs[:, 0], 160) | near_a_seam(differs[:, 1], 224))


def test_text_across_a_window_border_gives_one_box():
    # a 200 x 24 text crossing the seams of 64-pixel windows (stride 48) in both directions
    image = white_rectangle(256, 320, 40, 50, 239, 73)
    tiled = TextDetector(model=PixelModel(), tile={"size": 64, "overlap": 16, "scale": 1.0}).detect(image)
    whole = TextDetector(model=PixelModel(), short_side=256, max_side=0).detect(image)
    assert len(tiled) == 1 and len(whole) == 1
    np.testing.assert_array_equal(tiled.polygons[0], whole.polygons[0])


def test_boxes_come_back_in_original_coordinates_at_another_zoom():
    image = white_rectangle(400, 640, 100, 120, 499, 169)     # 400 x 50 text
    result = TextDetector(model=PixelModel(), tile={"size": 96, "overlap": 32, "scale": 0.5}).detect(image)
    assert len(result) == 1 and result.image_size == (400, 640)
    box = result.polygons[0]
    # the map is at half size: the blob 200 x 25 grows by D' = A' 1.5 / L' map pixels, x2 back in the image
    grow = 200 * 25 * 1.5 / (2 * (200 + 25)) * 2
    np.testing.assert_allclose([box[:, 0].min(), box[:, 1].min(), box[:, 0].max(), box[:, 1].max()],
                               [100 - grow, 120 - grow, 499 + grow, 169 + grow], atol=2 * 2.5)


def test_memory_is_bounded_by_the_windows_in_flight():
    image = np.zeros((1500, 2300, 3), np.uint8)
    model = BoxFilterModel(0)
    detector = TextDetector(model=model, tile={"size": 128, "overlap": 32, "scale": 1.0}, batch_size=2)
    maps = detector.predict_maps([image])[0]
    assert maps["probability"].shape == (1500, 2300)
    windows = len(plan_tiles((1500, 2300), detector.tile, 736).windows)
    assert windows == 16 * 24
    assert len(model.batch_shapes) == windows // 2
    assert {shape for shape in model.batch_shapes} == {(2, 128, 128, 3)}   # never more than 2 windows at once


def test_empty_and_small_images_with_tiles():
    detector = TextDetector(model=PixelModel(), tile={"size": 128, "overlap": 32, "scale": 1.0})
    assert len(detector.detect(np.zeros((0, 5, 3), np.uint8))) == 0
    small = white_rectangle(50, 70, 10, 10, 59, 29)       # smaller than one window: padded, cropped back
    maps = detector.predict_maps([small])[0]
    assert maps["probability"].shape == (50, 70)
    assert len(detector.detect(small)) == 1
