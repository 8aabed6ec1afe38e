"""Reduced-precision inference copies of a model: the same architecture and weights, built under a Keras
mixed dtype policy, so convolutions and matrix products run in bfloat16 while the variables, BatchNorm
statistics and the output maps stay float32 (DBNet casts its head outputs to float32 before the sigmoids).

On CPUs with AVX512-BF16 / AMX, oneDNN runs bfloat16 convolutions much faster than float32 ones; elsewhere
bfloat16 may be slower (bench/bench_precision.py measures it). bfloat16 keeps 8 bits of mantissa, so maps
differ from float32 ones by up to a few hundredths (tests/test_precision.py).
"""
import keras

from db_tf import defaults

POLICIES = {"float32": None, "bfloat16": "mixed_bfloat16"}
assert tuple(POLICIES) == defaults.PRECISIONS


def check_precision(precision):
    if precision not in POLICIES:
        raise ValueError(f"precision must be one of {defaults.PRECISIONS}, got {precision!r}")
    return precision


def inference_copy(model, precision):
    """``model`` itself for "float32"; for "bfloat16" a new model from its config under the mixed_bfloat16
    policy with a copy of its current weights (later changes to ``model``'s weights do not reach the copy)."""
    policy = POLICIES[check_precision(precision)]
    if policy is None:
        return model
    if not isinstance(model, keras.Model):
        raise TypeError(f"precision={precision!r} rebuilds a Keras model under a mixed policy; "
                        f"got a {type(model).__name__}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)   # layers take the global policy when they are created
    try:
        copy = type(model).from_config(model.get_config())
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy
