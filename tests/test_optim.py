"""Optimizer and schedule: checked against hand-written numpy versions of the torch update rules."""
import math

import keras
import numpy as np
import pytest
from easydict import EasyDict

from db_tf.training.optim import (
    CoupledDecayAdam,
    CoupledDecaySGD,
    PolyDecay,
    averaged_weights,
    build_optimizer,
    current_lr,
)


def train_cfg(**changes):
    cfg = EasyDict(OPTIMIZER="sgd", LR=0.007, MOMENTUM=0.9, WEIGHT_DECAY=1e-4, POLY_POWER=0.9,
                   WARMUP_STEPS=0, CLIPNORM=0.0)
    cfg.update(changes)
    return cfg


def test_poly_decay_matches_formula_per_step():
    schedule = PolyDecay(0.007, total_steps=100, power=0.9)
    for step in (0, 1, 37, 99):
        assert float(schedule(step)) == pytest.approx(0.007 * (1 - step / 100) ** 0.9, rel=1e-6)
    lrs = [float(schedule(s)) for s in range(100)]
    assert all(a > b for a, b in zip(lrs, lrs[1:])), "poly decay must decrease every step"
    # Past the planned end the lr stays tiny and positive (no NaN from a negative base).
    assert 0 < float(schedule(150)) <= float(schedule(99))


def test_warmup_is_linear_then_joins_poly():
    schedule = PolyDecay(1.0, total_steps=1000, power=0.9, warmup_steps=10)
    for step in range(10):
        expected = (1 - step / 1000) ** 0.9 * (step + 1) / 10
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-6)
    assert float(schedule(10)) == pytest.approx((1 - 10 / 1000) ** 0.9, rel=1e-6)
    with pytest.raises(ValueError, match="warmup_steps"):
        PolyDecay(1.0, total_steps=10, warmup_steps=10)


def apply_steps(optimizer, init, grads_per_step):
    """Run optimizer.apply on fresh variables; returns their values after the steps."""
    variables = [keras.Variable(np.array(v, np.float32)) for v in init]
    for grads in grads_per_step:
        optimizer.apply([np.array(g, np.float32) for g in grads], variables)
    return [np.array(v.numpy()) for v in variables]


def torch_sgd_reference(init, grads_per_step, lrs, momentum, wd, clipnorm=0.0):
    """torch.optim.SGD semantics (coupled L2, buffer v = mu v + g, w -= lr v), clip_grad_norm_ first."""
    weights = [np.array(v, np.float64) for v in init]
    buffers = [np.zeros_like(w) for w in weights]
    for grads, lr in zip(grads_per_step, lrs):
        grads = [np.array(g, np.float64) for g in grads]
        if clipnorm:
            norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
            grads = [g * min(1.0, clipnorm / norm) for g in grads]
        for i, g in enumerate(grads):
            g = g + wd * weights[i]
            buffers[i] = momentum * buffers[i] + g
            weights[i] = weights[i] - lr * buffers[i]
    return weights


RNG = np.random.default_rng(0)
INIT = [RNG.normal(size=(3, 2)), RNG.normal(size=(2,))]          # e.g. a kernel and a BN scale
GRADS = [[RNG.normal(size=(3, 2)), RNG.normal(size=(2,))] for _ in range(4)]


def test_sgd_is_torch_sgd_with_coupled_l2_and_decaying_lr():
    schedule = PolyDecay(0.05, total_steps=6, power=0.9)
    wd = 0.01  # large enough that coupled vs decoupled is visible
    got = apply_steps(CoupledDecaySGD(schedule, momentum=0.9, l2_decay=wd), INIT, GRADS)
    want = torch_sgd_reference(INIT, GRADS, [float(schedule(s)) for s in range(4)], 0.9, wd)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    # Keras' decoupled weight decay gives a different trajectory: the distinction is real.
    decoupled = apply_steps(keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=wd), INIT, GRADS)
    assert not np.allclose(decoupled[0], want[0], rtol=1e-5, atol=1e-6)


def test_sgd_decay_applies_to_every_variable_with_zero_gradient():
    # One step with zero gradient: w <- w - lr * wd * w for every variable, whatever it is.
    got = apply_steps(CoupledDecaySGD(0.1, momentum=0.9, l2_decay=0.5), INIT, [[np.zeros((3, 2)), np.zeros(2)]])
    for g, w in zip(got, INIT):
        np.testing.assert_allclose(g, w * (1 - 0.1 * 0.5), rtol=1e-6)


