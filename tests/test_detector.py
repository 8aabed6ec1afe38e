"""TextDetector: plumbing (resize, batch padding, splitting, scaling back) with a per-pixel fake model whose
maps are known exactly, and the real-model contract with a tiny randomly initialised DBNet (weights saved
and loaded through both the pretrained .json route and the bare .weights.h5 + config route)."""
import json

import cv2
import keras
import numpy as np
import pytest
from easydict import EasyDict
from tolerances import BINARY_ATOL, MAP_ATOL, assert_maps_match

from db_tf import TextDetector
from db_tf.data.image_io import ImageReadError
from db_tf.presets import PresetError, list_presets, load_preset


class PixelModel:
    """Text probability 1 where the normalised red channel is > 0 (brighter than the mean), else 0.
    Each output pixel depends on its own input pixel only, so padding cannot change a valid pixel."""

    def __init__(self):
        self.batch_shapes = []

    def __call__(self, images, training=False, return_maps=False):
        images = np.asarray(images)
        self.batch_shapes.append(images.shape)
        prob = (images[..., :1] > 0).astype(np.float32)
        if return_maps:
            return {"probability": prob, "threshold": np.full_like(prob, 0.25), "binary": prob * 0.5}
        return prob


def white_rectangle(height, width, x0, y0, x1, y1):
    image = np.zeros((height, width, 3), np.uint8)
    image[y0:y1 + 1, x0:x1 + 1] = 255
    return image


def test_box_is_scaled_back_to_the_original_image():
    image = white_rectangle(200, 300, 50, 80, 249, 119)  # 200 x 40 text
    detector = TextDetector(model=PixelModel(), short_side=64, max_side=0)
    result = detector.detect(image)
    assert len(result) == 1 and result.image_size == (200, 300)
    box = result.polygons[0]
    # 200x300 -> 64x96: scale 0.32; the ~64 x 12.8 blob grows by D' = A' 1.5 / L' (about 7.6) map pixels
    scale = 0.32
    blob_w, blob_h = 200 * scale, 40 * scale
    grow = blob_w * blob_h * 1.5 / (2 * (blob_w + blob_h)) / scale
    tolerance = 2.5 / scale  # a pixel or two of resizing / contour rounding, in original pixels
    expected = [50 - grow, 80 - grow, 249 + grow, 119 + grow]
    np.testing.assert_allclose([box[:, 0].min(), box[:, 1].min(), box[:, 0].max(), box[:, 1].max()], expected,
                               atol=tolerance)
    assert result.scores[0] == pytest.approx(1.0, abs=0.1)


def test_batch_of_mixed_sizes_equals_one_image_at_a_time():
    rng = np.random.default_rng(0)
    images = []
    for height, width in [(120, 90), (64, 200), (150, 150)]:
        image = np.zeros((height, width, 3), np.uint8)
        for _ in range(3):
            x, y = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 15))
            image[y:y + 12, x:x + 36] = 255
        images.append(image)
    model = PixelModel()
    detector = TextDetector(model=model, short_side=96, max_side=0, batch_size=2)
    batched = detector.detect(images)
    assert [s[0] for s in model.batch_shapes] == [2, 1]  # two forward passes for three images
    assert model.batch_shapes[0][1:3] == (128, 320)  # 128x96 and 96x320 padded to the larger H and W
    singles = [TextDetector(model=PixelModel(), short_side=96, max_side=0).detect(im) for im in images]
    assert sum(len(r) for r in singles) >= 6
    for got, want in zip(batched, singles):
        assert got.image_size == want.image_size and len(got) == len(want)
        for a, b in zip(got.polygons, want.polygons):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(got.scores, want.scores)


def test_paths_polygon_mode_maps_and_bad_inputs(tmp_path):
    image = white_rectangle(100, 160, 20, 30, 139, 59)
    path = tmp_path / "sample.png"
    cv2.imwrite(str(path), image)
    detector = TextDetector(model=PixelModel(), short_side=64, max_side=0)
    from_path = detector.detect(path)
    np.testing.assert_array_equal(from_path.polygons[0], detector.detect(image).polygons[0])
    polygons = detector.detect(str(path), polygon=True, return_maps=True)
    assert len(polygons) == 1 and len(polygons.polygons[0]) > 4
    assert set(polygons.extras["maps"]) == {"probability", "threshold", "binary"}
    assert polygons.extras["maps"]["threshold"].shape == (64, 128)  # 102.4 rounded up to 128
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        detector.detect(tmp_path / "broken.jpg")
    with pytest.raises(TypeError, match="unknown"):
        detector.detect(image, box_threshold=0.5)
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(image.astype(np.float32))


