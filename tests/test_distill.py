"""Distillation: the loss term against numpy, the teacher cache, the warp of the teacher's maps with a sample's
augmentation, unlabelled images, and a training run with a teacher that resumes exactly."""
import json

import cv2
import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from test_train_support import TINY_OVERRIDES, register_tiny_backbone

from db_tf import synth
from db_tf.config import load_config
from db_tf.data import teacher_maps
from db_tf.data.augment import augment
from db_tf.data.pipeline import ExampleMaker
from db_tf.losses import DBLoss, distill_map_loss


# ------------------------------------------------------------------------------------------------ the loss
def numpy_kl(p_student, t):
    """Bernoulli KL(t || p) by its definition, with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(t > 0, t * np.log(t / p_student), 0.0)
        b = np.where(t < 1, (1 - t) * np.log((1 - t) / (1 - p_student)), 0.0)
    return a + b


def test_distillation_terms_match_a_hand_computation():
    logits = np.array([[[0.0, 2.0, -1.5], [3.0, -4.0, 0.5]]], np.float64)
    teacher = np.array([[[0.5, 0.9, 0.0], [1.0, 0.2, 0.25]]], np.float64)
    mask = np.array([[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]], np.float64)   # the last pixel is not counted
    p = 1 / (1 + np.exp(-logits))
    # by hand for the first pixel: p = 0.5 = t, so KL 0; second: 0.9 log(0.9 / p) + 0.1 log(0.1 / (1 - p))
    p2 = 1 / (1 + np.exp(-2.0))
    assert numpy_kl(p, teacher)[0, 0, 1] == pytest.approx(0.9 * np.log(0.9 / p2) + 0.1 * np.log(0.1 / (1 - p2)))
    expected = {"bce": (numpy_kl(p, teacher) * mask).sum() / mask.sum(),
                "mse": (((p - teacher) ** 2) * mask).sum() / mask.sum(),
                "l1": (np.abs(p - teacher) * mask).sum() / mask.sum()}
    for kind, value in expected.items():
        got = float(distill_map_loss(tf.constant(logits, tf.float32), tf.constant(teacher, tf.float32),
                                     tf.constant(mask, tf.float32), kind))
        # float32 sigmoid / log over 5 pixels: measured worst error 6e-8; 1e-6 leaves room for other kernels
        assert got == pytest.approx(value, abs=1e-6), kind
    assert float(distill_map_loss(tf.constant(logits, tf.float32), tf.constant(teacher, tf.float32),
                                  tf.zeros_like(tf.constant(mask, tf.float32)))) == 0.0
    with pytest.raises(ValueError, match="distillation loss must be one of"):
        distill_map_loss(tf.constant(logits, tf.float32), tf.constant(teacher, tf.float32),
                         tf.constant(mask, tf.float32), "kl2")


def test_the_hard_fraction_averages_the_most_divergent_valid_pixels():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (2, 5, 7))
    teacher = rng.uniform(0, 1, (2, 5, 7))
    mask = (rng.uniform(size=(2, 5, 7)) > 0.3).astype(np.float64)
    mask[0, 0, 0], logits[0, 0, 0], teacher[0, 0, 0] = 0.0, 8.0, 0.0     # the worst pixel, but not valid
    p = 1 / (1 + np.exp(-logits))
    per_pixel = {"bce": numpy_kl(p, teacher), "mse": (p - teacher) ** 2, "l1": np.abs(p - teacher)}
    args = [tf.constant(a, tf.float32) for a in (logits, teacher, mask)]
    for kind, values in per_pixel.items():
        valid = np.sort(values[mask > 0])[::-1]                         # the batch's valid pixels, worst first
        for fraction in (0.1, 0.37, 1.0):
            count = int(np.ceil(fraction * valid.size))
            got = float(distill_map_loss(*args, kind, hard_fraction=fraction))
            # float32 over <= 70 pixels: measured worst error 7.5e-8; a pixel more or less changes it by >= 2.1e-3
            assert got == pytest.approx(valid[:count].mean(), abs=1e-5), (kind, fraction)
        assert float(distill_map_loss(*args, kind, hard_fraction=1.0)) == pytest.approx(
            float(distill_map_loss(*args, kind)), abs=1e-6)
    assert float(distill_map_loss(args[0], args[1], tf.zeros_like(args[2]), hard_fraction=0.5)) == 0.0
    with pytest.raises(ValueError, match="distill_hard_fraction must be in"):
        DBLoss(distill_weight=1.0, distill_hard_fraction=1.5)


def test_the_kl_term_is_zero_when_the_student_matches_the_teacher():
    teacher = np.random.default_rng(0).uniform(0.01, 0.99, (2, 8, 8)).astype(np.float32)
    logits = np.log(teacher / (1 - teacher))
    value = float(distill_map_loss(tf.constant(logits), tf.constant(teacher), tf.ones((2, 8, 8))))
    assert value == pytest.approx(0.0, abs=2e-6)   # measured 3e-7 (float32 rounding of log / sigmoid)


def test_db_loss_adds_the_weighted_distillation_terms():
    rng = np.random.default_rng(1)
    shape = (2, 16, 16)
    labels = {"gt": (rng.random(shape) < 0.2).astype(np.float32), "mask": np.ones(shape, np.float32),
              "thresh_map": rng.uniform(0.3, 0.7, shape).astype(np.float32),
              "thresh_mask": (rng.random(shape) < 0.5).astype(np.float32)}
    logits = rng.normal(0, 2, shape + (1,)).astype(np.float32)
    threshold = rng.uniform(0, 1, shape + (1,)).astype(np.float32)
    probability = 1 / (1 + np.exp(-logits))
    outputs = {"logits": logits, "probability": probability, "threshold": threshold,
               "binary": 1 / (1 + np.exp(-50 * (probability - threshold)))}
    teacher = {"teacher_prob": rng.uniform(0, 1, shape).astype(np.float32),
               "teacher_thresh": rng.uniform(0, 1, shape).astype(np.float32),
               "teacher_mask": (rng.random(shape) < 0.7).astype(np.float32)}
    plain = DBLoss()(labels, outputs)
    loss = DBLoss(distill_weight=3.0, distill_thresh_weight=2.0)({**labels, **teacher}, outputs)
    m = teacher["teacher_mask"]
    kl = (numpy_kl(probability[..., 0].astype(np.float64), teacher["teacher_prob"]) * m).sum() / m.sum()
    l1 = (np.abs(threshold[..., 0] - teacher["teacher_thresh"]) * m).sum() / m.sum()
    assert float(loss["distill_loss"]) == pytest.approx(3.0 * kl + 2.0 * l1, rel=1e-5)
    assert float(loss["total_loss"]) == pytest.approx(float(plain["total_loss"]) + 3.0 * kl + 2.0 * l1, rel=1e-5)
    for key in ("binarize_loss", "thresh_loss", "thresh_binary_loss"):
        assert float(loss[key]) == pytest.approx(float(plain[key]), rel=1e-6)
    # validation batches carry no teacher maps: the term is 0; without weights it is not reported at all
    assert float(DBLoss(distill_weight=3.0)(labels, outputs)["distill_loss"]) == 0.0
    assert "distill_loss" not in plain


# ------------------------------------------------------------------------------------------------ the cache
def test_cache_round_trip_quantises_to_half_a_level_and_names_missing_entries(tmp_path):
    image = tmp_path / "img_7.jpg"
    cv2.imwrite(str(image), np.full((20, 30, 3), 128, np.uint8))
    cache = teacher_maps.TeacherCache(tmp_path / "cache")
    rng = np.random.default_rng(2)
    probability, threshold = rng.random((64, 96)), rng.random((64, 96))
    with pytest.raises(teacher_maps.TeacherCacheError, match="no teacher maps for .*img_7.jpg"):
        cache.read(image)
    cache.write(image, probability, threshold, (20, 30))
    p, t, size = cache.read(image)
    assert size == (20, 30) and p.dtype == np.float32 and p.shape == (64, 96)
    assert np.abs(p - probability).max() <= 0.5 / 255 + 1e-7 and np.abs(t - threshold).max() <= 0.5 / 255 + 1e-7
    assert cache.entry(image).name.startswith("img_7-") and not list((tmp_path / "cache").glob("*.tmp*"))
    cache.entry(image).write_bytes(b"broken")
    with pytest.raises(teacher_maps.TeacherCacheError, match="unreadable"):
        cache.read(image)


def smooth_image(h, w):
    """A slowly varying RGB image: bilinear resampling twice changes it little (see the tolerance below)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    red = 127.5 + 100 * np.sin(x / 23.0) * np.cos(y / 17.0)
    green = 255.0 * x / w
    blue = 255.0 * y / h
    return np.clip(np.stack([red, green, blue], -1), 0, 255).round().astype(np.uint8)


