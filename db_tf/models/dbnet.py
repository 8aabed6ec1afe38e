"""DBNet / DBNet++ (Liao et al., AAAI 2020 / TPAMI 2022) as a Keras 3 model with its own train step.

    images -> backbone [C2..C5] -> neck (FPN, or ASF for DBNet++) -> head -> P (probability), T (threshold)
    approximate binary map  B = 1 / (1 + exp(-k (P - T))) = sigmoid(k (P - T)),  k = 50

In inference (training=False, return_maps=False) the model returns only P and the threshold branch
is not run, as in the official code. Training (or return_maps=True) returns a dict with "logits"
(pre-sigmoid P, for a stable BCE), "probability", "threshold", "binary" and "binary_logits"
(k (P - T), for the paper's BCE-on-B loss variant). All outputs are float32, also under mixed
precision.

Input: float32 images already normalised (db_tf/preprocess.py), H and W multiples of 32; any such
size works with one model (spatial dimensions are dynamic).

Training with `model.fit`: `model.compile(optimizer=..., loss=DBLoss(...))` and batches
`(images, {"gt", "mask", "thresh_map", "thresh_mask"})`. The train step skips non-finite updates
and works under tf.distribute and mixed precision: see `train_step`.
"""
import keras
import numpy as np
import tensorflow as tf
from keras import ops

from db_tf import compat
from db_tf.losses import LOSS_KEYS, DBLoss
from db_tf.models.backbones import BACKBONES
from db_tf.models.head import DBHead
from db_tf.models.necks import NECKS
from db_tf.models.preset_io import PresetMixin

STRIDE = 32


