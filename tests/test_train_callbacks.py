"""The training callbacks, driven by hand with known per-step values (no model training needed)."""
import types

import keras
import numpy as np
import pytest

from db_tf.training.callbacks import (
    CheckpointSaver,
    NonFiniteGuard,
    RunState,
    StepCounter,
    StopControl,
    TensorBoardLogger,
    Validator,
)
from db_tf.training.checkpoints import CheckpointManager
from db_tf.training.optim import PolyDecay
from db_tf.training.summaries import read_events

LOSS_KEYS = ("binarize_loss", "thresh_loss", "thresh_binary_loss", "total_loss")


def fake_model(lr=0.01):
    optimizer = keras.optimizers.SGD(PolyDecay(lr, total_steps=100))
    optimizer.build([keras.Variable(np.zeros(2, np.float32))])
    return types.SimpleNamespace(stop_training=False, optimizer=optimizer)


def attach(callbacks, model):
    for callback in callbacks:
        callback.set_model(model)
    return callbacks


def test_nonfinite_streak_is_logged_and_stops_the_run_at_the_limit():
    state, lines, model = RunState(steps_per_epoch=100, global_batch=2), [], fake_model()
    counter, guard = attach([StepCounter(state), NonFiniteGuard(state, max_in_a_row=3, log=lines.append)], model)
    for flag in (0, 1, 1, 0, 1, 1):
        for callback in (counter, guard):
            callback.on_train_batch_end(0, {"nonfinite": float(flag)})
    assert not model.stop_training and len(lines) == 4 and "step 6" in lines[-1] and "2 in a row" in lines[-1]
    for callback in (counter, guard):
        callback.on_train_batch_end(0, {"nonfinite": 1.0})
    assert model.stop_training and state.failed and state.nonfinite_total == 5
    assert "3 consecutive steps with a non-finite loss" in state.stop_reason and "MAX_NAN_STEPS=3" in state.stop_reason


def test_scalars_are_window_means_of_the_finite_steps(tmp_path):
    rng = np.random.default_rng(1)
    raw = rng.uniform(0.5, 2.0, size=(7, 4))
    nonfinite = np.array([0, 0, 1, 0, 0, 0, 1], bool)
    state, model = RunState(steps_per_epoch=100, global_batch=2), fake_model(lr=0.02)
    counter, logger = attach([StepCounter(state), TensorBoardLogger(state, tmp_path, every=3, image_every=0)], model)
    logger.on_epoch_begin(0)
    for step in range(7):  # logs as the model reports them: running means over the finite steps so far
        finite = ~nonfinite[: step + 1]
        means = raw[: step + 1][finite].mean(axis=0)
        logs = dict(zip(LOSS_KEYS, means), nonfinite=float(nonfinite[step]))
        counter.on_train_batch_end(step, logs)
        logger.on_train_batch_end(step, logs)
    logger.on_train_end()
    scalars, _ = read_events(tmp_path)
    window_1 = raw[[0, 1]].mean(axis=0)           # steps 1..3, step 3 non-finite
    window_2 = raw[[3, 4, 5]].mean(axis=0)        # steps 4..6
    for index, key in enumerate(LOSS_KEYS):
        assert [s for s, _ in scalars[key]] == [3, 6]
        assert [v for _, v in scalars[key]] == pytest.approx([window_1[index], window_2[index]], rel=1e-5)
    assert [v for _, v in scalars["lr"]] == pytest.approx([0.02, 0.02], rel=1e-6)


def tiny_keras_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_validation_feeds_logs_events_and_the_best_checkpoint(tmp_path):
    hmeans = iter([0.2, 0.1, 0.3])
    evaluated, exported, lines = [], [], []

    def evaluate(model):
        hmean = next(hmeans)
        evaluated.append(hmean)
        return {"precision": hmean + 0.1, "recall": hmean - 0.05, "hmean": hmean}

    model = tiny_keras_model()
    state = RunState(steps_per_epoch=2, global_batch=2)
    manager = CheckpointManager(tmp_path / "checkpoints", keep=2, log=lines.append)
    callbacks = [StepCounter(state), Validator(state, evaluate, every_epochs=1, log=lines.append),
                 TensorBoardLogger(state, tmp_path / "logs", every=100, image_every=0),
                 CheckpointSaver(state, manager, every_steps=0, on_best=lambda m, s: exported.append(s.step),
                                 log=lines.append)]
    for callback in callbacks:
        callback.set_model(model)
    epoch_logs = []
    for epoch in range(3):
        for step in range(2):
            for callback in callbacks:
                callback.on_train_batch_end(step, {"total_loss": 1.0, "nonfinite": 0.0})
        logs = {"total_loss": 1.0}
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
        epoch_logs.append(logs)
    assert [logs["val_hmean"] for logs in epoch_logs] == pytest.approx([0.2, 0.1, 0.3])
    assert exported == [2, 6] and state.best_hmean == pytest.approx(0.3) and state.best_step == 6
    assert [p.name for p in manager.list("best")] == ["best-00000006"]
    assert CheckpointManager.read_state(manager.list("best")[0])["hmean"] == pytest.approx(0.3)
    assert [p.name for p in manager.list()] == ["ckpt-00000004", "ckpt-00000006"]   # epoch ends, keep 2
    scalars, _ = read_events(tmp_path / "logs")
    assert [v for _, v in scalars["val_hmean"]] == pytest.approx([0.2, 0.1, 0.3])
    assert [s for s, _ in scalars["val_precision"]] == [2, 4, 6] and "val_recall" in scalars