def image_footprint(image_size, matrix, size):
    """Output pixels whose bilinear sample lies wholly inside the image (a warp of ones at image resolution).
    (Zooms >= 0.5 only: below, augment shrinks the image with INTER_AREA first, which moves its blended edge.)"""
    ones = np.ones(image_size, np.float32)
    return cv2.warpAffine(ones, np.asarray(matrix)[:2], (size, size), flags=cv2.INTER_LINEAR) > 1 - 1e-4


@pytest.mark.parametrize("seed", range(6))
def test_warped_teacher_maps_line_up_with_the_augmented_image(seed):
    """A 'teacher' whose maps are the image's own channels at the teacher's (stretched) resolution: after the
    warp they must equal the augmented image's channels wherever the mask says valid."""
    image = smooth_image(180, 320)
    map_h, map_w = 320, 576                        # the teacher's resize: each side to a multiple of 32
    stretched = cv2.resize(image, (map_w, map_h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    polygons = [np.array([[40, 30], [120, 30], [120, 60], [40, 60]], np.float64)]
    aug = {"FLIP": True, "ROTATE": 10.0, "SCALE": [0.6, 2.4], "CROP": True, "CROP_MODE": "window",
           "MIN_CROP_SIDE_RATIO": 0.1, "CROP_TRIES": 10, "COLOR_JITTER": 0.0, "SATURATION": 0.0}
    out, _, _, info = augment(image, polygons, [False], aug, 128, np.random.default_rng(seed), return_info=True)
    maps = teacher_maps.warp_teacher_maps(stretched[..., 0], stretched[..., 1], image.shape[:2], info["matrix"],
                                          (128, 128), info["valid_size"])
    mask = maps["teacher_mask"] > 0
    assert mask.mean() > 0.5
    assert np.all(maps["teacher_prob"][~mask] == 0)
    # The map's finer pixels reach closer to a rotated image's edge than the image's own: the augmented image's
    # edge pixels are blends with the black border, so compare where the image's own footprint is whole.
    inside = mask & image_footprint(image.shape[:2], info["matrix"], 128)
    expected = out.astype(np.float32) / 255
    # two bilinear resamplings of a smooth image vs one: measured worst 0.005 over these seeds; a map shifted by
    # one image pixel differs by > 0.02 (next test)
    assert np.abs(maps["teacher_prob"] - expected[..., 0])[inside].max() < 0.012
    assert np.abs(maps["teacher_thresh"] - expected[..., 1])[inside].max() < 0.012
    valid_h, valid_w = info["valid_size"]
    assert not mask[valid_h:].any() and not mask[:, valid_w:].any()


def test_a_map_one_pixel_off_fails_the_alignment_check():
    """The tolerance above is tight enough to see a one-pixel shift of the teacher's map."""
    image = smooth_image(180, 320)
    stretched = cv2.resize(image, (576, 320)).astype(np.float32) / 255
    aug = {"SCALE": [2.0, 2.0], "CROP": True, "CROP_MODE": "window", "COLOR_JITTER": 0.0, "SATURATION": 0.0}
    out, _, _, info = augment(image, [np.array([[150, 80], [170, 80], [170, 90], [150, 90]], np.float64)], [False],
                              aug, 128, np.random.default_rng(0), return_info=True)
    shifted = np.roll(stretched[..., 0], 2, axis=1)   # 2 map pixels = 1.1 image pixels
    maps = teacher_maps.warp_teacher_maps(shifted, shifted, image.shape[:2], info["matrix"], (128, 128))
    inside = (maps["teacher_mask"] > 0) & image_footprint(image.shape[:2], info["matrix"], 128)
    assert np.abs(maps["teacher_prob"] - out[..., 0] / 255.0)[inside].max() > 0.02


# ------------------------------------------------------------------------------------------------ training
PRESET = {"backbone": "tiny", "neck": "fpn", "inner_channels": 16, "head_batch_norm": False}


@pytest.fixture
def tiny(monkeypatch):
    from db_tf.models.backbones import BACKBONES
    monkeypatch.setitem(BACKBONES, "tiny", register_tiny_backbone())
    keras.utils.set_random_seed(0)


def write_teacher(tmp_path):
    from db_tf.models import DBNet

    keras.utils.set_random_seed(7)
    DBNet(**PRESET).save_weights(str(tmp_path / "teacher.weights.h5"))
    (tmp_path / "teacher.json").write_text(json.dumps({"name": "teacher", "model": PRESET,
                                                       "preprocess": {"short_side": 96}}))
    return tmp_path / "teacher.json"


def distill_config(tmp_path, run_name, *extra):
    synth.write_dataset(tmp_path / "data", num=4, size=96, seed=3)
    (tmp_path / "unlabelled").mkdir(exist_ok=True)
    for i in range(2):
        cv2.imwrite(str(tmp_path / "unlabelled" / f"u{i}.png"), smooth_image(96, 128))
    cfg = load_config(overrides=[*TINY_OVERRIDES, f"TRAIN.DISTILL.TEACHER={tmp_path / 'teacher.json'}",
                                 "TRAIN.DISTILL.WEIGHT=5.0", "TRAIN.DISTILL.THRESH_WEIGHT=1.0",
                                 f"TRAIN.DISTILL.CACHE_DIR={tmp_path / 'cache'}", "TRAIN.EPOCHS=2",
                                 "TRAIN.STEPS_PER_EPOCH=3", "TRAIN.CHECKPOINT_EVERY=1", "TRAIN.KEEP_CHECKPOINTS=20",
                                 "TRAIN.EMA=0.5", f"TRAIN.RUN_DIR={tmp_path / run_name}", *extra])
    cfg.DATA.TRAIN = [{"format": "polygon_txt", "images": str(tmp_path / "data" / "images"),
                       "labels": str(tmp_path / "data" / "labels")},
                      {"format": "images", "images": str(tmp_path / "unlabelled"), "ratio": 0.5}]
    return cfg


def model_arrays(path):
    out = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: out.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset)
                          else None)
    return out


