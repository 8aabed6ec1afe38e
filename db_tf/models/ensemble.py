"""DBNetEnsemble: several DBNets run on the same images, their maps averaged (inference only).

    ensemble = DBNetEnsemble([dbnet_a.get_config(), dbnet_b.get_config()])
    P = mean of the members' P,  T = mean of their T,  B = sigmoid(k (P - T))

Separately trained detectors make different mistakes (one merges two words, the other misses a blurred one),
so the mean of their probability maps is a better map than either: on ICDAR 2015 validation the fine-tuned
PP-OCRv4 mobile (0.795) and PP-OCRv6 small (0.78) averaged give 0.808 (README, issue #8). The averaged maps are
post-processed as one model's, so every tool that takes a DBNet (TextDetector, evaluate.py, export.py) takes
an ensemble. The members must share the preprocessing (one normalised image feeds all of them) and the
amplifying factor k. Train the members on their own (train.py); an ensemble is not trained.
"""
import keras
from keras import ops

from db_tf.models.dbnet import DBNet, constructor_kwargs
from db_tf.models.preset_io import PresetMixin


@keras.saving.register_keras_serializable(package="db_tf")
class DBNetEnsemble(PresetMixin, keras.Model):
    """members: DBNet keyword-argument dicts (as DBNet.get_config() or a pretrained JSON's "model")."""

    def __init__(self, members, name="dbnet_ensemble", **kwargs):
        super().__init__(name=name, **kwargs)
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        self.member_configs = [constructor_kwargs(config) for config in members]   # a member's name is its position
        self.members = [DBNet(**config, name=f"member_{index}") for index, config in enumerate(self.member_configs)]
        factors = sorted({member.k for member in self.members})
        if len(factors) > 1:
            raise ValueError(f"ensemble members must share the binarization factor k, got {factors}")
        self.k = factors[0]
        self.built = True   # every member built itself

    def call(self, images, training=None, return_maps=False):
        if training:
            raise ValueError("DBNetEnsemble is inference only: train its members (DBNet) one by one")
        outputs = [member(images, training=False, return_maps=return_maps) for member in self.members]
        if not return_maps:
            return _mean(outputs)
        probability = _mean([maps["probability"] for maps in outputs])
        threshold = _mean([maps["threshold"] for maps in outputs])
        # no "logits" / "binary_logits": those serve the training loss, and an ensemble is not trained
        return {"probability": probability, "threshold": threshold,
                "binary": ops.sigmoid(self.k * (probability - threshold))}

    def compile(self, *args, **kwargs):
        raise TypeError("DBNetEnsemble is inference only: train its members (DBNet) one by one, then combine "
                        "them (python -m db_tf.tools.package_weights --from a.json b.json ...)")

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "members": self.member_configs}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _mean(tensors):
    return ops.mean(ops.stack(tensors, axis=0), axis=0)