def test_global_norm_clipping_happens_before_l2():
    cfg = train_cfg(LR=0.05, WEIGHT_DECAY=0.01, CLIPNORM=0.5, POLY_POWER=0.9)
    optimizer = build_optimizer(cfg, total_steps=6)
    got = apply_steps(optimizer, INIT, GRADS)
    lrs = [0.05 * (1 - s / 6) ** 0.9 for s in range(4)]
    want = torch_sgd_reference(INIT, GRADS, lrs, 0.9, 0.01, clipnorm=0.5)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def torch_adam_reference(init, grads_per_step, lr, wd, decoupled, b1=0.9, b2=0.999, eps=1e-7):
    weights = [np.array(v, np.float64) for v in init]
    m = [np.zeros_like(w) for w in weights]
    v = [np.zeros_like(w) for w in weights]
    for t, grads in enumerate(grads_per_step, start=1):
        for i, g in enumerate(grads):
            g = np.array(g, np.float64)
            if decoupled:
                weights[i] = weights[i] * (1 - lr * wd)
            else:
                g = g + wd * weights[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat, v_hat = m[i] / (1 - b1 ** t), v[i] / (1 - b2 ** t)
            weights[i] = weights[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return weights


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_variants(name):
    # Keras puts eps inside a rescaled denominator; the difference is O(eps) and covered by the tolerance.
    cfg = train_cfg(OPTIMIZER=name, LR=0.01, WEIGHT_DECAY=0.1, POLY_POWER=0.0)
    optimizer = build_optimizer(cfg, total_steps=100)
    assert isinstance(optimizer, CoupledDecayAdam) == (name == "adam")
    got = apply_steps(optimizer, INIT, GRADS)
    want = torch_adam_reference(INIT, GRADS, 0.01, 0.1, decoupled=(name == "adamw"))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_build_optimizer_rejects_unknown_name_and_round_trips_config():
    with pytest.raises(ValueError, match="TRAIN.OPTIMIZER='rmsprop'"):
        build_optimizer(train_cfg(OPTIMIZER="rmsprop"), 10)
    optimizer = build_optimizer(train_cfg(), 10)
    clone = CoupledDecaySGD.from_config(optimizer.get_config(), custom_objects={"PolyDecay": PolyDecay})
    assert clone.l2_decay == pytest.approx(1e-4) and clone.momentum == pytest.approx(0.9)


def test_current_lr_follows_iterations():
    optimizer = build_optimizer(train_cfg(LR=1.0, POLY_POWER=1.0), total_steps=4)
    apply_steps(optimizer, INIT, GRADS[:2])
    assert current_lr(optimizer) == pytest.approx(1.0 * (1 - 2 / 4), rel=1e-6)


# ----------------------------------------------------------------------------- weight averaging (TRAIN.EMA)
class Holder:
    """The two attributes averaged_weights reads: the optimizer (weights live in it)."""

    def __init__(self, optimizer):
        self.optimizer = optimizer


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_moving_average_of_the_weights_matches_a_hand_computed_one(name):
    momentum = 0.8
    optimizer = build_optimizer(train_cfg(OPTIMIZER=name, LR=0.05, EMA=momentum), total_steps=100)
    variables = [keras.Variable(np.array(v, np.float32)) for v in INIT]
    trajectory = []
    for grads in GRADS:
        optimizer.apply([np.array(g, np.float32) for g in grads], variables)
        trajectory.append([np.array(v.numpy(), np.float64) for v in variables])
    expected = [w.copy() for w in trajectory[0]]          # the first update: average = weights
    for weights in trajectory[1:]:
        expected = [momentum * a + (1 - momentum) * w for a, w in zip(expected, weights)]
    raw = [np.array(v.numpy()) for v in variables]
    with averaged_weights(Holder(optimizer)) as swapped:
        assert swapped
        for v, want in zip(variables, expected):
            np.testing.assert_allclose(v.numpy(), want, rtol=1e-5, atol=1e-6)
    for v, value in zip(variables, raw):                   # restored exactly after the block
        np.testing.assert_array_equal(v.numpy(), value)
    optimizer.finalize_variable_values(variables)          # Keras' end-of-fit overwrite is disabled
    for v, value in zip(variables, raw):
        np.testing.assert_array_equal(v.numpy(), value)


def test_without_averaging_nothing_is_swapped():
    optimizer = build_optimizer(train_cfg(), total_steps=10)
    apply_steps(optimizer, INIT, GRADS[:1])
    with averaged_weights(Holder(optimizer)) as swapped:
        assert not swapped
    with averaged_weights(Holder(None)) as swapped:
        assert not swapped
    with pytest.raises(ValueError, match="TRAIN.EMA"):
        build_optimizer(train_cfg(EMA=1.0), 10)
