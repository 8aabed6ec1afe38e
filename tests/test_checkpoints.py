"""Checkpoint manager: atomic layout, keep-last-K, fallback from damaged checkpoints, no NaN on disk."""
import json

import h5py
import keras
import numpy as np
import pytest

from db_tf.training.checkpoints import (
    CheckpointError,
    CheckpointManager,
    NonFiniteError,
    export_pretrained,
    write_weights_without_optimizer,
)


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization(),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    model.optimizer.build(model.trainable_variables)
    return model


def train_a_bit(model, steps):
    rng = np.random.default_rng(steps)
    for _ in range(steps):
        model.train_on_batch(rng.normal(size=(8, 4)), rng.normal(size=(8, 1)))


def all_values(model):
    return [v.numpy().copy() for v in model.weights + list(model.optimizer.variables)]


def test_save_then_restore_brings_back_weights_optimizer_and_state(tmp_path):
    model = tiny_model()
    train_a_bit(model, 3)
    manager = CheckpointManager(tmp_path, keep=2, log=lambda _: None)
    path = manager.save(model, {"step": 3, "epoch": 0, "optimizer_iterations": 3})
    assert path.name == "ckpt-00000003" and (path / "model.weights.h5").is_file()
    expected = all_values(model)

    fresh = tiny_model(seed=1)
    restored_dir, state = manager.restore(fresh)
    assert restored_dir == path and state["step"] == 3 and state["epoch"] == 0
    assert int(fresh.optimizer.iterations.numpy()) == 3
    for got, want in zip(all_values(fresh), expected):  # includes momentum buffers
        np.testing.assert_array_equal(got, want)


def test_keeps_last_k_and_one_best(tmp_path):
    model = tiny_model()
    manager = CheckpointManager(tmp_path, keep=2, log=lambda _: None)
    for step in (1, 2, 3, 4):
        manager.save(model, {"step": step})
    manager.save_best(model, {"step": 2, "hmean": 0.1})
    manager.save_best(model, {"step": 4, "hmean": 0.2})
    assert [p.name for p in manager.list()] == ["ckpt-00000003", "ckpt-00000004"]
    assert [p.name for p in manager.list("best")] == ["best-00000004"]
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("damage", ["truncate_weights", "garbage_state", "missing_state"])
def test_damaged_latest_checkpoint_falls_back_to_previous_with_log_line(tmp_path, damage):
    model = tiny_model()
    logs = []
    manager = CheckpointManager(tmp_path, keep=3, log=logs.append)
    manager.save(model, {"step": 5, "optimizer_iterations": 0})
    good_values = all_values(model)
    train_a_bit(model, 1)
    latest = manager.save(model, {"step": 6, "optimizer_iterations": 1})
    if damage == "truncate_weights":
        data = (latest / "model.weights.h5").read_bytes()
        (latest / "model.weights.h5").write_bytes(data[: len(data) // 2])
    elif damage == "garbage_state":
        (latest / "state.json").write_text("{not json")
    else:
        (latest / "state.json").unlink()

    fresh = tiny_model(seed=3)
    restored_dir, state = manager.restore(fresh)
    assert state["step"] == 5 and restored_dir.name == "ckpt-00000005"
    assert any("ckpt-00000006" in line and "falling back" in line for line in logs), logs
    for got, want in zip(all_values(fresh), good_values):
        np.testing.assert_array_equal(got, want)


def test_checksum_catches_a_weights_file_that_still_opens(tmp_path):
    model = tiny_model()
    manager = CheckpointManager(tmp_path, log=lambda _: None)
    path = manager.save(model, {"step": 1})
    with h5py.File(path / "model.weights.h5", "r+") as handle:  # silently changed weights
        handle["layers/dense/vars/0"][0, 0] += 1.0
    with pytest.raises(CheckpointError, match="checksum"):
        manager.read_state(path)


def test_interrupted_write_is_ignored_and_cleaned(tmp_path):
    model = tiny_model()
    manager = CheckpointManager(tmp_path, log=lambda _: None)
    manager.save(model, {"step": 1})
    half_written = tmp_path / ".tmp-ckpt-00000002-999"
    half_written.mkdir()
    (half_written / "model.weights.h5").write_bytes(b"partial")
    assert [p.name for p in manager.list()] == ["ckpt-00000001"]
    CheckpointManager(tmp_path, log=lambda _: None)  # the next run starts: stale temp dirs go
    assert not half_written.exists()


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_nan_or_inf_is_never_written(tmp_path, bad_value):
    model = tiny_model()
    manager = CheckpointManager(tmp_path, log=lambda _: None)
    variance = model.layers[1].moving_variance  # e.g. an overflowing BN statistic, with a finite loss
    variance.assign(np.array([1.0, bad_value, 1.0], np.float32))
    with pytest.raises(NonFiniteError, match="moving_variance"):
        manager.save(model, {"step": 7})
    with pytest.raises(NonFiniteError, match="moving_variance"):
        write_weights_without_optimizer(model, tmp_path / "export.weights.h5")
    assert manager.list() == [] and not list(tmp_path.glob("*.h5")) and not list(tmp_path.glob(".tmp-*"))


def test_non_chief_writes_nothing_in_the_run_dir(tmp_path):
    manager = CheckpointManager(tmp_path / "ckpts", write=False, log=lambda _: None)
    assert manager.save(tiny_model(), {"step": 1}) is None
    assert not (tmp_path / "ckpts").exists()


def test_export_has_no_optimizer_state_and_loads_into_a_bare_model(tmp_path):
    model = tiny_model()
    train_a_bit(model, 2)
    meta_path = export_pretrained(model, tmp_path, "run", {"backbone": "x"}, {"channel_order": "RGB"},
                                  {"thresh": 0.3}, "test", "Apache-2.0")
    meta = json.loads(meta_path.read_text())
    assert meta["name"] == "run" and meta["model"] == {"backbone": "x"}
    with h5py.File(tmp_path / "run.weights.h5", "r") as handle:
        assert "optimizer" not in handle and "layers" in handle
    bare = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization(),
                             keras.layers.Dense(1)])
    bare.load_weights(str(tmp_path / "run.weights.h5"))
    for got, want in zip(bare.weights, model.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    write_weights_without_optimizer(model, tmp_path / "again.weights.h5")
    assert not list(tmp_path.glob(".tmp-*"))
