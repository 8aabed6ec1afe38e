"""Image decoding for training and evaluation: any common file -> uint8 RGB (H, W, 3).

Ground truth of every supported dataset is given in the *stored* pixel frame, so the EXIF
orientation flag is deliberately NOT applied (a phone photo tagged "rotate 90" keeps its stored
width and height; applying the tag would put every polygon in the wrong place). OpenCV applies
the tag by default; `cv2.IMREAD_IGNORE_ORIENTATION` turns that off (checked with OpenCV 5.0,
see tests/test_image_io.py, which decodes a fixture tagged orientation 6).

Grayscale, RGBA (alpha dropped) and 16-bit (high byte kept) files all come back as uint8 RGB.
The official DB code reads with `cv2.imread(path, cv2.IMREAD_COLOR)`, which rotates tagged files.

Memory is bounded: the size in the file's header is checked before decoding, so a small file that
decodes to billions of pixels is refused (ImageReadError naming the file and its size) instead of
exhausting memory. ``decode_image_bounded`` instead decodes an oversized JPEG at 1/2, 1/4 or 1/8
resolution (libjpeg's scaled decoding never holds the full image) and says by how much.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import cv2
import numpy as np

# OpenCV >= 4.10 can decode straight to RGB; older versions give BGR and we swap channels.
_HAS_RGB_FLAG = hasattr(cv2, "IMREAD_COLOR_RGB")
_COLOR = cv2.IMREAD_COLOR_RGB if _HAS_RGB_FLAG else cv2.IMREAD_COLOR
DECODE_FLAGS = _COLOR | cv2.IMREAD_IGNORE_ORIENTATION
# libjpeg's scaled decoding: factor -> flag (IMREAD_REDUCED_COLOR_n = IMREAD_COLOR | reduction bits)
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
# 200 megapixels (e.g. 16000 x 12500): 600 MB as RGB uint8, enough for any photo or 600 dpi A3 scan
MAX_PIXELS = 200_000_000
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


class ImageReadError(ValueError):
    """An image file that is missing, unreadable or cannot be decoded."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def read_image(path, max_pixels=MAX_PIXELS) -> np.ndarray:
    """Decode `path` to a uint8 RGB array (H, W, 3) in the stored pixel frame (no EXIF rotation).

    Raises ImageReadError naming the file when it is missing, empty, unreadable, truncated, not an
    image, or larger than ``max_pixels`` (None: no limit). OpenCV 5 rejects truncated JPEG and PNG
    data instead of returning half-grey images, so no partial image is ever returned.
    """
    return decode_image(read_bytes(path), os.fspath(path), max_pixels)


def read_bytes(path) -> bytes:
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except OSError as err:
        raise ImageReadError(path, f"cannot read file ({err.strerror or err})") from None


def decode_image(data: bytes, path="<bytes>", max_pixels=MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes; `path` is only used in error messages."""
    _check_data(data, path)
    size = header_size(data)
    if size is not None and max_pixels is not None and size[0] * size[1] > max_pixels:
        raise ImageReadError(path, _too_large(size, max_pixels))
    return _decode(data, path, DECODE_FLAGS)


def decode_image_bounded(data: bytes, path="<bytes>", max_pixels=MAX_PIXELS):
    """(image, (scale_y, scale_x)): like decode_image, but a JPEG over ``max_pixels`` is decoded at the
    smallest reduction (1/2, 1/4, 1/8) that fits; scale = original size / decoded size per axis (1.0 when
    not reduced), so ``point * scale`` maps decoded coordinates back to the file's pixel frame."""
    _check_data(data, path)
    size = header_size(data)
    if size is None or max_pixels is None or size[0] * size[1] <= max_pixels:
        return _decode(data, path, DECODE_FLAGS), (1.0, 1.0)
    factor = next((f for f in _REDUCED if -(-size[0] // f) * -(-size[1] // f) <= max_pixels), None)
    if not data.startswith(b"\xff\xd8") or factor is None:
        raise ImageReadError(path, _too_large(size, max_pixels))
    flags = (_REDUCED[factor] & ~cv2.IMREAD_COLOR) | DECODE_FLAGS   # reduction bits, our colour flags
    image = _decode(data, path, flags)
    return image, (size[0] / image.shape[0], size[1] / image.shape[1])


def header_size(data: bytes):
    """(height, width) from the file's header without decoding its pixels; None when unknown.

    PNG and JPEG headers are read here; other formats through Pillow (which comes with matplotlib).
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return _pillow_size(data)


# JPEG start-of-frame markers (baseline, progressive, lossless, ...): C0-CF except DHT C4, JPG C8, DAC CC
_SOF_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data):
    """Walk the marker segments up to the first start-of-frame, which holds the height and width."""
    position = 2
    while position + 9 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:              # fill byte
            position += 1
            continue
        if marker in _SOF_MARKERS:
            return (int.from_bytes(data[position + 5:position + 7], "big"),
                    int.from_bytes(data[position + 7:position + 9], "big"))
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:   # markers without a length
            position += 2
            continue
        position += 2 + int.from_bytes(data[position + 2:position + 4], "big")
    return None


def _pillow_size(data):
    try:
        from PIL import Image
    except ImportError:  # without Pillow only OpenCV's own limit applies to these formats
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # DecompressionBombWarning: the limit is ours
            with Image.open(io.BytesIO(data)) as header:
                width, height = header.size
    except Image.DecompressionBombError:     # over twice Pillow's own limit, far over any sane image
        return 2 * (Image.MAX_IMAGE_PIXELS or 0) + 1, 1
    except Exception:  # not a format Pillow knows: OpenCV decides
        return None
    return int(height), int(width)


def _check_data(data, path):
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{path}: expected encoded image bytes, got {type(data).__name__}")
    if not len(data):
        raise ImageReadError(path, "file is empty")


def _too_large(size, max_pixels):
    height, width = size
    return (f"image is {width}x{height} ({height * width:,} pixels), more than the limit of {max_pixels:,} "
            "pixels; downscale the file or raise max_pixels")


def _decode(data, path, flags):
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None or image.size == 0:
        raise ImageReadError(path, "cannot decode: corrupt, truncated or not an image format OpenCV reads")
    if not _HAS_RGB_FLAG:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


def list_images(imgpath):
    """An image file -> [it]; a folder -> its image files (IMAGE_SUFFIXES), sorted; FileNotFoundError otherwise."""
    path = Path(imgpath)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {path}")
        return images
    if not path.exists():
        raise FileNotFoundError(f"--imgpath {path} does not exist")
    return [path]