def test_unlabelled_images_train_through_the_teacher_only(tiny, tmp_path):
    from db_tf.tools.cache_teacher import build_cache

    write_teacher(tmp_path)
    cfg = distill_config(tmp_path, "run")
    folder, added = build_cache(cfg, log=lambda _: None)
    assert added == 6 and len(list(folder.glob("*.npz"))) == 6
    assert build_cache(cfg, log=lambda _: None)[1] == 0          # a second build has nothing to do
    maker = ExampleMaker(cfg, "train")
    seen = set()
    for position in range(len(maker)):
        _, _, d, _ = maker.locate(position)
        _, labels = maker.example(position)
        assert set(labels) >= set(teacher_maps.TEACHER_KEYS)
        assert labels["teacher_mask"].mean() > 0.3
        if not maker.datasets[d].labelled:
            assert not labels["mask"].any() and not labels["thresh_mask"].any()
        seen.add(maker.datasets[d].labelled)
    assert seen == {True, False}


@pytest.mark.slow
def test_training_with_a_teacher_resumes_exactly(tiny, tmp_path):
    """An interrupted run (stopped mid-epoch, then rerun) ends with the same weights as an uninterrupted one."""
    from db_tf.training.run import train

    write_teacher(tmp_path)
    lines = []
    whole = train(distill_config(tmp_path, "whole"), verbose=0, run_eagerly=True, log=lines.append)
    assert whole.completed and whole.step == 6, "\n".join(lines)
    text = "\n".join(lines)
    assert "distillation from" in text and "(6 added now)" in text
    first = train(distill_config(tmp_path, "split"), max_steps=4, verbose=0, run_eagerly=True, log=lines.append)
    assert first.step == 4 and not first.completed
    second = train(distill_config(tmp_path, "split"), verbose=0, run_eagerly=True, log=lines.append)
    assert second.start_step == 4 and second.completed and "(0 added now)" in "\n".join(lines)
    a = model_arrays(tmp_path / "whole" / "final.weights.h5")
    b = model_arrays(tmp_path / "split" / "final.weights.h5")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_build_loss_reads_the_distill_section_only_with_a_teacher():
    cfg = load_config(overrides=["TRAIN.DISTILL.WEIGHT=4.0", "TRAIN.DISTILL.THRESH_WEIGHT=0.5",
                                 "TRAIN.DISTILL.LOSS=mse", "TRAIN.DISTILL.HARD_FRACTION=0.05"])
    from db_tf.losses import build_loss

    assert "distill_weight" not in build_loss(cfg.TRAIN.LOSS, cfg.TRAIN.DISTILL).get_config()
    assert build_loss(cfg.TRAIN.LOSS, cfg.TRAIN.DISTILL).reported_keys[-2:] == ("thresh_binary_loss", "total_loss")
    cfg.TRAIN.DISTILL.TEACHER = "ppocrv4_v6_ic15"
    loss = build_loss(cfg.TRAIN.LOSS, cfg.TRAIN.DISTILL)
    config = loss.get_config()
    assert (config["distill_weight"], config["distill_thresh_weight"], config["distill_loss"],
            config["distill_hard_fraction"]) == (4.0, 0.5, "mse", 0.05)
    assert "distill_loss" in loss.reported_keys and DBLoss(**config).get_config() == config


def test_the_recipe_takes_its_data_root_from_the_environment(tmp_path, monkeypatch):
    from pathlib import Path

    from db_tf.config import ConfigError

    recipe = Path(__file__).resolve().parent.parent / "configs" / "ppocrv4_ic15_distill.py"
    monkeypatch.delenv("ICDAR2015_ROOT", raising=False)
    monkeypatch.delenv("MSRA_TD500_ROOT", raising=False)
    with pytest.raises(ConfigError, match=r"reads its data from \$ICDAR2015_ROOT: set it"):
        load_config(recipe)
    monkeypatch.setenv("ICDAR2015_ROOT", str(tmp_path))
    cfg = load_config(recipe)
    assert cfg.DATA.TRAIN[0]["images"] == str(tmp_path / "imgs") and cfg.DATA.TRAIN[0]["select"] == "0:900"
    assert cfg.DATA.VAL[0]["select"] == "900:1000" and cfg.TRAIN.DISTILL.TEACHER == "ppocrv4_v6_ic15"
