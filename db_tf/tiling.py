"""Tiled inference geometry (numpy, no TensorFlow): run the network on overlapping windows of a large image at a
chosen zoom and stitch one map, so memory is bounded by the windows in flight instead of by the image.

    spec = TileSpec.parse({"size": 1024, "overlap": 128})     # network pixels; overlap may be a fraction
    plan = plan_tiles(image.shape[:2], spec, short_side=736)  # zoom, scaled size, windows
    stitched = np.zeros(plan.scaled_size, np.float32)
    for window in plan.windows:
        map_of_window = network(pad_tile(scaled_image[window.source], plan.tile_shape))
        stitched[window.owned] = map_of_window[window.owned_in_tile]

Stitching takes each map pixel from the one window that OWNS it: neighbouring windows split their overlap at
its middle, so every pixel comes from a window in which it lies at least ``overlap // 2`` pixels from any
window border that is not an image border. A network whose output pixel depends only on inputs within that
distance (its effective receptive field) gives exactly the map of the whole image; a real CNN's far context
matters little there, which is why an overlap of a text line's height or more is advised. Owned regions do not
overlap, so no accumulation buffer or weights are needed.

The zoom ``scale`` (network pixels per image pixel) is either a number or None: the resize policy's zoom,
short_side / the image's short side, WITHOUT the max_side cap (the cap exists to bound memory, which tiles
bound instead). Windows are ``size`` x ``size`` (multiples of 32, the network stride); along a side shorter
than ``size`` the one window is that side rounded up to a multiple of 32 (the remainder is padding).
"""
import math
from dataclasses import dataclass

import numpy as np

from db_tf import defaults
from db_tf.preprocess import SIZE_MULTIPLE, nearest_multiple


class TileError(ValueError):
    """A tile setting that cannot work (named, with the accepted values)."""


@dataclass(frozen=True)
class TileSpec:
    size: int = defaults.TILE["size"]          # window side in network pixels, a multiple of 32
    overlap: float = defaults.TILE["overlap"]  # network pixels (int) or a fraction of size in [0, 1)
    scale: float = defaults.TILE["scale"]      # zoom: network pixels per image pixel; None = the resize policy

    @classmethod
    def parse(cls, value):
        """A TileSpec from None (-> None: no tiling), True (the defaults), an int (the size), a dict with keys
        of {size, overlap, scale}, or a TileSpec. Raises TileError naming the bad value."""
        if value is None or value is False:
            return None
        if isinstance(value, cls):
            spec = value
        elif value is True:
            spec = cls()
        elif isinstance(value, (int, np.integer)):
            spec = cls(size=int(value))
        elif isinstance(value, dict):
            unknown = set(value) - {"size", "overlap", "scale"}
            if unknown:
                raise TileError(f"unknown tile keys {sorted(unknown)}; known: size, overlap, scale")
            spec = cls(**{k: v for k, v in value.items() if v is not None})
        else:
            raise TileError(f"tile must be None, True, a size (int), a dict with size / overlap / scale or a "
                            f"TileSpec, got {value!r}")
        spec.check()
        return spec

    def check(self):
        if not _is_int(self.size) or self.size < SIZE_MULTIPLE or self.size % SIZE_MULTIPLE:
            raise TileError(f"tile size must be a positive multiple of {SIZE_MULTIPLE} (network pixels), "
                            f"got {self.size!r}")
        overlap = self.overlap_pixels()
        if overlap >= self.size:
            raise TileError(f"tile overlap must be smaller than the tile size {self.size}, got {self.overlap!r}")
        if self.scale is not None and not (_is_number(self.scale) and 0 < self.scale < float("inf")):
            raise TileError(f"tile scale must be a positive number (network pixels per image pixel) or None "
                            f"(the resize policy's zoom), got {self.scale!r}")

    def overlap_pixels(self):
        """The overlap in network pixels: an int as it is, a float in [0, 1) as that fraction of size."""
        overlap = self.overlap
        if _is_int(overlap) and overlap >= 0:
            return int(overlap)
        if _is_number(overlap) and isinstance(overlap, (float, np.floating)) and 0.0 <= overlap < 1.0:
            return int(round(overlap * self.size))
        raise TileError(f"tile overlap must be a non-negative number of network pixels (int) or a fraction of "
                        f"the tile size in [0, 1), got {overlap!r}")


