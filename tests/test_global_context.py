"""Whole-image context for tiles (db_tf/models/global_context.py): pooling layers replay the means recorded on a
preview, so a network whose only non-local operation is a squeeze-excite gate gives, in tiles, exactly its
whole-image map; every global pooling layer of the shipped architectures is routed through it."""
import keras
import numpy as np
import pytest
from keras import layers
from tolerances import MAP_ATOL, assert_maps_match

from db_tf import TextDetector
from db_tf.models import DBNet
from db_tf.models.backbones.pplcnetv3 import SqueezeExcite, hard_sigmoid
from db_tf.models.global_context import recording, replaying
from db_tf.models.necks.asf import ASFNeck
from db_tf.models.necks.rsefpn import ResidualSEConv
from db_tf.tiling import PREVIEW_WINDOWS, preview_size


@keras.saving.register_keras_serializable(package="db_tf_tests")
class PointwiseSEModel(keras.Model):
    """1x1 conv -> squeeze-excite -> 1x1 conv -> sigmoid: each output pixel depends on its own input pixel and,
    through the gate, on the mean over the whole input; nothing else. Follows the DBNet call contract."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lift = layers.Conv2D(8, 1, name="lift")
        self.se = SqueezeExcite(reduction=2, name="se")
        self.out = layers.Conv2D(1, 1, name="out")

    def call(self, images, training=False, return_maps=False):
        probability = keras.ops.sigmoid(self.out(self.se(self.lift(images))))
        if return_maps:
            return {"probability": probability, "threshold": probability * 0.5, "binary": probability}
        return probability


@pytest.fixture(scope="module")
def se_model():
    keras.utils.set_random_seed(5)
    model = PointwiseSEModel()
    model(np.zeros((1, 32, 32, 3), np.float32))
    rng = np.random.default_rng(5)
    for variable in model.se.weights:    # gates that vary strongly with the channel means
        variable.assign(rng.normal(0.0, 2.0, variable.shape).astype(np.float32))
    return model


def test_a_replayed_gate_is_the_hand_computed_gate_of_the_recorded_input():
    keras.utils.set_random_seed(1)
    se = SqueezeExcite(reduction=2)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(1, 5, 7, 4)).astype(np.float32)
    b = rng.normal(2.0, 1.0, size=(3, 4, 6, 4)).astype(np.float32)   # another size, batch and mean
    se(a)
    with recording() as means:
        se(a)
    with replaying(means):
        replayed = np.asarray(se(b))
    # by hand: the gate of a's channel means, applied to every image of b
    w1, b1 = (np.asarray(v) for v in se.squeeze.weights)
    w2, b2 = (np.asarray(v) for v in se.excite.weights)
    pooled = a.mean(axis=(1, 2))
    gate = np.asarray(hard_sigmoid(np.maximum(pooled @ w1 + b1, 0) @ w2 + b2, se.slope))
    np.testing.assert_allclose(replayed, b * gate[:, None, None, :], atol=1e-5)
    # outside a context each input pools itself again
    own_gate = np.asarray(se.gate(b.mean(axis=(1, 2))))
    np.testing.assert_allclose(np.asarray(se(b)), b * own_gate[:, None, None, :], atol=1e-5)
    assert np.abs(own_gate[0] - gate[0]).max() > 0.01     # so the two checks above are different claims


def test_contexts_do_not_nest():
    with recording():
        with pytest.raises(RuntimeError, match="do not nest"):
            with replaying({}):
                pass


def image_of_noise(height, width, seed=0):
    """Noise on a left-to-right ramp, so each window has other channel means than the whole image."""
    ramp = np.linspace(0, 200, width)[None, :, None]
    noise = np.random.default_rng(seed).integers(0, 56, (height, width, 3))
    return (ramp + noise).astype(np.uint8)


def test_tiles_with_the_whole_image_context_give_the_whole_image_map(se_model):
    # 96x160 at zoom 1 in 64-windows: 6 windows, and the image (15360 px) fits the preview (4 x 4096 px)
    image = image_of_noise(96, 160)
    settings = dict(mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], channel_order="RGB")
    whole = TextDetector(model=se_model, short_side=96, **settings).predict_maps([image])[0]["probability"]
    tiled = TextDetector(model=se_model, tile={"size": 64, "overlap": 0, "scale": 1.0}, batch_size=2,
                         **settings)
    stitched = tiled.predict_maps([image])[0]["probability"]
    assert_maps_match(stitched, whole)
    # each window on its own gate: the check above would catch a context that is not used
    tiled._forward.record_context = lambda preview: {}
    alone = tiled.predict_maps([image])[0]["probability"]
    assert np.abs(alone - whole).max() > 10 * MAP_ATOL


def pooling_layers(model):
    """The layers that pool globally, counted by type; built only (RepLKFPN leaves RSEFPN's smoothing unused).
    A ResidualSEConv's own SqueezeExcite pools through its parent: one mean per ResidualSEConv."""
    built = [layer for layer in model._flatten_layers() if layer.built]
    inner = {id(layer.se) for layer in built if isinstance(layer, ResidualSEConv)}
    return [layer for layer in built
            if isinstance(layer, (SqueezeExcite, ResidualSEConv, ASFNeck)) and id(layer) not in inner]


@pytest.mark.parametrize("backbone,neck", [("pplcnetv3_x0_75", "rsefpn"), ("resnet18", "asf"),
                                           ("pplcnetv4_small", "replkfpn")])
def test_every_global_pooling_layer_of_the_architectures_is_recorded(backbone, neck):
    model = DBNet(backbone=backbone, neck=neck, inner_channels=64 if neck == "asf" else 96)
    images = np.zeros((1, 64, 64, 3), np.float32)
    model(images)
    with recording() as means:
        model(images, training=False)
    expected = pooling_layers(model)
    assert len(expected) >= 1
    assert len(means) == len(expected)
    assert all(value.shape[0] == 1 for value in means.values())


@pytest.mark.parametrize("scaled,tile", [((96, 160), (64, 64)), ((1248, 2304), (1024, 1024)),
                                         ((6000, 8000), (1024, 1024)), ((30, 5000), (32, 1024))])
def test_the_preview_is_the_scaled_image_when_it_fits_and_none_otherwise(scaled, tile):
    size = preview_size(scaled, tile)
    if scaled[0] * scaled[1] <= tile[0] * tile[1] * PREVIEW_WINDOWS:
        assert size == tuple(max(32, round(side / 32) * 32) for side in scaled)
    else:
        assert size is None


def test_an_image_too_large_for_a_preview_is_tiled_with_each_window_s_own_gates(se_model):
    # 64-windows over 192x256 = 49152 px > 4 x 4096: no preview, so each window pools itself
    image = image_of_noise(192, 256)
    settings = dict(mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], channel_order="RGB")
    tiled = TextDetector(model=se_model, tile={"size": 64, "overlap": 0, "scale": 1.0}, **settings)
    recorded = []
    tiled._forward.record_context = lambda preview: recorded.append(preview.shape) or {}
    stitched = tiled.predict_maps([image])[0]["probability"]
    assert recorded == []
    by_hand = np.zeros((192, 256), np.float32)   # each 64x64 window run alone
    for top in range(0, 192, 64):
        for left in range(0, 256, 64):
            window = (image[top:top + 64, left:left + 64] / 255.0 - 0.5) / 0.25
            by_hand[top:top + 64, left:left + 64] = np.asarray(se_model(window[None].astype(np.float32)))[0, :, :, 0]
    assert_maps_match(stitched, by_hand)