def test_partial_epoch_is_neither_validated_nor_counted_as_an_epoch_end(tmp_path):
    model = tiny_keras_model()
    state = RunState(steps_per_epoch=4, global_batch=2)
    manager = CheckpointManager(tmp_path, log=lambda _: None)
    validator = Validator(state, evaluate=lambda m: pytest.fail("validated a partial epoch"), log=print)
    stop = StopControl(state, max_step=3)
    callbacks = [StepCounter(state), stop, validator, CheckpointSaver(state, manager, every_steps=0)]
    for callback in callbacks:
        callback.set_model(model)
    for step in range(3):
        for callback in callbacks:
            callback.on_train_batch_end(step, {})
        if model.stop_training:
            break
    # saved at the stopping step itself, before Keras' end-of-epoch work (its validation-loss pass) runs
    assert [p.name for p in manager.list()] == ["ckpt-00000003"]
    for callback in callbacks:
        callback.on_epoch_end(0, {})
        callback.on_train_end()
    assert model.stop_training and "reached step 3" in state.stop_reason
    saved = CheckpointManager.read_state(manager.list()[-1])
    assert (saved["step"], saved["epoch"], saved["step_in_epoch"]) == (3, 0, 3)


def test_a_model_gone_non_finite_stops_the_run_and_is_not_saved(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.BatchNormalization()])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.optimizer.build(model.trainable_variables)
    model.layers[1].moving_variance.assign(np.array([np.inf, 1.0], np.float32))  # overflowed, loss still finite
    state, lines = RunState(steps_per_epoch=10, global_batch=2), []
    manager = CheckpointManager(tmp_path, log=lines.append)
    counter, saver = StepCounter(state), CheckpointSaver(state, manager, every_steps=1, log=lines.append)
    for callback in (counter, saver):
        callback.set_model(model)
        callback.on_train_batch_end(0, {})
    assert model.stop_training and state.failed and "holds NaN/Inf" in state.stop_reason
    assert manager.list() == [] and "moving_variance" in lines[0]


def test_a_signal_stops_after_the_step_and_a_second_ctrl_c_interrupts():
    import signal

    state, model = RunState(steps_per_epoch=10, global_batch=2), fake_model()
    stop = StopControl(state)
    stop.set_model(model)
    stop.on_train_batch_end(0, {})
    assert not model.stop_training
    stop.request_stop(signal.SIGTERM)
    state.step = 4
    stop.on_train_batch_end(0, {})
    assert model.stop_training and state.stop_reason == "SIGTERM received at step 4"
    with pytest.raises(KeyboardInterrupt):
        stop.request_stop(signal.SIGINT)


def test_checkpoint_at_an_epoch_end_records_that_epochs_validation(tmp_path):
    # CHECKPOINT_EVERY equal to the epoch length: the save must wait for the validation, or the checkpoint
    # records the previous best and a run resumed from it overwrites best.* with a worse model.
    hmeans = iter([0.4, 0.2])
    model = tiny_keras_model()
    state = RunState(steps_per_epoch=2, global_batch=2)
    manager = CheckpointManager(tmp_path / "checkpoints", keep=5, log=lambda line: None)
    callbacks = [StepCounter(state),
                 Validator(state, lambda m: {"precision": 0.5, "recall": 0.5, "hmean": next(hmeans)},
                           every_epochs=1, log=lambda line: None),
                 CheckpointSaver(state, manager, every_steps=2, log=lambda line: None)]
    for callback in callbacks:
        callback.set_model(model)
    for epoch in range(2):
        for step in range(2):
            for callback in callbacks:
                callback.on_train_batch_end(step, {"total_loss": 1.0, "nonfinite": 0.0})
        for callback in callbacks:
            callback.on_epoch_end(epoch, {"total_loss": 1.0})
    saved = [CheckpointManager.read_state(p) for p in manager.list()]
    assert [(s["step"], s["best_hmean"], s["best_step"]) for s in saved] == [(2, 0.4, 2), (4, 0.4, 2)]


def test_resume_takes_the_best_from_the_best_checkpoint_when_newer(tmp_path):
    from db_tf.training.run import _restore_best

    model = tiny_keras_model()
    manager = CheckpointManager(tmp_path / "checkpoints", log=lambda line: None)
    manager.save_best(model, {"step": 6, "hmean": 0.7})
    state = RunState(steps_per_epoch=2, global_batch=2)
    state.restore({"step": 8, "best_hmean": 0.5, "best_step": 4})   # a checkpoint written before that best
    _restore_best(manager, state)
    assert (state.best_hmean, state.best_step) == (0.7, 6)
    state.restore({"step": 4, "best_hmean": 0.5, "best_step": 4})   # the best is from after this checkpoint
    _restore_best(manager, state)
    assert (state.best_hmean, state.best_step) == (0.5, 4)


def test_resume_warns_when_the_epoch_length_changed(tmp_path):
    from db_tf.training.run import _resume

    model = tiny_keras_model()
    manager = CheckpointManager(tmp_path / "checkpoints", log=lambda line: None)
    manager.save(model, {"step": 4, "steps_per_epoch": 2, "global_batch": 2, "optimizer_iterations": 0})
    lines = []
    _resume(model, manager, RunState(steps_per_epoch=3, global_batch=2), lines.append)   # e.g. images were added
    assert any("steps per epoch changed (2 -> 3" in line for line in lines)
    lines.clear()
    _resume(model, manager, RunState(steps_per_epoch=2, global_batch=2), lines.append)
    assert not any("changed" in line for line in lines) and "step 4" in lines[-1]
