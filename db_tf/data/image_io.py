"""Image decoding for training and evaluation: any common file -> uint8 RGB (H, W, 3).

Ground truth of every supported dataset is given in the *stored* pixel frame, so the EXIF
orientation flag is deliberately NOT applied (a phone photo tagged "rotate 90" keeps its stored
width and height; applying the tag would put every polygon in the wrong place). OpenCV applies
the tag by default; `cv2.IMREAD_IGNORE_ORIENTATION` turns that off (checked with OpenCV 5.0,
see tests/test_image_io.py, which decodes a fixture tagged orientation 6).

Grayscale, RGBA (alpha dropped) and 16-bit (high byte kept) files all come back as uint8 RGB.
The official DB code reads with `cv2.imread(path, cv2.IMREAD_COLOR)`, which rotates tagged files.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

# OpenCV >= 4.10 can decode straight to RGB; older versions give BGR and we swap channels.
_HAS_RGB_FLAG = hasattr(cv2, "IMREAD_COLOR_RGB")
DECODE_FLAGS = (cv2.IMREAD_COLOR_RGB if _HAS_RGB_FLAG else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION


class ImageReadError(ValueError):
    """An image file that is missing, unreadable or cannot be decoded."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def read_image(path) -> np.ndarray:
    """Decode `path` to a uint8 RGB array (H, W, 3) in the stored pixel frame (no EXIF rotation).

    Raises ImageReadError naming the file when it is missing, empty, unreadable, truncated or
    not an image (OpenCV 5 rejects truncated JPEG and PNG data instead of returning half-grey
    images, so no partial image is ever returned).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except OSError as err:
        raise ImageReadError(path, f"cannot read file ({err.strerror or err})") from None
    return decode_image(data, path)


def decode_image(data: bytes, path="<bytes>") -> np.ndarray:
    """Decode encoded image bytes; `path` is only used in error messages."""
    if not data:
        raise ImageReadError(path, "file is empty")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), DECODE_FLAGS)
    if image is None or image.size == 0:
        raise ImageReadError(path, "cannot decode: corrupt, truncated or not an image format OpenCV reads")
    if not _HAS_RGB_FLAG:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)
