"""tf.data pipeline: shapes, value ranges, determinism, resume, bad samples, mixing, distribution."""
import logging
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import tensorflow as tf

from db_tf.config import load_config
from db_tf.data import pipeline
from db_tf.data.pipeline import EpochPlan, ExampleMaker, build_dataset

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _write_dataset(root, count, width=96, height=72, colour=None, corrupt=()):
    """polygon_txt dataset: noisy images with one dark box of 'text' each; `corrupt` indices are garbage."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(count)
    for i in range(count):
        path = root / "images" / f"img_{i}.png"
        if i in corrupt:
            path.write_bytes(b"this is not an image")
        else:
            image = rng.integers(100, 200, (height, width, 3)).astype(np.uint8) if colour is None else \
                np.full((height, width, 3), colour, np.uint8)
            cv2.rectangle(image, (10, 20), (70, 40), (20, 20, 20), -1)
            cv2.imwrite(str(path), image)
        (root / "labels" / f"img_{i}.txt").write_text("10,20,70,20,70,40,10,40,word\n")
    return {"format": "polygon_txt", "images": str(root / "images"), "labels": str(root / "labels")}


def _cfg(train=(), size=64, batch=2, **data):
    cfg = load_config()
    cfg.DATA.TRAIN = list(train)
    cfg.DATA.IMAGE_SIZE = size
    cfg.DATA.NUM_WORKERS = 2
    cfg.TRAIN.BATCH_SIZE = batch
    for key, value in data.items():
        cfg.DATA[key] = value
    return cfg


def _batches(dataset, count):
    return [(x.numpy(), {k: v.numpy() for k, v in y.items()}) for x, y in dataset.take(count)]


def _check_batch(images, labels, batch, size):
    assert images.shape == (batch, size, size, 3) and images.dtype == np.float32
    pixels = images * STD + MEAN                                   # undo the normalisation
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert set(labels) == {"gt", "mask", "thresh_map", "thresh_mask"}
    for key, value in labels.items():
        assert value.shape == (batch, size, size) and value.dtype == np.float32, key
    for key in ("gt", "mask", "thresh_mask"):
        assert set(np.unique(labels[key])) <= {0.0, 1.0}, key
    assert labels["thresh_map"].min() >= 0.3 - 1e-6 and labels["thresh_map"].max() <= 0.7 + 1e-6


def test_train_batches_from_files(tmp_path):
    cfg = _cfg([_write_dataset(tmp_path / "a", 4)])
    for images, labels in _batches(build_dataset(cfg), 3):
        _check_batch(images, labels, 2, 64)
        assert labels["gt"].sum() > 0, "each image has a text box"


def test_train_batches_from_synthetic_default():
    cfg = _cfg([], size=128)
    cfg.DATA.SYNTH.NUM = 8
    batches = _batches(build_dataset(cfg), 2)
    for images, labels in batches:
        _check_batch(images, labels, 2, 128)
    assert sum(labels["gt"].sum() for _, labels in batches) > 0, "synthetic images contain text"


def test_batches_equal_the_numpy_examples_of_their_positions(tmp_path):
    """The stream is positions 0, 1, 2, ...; start_step=s resumes at position s * batch exactly."""
    cfg = _cfg([_write_dataset(tmp_path / "a", 5)], STRICT=True)
    cfg.TRAIN.STEPS_PER_EPOCH = 2                                   # epoch = 4 positions: step 3 is in epoch 1
    maker = ExampleMaker(cfg)
    (images, labels), = _batches(build_dataset(cfg, start_step=3, maker=maker), 1)
    for row, position in enumerate((6, 7)):
        want_image, want_labels = maker.example(position)
        np.testing.assert_array_equal(images[row], want_image)
        for key in want_labels:
            np.testing.assert_array_equal(labels[key][row], want_labels[key])
    uninterrupted = _batches(build_dataset(cfg, maker=maker), 4)
    np.testing.assert_array_equal(uninterrupted[3][0], images)


def test_same_seed_gives_identical_batches_and_other_seed_does_not(tmp_path):
    spec = _write_dataset(tmp_path / "a", 6)
    first = _batches(build_dataset(_cfg([spec])), 3)
    second = _batches(build_dataset(_cfg([spec])), 3)
    other = _batches(build_dataset(_cfg([spec], SEED=1)), 3)
    for (x1, y1), (x2, y2) in zip(first, second):
        np.testing.assert_array_equal(x1, x2)
        for key in y1:
            np.testing.assert_array_equal(y1[key], y2[key])
    assert any(not np.array_equal(x1, x3) for (x1, _), (x3, _) in zip(first, other))


def test_corrupt_image_is_logged_and_skipped(tmp_path, caplog):
    cfg = _cfg([_write_dataset(tmp_path / "a", 3, corrupt={1})])
    cfg.TRAIN.STEPS_PER_EPOCH = 2                                   # 4 positions per epoch: all 3 images
    with caplog.at_level(logging.WARNING, logger="db_tf.data.pipeline"):
        batches = _batches(build_dataset(cfg), 4)
    assert len(batches) == 4
    for images, labels in batches:
        _check_batch(images, labels, 2, 64)
    assert any("img_1.png" in r.getMessage() and "skipping" in r.getMessage() for r in caplog.records)


def test_corrupt_image_raises_naming_the_file_in_strict_mode(tmp_path):
    cfg = _cfg([_write_dataset(tmp_path / "a", 3, corrupt={1})], STRICT=True)
    cfg.TRAIN.STEPS_PER_EPOCH = 2
    with pytest.raises(tf.errors.OpError, match="img_1.png"):
        _batches(build_dataset(cfg), 4)


def test_data_that_is_all_bad_stops_the_pipeline_instead_of_spinning(tmp_path):
    cfg = _cfg([_write_dataset(tmp_path / "a", 3, corrupt={0, 1, 2})])
    with pytest.raises(tf.errors.OpError, match="in a row failed"):
        _batches(build_dataset(cfg), 1)


def test_epoch_plan_respects_ratios_and_permutes_each_dataset():
    plan = EpochPlan([10, 50], [3.0, 1.0], 4000, seed=0)
    datasets, samples = plan.epoch(0)
    share = np.mean(datasets == 0)
    assert abs(share - 0.75) < 0.03
    first = samples[datasets == 0]
    assert sorted(first[:10]) == list(range(10)), "a dataset is used up before any sample repeats"
    counts = np.bincount(first, minlength=10)
    assert counts.max() - counts.min() <= 1
    again = EpochPlan([10, 50], [3.0, 1.0], 4000, seed=0)
    np.testing.assert_array_equal(again.epoch(0)[1], samples)
    assert not np.array_equal(plan.epoch(1)[0], datasets), "a new epoch draws a new plan"
    assert plan.lookup(4001)[:2] == (1, 1)


def test_mixed_datasets_follow_their_ratios_in_the_stream(tmp_path):
    white = dict(_write_dataset(tmp_path / "w", 3, colour=250), ratio=3.0)
    black = dict(_write_dataset(tmp_path / "b", 5, colour=5), ratio=1.0)
    cfg = _cfg([white, black], size=32, batch=4)
    cfg.DATA.AUG.COLOR_JITTER = 0.0
    cfg.TRAIN.STEPS_PER_EPOCH = 20
    brightness = np.concatenate([(x * STD + MEAN).max(axis=(1, 2, 3)) for x, _ in _batches(build_dataset(cfg), 20)])
    share_white = np.mean(brightness > 0.5)
    assert 0.6 < share_white < 0.9


def test_val_split_is_one_ordered_pass_resized_and_padded(tmp_path):
    cfg = _cfg([], size=64, batch=2)
    cfg.DATA.VAL = [_write_dataset(tmp_path / "v", 3, width=96, height=48, colour=200)]
    batches = _batches(build_dataset(cfg, "val"), 10)
    assert [len(x) for x, _ in batches] == [2, 2 - 1]
    images = np.concatenate([x for x, _ in batches]) * STD + MEAN
    # 96 x 48 -> 64 x 32 in the top-left corner, zero padding below
    assert np.all(images[:, 34:] < 1e-5) and np.all(images[:, :30, :60].mean(axis=(1, 2, 3)) > 0.4)
    gt = np.concatenate([y["gt"] for _, y in batches])
    ys, xs = np.nonzero(gt[0])
    # the box x 10..70, y 20..40 scaled by 2/3, shrunk: inside x 6.7..46.7, y 13.3..26.7
    assert xs.min() >= 6 and xs.max() <= 47 and ys.min() >= 13 and ys.max() <= 27
    again = _batches(build_dataset(cfg, "val"), 10)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in again]), np.concatenate([x for x, _ in batches]))


def test_val_split_on_synthetic_text_and_missing_val_data():
    cfg = _cfg([], size=64, batch=2)
    cfg.DATA.VAL = [{"format": "synth", "num": 3}]
    first, second = _batches(build_dataset(cfg, "val"), 5), _batches(build_dataset(cfg, "val"), 5)
    assert sum(len(x) for x, _ in first) == 3
    np.testing.assert_array_equal(first[0][0], second[0][0])
    cfg.DATA.VAL = []
    with pytest.raises(ValueError, match="DATA.VAL is empty"):
        build_dataset(cfg, "val")


def test_steps_per_epoch(tmp_path):
    cfg = _cfg([_write_dataset(tmp_path / "a", 7)], batch=2)
    assert pipeline.steps_per_epoch(cfg) == 3 and pipeline.steps_per_epoch(cfg, num_replicas=2) == 1
    cfg.TRAIN.STEPS_PER_EPOCH = 5
    assert pipeline.steps_per_epoch(cfg, 2) == 5


_DISTRIBUTED_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from db_tf.config import load_config
    from db_tf.data.pipeline import ExampleMaker, build_dataset

    cfg = load_config()
    cfg.DATA.TRAIN, cfg.DATA.IMAGE_SIZE, cfg.DATA.NUM_WORKERS, cfg.TRAIN.BATCH_SIZE = [], 64, 2, 2
    cfg.DATA.SYNTH.NUM = 8
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    contexts = []
    def dataset_fn(context):
        contexts.append(context)
        return build_dataset(cfg, "train", context, start_step=1)
    dist = strategy.distribute_datasets_from_function(dataset_fn)
    images, labels = next(iter(dist))
    per_replica = strategy.experimental_local_results(images)
    assert len(per_replica) == 2, per_replica
    assert contexts[0].num_replicas_in_sync == 2
    maker = ExampleMaker(cfg, "train", num_replicas=2)
    # global step 1 with a global batch of 4 = positions 4..7: replica 0 gets 4, 5 and replica 1 gets 6, 7
    for replica, positions in enumerate(((4, 5), (6, 7))):
        got = per_replica[replica].numpy()
        assert got.shape == (2, 64, 64, 3), got.shape
        for row, position in enumerate(positions):
            np.testing.assert_array_equal(got[row], maker.example(position)[0])
    gt = strategy.experimental_local_results(labels["gt"])
    assert gt[1].shape == (2, 64, 64)
    print("DISTRIBUTED_OK")
""")


@pytest.mark.slow
def test_distribute_datasets_from_function_with_two_cpu_replicas(repo_root):
    """Runs in a subprocess: logical CPU devices must be configured before TensorFlow initialises."""
    env = dict(os.environ, PYTHONPATH=str(repo_root), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", _DISTRIBUTED_SCRIPT], cwd=repo_root, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "DISTRIBUTED_OK" in result.stdout, result.stderr[-3000:]
