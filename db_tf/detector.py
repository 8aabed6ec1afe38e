"""TextDetector: the Python API for detecting text with a DBNet.

    from db_tf import TextDetector
    detector = TextDetector.from_pretrained("ppocrv4_mobile")     # or TextDetector(weights="run.weights.h5")
    result = detector.detect("photo.jpg")        # a path, encoded bytes, an RGB uint8 array, or a list of them
    for polygon, score in zip(result.polygons, result.scores): ...
    results = detector.detect(paths, errors="collect")   # a bad file gives result.error, the others still run

One call: read -> resize (db_tf.preprocess) -> normalise -> pad the images of a batch to a common size ->
one forward pass -> post-process each image's valid map region (db_tf.postprocess) -> coordinates in the
original image. Settings not given explicitly come from the pretrained model's metadata, then from the
defaults (those of db_config.py).
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from db_tf import defaults, tiling
from db_tf import postprocess as post
from db_tf import preprocess as pre
from db_tf.data import image_io
from db_tf.forward import compiled_forward

POSTPROCESS_KEYS = ("thresh", "box_thresh", "unclip_ratio", "poly_unclip_ratio", "polygon", "score_mode", "dilate",
                    "max_candidates", "split_by_threshold")
PREPROCESS_KEYS = ("short_side", "max_side", "size", "mean", "std", "channel_order")
CONFIG_KEYS = defaults.DETECTOR_CONFIG_KEYS
settings_from_config = defaults.settings_from_config
DEFAULTS = defaults.detector_defaults()


def postprocess_arguments(settings, threshold_map=None):
    """db_tf.postprocess keyword arguments from TextDetector settings (all of POSTPROCESS_KEYS): the unclip
    ratio of the chosen mode, and the threshold map when split_by_threshold asks for it."""
    params = dict(settings)
    poly_ratio = params.pop("poly_unclip_ratio")
    if params["polygon"]:
        params["unclip_ratio"] = poly_ratio
    if params.pop("split_by_threshold"):
        if threshold_map is None:
            raise ValueError("split_by_threshold needs the threshold map: a model with a threshold branch, run "
                             "with return_maps=True (exports made with split_by_threshold serve it)")
        params["threshold_map"] = threshold_map
    return params


@dataclass
class Detections:
    """Detections in one image: polygons (float32 (K, 2), integer-valued x, y; boxes have K = 4, clockwise
    from top-left), their scores (mean probability) and the image size (height, width)."""
    polygons: list
    scores: np.ndarray
    image_size: tuple
    extras: dict = field(default_factory=dict, repr=False)  # e.g. "maps" when asked for
    error: str = None   # detect(..., errors="collect"): why this input gave no result ("<file>: <reason>")

    def __len__(self):
        return len(self.polygons)

    @classmethod
    def failed(cls, error):
        return cls([], np.zeros(0, np.float32), (0, 0), error=str(error))

    def rescaled(self, scale, image_size):
        """The same detections in a frame ``scale`` = (sy, sx) times larger, of size ``image_size``."""
        factor = np.asarray([scale[1], scale[0]], np.float32)
        polygons = [np.round(p * factor).astype(np.float32) for p in self.polygons]
        return Detections(polygons, self.scores, tuple(int(v) for v in image_size), self.extras, self.error)

    def to_icdar(self):
        """ICDAR 2015 result lines: integer x1,y1,...,xn,yn (no score)."""
        return "".join(",".join(str(int(v)) for v in p.reshape(-1)) + "\n" for p in self.polygons)

    def to_txt(self):
        """Lines x1,y1,...,xn,yn,score."""
        return "".join(",".join(str(int(v)) for v in p.reshape(-1)) + f",{s:.4f}\n"
                       for p, s in zip(self.polygons, self.scores))

    def to_json(self):
        return {"height": int(self.image_size[0]), "width": int(self.image_size[1]),
                "polygons": [p.astype(int).tolist() for p in self.polygons],
                "scores": [round(float(s), 4) for s in self.scores]}


class TextDetector:
    """Detect text with a DBNet.

    weights: a pretrained name ("ppocrv4_mobile"), a metadata .json, or a .weights.h5 (a .json beside it
        supplies architecture and settings; otherwise the architecture is ``model_config``, default the
        MODEL section of db_config.py). None: the default pretrained model.
    model: an already built model instead of weights: ``model(images, training=False)`` -> (N, H, W, 1)
        probabilities and ``model(images, training=False, return_maps=True)`` -> dict with "probability",
        "threshold", "binary" (the DBNet contract).
    Other keyword arguments override post-processing (``POSTPROCESS_KEYS``; ``unclip_ratio`` is box mode's,
    ``poly_unclip_ratio`` polygon mode's) and preprocessing (``PREPROCESS_KEYS``) settings; ``batch_size``
    bounds how many images share one forward pass.
    freeze_weights: run a copy of the network with its weights baked in as constants, so TensorFlow's graph
        optimiser folds batch norms and weight arithmetic once instead of on every call (about 5-10 % faster
        on CPU; costs a few seconds once). Default: on when the detector loaded the weights itself, off for
        ``model=`` (a model the caller may still be training: it must see the current weights).
    tile: run the network on overlapping windows of each image at a chosen zoom and stitch one map before
        post-processing (db_tf/tiling.py), for images too large to resize whole: None (off), True (the
        defaults, db_tf.defaults.TILE), a window size, or a dict {"size", "overlap", "scale"}; ``batch_size``
        windows share a forward pass, so memory is bounded by them instead of by the image.
    precision: "float32" or "bfloat16" (a copy of a Keras model built under the mixed_bfloat16 policy, with
        the weights as they are now; maps still come back float32). db_tf/models/precision.py.
    """

    def __init__(self, weights=None, *, model=None, model_config=None, batch_size=4, freeze_weights=None,
                 tile=None, precision=defaults.PRECISION, **settings):
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown TextDetector settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        if model is not None and weights is not None:
            raise ValueError("give either weights or model, not both")
        meta = {}
        if freeze_weights is None:
            freeze_weights = model is None
        if model is None:
            model, meta = _load_model(weights, model_config)
        self.model = model
        self.meta = meta
        self.settings = dict(DEFAULTS)
        self.settings.update(meta.get("preprocess", {}))
        self.settings.update(meta.get("postprocess", {}))
        self.settings.update({k: v for k, v in settings.items() if v is not None})
        check_settings(self.settings)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self.tile = tiling.TileSpec.parse(tile)
        if self.tile is not None and self.settings["size"] is not None:
            raise ValueError("tile and size exclude each other: tiles run at the tile scale, not a fixed size")
        self.precision = precision
        self.max_pixels = image_io.MAX_PIXELS   # inputs over this are decoded reduced (JPEG) or refused
        self._forward = compiled_forward(_inference_model(model, precision), freeze_weights)

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """A detector from a shipped preset name (db_tf.list_presets()), a preset folder or a run's
        final.json; kwargs as for TextDetector (settings override the preset's)."""
        return cls(weights=preset, **kwargs)

    from_pretrained = from_preset   # the name of earlier releases

    def save_to_preset(self, directory, overwrite=False, **metadata):
        """Write the model, its weights and this detector's pre- and post-processing settings as a preset
        folder that from_preset (and every db-tf command's --weights) loads. ``metadata``: e.g. source=...,
        license=..., training_data=..., validation={...}; those of the preset it came from are kept."""
        from db_tf.models import constructor_kwargs
        from db_tf.presets import save_preset

        kept = {k: v for k, v in self.meta.items() if k not in ("model", "preprocess", "postprocess")}
        meta = {**kept, **metadata, "model": constructor_kwargs(self.model.get_config()),
                "preprocess": {k: self.settings[k] for k in defaults.PRESET_PREPROCESS_KEYS},
                "postprocess": {k: self.settings[k] for k in defaults.PRESET_POSTPROCESS_KEYS}}
        meta.pop("name", None)
        return save_preset(directory, self.model, meta, overwrite=overwrite)

    @classmethod
    def from_config(cls, cfg, weights=None, explicit_keys=(), **kwargs):
        """Detector for the scripts: weights (default cfg.MODEL.WEIGHTS, cfg.MODEL.NAME, then the default
        pretrained model) and settings from a db_config ``cfg``.

        Weights without metadata (a bare .weights.h5) take the architecture and every setting from cfg. A
        pretrained model's metadata (preprocessing such as BGR order, thresholds) replaces cfg's values,
        except the keys in ``explicit_keys`` (e.g. those given with --set). kwargs override everything.
        """
        from db_tf import presets

        weights = weights or cfg.MODEL.WEIGHTS or cfg.MODEL.NAME or None
        bare = weights is not None and str(weights).endswith(presets.WEIGHTS_SUFFIX) \
            and presets.metadata_beside(weights) is None
        from_config = settings_from_config(cfg)
        settings = {name: from_config[name] for dotted, name in CONFIG_KEYS.items()
                    if bare or dotted in explicit_keys}
        settings.update({k: v for k, v in kwargs.items() if k in DEFAULTS and v is not None})
        extra = {k: v for k, v in kwargs.items() if k not in DEFAULTS}
        return cls(weights=weights, model_config=cfg.MODEL, **settings, **extra)

    # ------------------------------------------------------------------------------------ public API
    def detect(self, images, return_maps=False, errors="raise", **overrides):
        """Detections for one image or a list of them (-> list of Detections, in input order).

        An image is a path (str / Path), encoded file bytes (JPEG, PNG, ...), or a numpy array (RGB
        uint8, grayscale or RGBA). Coordinates are in the image's own pixel frame.
        overrides: post-processing settings for this call only (e.g. polygon=True, box_thresh=0.5).
        return_maps: also run the threshold branch and put the maps (probability, threshold, binary; each
        (h, w) float32 at network resolution, padding removed) in ``result.extras["maps"]``, and the
        decoded image in ``result.extras["image"]`` (a JPEG over ``max_pixels`` is decoded reduced:
        ``extras["image_scale"]`` says by how much).
        errors: "raise" (an unreadable image raises ImageReadError) or "collect" (its result is an empty
        Detections whose ``error`` names the file and the problem; the other images are still detected).
        """
        if errors not in ("raise", "collect"):
            raise ValueError(f"errors must be 'raise' or 'collect', got {errors!r}")
        single = _is_single(images)
        batch = [images] if single else _as_list(images)
        need_maps = return_maps or bool(overrides.get("split_by_threshold", self.settings["split_by_threshold"]))
        results = []
        for start in range(0, len(batch), self.batch_size):
            loaded = [self._load(item, start + offset, errors)
                      for offset, item in enumerate(batch[start:start + self.batch_size])]
            good = [item for item in loaded if not isinstance(item, Detections)]
            maps = iter(self.predict_maps([item.image for item in good], return_maps=need_maps))
            for item in loaded:
                results.append(item if isinstance(item, Detections)
                               else self._detections(item, next(maps), return_maps, overrides))
        return results[0] if single else results

    def _load(self, item, index, errors):
        try:
            return _load(item, index, self.max_pixels)
        except image_io.ImageReadError as exc:
            if errors == "raise":
                raise
            return Detections.failed(exc)

    def _detections(self, loaded, maps, return_maps, overrides):
        result = self.postprocess(maps, loaded.image.shape[:2], **overrides)
        if return_maps:
            result.extras.update(maps=maps, image=loaded.image, image_scale=loaded.scale)
        if loaded.scale != (1.0, 1.0):
            result = result.rescaled(loaded.scale, loaded.original_size)
        return result

    def predict_maps(self, images, return_maps=False):
        """Network maps for a list of RGB uint8 images: one dict per image with "probability" (and with
        return_maps "threshold", "binary"), each (h, w) float32 over the valid (unpadded) region.
        Empty images (0 pixels) get empty maps without a forward pass. With ``tile`` set the maps are the
        stitched ones, at the tile scale (see tile_maps)."""
        if self.tile is not None:
            return [self.tile_maps(image, return_maps) if image.size else {"probability": np.zeros((0, 0), np.float32)}
                    for image in images]
        prepared, where = [], []
        for index, image in enumerate(images):
            if image.size == 0:
                continue
            resized, _ = pre.resize_for_inference(image, self.settings["short_side"], self.settings["max_side"],
                                                  self.settings["size"])
            prepared.append(self._normalize(resized))
            where.append(index)
        out = [{"probability": np.zeros((0, 0), np.float32)} for _ in images]
        if not prepared:
            return out
        batch, valid_sizes = pre.pad_batch(prepared)
        outputs = self._forward(batch, return_maps)
        for row, (index, (vh, vw)) in enumerate(zip(where, valid_sizes)):
            out[index] = {key: np.asarray(value[row, :vh, :vw, 0], np.float32) for key, value in outputs.items()}
        return out

    def tile_maps(self, image, return_maps=False):
        """One image's maps from overlapping windows (self.tile): the image is scaled by the tile zoom once,
        each window normalised and run (``batch_size`` windows per forward pass), and each map pixel taken
        from the window that owns it (db_tf.tiling). Global pooling layers (squeeze-excite gates) take their
        means from one pass over the whole scaled image instead of from each window when it has at most the
        pixels of tiling.PREVIEW_WINDOWS windows (db_tf/models/global_context.py). Maps are (h, w) float32 at
        the scaled size."""
        plan = tiling.plan_tiles(image.shape[:2], self.tile, self.settings["short_side"])
        scaled = pre.resize_image(image, plan.scaled_size)
        preview = tiling.preview_size(plan.scaled_size, plan.tile_shape)
        context = {} if preview is None else \
            self._forward.record_context(self._normalize(pre.resize_image(scaled, preview))[None])
        stitched = {}
        for start in range(0, len(plan.windows), self.batch_size):
            group = plan.windows[start:start + self.batch_size]
            batch = np.stack([tiling.pad_tile(self._normalize(scaled[window.source]), plan.tile_shape)
                              for window in group])
            for key, value in self._forward(batch, return_maps, context).items():
                target = stitched.setdefault(key, np.empty(plan.scaled_size, np.float32))
                for row, window in enumerate(group):
                    target[window.owned] = value[row, :, :, 0][window.owned_in_tile]
        return stitched

    def _normalize(self, pixels):
        return pre.normalize(pixels, self.settings["mean"], self.settings["std"], self.settings["channel_order"])

    def postprocess(self, maps, image_size, **overrides):
        """Detections from one image's maps (as from predict_maps) for an image of size (height, width)."""
        unknown = set(overrides) - set(POSTPROCESS_KEYS)
        if unknown:
            raise TypeError(f"unknown post-processing settings {sorted(unknown)}; known: {POSTPROCESS_KEYS}")
        probability = maps["probability"] if isinstance(maps, dict) else maps
        height, width = int(image_size[0]), int(image_size[1])
        if probability.size == 0 or height == 0 or width == 0:   # an empty image has no maps to post-process
            return Detections([], np.zeros(0, np.float32), (height, width))
        threshold = maps.get("threshold") if isinstance(maps, dict) else None
        params = postprocess_arguments({**{k: self.settings[k] for k in POSTPROCESS_KEYS}, **overrides}, threshold)
        polygons, scores = post.postprocess(probability, (height, width), **params)
        return Detections(polygons, scores, (height, width))


def check_settings(settings):
    """ValueError naming the first setting out of its range (a typo must not reach the network)."""
    def bad(name, wanted):
        raise ValueError(f"{name} must be {wanted}, got {settings[name]!r}")

    for name in ("thresh", "box_thresh"):
        if not _is_number(settings[name]) or not 0.0 <= settings[name] <= 1.0:
            bad(name, "a number between 0 and 1")
    for name in ("unclip_ratio", "poly_unclip_ratio"):
        if not _is_number(settings[name]) or not 0.0 < settings[name] < float("inf"):
            bad(name, "a positive number")
    if not _is_int(settings["short_side"]) or settings["short_side"] < 1:
        bad("short_side", "a positive integer")
    if not _is_int(settings["max_side"]) or settings["max_side"] < 0:
        bad("max_side", "0 (no limit) or a positive integer")
    if not _is_int(settings["max_candidates"]) or settings["max_candidates"] < 1:
        bad("max_candidates", "a positive integer")
    if settings["score_mode"] not in post.SCORE_MODES:
        bad("score_mode", f"one of {post.SCORE_MODES}")
    if str(settings["channel_order"]).upper() not in ("RGB", "BGR"):
        bad("channel_order", "RGB or BGR")


def _is_number(value):
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and np.isfinite(value)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------- helpers
ENCODED = (bytes, bytearray, memoryview)


def _is_single(images):
    if isinstance(images, (str, Path, *ENCODED)):
        return True
    return isinstance(images, np.ndarray) and images.ndim in (2, 3)


def _as_list(images):
    if isinstance(images, np.ndarray) and images.ndim == 4:   # a batch array: one image per row
        return list(images)
    if isinstance(images, (list, tuple)):
        return list(images)
    raise TypeError(f"detect() takes an image (a path, encoded bytes or a numpy array) or a list of them, "
                    f"got {type(images).__name__}")


@dataclass
class _Loaded:
    image: np.ndarray        # RGB uint8, possibly decoded at reduced resolution
    scale: tuple             # (sy, sx): original size / decoded size
    original_size: tuple


def _load(item, index, max_pixels):
    """A path or encoded bytes -> decoded RGB uint8 (bounded, see image_io); an array -> checked RGB uint8."""
    if isinstance(item, (str, Path)):
        name, data = str(item), image_io.read_bytes(item)
    elif isinstance(item, ENCODED):
        name, data = f"<image {index}: bytes>", bytes(item)
    elif isinstance(item, np.ndarray):
        image = pre.to_rgb_uint8(item)
        return _Loaded(image, (1.0, 1.0), image.shape[:2])
    else:
        raise TypeError(f"image {index}: expected a path, encoded image bytes or a numpy array, "
                        f"got {type(item).__name__}")
    image, scale = image_io.decode_image_bounded(data, name, max_pixels)
    size = tuple(int(round(n * s)) for n, s in zip(image.shape[:2], scale))
    return _Loaded(image, scale, size)


def _load_model(weights, model_config):
    from db_tf import presets

    if weights is None:
        weights = presets.default_preset()
    text = str(weights)
    if text.endswith(presets.WEIGHTS_SUFFIX) and presets.metadata_beside(text) is None:
        if not Path(text).is_file():
            raise presets.PresetError(f"weights file not found: {text}")
        from db_tf.models import build_model  # plain Keras weights: the architecture comes from the config
        if model_config is None:
            from db_tf.config import load_config
            model_config = load_config().MODEL
        return presets.load_weights(build_model(model_config), text), {}
    return presets.load_preset(weights)


def _inference_model(model, precision):
    """The model the forward pass runs: ``model`` in float32, a mixed-policy copy for bfloat16."""
    if precision not in defaults.PRECISIONS:
        raise ValueError(f"precision must be one of {defaults.PRECISIONS}, got {precision!r}")
    if precision == "float32":
        return model
    from db_tf.models.precision import inference_copy  # TensorFlow only when asked for
    return inference_copy(model, precision)
