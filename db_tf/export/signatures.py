"""The functions every exported format serves, built from a DBNet and its preprocessing settings.

``float_images`` (SavedModel signature "serving_float"; the whole ONNX and TFLite models):
    images   float32 (N, H, W, 3): RGB pixel values 0..255, any H and W (the caller resizes)
 -> probability float32 (N, H, W, 1)
    (and threshold float32 (N, H, W, 1) when settings["split_by_threshold"]: the client's post-processing
    needs the threshold map then; likewise in "serving_default")
    Normalisation (channel order, mean, std) is baked in, so no client needs to know that PaddleOCR
    weights want BGR. H and W need not be multiples of 32: the images are padded with the mean colour
    to the next multiple and the map is cropped back, which equals running the padded image.

``encoded_images`` (SavedModel signature "serving_default"):
    image_bytes   tf.string (N,): encoded JPEG / PNG / GIF / BMP / WebP files, sizes may differ
 -> probability   float32 (N, H, W, 1), padded to the largest resized image of the batch
    original_size int32 (N, 2): (height, width) of each decoded image
    resized_size  int32 (N, 2): (height, width) each image was resized to: its valid map region is
                  ``probability[i, :resized_size[i, 0], :resized_size[i, 1]]``, and coordinates in it
                  scale to the original image by original_size / resized_size
    Each image is decoded, resized by the model's policy and normalised in the graph (see
    graph_preprocess.py), the batch is padded and the network runs once, as TextDetector does.

``encoded_images_to_boxes`` (SavedModel signature "boxes"): the same input, then db_tf.postprocess's box
mode in graph ops (graph_boxes.py) with the model's shipped thresholds:
 -> boxes     float32 (N, K, 4, 2): corners in original-image pixels, clockwise from top-left
    scores    float32 (N, K)
    num_boxes int32 (N,): image i's boxes are boxes[i, :num_boxes[i]]; K is the batch's largest count
    original_size int32 (N, 2), as in serving_default
``tuned_boxes`` (signature "boxes_tuned"): the same with three more inputs, float32 scalars ``thresh``,
``box_thresh``, ``unclip_ratio``, for per-request settings.
"""
import tensorflow as tf

from db_tf import preprocess
from db_tf.export import graph_boxes
from db_tf.export import graph_preprocess as gp

FLOAT_SPEC = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")
BYTES_SPEC = tf.TensorSpec([None], tf.string, name="image_bytes")
SETTING_SPECS = tuple(tf.TensorSpec([], tf.float32, name=name) for name in ("thresh", "box_thresh", "unclip_ratio"))


def float_images(model, settings):
    """The float-image function (see module doc) for tf.function / converters."""

    def probability_map(images):
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        network_input = gp.pad_to_multiple(_normalize(images, settings))
        maps = _network_maps(model, network_input, settings)
        return {key: value[:, :height, :width, :] for key, value in maps.items()}

    return probability_map


def encoded_images(model, settings):
    """The encoded-image function (see module doc) for tf.function."""

    def prepare(args):
        index, data = args
        image = gp.decode(data, index)
        original_size = tf.shape(image)[:2]
        size = _network_size(original_size, settings)
        resized = _normalize(gp.resize(image, size), settings)
        # a ragged row per image: .to_tensor() below pads the batch bottom/right with 0 (the mean colour)
        return tf.RaggedTensor.from_tensor(resized), original_size, size

    def probability_maps(image_bytes):
        count = tf.size(image_bytes)
        not_empty = tf.debugging.assert_positive(count, message="image_bytes is empty: send at least one image")
        with tf.control_dependencies([not_empty]):
            indices = tf.range(count)
        ragged, original_size, resized_size = tf.map_fn(
            prepare, (indices, image_bytes),
            fn_output_signature=(tf.RaggedTensorSpec([None, None, 3], tf.float32, ragged_rank=1),
                                 tf.TensorSpec([2], tf.int32), tf.TensorSpec([2], tf.int32)))
        batch = ragged.to_tensor()
        batch.set_shape([None, None, None, 3])
        return {**_network_maps(model, batch, settings), "original_size": original_size,
                "resized_size": resized_size}

    return probability_maps


def encoded_images_to_boxes(model, settings, tuned=None):
    """The "boxes" function (see module doc): thresholds from ``settings`` (db_tf.detector's defaults for
    those it lacks), baked into the graph. ``tuned``: the "boxes_tuned" function to call (a tf.function
    already traced for the SavedModel, so the network is traced once for all signatures)."""
    tuned = tuned or tuned_boxes(model, settings)
    values = [tf.constant(float(_postprocess_setting(settings, key)), tf.float32)
              for key in ("thresh", "box_thresh", "unclip_ratio")]
    return lambda image_bytes: tuned(image_bytes, *values)


def tuned_boxes(model, settings, maps=None):
    """The "boxes_tuned" function (see module doc): thresh, box_thresh, unclip_ratio are inputs.
    ``maps``: the "serving_default" function to call (as ``tuned`` above)."""
    maps = maps or encoded_images(model, settings)
    max_boxes = int(_postprocess_setting(settings, "max_candidates"))

    def boxes(image_bytes, thresh, box_thresh, unclip_ratio):
        out = maps(image_bytes)
        boxes = graph_boxes.batch_boxes(out["probability"], out["resized_size"], out["original_size"], thresh,
                                        box_thresh, unclip_ratio, max_boxes, out.get("threshold"))
        return {**boxes, "original_size": out["original_size"]}

    return boxes


def _postprocess_setting(settings, key):
    from db_tf.detector import DEFAULTS

    value = settings.get(key)
    return DEFAULTS[key] if value is None else value


def _network_maps(model, batch, settings):
    """{"probability"} or, for post-processing with split_by_threshold, {"probability", "threshold"}."""
    if not settings.get("split_by_threshold"):
        return {"probability": model(batch, training=False)}
    maps = model(batch, training=False, return_maps=True)
    return {"probability": maps["probability"], "threshold": maps["threshold"]}


def _normalize(images, settings):
    return gp.normalize(images, settings["mean"], settings["std"], settings["channel_order"])


def _network_size(original_size, settings):
    if settings.get("size"):  # a fixed network input size (rounded to multiples of 32 as db_tf.preprocess does)
        return tf.constant(preprocess.inference_size(1, 1, size=settings["size"]), tf.int32)
    return gp.inference_size(original_size[0], original_size[1], settings["short_side"], settings["max_side"])
