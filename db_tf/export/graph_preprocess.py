"""db_tf/preprocess.py as TensorFlow graph ops, for exported models that take raw image files.

Each function mirrors its numpy counterpart so that a served model sees what ``TextDetector`` feeds the
network (tests/test_export_saved_model.py checks sizes exactly and pixels against OpenCV):

- ``inference_size``: the same resize policy (short side to ``short_side``, long side bounded by
  ``max_side``, sides rounded UP to multiples of 32), computed in float64 as Python does, so the sizes
  are identical, not merely close;
- ``resize``: bilinear with half-pixel centres and no antialiasing, as ``cv2.resize(INTER_LINEAR)``,
  rounded to whole 0..255 levels as OpenCV's uint8 output is (OpenCV's fixed-point weights can still put
  a pixel one level off);
- ``normalize``: optional RGB -> BGR swap, then ``(x / 255 - mean) / std``;
- ``pad_to_multiple``: bottom/right padding with 0 (the mean colour after normalisation), as
  ``pad_batch`` does, written with ``concat`` so converters keep the channel count static.

Decoding: JPEG, PNG, GIF (first frame), BMP, WebP to 3 channels (grey is replicated, alpha dropped,
16-bit keeps the high byte), the same pixels as db_tf.data.image_io's OpenCV decoding, and, as
everywhere in db-tf, NO EXIF rotation (TensorFlow's decoders never apply it).
"""
import numpy as np
import tensorflow as tf

SIZE_MULTIPLE = 32
# Leading bytes of the formats tf.io.decode_image reads: checked first so a bad element of a batch
# gets an error that names its index instead of the decoder's generic message.
FILE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"RIFF")  # JPEG, PNG, GIF, BMP, WebP (RIFF)


def inference_size(height, width, short_side=736, max_side=2560):
    """int32 (2,) tensor (new_height, new_width); db_tf.preprocess.inference_size in graph ops.

    short_side / max_side are Python numbers (baked into the graph); max_side 0 means no limit.
    A fixed network size needs no graph arithmetic: pass it to ``resize`` directly.
    """
    height = tf.cast(height, tf.float64)
    width = tf.cast(width, tf.float64)
    scale = float(short_side) / tf.minimum(height, width)
    if max_side:
        longest = tf.maximum(height, width)
        scale = tf.where(longest * scale > float(max_side), float(max_side) / longest, scale)
    size = _ceil_multiple(tf.stack([height * scale, width * scale]))
    if max_side:  # rounding up must not cross the limit
        size = tf.minimum(size, max(SIZE_MULTIPLE, int(max_side) // SIZE_MULTIPLE * SIZE_MULTIPLE))
    return size


def _ceil_multiple(value):
    # the same 1e-6 tolerance as the numpy version keeps float noise (736.0000001) at 736
    steps = tf.math.ceil(value / SIZE_MULTIPLE - 1e-6)
    return tf.maximum(SIZE_MULTIPLE, tf.cast(steps, tf.int32) * SIZE_MULTIPLE)


def resize(image, size):
    """(h, w, 3) uint8 -> (size[0], size[1], 3) float32 holding whole levels 0..255 (see module doc)."""
    resized = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=False)
    return tf.clip_by_value(tf.round(resized), 0.0, 255.0)


def normalize(images, mean, std, channel_order="RGB"):
    """float32 RGB 0..255 (..., 3) -> network input; mean / std / channel order as db_tf.preprocess."""
    order = str(channel_order).upper()
    if order not in ("RGB", "BGR"):
        raise ValueError(f"channel_order must be RGB or BGR, got {channel_order!r}")
    if order == "BGR":  # a gather, not tf.reverse: tf2onnx turns a reverse into transposes of the whole image
        images = tf.gather(images, [2, 1, 0], axis=-1)
    mean = np.asarray(mean, np.float32).reshape(3)  # numpy, so they become graph constants
    std = np.asarray(std, np.float32).reshape(3)
    return (images / np.float32(255.0) - mean) / std


def pad_to_multiple(images, multiple=SIZE_MULTIPLE):
    """(N, H, W, C) -> (N, H', W', C), H' and W' the next multiples of ``multiple``, zeros bottom/right.

    ``tf.pad`` with computed paddings would lose the static channel count in the TFLite converter (and
    the next convolution would then not convert), hence the concatenation of zero blocks.
    """
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], images.shape[-1]
    pad_h = (multiple - height % multiple) % multiple  # non-negative operands: same in ONNX's Mod
    pad_w = (multiple - width % multiple) % multiple
    images = tf.concat([images, tf.zeros(tf.stack([batch, pad_h, width, channels]), images.dtype)], axis=1)
    return tf.concat([images, tf.zeros(tf.stack([batch, height + pad_h, pad_w, channels]), images.dtype)], axis=2)


def decode(data, index):
    """One encoded image (scalar tf.string) -> uint8 (h, w, 3); ``index`` (int32) names it in errors.

    Empty data, unknown formats and truncated JPEG / PNG files (no end marker: JPEG's EOI, PNG's IEND
    chunk) fail a tf.debugging assertion whose message names the element; other corruption fails in the
    decoder with its own message ("Invalid JPEG data"). Either way the request fails, not the server.
    """
    matches = [tf.equal(tf.strings.substr(data, 0, len(sig)), sig) for sig in FILE_SIGNATURES]
    known = tf.debugging.Assert(tf.reduce_any(matches), [
        "image_bytes element", index, "is empty or not an image file (expected JPEG, PNG, GIF, BMP or WebP "
        "bytes); its first bytes:", tf.strings.substr(data, 0, 8)])
    with tf.control_dependencies([known]):
        complete = tf.debugging.Assert(_has_end_marker(data, matches[0], matches[1]), [
            "image_bytes element", index, "is a truncated image file: its end marker is missing (JPEG EOI / "
            "PNG IEND); was the upload cut short?"])
    with tf.control_dependencies([complete]):
        # JPEG with the accurate integer IDCT: bit-identical to OpenCV (db_tf.data.image_io); the
        # default "fast" IDCT is several levels off
        image = tf.cond(matches[0],
                        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
                        lambda: tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False))
    image.set_shape([None, None, 3])
    return image


# How far from the end an end marker may sit: files may carry trailing bytes (e.g. camera metadata).
END_MARKER_WINDOW = 1 << 16
_END_MARKERS = {"jpeg": [0xFF, 0xD9], "png": list(b"IEND")}


def _has_end_marker(data, is_jpeg, is_png):
    """False for a JPEG / PNG whose last END_MARKER_WINDOW bytes hold no end marker; True otherwise."""
    length = tf.strings.length(data)
    tail = tf.io.decode_raw(tf.strings.substr(data, tf.maximum(length - END_MARKER_WINDOW, 0), END_MARKER_WINDOW),
                            tf.uint8)
    tail = tf.cast(tail, tf.int32)

    def contains(marker):
        count = tf.size(tail) - len(marker) + 1
        found = tf.ones([tf.maximum(count, 0)], tf.bool)
        for offset, byte in enumerate(marker):
            found = tf.logical_and(found, tf.equal(tail[offset:offset + tf.maximum(count, 0)], byte))
        return tf.reduce_any(found)

    return tf.logical_and(tf.logical_or(tf.logical_not(is_jpeg), contains(_END_MARKERS["jpeg"])),
                          tf.logical_or(tf.logical_not(is_png), contains(_END_MARKERS["png"])))