def test_empty_and_huge_images():
    model = PixelModel()
    detector = TextDetector(model=model)
    empty = detector.detect(np.zeros((0, 10, 3), np.uint8))
    assert len(empty) == 0 and empty.image_size == (0, 10) and model.batch_shapes == []
    huge = np.zeros((10000, 10000, 3), np.uint8)  # zero pages: cheap; the long-side limit bounds the input
    huge[4000:4400, 2000:8000] = 255
    result = detector.detect(huge)
    assert model.batch_shapes[-1] == (1, 736, 736, 3)
    assert len(result) == 1 and result.polygons[0][:, 0].max() > 7900


def test_settings_precedence_and_validation():
    detector = TextDetector(model=PixelModel(), box_thresh=0.4, polygon=True)
    assert detector.settings["box_thresh"] == 0.4 and detector.settings["thresh"] == 0.3
    with pytest.raises(TypeError, match="unknown TextDetector settings"):
        TextDetector(model=PixelModel(), boxthresh=0.4)
    with pytest.raises(ValueError, match="score_mode"):
        TextDetector(model=PixelModel(), score_mode="quick")


@pytest.mark.parametrize("polygon", [True, False])
def test_config_settings_reach_post_processing_with_the_mode_ratio(monkeypatch, polygon):
    """The training validator builds its detector from the config: each mode must get its own unclip ratio."""
    from db_tf import postprocess
    from db_tf.config import load_config
    from db_tf.detector import settings_from_config

    cfg = load_config()
    cfg.POSTPROCESS.POLYGON = polygon
    cfg.POSTPROCESS.UNCLIP_RATIO, cfg.POSTPROCESS.POLY_UNCLIP_RATIO = 1.7, 1.2
    cfg.POSTPROCESS.BOX_THRESH = 0.45
    seen = {}
    real = postprocess.postprocess

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(postprocess, "postprocess", spy)
    detector = TextDetector(model=PixelModel(), **settings_from_config(cfg))
    detector.detect(white_rectangle(64, 64, 10, 20, 50, 30))
    assert seen["unclip_ratio"] == (1.2 if polygon else 1.7)
    assert seen["polygon"] is polygon and seen["box_thresh"] == 0.45


def test_missing_presets_and_weights_say_what_to_pass(tmp_path, monkeypatch):
    from db_tf import presets

    monkeypatch.setattr(presets, "PRESETS_DIR", tmp_path)   # a package installed without its presets
    with pytest.raises(PresetError, match="default preset ppocrv4_mobile is not installed.*pass a preset"):
        presets.default_preset()
    with pytest.raises(PresetError, match="no preset 'no_such_model': not a shipped preset"):
        load_preset("no_such_model")
    with pytest.raises(PresetError, match="has no config.json"):
        load_preset(tmp_path)
    with pytest.raises(PresetError, match="weights file not found"):
        TextDetector(weights=str(tmp_path / "missing.weights.h5"))


# ---------------------------------------------------------------------------------- a real DBNet
TINY = {"backbone": "resnet18", "neck": "fpn", "inner_channels": 32}


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    """A tiny random DBNet saved as weights/<name>.weights.h5 + <name>.json (the pretrained layout)."""
    from db_tf.models import DBNet

    folder = tmp_path_factory.mktemp("weights")
    keras.utils.set_random_seed(0)   # the same weights whichever tests ran before
    model = DBNet(**TINY)
    model.save_weights(str(folder / "tiny.weights.h5"))
    meta = {"name": "tiny", "model": TINY,
            "preprocess": {"channel_order": "BGR", "short_side": 64, "max_side": 128},
            "postprocess": {"thresh": 0.3, "box_thresh": 0.0, "unclip_ratio": 1.5}}
    (folder / "tiny.json").write_text(json.dumps(meta))
    return model, folder


def test_tiny_dbnet_contract(tiny_bundle):
    model, folder = tiny_bundle
    detector = TextDetector(model=model, short_side=64, max_side=128, box_thresh=0.0)
    image = np.random.default_rng(1).integers(0, 256, (70, 100, 3), dtype=np.uint8)
    result = detector.detect(image, return_maps=True)
    maps = result.extras["maps"]
    assert set(maps) == {"probability", "threshold", "binary"}
    for value in maps.values():
        assert value.shape == (64, 96) and value.dtype == np.float32 and 0 <= value.min() <= value.max() <= 1
    binary = 1 / (1 + np.exp(-50 * (maps["probability"] - maps["threshold"])))
    np.testing.assert_allclose(maps["binary"], binary, atol=1e-4)
    for polygon in result.polygons:
        assert polygon.shape == (4, 2)
        assert polygon[:, 0].max() <= 100 and polygon[:, 1].max() <= 70 and polygon.min() >= 0


