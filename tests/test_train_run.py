"""train() in-process: a preset as the starting point (architecture, weights and preprocessing from its JSON),
validation with detection metrics, and `--init` loading what matches by name and shape."""
import json

import h5py
import keras
import numpy as np
import pytest
from test_train_support import TINY_OVERRIDES, register_tiny_backbone

from db_tf import synth
from db_tf.config import load_config
from db_tf.training.init_weights import format_report, load_matching_weights
from db_tf.training.summaries import read_events

PRESET_MODEL = {"backbone": "tiny", "neck": "fpn", "inner_channels": 16, "head_batch_norm": False}
PRESET_PREPROCESS = {"channel_order": "BGR", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}


@pytest.fixture
def tiny(monkeypatch):
    from db_tf.models.backbones import BACKBONES
    monkeypatch.setitem(BACKBONES, "tiny", register_tiny_backbone())
    keras.utils.set_random_seed(0)


def dbnet(**kwargs):
    from db_tf.models import DBNet
    return DBNet(**kwargs)


def h5_arrays(path):
    out = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: out.__setitem__(name, item[()])
                          if isinstance(item, h5py.Dataset) and not name.startswith("optimizer") else None)
    return out


@pytest.mark.slow
def test_training_from_a_preset_with_validation(tiny, tmp_path):
    from db_tf.training.run import train

    preset = dbnet(**PRESET_MODEL)
    preset.save_weights(str(tmp_path / "mypreset.weights.h5"))
    (tmp_path / "mypreset.json").write_text(json.dumps({"name": "mypreset", "model": PRESET_MODEL,
                                                        "preprocess": PRESET_PREPROCESS}))
    synth.write_dataset(tmp_path / "val", num=2, size=96, seed=5)
    cfg = load_config(overrides=[*TINY_OVERRIDES, f"MODEL.NAME={tmp_path / 'mypreset.json'}", "TRAIN.EPOCHS=2",
                                 "TRAIN.STEPS_PER_EPOCH=2", "TRAIN.CHECKPOINT_EVERY=0",
                                 f"TRAIN.RUN_DIR={tmp_path / 'run'}"])
    cfg.DATA.VAL = [{"format": "polygon_txt", "images": str(tmp_path / "val" / "images"),
                     "labels": str(tmp_path / "val" / "labels")}]
    lines = []
    result = train(cfg, verbose=0, run_eagerly=True, log=lines.append)
    text = "\n".join(lines)
    assert result.completed and result.step == 4 and not result.failed, text

    # Architecture and weights from the preset; its preprocessing replaces cfg.DATA's, and says so.
    assert "preprocessing for this model overrides cfg.DATA: channel order BGR" in text
    count = len(h5_arrays(tmp_path / "mypreset.weights.h5"))
    assert f"loaded {count} of {count} weight arrays" in text
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["model"] == PRESET_MODEL and run["preprocess"] == PRESET_PREPROCESS
    for name in ("final", "best"):
        meta = json.loads((tmp_path / "run" / f"{name}.json").read_text())
        assert meta["model"] == PRESET_MODEL, name
        assert {k: meta["preprocess"][k] for k in PRESET_PREPROCESS} == PRESET_PREPROCESS, name

    # Validation every epoch: detection metrics and Keras' validation loss in the events.
    scalars, _ = read_events(tmp_path / "run" / "logs")
    for tag in ("val_precision", "val_recall", "val_hmean", "val_total_loss"):
        assert [step for step, _ in scalars[tag]] == [2, 4], tag
    assert all(0.0 <= value <= 1.0 for _, value in scalars["val_hmean"])
    assert "validation at epoch 1: precision" in text and "validation at epoch 2: precision" in text


