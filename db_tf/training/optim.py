"""Optimizer and learning-rate schedule for DBNet training.

Official DB code (MhLiao/DB, experiments/seg_detector/base_*.yaml): torch SGD with lr 0.007, momentum 0.9
and weight_decay 1e-4, and `DecayLearningRate`: lr * (1 - epoch / (epochs + 1)) ** 0.9, updated once per
EPOCH. What we do and where we differ:

* Poly decay is applied PER STEP: lr(s) = LR * (1 - s / total_steps) ** POLY_POWER, s = optimizer updates
  so far. Per-epoch decay is a staircase over the same curve; the two differ by at most one epoch's decay.
* Optional linear warm-up (TRAIN.WARMUP_STEPS, not in the official code): the poly value is multiplied by
  (s + 1) / WARMUP_STEPS during the first WARMUP_STEPS updates.
* Weight decay for "sgd" and "adam" is torch's COUPLED L2, as in the official code: wd * w is added to the
  gradient of EVERY trainable variable (BatchNorm scales/offsets and biases included), before momentum.
  Keras' own `weight_decay=` is DECOUPLED (w -= lr * wd * w, outside the momentum buffer), which with
  momentum 0.9 decays about 10x less than the official run, so we do not use it for these two.
  "adamw" is Keras' AdamW, decoupled by design (same update as torch.optim.AdamW).
* The SGD update follows torch's form, v = mu * v + g; w -= lr * v, rather than Keras' (m = mu * m - lr * g;
  w += m). They agree for a constant lr; with a decaying lr torch applies today's lr to the whole buffer.
* Gradient clipping (TRAIN.CLIPNORM > 0) clips the global norm of the raw gradients, before the L2 term is
  added, like torch.nn.utils.clip_grad_norm_ before optimizer.step(). Under tf.distribute Keras clips each
  replica's gradient before the replicas are summed, so the summed update may reach R x CLIPNORM.
* Weight averaging (TRAIN.EMA = momentum m > 0, not in the official code): after every applied update the
  optimizer keeps a = m a + (1 - m) w of each trainable weight (Keras' use_ema; a = w after the first update;
  skipped updates skip it too). Validation and the exported best.* / final.* use the averages
  (`averaged_weights`); checkpoints hold the raw weights and the averages, so a resumed run is exact.
"""
import contextlib

import keras
import numpy as np
from keras import ops

OPTIMIZERS = ("sgd", "adam", "adamw")


class PolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(s) = base * (1 - s / total_steps) ** power, times a linear warm-up over the first `warmup_steps`."""

    def __init__(self, base_lr, total_steps, power=0.9, warmup_steps=0):
        if total_steps <= 0:
            raise ValueError(f"PolyDecay needs total_steps > 0, got {total_steps}")
        if warmup_steps < 0 or warmup_steps >= total_steps:
            raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}), got {warmup_steps}")
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.power = float(power)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        # Clamp so a run continued past its planned length keeps a tiny positive lr instead of NaN.
        progress = ops.minimum(step / self.total_steps, 1.0 - 1.0 / self.total_steps)
        lr = self.base_lr * ops.power(1.0 - progress, self.power)
        if self.warmup_steps > 0:
            lr = lr * ops.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return lr

    def get_config(self):
        return {"base_lr": self.base_lr, "total_steps": self.total_steps, "power": self.power,
                "warmup_steps": self.warmup_steps}


class ExplicitAverageMixin:
    """With use_ema, Keras overwrites the model's weights with their averages when fit() returns. train.py may
    call fit() twice in one run and checkpoints the raw weights, so it swaps the averages in explicitly
    (`averaged_weights`) instead."""

    def finalize_variable_values(self, var_list):
        pass


class CoupledDecaySGD(ExplicitAverageMixin, keras.optimizers.SGD):
    """SGD as in torch.optim.SGD(momentum, weight_decay): g += wd * w; v = mu * v + g; w -= lr * v."""

    def __init__(self, learning_rate=0.007, momentum=0.9, l2_decay=0.0, **kwargs):
        kwargs.pop("nesterov", None)
        if kwargs.pop("weight_decay", None):
            raise ValueError("CoupledDecaySGD takes l2_decay (coupled); Keras' decoupled weight_decay is not used")
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=False, **kwargs)
        self.l2_decay = float(l2_decay)

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.l2_decay > 0:
            gradient = gradient + ops.cast(self.l2_decay, variable.dtype) * variable
        if self.momentum != 0:
            velocity = self.momentums[self._get_variable_index(variable)]
            self.assign(velocity, velocity * ops.cast(self.momentum, variable.dtype) + gradient)
            gradient = velocity
        self.assign_sub(variable, learning_rate * gradient)

    def get_config(self):
        config = super().get_config()
        config["l2_decay"] = self.l2_decay
        return config


class CoupledDecayAdam(ExplicitAverageMixin, keras.optimizers.Adam):
    """Adam as in torch.optim.Adam(weight_decay): the L2 term wd * w is added to the gradient."""

    def __init__(self, learning_rate=0.001, l2_decay=0.0, **kwargs):
        if kwargs.pop("weight_decay", None):
            raise ValueError("CoupledDecayAdam takes l2_decay (coupled); use AdamW for decoupled decay")
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.l2_decay = float(l2_decay)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2_decay > 0:
            gradient = ops.cast(gradient, variable.dtype) + ops.cast(self.l2_decay, variable.dtype) * variable
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["l2_decay"] = self.l2_decay
        return config


def build_optimizer(train_cfg, total_steps):
    """The optimizer described by cfg.TRAIN, with a PolyDecay schedule over `total_steps` updates."""
    name = str(train_cfg.OPTIMIZER).lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"TRAIN.OPTIMIZER={train_cfg.OPTIMIZER!r} is not one of {', '.join(OPTIMIZERS)}")
    schedule = PolyDecay(train_cfg.LR, total_steps, train_cfg.POLY_POWER, train_cfg.WARMUP_STEPS)
    options = {"global_clipnorm": float(train_cfg.CLIPNORM)} if train_cfg.CLIPNORM > 0 else {}
    ema = float(train_cfg.get("EMA", 0.0))
    if not 0.0 <= ema < 1.0:
        raise ValueError(f"TRAIN.EMA must be in [0, 1) (0 = off), got {ema}")
    if ema > 0:
        options.update(use_ema=True, ema_momentum=ema)
    if name == "sgd":
        return CoupledDecaySGD(schedule, momentum=float(train_cfg.MOMENTUM),
                               l2_decay=train_cfg.WEIGHT_DECAY, **options)
    if name == "adam":
        return CoupledDecayAdam(schedule, l2_decay=train_cfg.WEIGHT_DECAY, **options)
    return AdamW(schedule, weight_decay=float(train_cfg.WEIGHT_DECAY), **options)


class AdamW(ExplicitAverageMixin, keras.optimizers.AdamW):
    """Keras' AdamW (decoupled weight decay), with the weight averages swapped in explicitly."""


@contextlib.contextmanager
def averaged_weights(model):
    """Inside the block the model's trainable weights are their moving averages (TRAIN.EMA > 0), restored
    to the raw values after it; yields whether anything was swapped (False without averaging)."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)   # under a LossScaleOptimizer
    if optimizer is None or not getattr(optimizer, "use_ema", False) or not optimizer.built:
        yield False
        return
    # Keras keeps the averages in the optimizer, aligned with the variables it was built with (private
    # attributes, as keras.callbacks.SwapEMAWeights reads them).
    variables = list(optimizer._trainable_variables)
    averages = list(optimizer._model_variables_moving_average)
    raw = [np.array(ops.convert_to_numpy(v)) for v in variables]
    for variable, average in zip(variables, averages):
        variable.assign(average)
    try:
        yield True
    finally:
        for variable, value in zip(variables, raw):
            variable.assign(value)


def current_lr(optimizer):
    """The learning rate the next update will use (the schedule at the current iteration), as a float."""
    return float(ops.convert_to_numpy(optimizer.learning_rate))  # Keras evaluates the schedule here


def describe(train_cfg, total_steps):
    """One human-readable line stating the optimisation setup (printed at the start of training)."""
    decay = {"sgd": "coupled L2 (torch SGD)", "adam": "coupled L2 (torch Adam)",
             "adamw": "decoupled (AdamW)"}.get(str(train_cfg.OPTIMIZER).lower(), "?")
    warm = f", linear warm-up {train_cfg.WARMUP_STEPS} steps" if train_cfg.WARMUP_STEPS else ""
    clip = f", clip global norm {train_cfg.CLIPNORM}" if train_cfg.CLIPNORM > 0 else ""
    ema = float(train_cfg.get("EMA", 0.0))
    average = f"; validation and exports use the weights' moving average (momentum {ema})" if ema > 0 else ""
    return (f"optimizer {train_cfg.OPTIMIZER}: lr {train_cfg.LR} poly^{train_cfg.POLY_POWER} per step over "
            f"{total_steps} steps{warm}; weight decay {train_cfg.WEIGHT_DECAY} {decay}{clip}{average}")
