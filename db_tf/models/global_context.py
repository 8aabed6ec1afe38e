"""Whole-image context for tiled inference: the spatial means of global-pooling layers, recorded on one input
and used in place of each window's own means.

Squeeze-excite gates (PP-LCNetV3, RSEFPN) and the ASF neck's channel attention pool their input over all of
its pixels. Run on a window of a large image, they see only that window, so its map differs from the whole
image's everywhere, not only near the seams. Tiled inference (db_tf/tiling.py) therefore first runs the model
once on a preview of the whole image while ``recording()``, then runs the windows while ``replaying(means)``:
every pooling layer takes the preview's mean instead of the window's. With the preview at the tile zoom the
gates are exactly the whole image's.

Every global pooling in db_tf's models goes through ``spatial_mean``; outside the two context managers it is
``ops.mean(x, axis=(1, 2))``. The state is per thread and only read while a model call is traced or run
eagerly, so a tf.function traced inside ``replaying`` bakes the replayed means in as its inputs.
"""
import contextlib
import threading

from keras import ops

_state = threading.local()


def spatial_mean(layer, x):
    """(N, C) mean of ``x`` (N, H, W, C) over H and W, or the one recorded for ``layer`` (see module doc)."""
    mode = getattr(_state, "mode", None)
    if mode == "replay":
        recorded = _state.means[context_key(layer)]            # (1, C): the preview's
        return ops.broadcast_to(ops.cast(recorded, x.dtype), (ops.shape(x)[0], x.shape[-1]))
    mean = ops.mean(x, axis=(1, 2))
    if mode == "record":
        key = context_key(layer)
        if key in _state.means:
            raise RuntimeError(f"layer {layer.name!r} pooled twice in one recorded call: record one model call")
        _state.means[key] = mean
    return mean


def context_key(layer):
    """The key of a pooling layer's mean: unique per layer object within a process."""
    return f"{layer.name}_{id(layer)}"


@contextlib.contextmanager
def recording():
    """Collect the spatial means of the model calls inside: yields the dict {context_key: (N, C) mean}."""
    means = {}
    with _mode("record", means):
        yield means


@contextlib.contextmanager
def replaying(means):
    """Inside, every pooling layer returns ``means[context_key(layer)]`` (shape (1, C)) for each image."""
    with _mode("replay", means):
        yield


@contextlib.contextmanager
def _mode(mode, means):
    if getattr(_state, "mode", None) is not None:
        raise RuntimeError("global context modes do not nest")
    _state.mode, _state.means = mode, means
    try:
        yield
    finally:
        _state.mode, _state.means = None, None