def test_init_loads_matching_arrays_and_lists_the_rest(tiny, tmp_path):
    source = dbnet(backbone="tiny", neck="fpn", inner_channels=16)
    source.save_weights(str(tmp_path / "source.weights.h5"))
    target = dbnet(backbone="tiny", neck="fpn", inner_channels=24)     # same backbone, wider neck and head
    before = h5_arrays(_saved(target, tmp_path / "before.weights.h5"))
    report = load_matching_weights(target, tmp_path / "source.weights.h5")
    after = h5_arrays(_saved(target, tmp_path / "after.weights.h5"))
    source_arrays = h5_arrays(tmp_path / "source.weights.h5")

    # Expected from the two files alone: same path and same shape -> loaded.
    same_shape = {p for p in before if p in source_arrays and source_arrays[p].shape == before[p].shape}
    assert set(report["loaded"]) == same_shape and len(same_shape) > 20
    assert {p for p, _, _ in report["mismatched"]} == {p for p in before if p in source_arrays} - same_shape
    assert set(report["missing"]) == set(before) - set(source_arrays)
    assert all(p.startswith("backbone/") for p in same_shape if "/vars/0" in p and "deconv2" not in p)
    for path in before:
        expected = source_arrays[path] if path in same_shape else before[path]   # the rest keeps its init
        np.testing.assert_array_equal(after[path], expected, err_msg=path)
    lines = format_report(report, "source.weights.h5")
    assert lines[0] == f"--init source.weights.h5: loaded {len(same_shape)} of {len(before)} weight arrays of the model"
    assert any("shape differs" in line for line in lines)

    other_neck = dbnet(backbone="tiny", neck="asf", inner_channels=16)  # DBNet++ from DBNet weights
    report = load_matching_weights(other_neck, tmp_path / "source.weights.h5")
    assert report["loaded"] and (report["missing"] or report["mismatched"]) and report["unused"]

    with pytest.raises(FileNotFoundError, match="nope.weights.h5"):
        load_matching_weights(target, tmp_path / "nope.weights.h5")
    (tmp_path / "bad.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="bad.weights.h5"):
        load_matching_weights(target, tmp_path / "bad.weights.h5")


def _saved(model, path):
    model.save_weights(str(path))
    return path


def test_non_finite_steps_are_skipped_and_stop_the_run(tiny, tmp_path, monkeypatch):
    from db_tf.models import DBNet
    from db_tf.training import run

    clean = run.train_dataset
    monkeypatch.setattr(run, "train_dataset", lambda cfg, step, context=None: clean(cfg, step, context).map(
        lambda images, labels: (images * float("nan"), labels)))             # every batch poisons the loss
    cfg = load_config(overrides=[*TINY_OVERRIDES, "TRAIN.EPOCHS=1", "TRAIN.STEPS_PER_EPOCH=5",
                                 "TRAIN.MAX_NAN_STEPS=2", f"TRAIN.RUN_DIR={tmp_path / 'run'}"])
    lines = []
    result = run.train(cfg, verbose=0, run_eagerly=True, log=lines.append)
    text = "\n".join(lines)
    assert result.failed and result.step == 2 and not result.completed
    assert "step 1: non-finite loss or gradients, update skipped (1 in a row" in text
    assert "stopping: 2 consecutive steps with a non-finite loss" in text and "TRAIN.MAX_NAN_STEPS=2" in text
    assert not (tmp_path / "run" / "final.weights.h5").exists()
    # The checkpoint written at the stop holds the initial weights and BN statistics: nothing was applied.
    keras.utils.set_random_seed(cfg.DATA.SEED)
    initial = DBNet(backbone="tiny", inner_channels=16)
    saved = h5_arrays(tmp_path / "run" / "checkpoints" / "ckpt-00000002" / "model.weights.h5")
    expected = h5_arrays(_saved(initial, tmp_path / "initial.weights.h5"))
    assert saved.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_array_equal(saved[name], value, err_msg=name)


@pytest.mark.slow
def test_exports_carry_the_moving_average_of_the_weights(tiny, tmp_path):
    from db_tf.models import DBNet
    from db_tf.training.run import train

    cfg = load_config(overrides=[*TINY_OVERRIDES, "TRAIN.EPOCHS=1", "TRAIN.STEPS_PER_EPOCH=3", "TRAIN.EMA=0.5",
                                 "TRAIN.OPTIMIZER=adam", "TRAIN.LR=0.01", "TRAIN.CHECKPOINT_EVERY=1",
                                 f"TRAIN.RUN_DIR={tmp_path / 'run'}"])
    lines = []
    result = train(cfg, verbose=0, run_eagerly=True, log=lines.append)
    assert result.completed, "\n".join(lines)
    assert "moving average (momentum 0.5)" in "\n".join(lines)
    w1, w2, w3 = (h5_arrays(tmp_path / "run" / "checkpoints" / f"ckpt-{step:08d}" / "model.weights.h5")
                  for step in (1, 2, 3))                 # the raw weights after each step
    final = h5_arrays(tmp_path / "run" / "final.weights.h5")
    assert final.keys() == w3.keys()
    averaged = 0
    for name, value in final.items():
        average = 0.25 * w1[name] + 0.25 * w2[name] + 0.5 * w3[name]   # a1 = w1; a_t = m a_(t-1) + (1 - m) w_t
        if np.allclose(value, average, rtol=1e-5, atol=1e-7) and not np.array_equal(w1[name], w3[name]):
            averaged += 1
        else:   # BN moving statistics are not averaged
            np.testing.assert_array_equal(value, w3[name], err_msg=name)
    assert averaged == len(DBNet(backbone="tiny", inner_channels=16).trainable_weights)


def test_validation_scores_an_unreadable_image_as_missed_and_goes_on(tmp_path, capsys):
    import shutil
    from pathlib import Path

    from db_tf.training.run import make_evaluator

    fixtures = Path(__file__).parent / "fixtures" / "icdar2015"
    shutil.copytree(fixtures, tmp_path / "ic15")
    (tmp_path / "ic15" / "imgs" / "img_2.jpg").write_bytes(b"not a jpeg")
    cfg = load_config()
    cfg.DATA.VAL = [{"format": "icdar2015", "images": str(tmp_path / "ic15" / "imgs"),
                     "labels": str(tmp_path / "ic15" / "gts"), "ratio": 1.0}]
    evaluate, count = make_evaluator(cfg, {"channel_order": "RGB", "mean": [0.5] * 3, "std": [0.5] * 3})
    assert count == 2

    def sees_nothing(images, training=False, return_maps=False):
        return np.zeros(np.shape(images)[:3] + (1,), np.float32)

    result = evaluate(sees_nothing)
    assert "img_2.jpg" in capsys.readouterr().out
    assert result["images"] == 2 and result["matched"] == 0 and result["gt_care"] > 0


def test_bad_training_settings_are_named_before_anything_runs():
    from db_tf.training.run import TrainingError, check_config

    cfg = load_config()
    check_config(cfg)   # the defaults are fine
    cfg.TRAIN.VAL_EVERY, cfg.TRAIN.KEEP_CHECKPOINTS, cfg.TRAIN.CHECKPOINT_EVERY = 0, 0, -1
    with pytest.raises(TrainingError) as error:
        check_config(cfg)
    for key in ("TRAIN.VAL_EVERY", "TRAIN.KEEP_CHECKPOINTS", "TRAIN.CHECKPOINT_EVERY"):
        assert key in str(error.value)
    cfg = load_config(overrides=["TRAIN.OPTIMIZER=sgdm", "TRAIN.FREEZE_BN_EXCEPT=['head/threshold']",
                                 "DATA.AUG.CROP_MODE='zoom'", "TRAIN.FREEZE=['backbone/stage1', 'head', 'neck']",
                                 "TRAIN.DISTILL.TEACHER=ppocrv4_v6_ic15", "TRAIN.DISTILL.LOSS=kl",
                                 "TRAIN.DISTILL.WEIGHT=-1", "TRAIN.DISTILL.HARD_FRACTION=1.5"])
    with pytest.raises(TrainingError) as error:
        check_config(cfg)
    assert "TRAIN.OPTIMIZER must be one of" in str(error.value) and "FREEZE_BN=True" in str(error.value)
    assert "DATA.AUG.CROP_MODE must be one of" in str(error.value)
    assert "TRAIN.FREEZE: cannot freeze ['head']" in str(error.value)   # a part's layer prefix is fine
    for problem in ("DISTILL.LOSS must be one of", "WEIGHT and THRESH_WEIGHT must be >= 0",
                    "HARD_FRACTION must be in [0, 1]"):
        assert problem in str(error.value)


def test_a_preset_name_and_a_different_init_model_are_refused():
    from db_tf.training.run import TrainingError, plan_model

    cfg = load_config(overrides=["MODEL.NAME=ppocrv4_mobile"])
    with pytest.raises(TrainingError, match="two different starting models"):
        plan_model(cfg, "ppocrv5_mobile")
    kwargs, preprocess, weights, _ = plan_model(cfg, "my_run/best.weights.h5")   # replaces the preset's weights
    assert weights == "my_run/best.weights.h5" and preprocess["channel_order"] == "BGR"


def test_backbone_weights_setting_is_not_applied_to_a_preset_given_with_init(tmp_path, monkeypatch):
    from db_tf.models.backbones import BACKBONES
    from db_tf.training.run import train

    tiny_backbone = register_tiny_backbone()

    def preset_backbone(weights=None, name="tiny"):
        assert weights is None, f"the preset's backbone was given weights={weights!r}"
        return tiny_backbone(name=name)

    monkeypatch.setitem(BACKBONES, "tiny", preset_backbone)
    dbnet(**PRESET_MODEL).save_weights(str(tmp_path / "mypreset.weights.h5"))
    (tmp_path / "mypreset.json").write_text(json.dumps({"name": "mypreset", "model": PRESET_MODEL}))
    cfg = load_config(overrides=[*TINY_OVERRIDES, "MODEL.BACKBONE_WEIGHTS=imagenet", "TRAIN.EPOCHS=1",
                                 "TRAIN.STEPS_PER_EPOCH=1", f"TRAIN.RUN_DIR={tmp_path / 'run'}"])
    lines = []
    result = train(cfg, init=str(tmp_path / "mypreset.json"), verbose=0, run_eagerly=True, log=lines.append)
    assert result.completed and not result.failed, "\n".join(lines)


def test_resuming_under_another_optimizer_setup_is_refused(tmp_path):
    from db_tf.training.run import TrainingError, _check_resumable, _jsonable

    first = _jsonable(load_config(overrides=["TRAIN.OPTIMIZER=adam", "TRAIN.FREEZE_BN=True"]))
    _check_resumable(first, _jsonable(load_config(overrides=["TRAIN.OPTIMIZER=adam", "TRAIN.FREEZE_BN=True",
                                                             "TRAIN.EPOCHS=5"])), tmp_path)   # other keys may change
    with pytest.raises(TrainingError) as error:
        _check_resumable(first, _jsonable(load_config()), tmp_path)     # e.g. --resume without the run's --config
    assert "TRAIN.OPTIMIZER 'adam' -> 'sgd'" in str(error.value) and "TRAIN.FREEZE_BN True -> False" in str(error.value)
    with pytest.raises(TrainingError, match="TRAIN.EMA 0.0 -> 0.99"):   # the averages are optimizer variables
        _check_resumable(first, _jsonable(load_config(overrides=["TRAIN.OPTIMIZER=adam", "TRAIN.FREEZE_BN=True",
                                                                 "TRAIN.EMA=0.99"])), tmp_path)
