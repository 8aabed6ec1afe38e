"""Keras callbacks of a training run, sharing one Python-side `RunState` (never part of the TF graph).

Order in the callback list matters (Keras calls them in list order): StepCounter first, so every other
callback sees the step that just finished; Validator before TensorBoardLogger and CheckpointSaver, so the
val_ scalars, the epoch-end checkpoint and the best checkpoint see the new hmean.

Step = training batches consumed since the run began, over all sessions (a skipped non-finite update still
consumed its batch). The learning rate follows the optimizer's own update count instead, so skipped
updates do not advance the schedule.
"""
import math
import signal
import time
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from db_tf.losses import LOSS_KEYS
from db_tf.training import summaries
from db_tf.training.checkpoints import NonFiniteError
from db_tf.training.optim import current_lr

VAL_KEYS = ("precision", "recall", "hmean")


@dataclass
class RunState:
    """Where the run is. Saved in every checkpoint's state.json (see `checkpoint_state`)."""
    steps_per_epoch: int
    global_batch: int
    step: int = 0
    best_hmean: float = -1.0
    best_step: int = -1
    nonfinite_total: int = 0
    last_saved_step: int = -1
    stop_reason: str = ""
    failed: bool = False
    last_validation: dict = field(default_factory=dict)

    @property
    def epoch(self):
        """Completed epochs."""
        return self.step // self.steps_per_epoch

    @property
    def step_in_epoch(self):
        return self.step % self.steps_per_epoch

    def checkpoint_state(self, model):
        return {"step": self.step, "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                "samples_seen": self.step * self.global_batch, "global_batch": self.global_batch,
                "steps_per_epoch": self.steps_per_epoch,
                "optimizer_iterations": int(model.optimizer.iterations.numpy()), "lr": current_lr(model.optimizer),
                "best_hmean": self.best_hmean, "best_step": self.best_step, "nonfinite_total": self.nonfinite_total,
                "validation": self.last_validation}

    def restore(self, saved):
        self.step = int(saved["step"])
        self.best_hmean = float(saved.get("best_hmean", -1.0))
        self.best_step = int(saved.get("best_step", -1))
        self.nonfinite_total = int(saved.get("nonfinite_total", 0))
        self.last_saved_step = self.step


class StepCounter(keras.callbacks.Callback):
    def __init__(self, state):
        super().__init__()
        self.state = state

    def on_train_batch_end(self, batch, logs=None):
        self.state.step += 1


class NonFiniteGuard(keras.callbacks.Callback):
    """Logs every skipped (non-finite) step; `max_in_a_row` of them in a row stop the run with a message.

    The model's train_step already skipped the update (weights, BN statistics and optimizer unchanged) and
    reports logs["nonfinite"] = 1 for that step.
    """

    def __init__(self, state, max_in_a_row, log=print):
        super().__init__()
        self.state = state
        self.max_in_a_row = int(max_in_a_row)
        self.log = log
        self.in_a_row = 0

    def on_train_batch_end(self, batch, logs=None):
        if float((logs or {}).get("nonfinite", 0.0)) < 0.5:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        self.state.nonfinite_total += 1
        self.log(f"step {self.state.step}: non-finite loss or gradients, update skipped "
                 f"({self.in_a_row} in a row, {self.state.nonfinite_total} in this run)")
        if self.max_in_a_row > 0 and self.in_a_row >= self.max_in_a_row:
            self.state.stop_reason = (
                f"stopping: {self.in_a_row} consecutive steps with a non-finite loss or gradients "
                f"(TRAIN.MAX_NAN_STEPS={self.max_in_a_row}) at step {self.state.step}. The weights are those of "
                f"the last finite step. Try a lower TRAIN.LR, TRAIN.WARMUP_STEPS, TRAIN.CLIPNORM, or check the data.")
            self.state.failed = True
            self.model.stop_training = True


