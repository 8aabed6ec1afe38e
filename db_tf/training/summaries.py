"""TensorBoard event files written and read with TensorFlow alone (the `tensorboard` package is only needed
to VIEW them: `pip install tensorboard; tensorboard --logdir RUN_DIR/logs`).

`tf.summary.scalar` / `tf.summary.image` live in the tensorboard package and fail without it, so we write
the same records ourselves with the core op `tf.summary.write`: a scalar is a float32 tensor tagged for the
"scalars" plugin; an image summary is a string tensor [width, height, png, png, ...] tagged for the
"images" plugin -- the layout TensorBoard's own image summary writes.
"""
from collections import defaultdict
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from db_tf import compat

_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    data_class=summary_pb2.DATA_CLASS_SCALAR)
_IMAGE_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="images"),
    data_class=summary_pb2.DATA_CLASS_BLOB_SEQUENCE)


def scalar(tag, value, step):
    """Write one scalar to the default summary writer."""
    return tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=_SCALAR_METADATA)


def image(tag, images, step, max_outputs=3):
    """Write images (N, H, W, C) -- float in [0, 1] or uint8, C in 1, 3, 4 -- as PNGs."""
    images = np.asarray(images)[:max_outputs]
    if images.dtype != np.uint8:
        images = (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    pngs = [tf.io.encode_png(item) for item in images]
    height, width = images.shape[1:3]
    tensor = tf.stack([tf.constant(str(width)), tf.constant(str(height)), *pngs])
    return tf.summary.write(tag, tensor, step=step, metadata=_IMAGE_METADATA)


def event_files(log_dir):
    return sorted(Path(log_dir).rglob("events.out.tfevents.*"))


def read_events(log_dir):
    """All summaries under log_dir -> (scalars {tag: [(step, value), ...] sorted by step},
    images {tag: [(step, count), ...]})."""
    scalars, images = defaultdict(dict), defaultdict(dict)
    for path in event_files(log_dir):
        for record in tf.data.TFRecordDataset(str(path)):
            event = compat.parse_event(record.numpy())
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if value.HasField("simple_value"):
                    scalars[value.tag][event.step] = float(value.simple_value)
                elif plugin == "scalars":
                    scalars[value.tag][event.step] = float(tf.make_ndarray(value.tensor))
                elif plugin == "images":
                    images[value.tag][event.step] = len(value.tensor.string_val) - 2
    # A resumed run rewrites the steps after its last checkpoint: the later file wins (dict update order).
    return ({tag: sorted(values.items()) for tag, values in scalars.items()},
            {tag: sorted(values.items()) for tag, values in images.items()})
