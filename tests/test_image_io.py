"""Image decoding (db_tf/data/image_io.py): RGB order, no EXIF rotation, odd formats, clear errors."""
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from db_tf.data.image_io import ImageReadError, decode_image, read_image

FIXTURES = Path(__file__).parent / "fixtures"


def jpeg_stored_size(path):
    """(height, width) from the JPEG start-of-frame marker, read without any decoder."""
    data = Path(path).read_bytes()
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return struct.unpack(">HH", data[i + 5:i + 9])
        i += 2 + length
    raise AssertionError(f"no SOF marker in {path}")


def exif_orientation(path):
    """The EXIF orientation tag (0x0112) of a JPEG, or None; a tiny TIFF-IFD0 parser."""
    data = Path(path).read_bytes()[:65536]
    start = data.find(b"Exif\x00\x00")
    if start < 0:
        return None
    tiff = start + 6
    endian = "<" if data[tiff:tiff + 2] == b"II" else ">"
    ifd = tiff + struct.unpack(endian + "I", data[tiff + 4:tiff + 8])[0]
    for k in range(struct.unpack(endian + "H", data[ifd:ifd + 2])[0]):
        tag, _, _, value = struct.unpack(endian + "HHIH", data[ifd + 2 + 12 * k:ifd + 12 + 12 * k])
        if tag == 0x0112:
            return value
    return None


def test_rgb_channel_order(tmp_path):
    bgr = np.zeros((6, 8, 3), np.uint8)
    bgr[..., 2] = 200                                   # red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    image = read_image(tmp_path / "red.png")
    assert image.dtype == np.uint8 and image.shape == (6, 8, 3)
    assert np.all(image[..., 0] == 200) and np.all(image[..., 1:] == 0)


def test_exif_orientation_is_not_applied():
    path = FIXTURES / "exif/orientation6.jpg"
    assert exif_orientation(path) == 6 and jpeg_stored_size(path) == (16, 32)
    assert cv2.imread(str(path)).shape[:2] == (32, 16)  # OpenCV's default rotates: the tag is live
    assert read_image(path).shape == (16, 32, 3)        # we keep the stored pixel frame


def test_grayscale_rgba_and_16_bit(tmp_path):
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    image = read_image(tmp_path / "gray.png")
    assert image.shape == (6, 8, 3) and np.all(image == gray[..., None])

    bgra = np.zeros((6, 8, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 180, 60                # blue, mostly transparent
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    image = read_image(tmp_path / "rgba.png")
    assert image.shape == (6, 8, 3) and np.all(image == (0, 0, 180))

    deep = (np.arange(48, dtype=np.uint16).reshape(6, 8) * 1300)
    for name in ("gray16.png", "gray16.tif"):
        cv2.imwrite(str(tmp_path / name), deep)
        image = read_image(tmp_path / name)
        assert image.dtype == np.uint8 and image.shape == (6, 8, 3)
        assert np.all(np.abs(image[..., 0].astype(int) - deep // 256) <= 1), name
    colour16 = np.zeros((6, 8, 3), np.uint16)
    colour16[..., 2] = 60000                            # red, 16 bit
    cv2.imwrite(str(tmp_path / "colour16.png"), colour16)
    image = read_image(tmp_path / "colour16.png")
    assert np.all(np.abs(image[..., 0].astype(int) - 60000 // 256) <= 1) and np.all(image[..., 1:] == 0)


def test_bad_files_raise_a_clear_error(tmp_path):
    ok, jpeg = cv2.imencode(".jpg", np.full((40, 40, 3), 90, np.uint8))
    cases = {
        "missing.jpg": None,
        "empty.jpg": b"",
        "garbage.jpg": b"this is not an image" * 10,
        "truncated.jpg": jpeg.tobytes()[:len(jpeg) // 2],
    }
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(ImageReadError) as info:
            read_image(tmp_path / name)
        assert str(tmp_path / name) in str(info.value) and isinstance(info.value, ValueError)
    with pytest.raises(ImageReadError, match="cannot read"):
        read_image(tmp_path)                            # a directory
    assert decode_image(jpeg.tobytes()).shape == (40, 40, 3)


def test_real_exif_tagged_files_keep_their_stored_shape(shared_data):
    """MSRA-TD500 JPEGs carrying an EXIF orientation tag decode to the stored (SOF) shape."""
    tagged = [p for p in sorted((shared_data / "msra_td500_train/imgs").iterdir())
              if exif_orientation(p) is not None]
    assert tagged, "expected some MSRA-TD500 files with an EXIF orientation tag"
    for path in tagged[:4]:
        assert read_image(path).shape[:2] == jpeg_stored_size(path), path
    icdar = shared_data / "icdar2015_train/imgs/img_1.jpg"
    assert read_image(icdar).shape == (720, 1280, 3)