class StopControl(keras.callbacks.Callback):
    """Stops cleanly (the CheckpointSaver then writes a checkpoint) at a step limit, a time limit, or on
    SIGTERM / Ctrl-C (when `request_stop` is installed as their handler)."""

    def __init__(self, state, max_step=None, deadline=None):
        super().__init__()
        self.state = state
        self.max_step = max_step
        self.deadline = deadline
        self.signal_name = ""

    def request_stop(self, signum, frame=None):
        """A signal handler: stop after the current step (install it with signal.signal). A second Ctrl-C
        interrupts at once (the run then resumes from its last checkpoint)."""
        if self.signal_name and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def on_train_batch_end(self, batch, logs=None):
        reason = ""
        if self.max_step is not None and self.state.step >= self.max_step:
            reason = f"reached step {self.state.step} (--max-steps)"
        elif self.deadline is not None and time.time() >= self.deadline:
            reason = f"time limit reached at step {self.state.step} (--time-limit)"
        elif self.signal_name:
            reason = f"{self.signal_name} received at step {self.state.step}"
        if reason:
            self.state.stop_reason = reason
            self.model.stop_training = True


class CheckpointSaver(keras.callbacks.Callback):
    """Checkpoints every `every_steps` steps, at each epoch end and when training stops early; the best
    validation hmean so far also goes to a best checkpoint and to `on_best(model, state)` (the export)."""

    def __init__(self, state, manager, every_steps, on_best=None, log=print):
        super().__init__()
        self.state = state
        self.manager = manager
        self.every_steps = int(every_steps)
        self.on_best = on_best
        self.log = log

    def save(self):
        if self.state.last_saved_step == self.state.step:
            return
        self.state.last_saved_step = self.state.step
        try:
            path = self.manager.save(self.model, self.state.checkpoint_state(self.model))
        except NonFiniteError as exc:
            # The update guard of train_step looks at the loss and gradients; a BatchNorm moving variance can
            # still overflow (huge activations, too high a learning rate). Such a model cannot recover.
            self.log(str(exc))
            self.state.failed = True
            self.state.stop_reason = (
                f"stopping at step {self.state.step}: the model holds NaN/Inf (see above) although the loss was "
                f"finite; nothing was saved. Lower TRAIN.LR or add TRAIN.WARMUP_STEPS and resume from the last "
                f"checkpoint.")
            self.model.stop_training = True
            return
        if path is not None:
            self.log(f"checkpoint saved: {path}")

    def on_train_batch_end(self, batch, logs=None):
        # A stop (signal, time or step limit) saves at once: Keras still runs the epoch's validation-loss pass
        # before on_train_end, which can outlast a preemption grace period.
        # A periodic save at an epoch's last batch waits for on_epoch_end: validation runs in between, and
        # the checkpoint must record its result (else a resumed run forgets the best and overwrites best.*).
        periodic = self.every_steps > 0 and self.state.step % self.every_steps == 0 and self.state.step_in_epoch != 0
        if self.model.stop_training or periodic:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        validation = self.state.last_validation
        improved = validation.get("step") == self.state.step and validation["hmean"] > self.state.best_hmean
        if improved:  # before the epoch-end checkpoint, so that its state records the new best
            self.state.best_hmean, self.state.best_step = validation["hmean"], self.state.step
        if self.state.step_in_epoch == 0:
            self.save()
        if improved and not self.state.failed:
            self.manager.save_best(self.model, dict(self.state.checkpoint_state(self.model),
                                                    hmean=validation["hmean"]))
            if self.on_best is not None:
                self.on_best(self.model, self.state)
            self.log(f"new best hmean {validation['hmean']:.4f} at step {self.state.step}")

    def on_train_end(self, logs=None):
        self.save()


class Validator(keras.callbacks.Callback):
    """Every `every_epochs` epochs: evaluate(model) -> {"precision", "recall", "hmean", ...} with the current
    weights (detection + the ICDAR 2015 protocol on the validation images); results go into the epoch logs
    (val_precision, val_recall, val_hmean) and state.last_validation."""

    def __init__(self, state, evaluate, every_epochs=1, log=print):
        super().__init__()
        self.state = state
        self.evaluate = evaluate
        self.every_epochs = max(1, int(every_epochs))
        self.log = log

    def on_epoch_end(self, epoch, logs=None):
        if self.state.step_in_epoch != 0 or self.state.epoch % self.every_epochs != 0:
            return  # a partial epoch (stopped early) or not a validation epoch
        start = time.time()
        result = self.evaluate(self.model)
        self.state.last_validation = dict(result, step=self.state.step)
        if logs is not None:
            logs.update({f"val_{key}": float(result[key]) for key in VAL_KEYS})
        self.log(f"validation at epoch {self.state.epoch}: precision {result['precision']:.4f} recall "
                 f"{result['recall']:.4f} hmean {result['hmean']:.4f} ({time.time() - start:.1f} s)")


