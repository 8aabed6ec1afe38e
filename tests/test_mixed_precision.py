"""Mixed precision end to end: a tiny DBNet trains a few steps with validation under each Keras mixed policy,
and the run's final weights load and export; the inference path (the folded head) runs in the policy's
compute dtype and still returns float32 maps."""
import json

import keras
import numpy as np
import pytest
from test_train_support import TINY_OVERRIDES, register_tiny_backbone

from db_tf import synth
from db_tf.config import load_config
from db_tf.training.summaries import read_events

POLICIES = ("mixed_bfloat16", "mixed_float16")


@pytest.fixture
def tiny(monkeypatch):
    from db_tf.models.backbones import BACKBONES
    monkeypatch.setitem(BACKBONES, "tiny", register_tiny_backbone())
    keras.utils.set_random_seed(0)
    previous = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("head_batch_norm", [True, False])
def test_inference_under_a_mixed_policy_gives_float32_maps(tiny, policy, head_batch_norm):
    from db_tf.models import DBNet

    keras.config.set_dtype_policy(policy)
    model = DBNet("tiny", inner_channels=16, head_batch_norm=head_batch_norm)
    images = np.random.default_rng(0).normal(size=(1, 64, 96, 3)).astype(np.float32)
    probability = model(images, training=False)
    maps = model(images, training=False, return_maps=True)
    assert probability.dtype == "float32" and probability.shape == (1, 64, 96, 1)
    assert all(value.dtype == "float32" for value in maps.values())
    assert np.all(np.isfinite(np.asarray(probability)))


@pytest.mark.slow
@pytest.mark.parametrize("policy", POLICIES)
def test_training_validates_and_exports_under_a_mixed_policy(tiny, tmp_path, policy):
    from db_tf import TextDetector
    from db_tf.export import export
    from db_tf.training.run import train

    synth.write_dataset(tmp_path / "val", num=2, size=96, seed=5)
    cfg = load_config(overrides=[*TINY_OVERRIDES, f"TRAIN.MIXED_PRECISION={policy}", "TRAIN.EPOCHS=1",
                                 "TRAIN.STEPS_PER_EPOCH=2", "TRAIN.CHECKPOINT_EVERY=0",
                                 f"TRAIN.RUN_DIR={tmp_path / 'run'}"])
    cfg.DATA.VAL = [{"format": "polygon_txt", "images": str(tmp_path / "val" / "images"),
                     "labels": str(tmp_path / "val" / "labels")}]
    lines = []
    result = train(cfg, verbose=0, log=lines.append)
    text = "\n".join(lines)
    assert result.completed and result.step == 2 and not result.failed, text
    assert "validation at epoch 1: precision" in text, text
    scalars, _ = read_events(tmp_path / "run" / "logs")
    assert [step for step, _ in scalars["val_hmean"]] == [2]
    assert keras.config.dtype_policy().name == "float32"   # train() leaves the process policy as found

    detector = TextDetector(weights=str(tmp_path / "run" / "final.json"))
    assert json.loads((tmp_path / "run" / "final.json").read_text())["model"]["backbone"] == "tiny"
    written = export(detector.model, detector.settings, tmp_path / "exported")
    assert (written[0] / "saved_model.pb").is_file()
