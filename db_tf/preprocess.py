"""Image preparation for the network: the one normalisation convention, inference resizing, batch padding.

Normalisation (also used by the training pipeline): uint8 RGB -> float32 ``(x / 255 - mean) / std`` with
ImageNet mean/std by default (as MhLiao/DB, which uses the ImageNet RGB mean/std). ``channel_order="BGR"``
swaps the channels to BGR *first*, then ``mean[i]`` / ``std[i]`` apply to output channel i, which is what
PaddleOCR does with its BGR images (needed by imported PaddleOCR weights).

Inference resizing follows the official demo/eval code: the short side goes to ``short_side`` (736) and the
long side keeps the aspect ratio, rounded UP to a multiple of 32. Beyond the official code, ``max_side``
bounds the long side (so a 10000-pixel panorama cannot exhaust memory) and a fixed ``size`` may be asked
for instead. Sides are always multiples of 32 (the network's total stride), at least 32.
"""
import math

import cv2
import numpy as np

from db_tf import defaults

IMAGENET_MEAN = tuple(defaults.IMAGENET_MEAN)
IMAGENET_STD = tuple(defaults.IMAGENET_STD)
CHANNEL_ORDERS = ("RGB", "BGR")
SIZE_MULTIPLE = 32


def normalize(image, mean=IMAGENET_MEAN, std=IMAGENET_STD, channel_order="RGB"):
    """uint8 RGB (..., 3) -> float32 (..., 3): optional RGB->BGR swap, then (x / 255 - mean) / std.

    uint8 input goes through a 256-entry lookup table per channel (cv2.LUT) holding exactly the values of
    the formula in float32, which is several times faster than evaluating it pixel by pixel.
    """
    order = str(channel_order).upper()
    if order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    image = np.asarray(image)
    if image.ndim < 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image with 3 channels last, got shape {image.shape}")
    mean = np.asarray(mean, np.float32).reshape(3)
    std = np.asarray(std, np.float32).reshape(3)
    if np.any(std == 0):
        raise ValueError(f"std must not contain 0, got {std.tolist()}")
    if image.dtype != np.uint8 or image.size == 0:
        if order == "BGR":
            image = image[..., ::-1]
        return ((image.astype(np.float32) / np.float32(255.0) - mean) / std).astype(np.float32, copy=False)
    levels = np.arange(256, dtype=np.float32)[:, None]
    table = ((levels / np.float32(255.0) - mean) / std).astype(np.float32)  # (256, 3)
    rows = np.ascontiguousarray(image).reshape(-1, image.shape[-2], 3)  # batches: images stacked row-wise
    if order == "BGR":
        rows = cv2.cvtColor(rows, cv2.COLOR_RGB2BGR)
    return cv2.LUT(rows, table.reshape(1, 256, 3)).reshape(image.shape)


def to_rgb_uint8(image):
    """Accept (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 arrays; return (H, W, 3) uint8 RGB."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image (RGB, 0..255), got dtype {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
                         f"got {image.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]  # drop alpha


def inference_size(height, width, short_side=736, max_side=2560, size=None):
    """(new_height, new_width) of the network input for an image of the given size (see module doc)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image has no pixels (size {height}x{width})")
    if size is not None:
        fixed_h, fixed_w = (size, size) if np.isscalar(size) else size
        return nearest_multiple(fixed_h), nearest_multiple(fixed_w)
    if short_side <= 0:
        raise ValueError(f"short_side must be positive, got {short_side}")
    scale = short_side / min(height, width)
    if max_side and max(height, width) * scale > max_side:
        scale = max_side / max(height, width)
    new_h, new_w = _ceil_multiple(height * scale), _ceil_multiple(width * scale)
    if max_side:  # rounding up must not cross the limit
        cap = max(SIZE_MULTIPLE, int(max_side) // SIZE_MULTIPLE * SIZE_MULTIPLE)
        new_h, new_w = min(new_h, cap), min(new_w, cap)
    return new_h, new_w


def resize_for_inference(image, short_side=736, max_side=2560, size=None):
    """Resize (bilinear, as the official code) -> (resized, (scale_y, scale_x)), scale = new / original."""
    height, width = image.shape[:2]
    new_h, new_w = inference_size(height, width, short_side, max_side, size)
    return resize_image(image, (new_h, new_w)), (new_h / height, new_w / width)


def resize_image(image, size):
    """``image`` resized (bilinear) to size = (height, width); the image itself when it has that size."""
    height, width = int(size[0]), int(size[1])
    return image if image.shape[:2] == (height, width) else cv2.resize(image, (width, height))


def pad_batch(images, value=0.0):
    """Stack (h_i, w_i, C) arrays into one (N, H, W, C) batch, padding bottom/right with ``value``.

    Returns (batch, valid_sizes) where valid_sizes[i] = (h_i, w_i): post-processing reads only that part.
    Value 0 after normalisation is the mean colour, the least surprising thing for the network to see.
    """
    if not images:
        raise ValueError("pad_batch needs at least one image")
    if len(images) == 1:
        return images[0][None], [images[0].shape[:2]]  # nothing to pad: no copy
    height = max(im.shape[0] for im in images)
    width = max(im.shape[1] for im in images)
    batch = np.full((len(images), height, width, images[0].shape[2]), value, dtype=images[0].dtype)
    for i, im in enumerate(images):
        batch[i, :im.shape[0], :im.shape[1]] = im
    return batch, [im.shape[:2] for im in images]


def _ceil_multiple(value):
    # the small tolerance keeps an exact 736.0000001 (float noise) at 736, not 768
    return max(SIZE_MULTIPLE, int(math.ceil(value / SIZE_MULTIPLE - 1e-6)) * SIZE_MULTIPLE)


def nearest_multiple(value):
    """``value`` rounded to the nearest multiple of 32 (the network's stride), at least 32."""
    return max(SIZE_MULTIPLE, int(round(value / SIZE_MULTIPLE)) * SIZE_MULTIPLE)
