"""db_tf.preprocess: normalisation convention, inference sizes, padding, input conversion."""
import math

import numpy as np
import pytest

from db_tf.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    inference_size,
    normalize,
    pad_batch,
    resize_for_inference,
    to_rgb_uint8,
)


def test_normalize_hand_worked_pixel():
    pixel = np.array([[[255, 0, 128]]], np.uint8)
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    out = normalize(pixel)
    assert out.dtype == np.float32 and out.shape == (1, 1, 3)
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-6)


def test_normalize_bgr_swaps_channels_before_mean_std():
    pixel = np.array([[[10, 20, 30]]], np.uint8)  # RGB
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
    out = normalize(pixel, mean, std, channel_order="BGR")[0, 0]
    np.testing.assert_allclose(out, [(30 / 255 - 0.1) / 0.5, (20 / 255 - 0.2) / 0.25, (10 / 255 - 0.3) / 0.125],
                               rtol=1e-6)


def test_normalize_lookup_equals_the_formula_exactly():
    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    mean, std = np.float32([0.1, 0.5, 0.9]), np.float32([0.2, 0.3, 0.4])
    for order, pixels in (("RGB", image), ("BGR", image[..., ::-1])):
        direct = (pixels.astype(np.float32) / np.float32(255) - mean) / std
        np.testing.assert_array_equal(normalize(image, mean, std, order), direct)
    np.testing.assert_array_equal(normalize(image.astype(np.float32), mean, std),
                                  (image.astype(np.float32) / np.float32(255) - mean) / std)


def test_normalize_batches_and_rejects_bad_input():
    batch = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    out = normalize(batch)
    np.testing.assert_allclose(out[1], normalize(batch[1]))
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)) * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN),
                               batch.mean(axis=(0, 1, 2)) / 255, rtol=1e-5)
    with pytest.raises(ValueError, match="channel_order"):
        normalize(batch, channel_order="RBG")
    with pytest.raises(ValueError, match="3 channels"):
        normalize(np.zeros((4, 4), np.uint8))


def _official_size(height, width, short_side):
    # MhLiao/DB demo resize, written out: short side exact, long side ceil to a multiple of 32
    if height < width:
        return short_side, int(math.ceil(short_side / height * width / 32) * 32)
    return int(math.ceil(short_side / width * height / 32) * 32), short_side


@pytest.mark.parametrize("shape", [(720, 1280), (1200, 1600), (1280, 720), (500, 500), (333, 1000)])
def test_inference_size_matches_the_official_rule(shape):
    assert inference_size(*shape, short_side=736, max_side=0) == _official_size(*shape, 736)


def test_inference_size_properties_on_random_shapes():
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 6000, 2))
        short, limit = int(rng.choice([320, 640, 736, 1024])), int(rng.choice([0, 1280, 2560, 1000]))
        new_h, new_w = inference_size(h, w, short, limit)
        assert new_h % 32 == 0 and new_w % 32 == 0 and new_h >= 32 and new_w >= 32
        if limit:
            assert max(new_h, new_w) <= max(32, limit // 32 * 32)
        scale = min(short / min(h, w), limit / max(h, w)) if limit else short / min(h, w)
        assert abs(new_h - h * scale) <= 32 + 1e-6 or new_h == 32
        assert abs(new_w - w * scale) <= 32 + 1e-6 or new_w == 32


def test_fixed_size_and_huge_and_empty_images():
    assert inference_size(100, 300, size=640) == (640, 640)
    assert inference_size(100, 300, size=(500, 700)) == (512, 704)  # nearest multiples of 32
    assert inference_size(10000, 10000, 736, 2560) == (736, 736)
    assert inference_size(10000, 100, 736, 2560) == (2560, 32)  # long-side limit wins
    huge = np.zeros((10000, 10000, 3), np.uint8)  # zero pages: cheap to allocate and read
    resized, scale = resize_for_inference(huge, 736, 2560)
    assert resized.shape == (736, 736, 3) and scale == pytest.approx((0.0736, 0.0736))
    with pytest.raises(ValueError, match="no pixels"):
        resize_for_inference(np.zeros((0, 10, 3), np.uint8))


def test_resize_keeps_content_and_reports_scale():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 100:] = 255  # right half white
    resized, (sy, sx) = resize_for_inference(image, short_side=64, max_side=0)
    assert resized.shape == (64, 128, 3) and (sy, sx) == (0.64, 0.64)
    assert resized[:, :60].max() == 0 and resized[:, 68:].min() == 255


def test_pad_batch_pads_bottom_right():
    a = np.ones((32, 64, 3), np.float32)
    b = np.full((64, 32, 3), 2.0, np.float32)
    batch, sizes = pad_batch([a, b])
    assert batch.shape == (2, 64, 64, 3) and sizes == [(32, 64), (64, 32)]
    assert (batch[0, :32] == 1).all() and (batch[0, 32:] == 0).all()
    assert (batch[1, :, :32] == 2).all() and (batch[1, :, 32:] == 0).all()


def test_to_rgb_uint8_conversions():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert (to_rgb_uint8(gray)[..., 2] == gray).all() and to_rgb_uint8(gray).shape == (3, 4, 3)
    rgba = np.zeros((3, 4, 4), np.uint8)
    assert to_rgb_uint8(rgba).shape == (3, 4, 3)
    with pytest.raises(ValueError, match="uint8"):
        to_rgb_uint8(np.zeros((3, 4, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        to_rgb_uint8(np.zeros((3, 4, 2), np.uint8))