class TensorBoardLogger(keras.callbacks.Callback):
    """TensorBoard scalars and images, at x = step.

    Every `every` steps: the four DB loss terms averaged over the steps since the last write (the model's
    trackers hold epoch running means; we difference them), `lr` and `nonfinite_steps`. Every `image_every`
    steps: input image, ground truth, probability, threshold and binary maps of a fixed probe batch.
    At epoch end: the epoch means (`epoch/...`) and any validation values (`val_...`).
    """

    def __init__(self, state, log_dir, every, image_every, probe_images=None, probe_labels=None,
                 denormalize=None, max_images=2, log=None):
        super().__init__()
        self.state = state
        self.writer = tf.summary.create_file_writer(str(log_dir))
        self.every = max(1, int(every))
        self.image_every = int(image_every)
        self.probe_images = probe_images
        self.probe_labels = probe_labels
        self.denormalize = denormalize
        self.max_images = max_images
        self.log = log
        self._reset_window()

    def _reset_window(self):
        self.finite_steps = 0          # finite steps in this epoch (the trackers' weight so far)
        self.window_start = (0, {})    # (finite steps, running means) at the last write

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_window()  # Keras resets the trackers at each epoch start

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        if float(logs.get("nonfinite", 0.0)) < 0.5:
            self.finite_steps += 1
        step = self.state.step
        if step % self.every == 0:
            self._write_scalars(step, logs)
        if self.image_every > 0 and step % self.image_every == 0 and self.probe_images is not None:
            self._write_images(step)

    def _write_scalars(self, step, logs):
        start_count, start_means = self.window_start
        count = self.finite_steps - start_count
        values = {}
        for key in LOSS_KEYS:
            if key in logs and count > 0:
                total = float(logs[key]) * self.finite_steps - start_means.get(key, 0.0) * start_count
                values[key] = total / count
        lr = current_lr(self.model.optimizer)
        with self.writer.as_default():
            for key, value in values.items():
                summaries.scalar(key, value, step)
            summaries.scalar("lr", lr, step)
            summaries.scalar("nonfinite_steps", self.state.nonfinite_total, step)
        self.writer.flush()
        self.window_start = (self.finite_steps, {key: float(logs[key]) for key in LOSS_KEYS if key in logs})
        if self.log is not None:
            losses = " ".join(f"{key} {value:.4f}" for key, value in values.items())
            self.log(f"step {step} (epoch {(step - 1) // self.state.steps_per_epoch + 1}): {losses} lr {lr:.6g}")

    def _write_images(self, step):
        images = self.probe_images[: self.max_images]
        outputs = self.model(images, training=False, return_maps=True)
        shown = self.denormalize(np.asarray(images)) if self.denormalize else np.asarray(images)
        with self.writer.as_default():
            summaries.image("input", shown, step, self.max_images)
            for key in ("probability", "threshold", "binary"):
                summaries.image(key, np.asarray(outputs[key]), step, self.max_images)
            if self.probe_labels is not None:
                for key in ("gt", "thresh_map"):
                    if key in self.probe_labels:
                        label = np.asarray(self.probe_labels[key][: self.max_images], np.float32)[..., None]
                        summaries.image(f"label_{key}", label, step, self.max_images)
        self.writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        with self.writer.as_default():
            for key, value in logs.items():
                if key in LOSS_KEYS:
                    summaries.scalar(f"epoch/{key}", value, self.state.step)
                elif key.startswith("val_") and value is not None and math.isfinite(float(value)):
                    summaries.scalar(key, value, self.state.step)
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.flush()
