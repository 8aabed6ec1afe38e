"""Teacher maps for distillation: cached once per training image, warped with each sample's augmentation.

A teacher (a shipped preset or a run's JSON, e.g. the ensemble ppocrv4_v6_ic15) is run ONCE per training image
at its own test settings (short side 1280 for the ICDAR 2015 models) by `db_tf.tools.cache_teacher`; its
probability map P and threshold map T are stored quantised to uint8 in one compressed .npz per image:

    <cache dir>/<teacher folder>/<image stem>-<sha1 of the image bytes, 12 hex>.npz
        probability, threshold: uint8 (h_m, w_m) = round(255 * map)   (the teacher's network resolution)
        image_size: int64 (2,) = the image's (height, width)

The maps are aligned with the image, so a training sample gets its teacher targets by warping them with the
same matrix as the image (`db_tf.data.augment.augment(..., return_info=True)["matrix"]`): any flip, rotation,
scale and crop. Pixels the warp takes from outside the map (black borders of a rotation, the padding) get
teacher_mask 0. Caching instead of running the teacher on every crop: the ensemble costs ~0.9 s per ICDAR image
at short side 1280, once; on-the-fly it would cost about as much per batch of 8 crops on every step
(bench/bench_distill.py measures both), and the cached teacher sees the whole image at its test zoom.

numpy / cv2 only (no TensorFlow): the tf.data pipeline calls it inside its numpy function.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import cv2
import numpy as np

TEACHER_KEYS = ("teacher_prob", "teacher_thresh", "teacher_mask")
_READ_CHUNK = 1 << 20


class TeacherCacheError(ValueError):
    """A missing or unreadable cache entry; the message names the image and the file."""


def file_digest(path, length=12) -> str:
    """Hex sha1 of a file's bytes (the cache key: a changed image never reuses stale maps)."""
    digest = hashlib.sha1()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_READ_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


def teacher_folder_name(teacher_name, weights_path, short_side) -> str:
    """<teacher>-<sha1 of its weights, 8 hex>-s<short side>: other weights or settings get another folder."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(teacher_name)).stem) or "teacher"
    return f"{safe}-{file_digest(weights_path, 8)}-s{int(short_side)}"


def quantize(values) -> np.ndarray:
    """[0, 1] floats -> uint8 round(255 v) (clipped); the error is at most 1/510."""
    return np.round(np.clip(np.asarray(values, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def dequantize(values) -> np.ndarray:
    return np.asarray(values, np.float32) / 255.0


class TeacherCache:
    """One teacher's cached maps in `folder` (see the module docstring for the layout)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self._keys = {}

    def entry(self, image_path) -> Path:
        image_path = os.fspath(image_path)
        if image_path not in self._keys:
            self._keys[image_path] = f"{Path(image_path).stem}-{file_digest(image_path)}.npz"
        return self.folder / self._keys[image_path]

    def has(self, image_path) -> bool:
        return self.entry(image_path).is_file()

    def write(self, image_path, probability, threshold, image_size):
        """Store one image's maps (float in [0, 1], same shape); atomic, so a killed build leaves no half file."""
        probability, threshold = np.asarray(probability), np.asarray(threshold)
        if probability.ndim != 2 or probability.shape != threshold.shape:
            raise ValueError(f"teacher maps for {image_path} must be two (h, w) arrays of one shape, "
                             f"got {probability.shape} and {threshold.shape}")
        path = self.entry(image_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, probability=quantize(probability), threshold=quantize(threshold),
                            image_size=np.asarray(image_size, np.int64)[:2])
        os.replace(tmp, path)

    def read(self, image_path):
        """(probability, threshold) float32 in [0, 1] at the teacher's resolution, and the image's (h, w)."""
        path = self.entry(image_path)
        if not path.is_file():
            raise TeacherCacheError(f"no teacher maps for {image_path} in {self.folder} (expected {path.name}): "
                                    f"build the cache first (python -m db_tf.tools.cache_teacher, or train.py "
                                    f"builds it when it starts)")
        try:
            with np.load(path) as data:
                probability, threshold = data["probability"], data["threshold"]
                image_size = tuple(int(v) for v in data["image_size"])
        except (OSError, ValueError, KeyError) as exc:
            raise TeacherCacheError(f"{path} (teacher maps of {image_path}): unreadable ({exc}); delete it and "
                                    f"rebuild the cache") from None
        return dequantize(probability), dequantize(threshold), image_size


def map_to_image_matrix(map_size, image_size) -> np.ndarray:
    """3x3 matrix from map pixel-centre coordinates to image pixel-centre coordinates.

    The map covers the whole image (the teacher's resize stretches each axis to a multiple of 32), so in corner
    coordinates (an image of width W spans [0, W]) x_image = x_map * W / w_map; centre = corner - 0.5.
    """
    (map_h, map_w), (image_h, image_w) = map_size, image_size
    sx, sy = image_w / map_w, image_h / map_h
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def warp_teacher_maps(probability, threshold, image_size, matrix, out_size, valid_size=None) -> dict:
    """The teacher's maps as the augmented sample sees them.

    probability, threshold: (h_m, w_m) float32 maps of the whole image; image_size: the image's (h, w);
    matrix: 3x3 image -> output pixel-centre coordinates (augment's info["matrix"]); out_size: (h, w) of the
    sample; valid_size: its unpadded (h, w) (default all). Returns TEACHER_KEYS -> float32 (h, w) maps;
    teacher_mask is 1 where the output pixel lies inside the warped map (bilinear footprint fully inside) and
    inside the valid area, else 0 (and the maps are 0 there).
    """
    out_h, out_w = out_size
    total = np.asarray(matrix, np.float64) @ map_to_image_matrix(probability.shape, image_size)
    warp = total[:2]
    flags = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    stacked = np.stack([probability, threshold, np.ones_like(probability)], axis=-1).astype(np.float32)
    warped = cv2.warpAffine(stacked, warp, (int(out_w), int(out_h)), **flags)
    mask = (warped[..., 2] > 1.0 - 1e-4).astype(np.float32)
    if valid_size is not None:
        valid = np.zeros_like(mask)
        valid[:int(valid_size[0]), :int(valid_size[1])] = 1.0
        mask *= valid
    return {"teacher_prob": warped[..., 0] * mask, "teacher_thresh": warped[..., 1] * mask, "teacher_mask": mask}


def empty_teacher_maps(out_size) -> dict:
    """Maps of a sample the teacher has nothing for (e.g. synthetic text): all zero, mask 0."""
    blank = np.zeros(tuple(int(s) for s in out_size), np.float32)
    return {key: blank for key in TEACHER_KEYS}