@dataclass(frozen=True)
class Window:
    """One network window. ``source``: its slices of the scaled image (may extend past it: pad with the mean
    colour); ``owned``: the slices of the stitched map it writes; ``owned_in_tile``: the same pixels in the
    window's own map."""
    source: tuple
    owned: tuple
    owned_in_tile: tuple


@dataclass(frozen=True)
class TilePlan:
    scale: float            # network pixels per image pixel
    scaled_size: tuple      # (height, width) of the scaled image and of the stitched map
    tile_shape: tuple       # (height, width) of every window
    windows: tuple


def policy_scale(image_size, short_side):
    """The resize policy's zoom for an image, without its max_side cap: short_side / the short side."""
    return short_side / min(image_size)


def plan_tiles(image_size, spec, short_side):
    """The TilePlan of an image of size (height, width) under ``spec`` (a TileSpec)."""
    height, width = int(image_size[0]), int(image_size[1])
    if height <= 0 or width <= 0:
        raise TileError(f"cannot tile an image without pixels (size {height}x{width})")
    scale = spec.scale if spec.scale is not None else policy_scale((height, width), short_side)
    scaled = (max(1, int(round(height * scale))), max(1, int(round(width * scale))))
    overlap = spec.overlap_pixels()
    rows = axis_windows(scaled[0], spec.size, overlap)
    cols = axis_windows(scaled[1], spec.size, overlap)
    tile_shape = (rows[0][0].stop - rows[0][0].start, cols[0][0].stop - cols[0][0].start)
    windows = tuple(Window((r_src, c_src), (r_own, c_own), (r_in, c_in))
                    for r_src, r_own, r_in in rows for c_src, c_own, c_in in cols)
    return TilePlan(float(scale), scaled, tile_shape, windows)


def axis_windows(length, size, overlap):
    """Windows along one axis of ``length`` pixels: a list of (source, owned, owned_in_tile) slices.

    Windows of ``size`` start every size - overlap pixels; the last is moved back to end at ``length`` (so none
    reaches past the image, and the last overlap may be larger). Neighbours split their overlap at its middle.
    A length up to size gets one window of the length rounded up to a multiple of 32.
    """
    if length <= size:
        padded = int(math.ceil(length / SIZE_MULTIPLE)) * SIZE_MULTIPLE
        return [(slice(0, padded), slice(0, length), slice(0, length))]
    stride = size - overlap
    starts = list(range(0, length - size, stride)) + [length - size]
    bounds = [0] + [(starts[i] + size + starts[i + 1]) // 2 for i in range(len(starts) - 1)] + [length]
    return [(slice(start, start + size), slice(bounds[i], bounds[i + 1]),
             slice(bounds[i] - start, bounds[i + 1] - start))
            for i, start in enumerate(starts)]


PREVIEW_WINDOWS = 4   # the whole-image preview has at most the pixels of this many windows


def preview_size(scaled_size, tile_shape):
    """(height, width) of the whole-image preview whose pooled means stand in for each window's own
    (db_tf/models/global_context.py), or None when there is none.

    The preview is the scaled image itself (sides rounded to the nearest multiples of 32, the network's
    stride) when it has at most the pixels of PREVIEW_WINDOWS windows: then the gates are exactly the whole
    image's. A larger image gets no preview and each window pools only itself, because a preview
    shrunk to fit shows the text at another zoom, whose means do not suit the windows (on a 6000x8000 page
    tiled at zoom 1, a preview at zoom 0.3 cost 18 % recall; bench/bench_tiling.py page --own-gates).
    """
    height, width = scaled_size
    if height * width > tile_shape[0] * tile_shape[1] * PREVIEW_WINDOWS:
        return None
    return tuple(nearest_multiple(side) for side in scaled_size)


def pad_tile(crop, tile_shape, fill=0):
    """A window's crop (``image[window.source]``, cut short at the image's bottom / right) padded with ``fill``
    to ``tile_shape``."""
    if crop.shape[:2] == tuple(tile_shape):
        return crop
    padded = np.full((*tile_shape, *crop.shape[2:]), fill, crop.dtype)
    padded[:crop.shape[0], :crop.shape[1]] = crop
    return padded


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and bool(np.isfinite(value))