@pytest.mark.slow
def test_pretrained_json_and_bare_weights_load_the_same_model(tiny_bundle):
    model, folder = tiny_bundle
    assert "ppocrv4_mobile" in list_presets()
    image = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    from_json = TextDetector.from_pretrained(str(folder / "tiny.json"))
    assert from_json.settings["channel_order"] == "BGR" and from_json.settings["short_side"] == 64
    reference = TextDetector(model=model, channel_order="BGR", short_side=64, max_side=128)
    want = reference.predict_maps([image])[0]["probability"]
    assert_maps_match(from_json.predict_maps([image])[0]["probability"], want)   # frozen graph vs live graph
    # a bare .weights.h5 (no .json beside it): architecture from the config's MODEL section
    bare = folder / "bare" / "tiny.weights.h5"
    bare.parent.mkdir()
    bare.write_bytes((folder / "tiny.weights.h5").read_bytes())
    model_cfg = EasyDict(BACKBONE="resnet18", NECK="fpn", INNER_CHANNELS=32, K=50.0, BACKBONE_WEIGHTS="")
    from_h5 = TextDetector(weights=str(bare), model_config=model_cfg, channel_order="BGR", short_side=64)
    assert from_h5.meta == {} and from_h5.settings["channel_order"] == "BGR"
    for loaded, original in zip(from_h5.model.weights, model.weights):
        assert loaded.path == original.path
        np.testing.assert_array_equal(np.asarray(loaded), np.asarray(original))
    wrong_cfg = EasyDict(model_cfg, INNER_CHANNELS=64)
    with pytest.raises(PresetError, match="cannot load these weights"):
        TextDetector(weights=str(bare), model_config=wrong_cfg)


@pytest.mark.slow
def test_frozen_weights_give_the_live_maps_and_live_models_see_weight_updates(tiny_bundle):
    model, folder = tiny_bundle
    image = np.random.default_rng(3).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    settings = {"channel_order": "BGR", "short_side": 64, "max_side": 128}
    frozen = TextDetector(weights=str(folder / "tiny.json"))
    live = TextDetector(model=model, **settings)
    assert frozen.settings["short_side"] == 64
    for return_maps in (False, True):
        got = frozen.predict_maps([image], return_maps=return_maps)[0]
        want = live.predict_maps([image], return_maps=return_maps)[0]
        assert set(got) == set(want)
        for key in want:   # constant folding reorders float sums; B = sigmoid(50 (P - T)) amplifies that
            assert_maps_match(got[key], want[key], BINARY_ATOL if key == "binary" else MAP_ATOL, key)
    # a model passed in is by default NOT frozen: the training validator relies on seeing new weights
    live_before = live.predict_maps([image])[0]["probability"]
    frozen_copy = TextDetector(model=model, freeze_weights=True, **settings)
    frozen_before = frozen_copy.predict_maps([image])[0]["probability"]   # traced with the weights of now
    bias = model.head.probability.deconv2.bias
    original = np.asarray(bias)
    try:
        # logits -100 everywhere: P = 0 whatever the weights were (a shift of a few units could leave a
        # saturated random network's map almost as it was)
        bias.assign(original - 100.0)
        live_after = live.predict_maps([image])[0]["probability"]
        assert live_before.max() > 0.01 and live_after.max() < 1e-6
        np.testing.assert_array_equal(frozen_copy.predict_maps([image])[0]["probability"], frozen_before)
    finally:
        bias.assign(original)


def test_split_by_threshold_runs_the_threshold_branch_and_needs_its_map():
    calls = []

    class RecordingModel(PixelModel):
        def __call__(self, images, training=False, return_maps=False):
            calls.append(return_maps)
            return super().__call__(images, training, return_maps)

    image = white_rectangle(64, 64, 10, 20, 50, 30)
    plain = TextDetector(model=RecordingModel(), short_side=64).detect(image)
    detector = TextDetector(model=RecordingModel(), short_side=64, split_by_threshold=True)
    split = detector.detect(image)
    assert calls == [False, True]   # the threshold map is computed only when the setting needs it
    # PixelModel's threshold map (0.25) is below its probabilities (1 on text): nothing to split
    assert [p.tolist() for p in split.polygons] == [p.tolist() for p in plain.polygons]
    prob = np.zeros((64, 64), np.float32)
    prob[10:20, 5:25] = prob[10:20, 30:60] = 0.9
    prob[12:18, 25:30] = 0.5
    threshold = np.full_like(prob, 0.3)
    threshold[:, 25:30] = 0.7
    assert len(detector.postprocess({"probability": prob, "threshold": threshold}, (64, 64))) == 2
    assert len(detector.postprocess({"probability": prob, "threshold": threshold}, (64, 64),
                                    split_by_threshold=False)) == 1
    with pytest.raises(ValueError, match="split_by_threshold needs the threshold map"):
        detector.postprocess({"probability": prob}, (64, 64))
    assert len(detector.detect(np.zeros((0, 5, 3), np.uint8))) == 0   # an empty image has no maps, and no error
