"""The TensorFlow APIs db-tf uses that are private or outside TF 2's public surface, in one place.

db-tf is TensorFlow-only by design (tf.data pipelines, tf.distribute strategies, SavedModel signatures), so it
may lean on TensorFlow internals where no public API does the job; each is wrapped here so that a TensorFlow
upgrade that moves one breaks one function, which tests/test_compat.py calls directly.
"""
import tensorflow as tf


def strategy_supports_no_merge_call():
    """True when optimizer updates may run inside a replica's tf.cond (no merge_call): always outside a
    tf.distribute strategy; inside one, as the strategy says (tf.__internal__)."""
    return not tf.distribute.has_strategy() or tf.__internal__.distribute.strategy_supports_no_merge_call()


def freeze_concrete_function(concrete_function):
    """The concrete function with its variables baked in as constants (tensorflow.python's
    convert_variables_to_constants_v2); it returns its outputs as a flat list."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(concrete_function)


def parse_event(serialized):
    """A TensorBoard event record (bytes) -> its Event proto (the proto lives under tf.compat.v1)."""
    return tf.compat.v1.Event.FromString(serialized)
