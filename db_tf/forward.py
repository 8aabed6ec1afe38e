"""The compiled forward passes behind TextDetector: a Keras DBNet as one TensorFlow graph for every image size.

    forward = compiled_forward(model, freeze_weights=True)
    maps = forward(batch, return_maps=False)              # {"probability": (N, H, W, 1) numpy}
    context = forward.record_context(preview)             # whole-image pooling means (tiled inference)
    maps = forward(window_batch, return_maps=False, context=context)

TensorFlow is imported only when a graph is built, so TextDetector with a plain callable (test doubles) never
loads it.
"""
import sys

import numpy as np


def compiled_forward(model, freeze_weights=False):
    """A Forward for ``model``: compiled graphs for a Keras model, plain calls for other callables."""
    keras = sys.modules.get("keras")  # not imported yet: the model cannot be a Keras model (and TF stays unloaded)
    if keras is not None and isinstance(model, keras.Model):
        return Forward(model, freeze_weights)
    return Forward(model, compiled=False)


class Forward:
    """forward(batch (N, H, W, 3) float32, return_maps, context=None) -> dict of (N, H, W, 1) numpy maps.

    A Keras model runs inside one tf.function with dynamic spatial dimensions: every image size reuses the
    same graph (no retracing per size); with freeze_weights the graph is traced on first use with the weights
    as constants. ``context``: the pooled means of ``record_context`` (a preview of the whole image), used by
    every global pooling layer instead of the batch's own (tiled inference). Other callables (e.g. test
    doubles) are called as they are and have no context.
    """

    def __init__(self, model, freeze_weights=False, compiled=True):
        self.model = model
        self.compiled = compiled
        self.graphs = {return_maps: InferenceGraph(model, return_maps, freeze_weights)
                       for return_maps in (False, True)} if compiled else {}
        self.recording = None   # preview -> pooled means, one tf.function built on first use
        self.replaying = {}     # return_maps -> tf.function(images, means), built on first use

    def __call__(self, batch, return_maps, context=None):
        if not self.compiled:
            result = self.model(batch, training=False, return_maps=True) if return_maps \
                else self.model(batch, training=False)
        elif context:
            if return_maps not in self.replaying:
                self.replaying[return_maps] = replaying_function(self.model, return_maps, context)
            result = self.replaying[return_maps](batch, context)
        else:
            result = self.graphs[return_maps](batch)
        if isinstance(result, dict):
            keys = ("probability", "threshold", "binary") if return_maps else ("probability",)
            return {k: np.asarray(result[k]) for k in keys if k in result}
        return {"probability": np.asarray(result)}

    def record_context(self, preview):
        """The spatial means of the model's global pooling layers on ``preview`` (1, H, W, 3): a dict, empty
        for a model without such layers (or a plain callable)."""
        if not self.compiled:
            return {}
        if self.recording is None:
            self.recording = recording_function(self.model)
        return self.recording(preview)


class InferenceGraph:
    """model(images, training=False, return_maps=...) as one graph for every image size, built on first call."""

    def __init__(self, model, return_maps, freeze_weights):
        self.model, self.return_maps, self.freeze_weights = model, return_maps, freeze_weights
        self.function = None

    def __call__(self, images):
        if self.function is None:
            self.function = self._build()
        return self.function(images)

    def _build(self):
        import tensorflow as tf

        # autograph off: the model's Python branches depend on static arguments only
        function = tf.function(lambda images: self.model(images, training=False, return_maps=self.return_maps),
                               input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)], autograph=False)
        if not self.freeze_weights:
            return function
        from db_tf.compat import freeze_concrete_function

        concrete = function.get_concrete_function()
        frozen = freeze_concrete_function(concrete)   # returns the outputs as a flat list
        return lambda images: tf.nest.pack_sequence_as(concrete.structured_outputs,
                                                       frozen(tf.convert_to_tensor(images, tf.float32)))


def recording_function(model):
    """tf.function: images (1, H, W, 3) -> {context key: (1, C) mean} of the model's global pooling layers."""
    import tensorflow as tf

    from db_tf.models import global_context

    def record(images):
        with global_context.recording() as means:
            model(images, training=False)
        return dict(means)

    return tf.function(record, input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)], autograph=False)


def replaying_function(model, return_maps, context):
    """tf.function: (images, means shaped as ``context``) -> model(images, ...) with every global pooling layer
    replaying the recorded means."""
    import tensorflow as tf

    from db_tf.models import global_context

    def replay(images, means):
        with global_context.replaying(means):
            return model(images, training=False, return_maps=return_maps)

    means_spec = {key: tf.TensorSpec(value.shape, value.dtype) for key, value in context.items()}
    return tf.function(replay, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32), means_spec],
                       autograph=False)