@keras.saving.register_keras_serializable(package="db_tf")
class DBNet(PresetMixin, keras.Model):
    """Backbone + neck + DB head.

    backbone: a key of BACKBONES ("resnet18", "resnet34", "resnet50", "keras_resnet50", ...)
    neck: a key of NECKS ("fpn" = DBNet, "asf" = DBNet++); inner_channels: its width (256 officially)
    head_channels: head mid channels (default: neck width // 4); head_batch_norm: see DBHead
    k: amplifying factor of the approximate binarization
    backbone_weights: passed to the backbone builder (None, "imagenet" for keras_resnet50, or a path)
    """

    def __init__(self, backbone="resnet18", neck="fpn", inner_channels=256, head_channels=None, k=50.0,
                 backbone_weights=None, head_batch_norm=True, name="dbnet", **kwargs):
        super().__init__(name=name, **kwargs)
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(sorted(BACKBONES))}")
        if neck not in NECKS:
            raise ValueError(f"unknown neck {neck!r}; known: {', '.join(sorted(NECKS))}")
        self.backbone_name = backbone
        self.neck_name = neck
        self.inner_channels = inner_channels
        self.head_channels = head_channels
        self.k = float(k)
        self.backbone_weights = backbone_weights or None
        self.head_batch_norm = head_batch_norm

        self.backbone = BACKBONES[backbone](weights=self.backbone_weights, name=backbone)
        self.neck = NECKS[neck](inner_channels=inner_channels, name="neck")
        self.head = DBHead(mid_channels=head_channels, batch_norm=head_batch_norm, name="head")
        self.db_loss = None
        self.loss_trackers = {key: keras.metrics.Mean(name=key) for key in LOSS_KEYS}
        self.build((None, None, None, 3))

    def build(self, input_shape):
        # Build every branch explicitly: Keras' default build would trace only the inference path
        # and leave the threshold branch without weights. Input sizes are dynamic: build only once.
        if self.built:
            return
        feature_shapes = [tuple(t.shape) for t in self.backbone.outputs]
        self.neck.build(feature_shapes)
        self.head.build(self.neck.compute_output_shape(feature_shapes))
        self.built = True

    def call(self, images, training=None, return_maps=False):
        _check_input_shape(images.shape)
        features = self.backbone(images, training=training)
        fused = self.neck(features, training=training)
        want_maps = bool(training) or return_maps
        logits, threshold = self.head(fused, training=training, with_threshold=want_maps)
        probability = ops.sigmoid(logits)
        if not want_maps:
            return probability
        # sigmoid(k (P - T)) is the paper's 1 / (1 + exp(-k (P - T))) without exp overflow.
        binary_logits = self.k * (probability - threshold)
        return {"logits": logits, "probability": probability, "threshold": threshold,
                "binary": ops.sigmoid(binary_logits), "binary_logits": binary_logits}

    FREEZABLE_PARTS = ("backbone", "neck")

    def freeze_parts(self, parts):
        """Stop training parts of the network: their weights stay as loaded and their BatchNorm layers run in
        inference mode. A part is "backbone" or "neck", or "backbone/<prefix>" for the part's layers whose names
        start with the prefix (e.g. "backbone/stage4" freezes stage4_block1..5 of PP-LCNet), so the deep stages
        can learn while the early ones stay. For fine-tuning a pretrained model on little data, where adapting
        fewer weights overfits less. Call before compiling. Returns the frozen weight count."""
        layers = [layer for part in parts for layer in self._layers_of(part)]
        for layer in layers:
            layer.trainable = False
        # by path: overlapping entries ("backbone" and "backbone/stage1") count each weight once
        weights = {weight.path: weight for layer in layers for weight in layer.weights}
        return sum(int(np.prod(weight.shape)) for weight in weights.values())

    def _layers_of(self, part):
        """The layers a FREEZE entry names (see freeze_parts); ValueError for a name that matches nothing."""
        name, _, prefix = part.partition("/")
        if name not in self.FREEZABLE_PARTS:
            raise ValueError(f"cannot freeze {part!r}: the parts that can be frozen are {self.FREEZABLE_PARTS} "
                             f"or their layers as '<part>/<layer name prefix>'")
        whole = getattr(self, name)
        if not prefix:
            return [whole]
        layers = [layer for layer in whole.layers if layer.name.startswith(prefix)]
        if not layers:
            names = ", ".join(layer.name for layer in whole.layers)
            raise ValueError(f"cannot freeze {part!r}: no layer of {name} starts with {prefix!r} (its layers: {names})")
        return layers

    def freeze_batch_norm(self, keep_trainable=()):
        """Run BatchNormalization layers in inference mode with fixed gamma/beta (Keras 3: trainable=False).

        For fine-tuning with small batches (a CPU's batch of 8 gives noisy batch statistics) and for
        imported models whose statistics must stay as trained. keep_trainable: layer paths such as
        "head/threshold" whose BN layers stay trainable (a freshly initialised branch on top of pretrained
        weights needs its batch statistics); a path that matches no BN layer is a ValueError (a typo would
        otherwise freeze everything). Call before compiling. Returns (frozen, kept trainable) layer counts.
        """
        keep = [f"{path.strip('/')}/" for path in keep_trainable]
        used = set()
        frozen = kept = 0
        for layer in self._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.BatchNormalization):
                matches = {prefix for prefix in keep if prefix in layer.gamma.path}
                if matches:
                    used |= matches
                    kept += 1
                    continue
                layer.trainable = False
                frozen += 1
        unused = [prefix.rstrip("/") for prefix in keep if prefix not in used]
        if unused:
            raise ValueError(f"FREEZE_BN_EXCEPT: no BatchNormalization layer under {unused} "
                             f"(paths look like 'head/threshold' or 'backbone/...')")
        return frozen, kept

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "backbone": self.backbone_name,
                "neck": self.neck_name, "inner_channels": self.inner_channels, "head_channels": self.head_channels,
                "k": self.k, "backbone_weights": self.backbone_weights, "head_batch_norm": self.head_batch_norm}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # ------------------------------------------------------------------ training

    def compile(self, optimizer="sgd", loss=None, **kwargs):
        """Keras compile; `loss` is a DBLoss (default DBLoss()). Loss scaling for mixed_float16 is automatic."""
        if loss is not None and not isinstance(loss, DBLoss):
            raise TypeError(f"DBNet.compile expects loss=DBLoss(...), got {type(loss).__name__}")
        for key in ("metrics", "loss_weights", "weighted_metrics"):
            if kwargs.get(key):
                raise ValueError(f"DBNet.compile does not use {key}=; the train step reports the DB loss terms")
        self.db_loss = loss or DBLoss()
        super().compile(optimizer=optimizer, **kwargs)

    @property
    def metrics(self):
        keys = self.db_loss.reported_keys if self.db_loss is not None else LOSS_KEYS
        return [self.loss_trackers[key] for key in keys]

    def train_step(self, data):
        """One step; skips the update (weights, BN statistics, optimizer state) when anything is non-finite.

        Under tf.distribute each replica's loss is divided by the number of replicas: the optimizer
        SUMS replica gradients, so the update is the gradient of the mean over replicas. That equals a
        single-replica step on the global batch for equal-sized shards of identical statistics; the
        DB loss terms are ratios over the (replica) batch, so in general it is their replica average.
        """
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.trainable_variables
        if not self.optimizer.built:  # must not happen inside the tf.cond below
            self.optimizer.build(variables)
        # BN moving statistics are updated by the forward pass: keep a copy to undo a non-finite step.
        statistics = [tf.identity(v.value) for v in self.non_trainable_variables]
        with tf.GradientTape() as tape:
            outputs = self(images, training=True)
            losses = self.db_loss(labels, outputs)
            # Replica gradients are summed: divide so the update is that of the replica-mean loss.
            loss = losses["total_loss"] / tf.distribute.get_strategy().num_replicas_in_sync
            loss = self.optimizer.scale_loss(loss)  # loss scaling under mixed_float16, identity otherwise
        gradients = tape.gradient(loss, variables)
        # The BN statistics just updated can overflow (e.g. huge imported variances) with a finite loss.
        updated_statistics = [v.value for v in self.non_trainable_variables]
        finite = self._all_replicas_finite(losses["total_loss"], gradients, updated_statistics)
        self._update_or_restore(finite, gradients, variables, statistics)
        return self._report(losses, finite)

    def test_step(self, data):
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        outputs = self(images, training=False, return_maps=True)
        losses = self.db_loss(labels, outputs)
        return self._report(losses, _all_finite([losses["total_loss"]]))

    def _report(self, losses, finite):
        # Non-finite values are left out of the running means so one bad batch does not poison an epoch.
        weight = ops.cast(finite, "float32")
        keys = self.db_loss.reported_keys
        for key in keys:
            self.loss_trackers[key].update_state(ops.where(finite, losses[key], 0.0), sample_weight=weight)
        logs = {key: self.loss_trackers[key].result() for key in keys}
        logs["nonfinite"] = 1.0 - weight
        return logs

    def _uses_loss_scaling(self):
        return isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)

    def _all_replicas_finite(self, loss, gradients, statistics=()):
        """True when the loss, the gradients and the BN statistics are finite on EVERY replica."""
        # With loss scaling, overflowing gradients are routine: the LossScaleOptimizer skips those
        # steps itself and lowers the scale, so only the loss (and the statistics) decide here.
        checked = [loss, *statistics] if self._uses_loss_scaling() else [loss, *gradients, *statistics]
        finite = _all_finite(checked)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            bad = context.all_reduce(tf.distribute.ReduceOp.SUM, ops.cast(ops.logical_not(finite), "float32"))
            finite = ops.equal(bad, 0.0)
        return finite

    def _update_or_restore(self, finite, gradients, variables, statistics):
        """tf.cond(finite, apply the gradients, restore the BN statistics), graph- and tf.distribute-safe."""
        moving = self.non_trainable_variables

        def update():
            self.optimizer.apply(gradients, variables)

        def restore():
            for variable, value in zip(moving, statistics):
                variable.assign(value)

        if compat.strategy_supports_no_merge_call():
            tf.cond(finite, update, restore)
            return

        # Strategies such as MirroredStrategy apply updates through merge_call, which must not sit in a
        # cond inside a replica: branch in the cross-replica context instead (as LossScaleOptimizer does).
        def cross_replica(strategy, finite, gradients, statistics):
            finite = strategy.experimental_local_results(finite)[0]  # identical on all replicas

            def update_all():
                strategy.extended.call_for_each_replica(self.optimizer.apply, args=(gradients, variables))

            def restore_all():
                for variable, value in zip(moving, statistics):
                    strategy.extended.update(variable.value, lambda v, x: v.assign(x), args=(value,), group=False)

            tf.cond(finite, update_all, restore_all)

        tf.distribute.get_replica_context().merge_call(cross_replica, args=(finite, gradients, statistics))


def constructor_kwargs(config):
    """A model's get_config() without Keras' bookkeeping keys ("name", "trainable"): the keyword arguments a
    pretrained JSON's "model" object holds."""
    return {key: value for key, value in dict(config).items() if key not in ("name", "trainable")}


def _all_finite(tensors):
    return ops.all(ops.stack([ops.all(ops.isfinite(t)) for t in tensors if t is not None]))


def _check_input_shape(shape):
    """Clear errors for the mistakes that would otherwise fail deep inside the FPN additions."""
    if len(shape) != 4 or (shape[-1] is not None and shape[-1] != 3):
        raise ValueError(f"DBNet expects images of shape (N, H, W, 3), got {tuple(shape)}")
    for side in shape[1:3]:
        if side is not None and side % STRIDE:
            raise ValueError(f"DBNet needs H and W multiples of {STRIDE} (resize or pad the image), "
                             f"got {tuple(shape[1:3])}")
