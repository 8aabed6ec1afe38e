"""DBNet: shapes, pinned parameter counts, inference path, B formula, config/weights round trips, train step.

Train-step tests use a tiny stand-in backbone (added to BACKBONES, the documented extension point) so
that tracing the training graph takes seconds; the step logic does not depend on the backbone.
"""
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers
from keras.ops import convert_to_numpy as to_numpy

from db_tf.config import load_config
from db_tf.losses import DBLoss
from db_tf.models import DBNet, build_model
from db_tf.models.backbones import BACKBONES
from db_tf.models.necks import ASFNeck

# Learnable parameters, computed by hand (see expected_parameter_count) and pinned.
PINNED_PARAMETERS = {
    ("resnet18", "fpn"): 12_340_930, ("resnet18", "asf"): 12_490_764,
    ("resnet34", "fpn"): 22_449_090, ("resnet34", "asf"): 22_598_924,
    ("resnet50", "fpn"): 25_409_730, ("resnet50", "asf"): 25_559_564,
}
TORCHVISION_WITHOUT_FC = {"resnet18": 11_176_512, "resnet34": 21_284_672, "resnet50": 23_508_032}
BACKBONE_CHANNELS = {"resnet18": (64, 128, 256, 512), "resnet34": (64, 128, 256, 512),
                     "resnet50": (256, 512, 1024, 2048)}


def expected_parameter_count(backbone, neck, inner=256):
    mid = inner // 4
    fpn = sum(c * inner for c in BACKBONE_CHANNELS[backbone]) + 4 * (9 * inner * mid)
    # ASF: 3x3 conv with bias, channel 1x1 mid->mid/4->mid, spatial 3x3 + 1x1 (1 channel), 1x1 mid->4.
    asf = (9 * inner * mid + mid) + 2 * (mid * mid // 4) + 9 + 1 + mid * 4 if neck == "asf" else 0
    # Per branch: 3x3 conv (no bias), BN, 2x2 deconv (bias), BN, 2x2 deconv to 1 (bias).
    branch = 9 * inner * mid + 2 * mid + (4 * mid * mid + mid) + 2 * mid + (4 * mid + 1)
    return TORCHVISION_WITHOUT_FC[backbone] + fpn + asf + 2 * branch


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


_MODELS = {}


def cached_model(backbone, neck):
    """One instance per configuration for the whole module (building ResNet-50 takes seconds)."""
    if (backbone, neck) not in _MODELS:
        _MODELS[backbone, neck] = DBNet(backbone, neck)
    return _MODELS[backbone, neck]


def tiny_backbone(weights=None, name="tiny"):
    """Four strided conv-BN-ReLU stages with the C2..C5 strides (4, 8, 16, 32); every pixel is seen."""
    images = keras.Input((None, None, 3))
    x, features = images, []
    for i, stride in enumerate((4, 2, 2, 2)):
        x = layers.Conv2D(4 * 2 ** i, max(3, stride), strides=stride, padding="same", use_bias=False,
                          name=f"stage{i + 1}_conv")(x)
        x = layers.ReLU()(layers.BatchNormalization(name=f"stage{i + 1}_bn")(x))
        features.append(x)
    return keras.Model(images, features, name=name)


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(BACKBONES, "tiny", tiny_backbone)
    keras.utils.set_random_seed(0)
    return lambda **kwargs: DBNet("tiny", inner_channels=16, **kwargs)


def text_batch(batch=2, size=64, seed=0):
    """Images plus DB labels of one text rectangle per image."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch, size, size, 3)).astype(np.float32)
    gt = np.zeros((batch, size, size), np.float32)
    gt[:, size // 3:size // 2, size // 8:size * 3 // 4] = 1.0
    thresh_map = np.full_like(gt, 0.3)
    thresh_map[:, size // 3 - 2:size // 2 + 2, size // 8 - 2:size * 3 // 4 + 2] = 0.7
    labels = {"gt": gt, "mask": np.ones_like(gt), "thresh_map": thresh_map, "thresh_mask": np.ones_like(gt)}
    return images, labels


# ---------------------------------------------------------------------------------- architecture

@pytest.mark.parametrize("backbone,neck", sorted(PINNED_PARAMETERS))
def test_parameter_counts_are_pinned_and_match_hand_count(backbone, neck):
    model = cached_model(backbone, neck)
    count = trainable_count(model)
    print(f"DBNet {backbone}+{neck}: {count:,} trainable parameters, {model.count_params():,} with BN statistics")
    assert count == expected_parameter_count(backbone, neck) == PINNED_PARAMETERS[backbone, neck]


@pytest.mark.slow
@pytest.mark.parametrize("backbone,neck", [("resnet18", "fpn"), ("resnet50", "asf")])
def test_training_outputs_at_640(backbone, neck):
    model = cached_model(backbone, neck)
    outputs = model(np.zeros((1, 640, 640, 3), np.float32), return_maps=True)
    assert set(outputs) == {"logits", "probability", "threshold", "binary", "binary_logits"}
    for value in outputs.values():
        assert value.shape == (1, 640, 640, 1) and value.dtype == "float32"


def test_inference_output_at_736x1280():
    model = cached_model("resnet18", "fpn")
    probability = to_numpy(model(np.random.default_rng(0).standard_normal((1, 736, 1280, 3), np.float32)))
    assert probability.shape == (1, 736, 1280, 1)
    assert probability.min() >= 0.0 and probability.max() <= 1.0


def test_inference_does_not_run_the_threshold_branch(tiny):
    model = tiny()
    spec = tf.TensorSpec((1, None, None, 3))

    def op_names(**kwargs):
        graph = tf.function(lambda x: model(x, **kwargs)).get_concrete_function(spec).graph
        return [op.name for op in graph.get_operations()]

    inference = op_names(training=False)
    assert any("/probability" in name for name in inference)
    assert not any("/threshold" in name for name in inference)
    assert any("/threshold" in name for name in op_names(training=False, return_maps=True))


@pytest.mark.parametrize("k", [50.0, 10.0])
def test_binary_map_follows_the_db_formula(tiny, k):
    model = tiny(k=k)
    images, _ = text_batch(1, 64)
    outputs = {key: to_numpy(value).astype(np.float64) for key, value in model(images, training=True).items()}
    p, t = outputs["probability"], outputs["threshold"]
    np.testing.assert_allclose(p, 1.0 / (1.0 + np.exp(-outputs["logits"])), atol=1e-6)
    np.testing.assert_allclose(outputs["binary"], 1.0 / (1.0 + np.exp(-k * (p - t))), atol=1e-6)
    assert np.all((t >= 0) & (t <= 1))


def test_dynamic_spatial_shapes_in_one_graph(tiny):
    model = tiny()
    fn = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec((None, None, None, 3))])
    for shape in ((1, 64, 64, 3), (2, 96, 160, 3)):
        assert fn(tf.zeros(shape)).shape == shape[:3] + (1,)


def test_bad_input_sizes_are_clear_errors(tiny):
    model = tiny()
    with pytest.raises(ValueError, match="multiples of 32"):
        model(np.zeros((1, 64, 80 + 1, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        model(np.zeros((1, 64, 64), np.float32))


def test_unknown_backbone_or_neck_names_are_clear_errors():
    with pytest.raises(ValueError, match="resnet18"):
        DBNet(backbone="resnet19")
    with pytest.raises(ValueError, match="asf"):
        DBNet(neck="bifpn")


def test_config_and_weights_round_trip(tiny, tmp_path):
    model = tiny(neck="asf", k=30.0, head_channels=6)
    path = str(tmp_path / "db.weights.h5")
    model.save_weights(path)
    clone = DBNet.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    images = np.random.default_rng(1).standard_normal((1, 64, 64, 3)).astype(np.float32)

    def maps(net):
        outputs = net(images, return_maps=True)
        return {key: to_numpy(outputs[key]) for key in ("logits", "threshold", "binary")}

    before = maps(clone)
    clone.load_weights(path)
    after, expected = maps(clone), maps(model)
    for key in expected:
        np.testing.assert_array_equal(after[key], expected[key])
    assert not np.array_equal(before["logits"], after["logits"])  # the file really changed the weights


def test_build_model_from_config():
    cfg = load_config(overrides=["MODEL.NECK=asf", "MODEL.K=25"])
    model = build_model(cfg.MODEL)
    assert model.backbone.name == "resnet18" and isinstance(model.neck, ASFNeck)
    assert model.k == 25.0 and model.backbone_weights is None


# ---------------------------------------------------------------------------------- training

def snapshot(model):
    return [v.numpy().copy() for v in model.weights + model.optimizer.variables]


def unchanged(model, saved):
    return all(np.array_equal(a, v.numpy()) for a, v in zip(saved, model.weights + model.optimizer.variables))


def test_train_step_reduces_the_loss_and_skips_nonfinite_updates(tiny):
    model = tiny()
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss=DBLoss())
    images, labels = text_batch()
    # train_on_batch resets the loss trackers on every call, so each log is that step's loss.
    history = [model.train_on_batch(images, labels, return_dict=True) for _ in range(6)]
    assert set(history[0]) == {"binarize_loss", "thresh_loss", "thresh_binary_loss", "total_loss", "nonfinite"}
    assert all(logs["nonfinite"] == 0.0 for logs in history)
    assert history[-1]["total_loss"] < 0.8 * history[0]["total_loss"]

    saved = snapshot(model)  # weights, BN statistics, momentum, iteration count
    bad = images.copy()
    bad[1, 5, 5, 0] = np.nan
    logs = model.train_on_batch(bad, labels, return_dict=True)
    assert logs["nonfinite"] == 1.0
    assert unchanged(model, saved)
    # The bad batch is kept out of the running means (weight 0), so it cannot turn an epoch mean into NaN.
    tracker = model.loss_trackers["total_loss"]
    assert float(tracker.count.numpy()) == 0.0 and float(tracker.total.numpy()) == 0.0

    logs = model.train_on_batch(images, labels, return_dict=True)
    assert logs["nonfinite"] == 0.0 and not unchanged(model, saved)


def test_test_step_reports_the_loss_terms(tiny):
    model = tiny()
    model.compile(optimizer="sgd", loss=DBLoss(binary="bce"))
    images, labels = text_batch()
    logs = model.evaluate(images, labels, batch_size=2, return_dict=True, verbose=0)
    expected = DBLoss(binary="bce")(labels, model(images, training=False, return_maps=True))
    for key, value in expected.items():
        assert logs[key] == pytest.approx(float(value), rel=1e-5), key
    assert logs["nonfinite"] == 0.0


def test_compile_rejects_other_losses(tiny):
    with pytest.raises(TypeError, match="DBLoss"):
        tiny().compile(optimizer="sgd", loss="mse")


@pytest.fixture
def mixed_float16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    yield
    keras.config.set_dtype_policy(previous)


def test_mixed_precision_uses_loss_scaling_and_float32_outputs(tiny, mixed_float16):
    model = tiny()
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=DBLoss())
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    images, labels = text_batch()
    outputs = model(images, training=True)
    assert all(value.dtype == "float32" for value in outputs.values())
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert logs["nonfinite"] == 0.0 and np.isfinite(logs["total_loss"])
    saved = snapshot(model)
    images[0, 0, 0, 0] = np.nan
    assert model.train_on_batch(images, labels, return_dict=True)["nonfinite"] == 1.0
    assert unchanged(model, saved)


DISTRIBUTED_SCRIPT = textwrap.dedent("""
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from test_dbnet import tiny_backbone, text_batch
    from db_tf.losses import DBLoss
    from db_tf.models import DBNet
    from db_tf.models.backbones import BACKBONES
    BACKBONES["tiny"] = tiny_backbone

    def make(strategy):
        with strategy.scope():
            model = DBNet("tiny", inner_channels=16)
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss=DBLoss())
        return model

    def step(model, images, labels):
        data = tf.data.Dataset.from_tensors((images, labels))  # ONE global batch of 2
        return {k: v[-1] for k, v in model.fit(data, epochs=1, verbose=0).history.items()}

    # Two copies of one image: each replica's batch has the statistics of the global batch, so
    # a correct global-batch reduction gives exactly the single-replica update.
    image, label = text_batch(1, 64)
    images = np.concatenate([image, image])
    labels = {k: np.concatenate([v, v]) for k, v in label.items()}
    single = make(tf.distribute.get_strategy())
    mirrored = make(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    mirrored.set_weights(single.get_weights())
    step(single, images, labels)
    logs = step(mirrored, images, labels)
    assert logs["nonfinite"] == 0.0, logs
    for a, b in zip(single.get_weights(), mirrored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)

    # A NaN in the second replica's shard only: both replicas must skip (weights + BN statistics).
    saved = [[c.numpy().copy() for c in v.value.values] for v in mirrored.weights]
    bad = images.copy()
    bad[1, 3, 3, 0] = np.nan
    logs = step(mirrored, bad, labels)
    assert logs["nonfinite"] == 1.0, logs
    for copies, v in zip(saved, mirrored.weights):
        for a, c in zip(copies, v.value.values):
            np.testing.assert_array_equal(a, c.numpy(), err_msg=v.path)
    print("DISTRIBUTED_OK")
""")


@pytest.mark.slow
def test_train_step_under_mirrored_strategy(repo_root):
    """Two logical CPU replicas (a fresh process: devices must be configured before TF starts)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join([str(repo_root), str(repo_root / "tests")]))
    result = subprocess.run([sys.executable, "-c", DISTRIBUTED_SCRIPT], env=env, capture_output=True,
                            text=True, timeout=600)
    assert "DISTRIBUTED_OK" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]


def test_same_shaped_kernels_start_different():
    """Regression: one shared unseeded Keras 3 initializer returned identical values for every layer,
    so e.g. the probability and threshold branches (and the ResNet blocks) started identical."""
    import numpy as np

    from db_tf.models.dbnet import DBNet

    model = DBNet(backbone="resnet18", neck="asf", inner_channels=32)
    kernels = {}
    for weight in model.weights:
        if weight.path.endswith("kernel"):
            kernels.setdefault(tuple(weight.shape), []).append((weight.path, np.asarray(weight)))
    duplicates = [(a[0], b[0]) for group in kernels.values() for i, a in enumerate(group)
                  for b in group[i + 1:] if np.array_equal(a[1], b[1])]
    assert not duplicates, duplicates[:5]
    assert sum(len(group) > 1 for group in kernels.values()) >= 3  # the check compared something


def _batch_norms(model):
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]


@pytest.mark.slow
def test_overflowing_bn_statistics_skip_the_update(tiny):
    """A finite loss can come with a BN moving variance that overflowed (seen fine-tuning an imported
    model whose variances are ~1e8): the step must be skipped, not write Inf into the model."""
    model = tiny()
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss=DBLoss())
    images, labels = text_batch()
    model.train_on_batch(images, labels, return_dict=True)
    # Blow up the first convolution: its batch variance overflows float32, the BN after it still
    # normalises, so the loss stays finite.
    kernel = next(v for v in model.trainable_variables if v.path.endswith("kernel"))
    kernel.assign(kernel.numpy() * 1e21)
    saved = snapshot(model)
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert logs["nonfinite"] == 1.0
    assert unchanged(model, saved)
    assert all(np.isfinite(v.numpy()).all() for v in model.non_trainable_variables)


@pytest.mark.slow
def test_freeze_batch_norm_can_keep_a_fresh_branch_trainable(tiny):
    model = tiny()
    norms = _batch_norms(model)
    kept = [layer for layer in norms if "head/threshold/" in layer.gamma.path]
    assert len(kept) == 2   # bn1 and bn2 of the threshold branch
    with pytest.raises(ValueError, match=r"no BatchNormalization layer under \['head/treshold'\]"):
        tiny().freeze_batch_norm(keep_trainable=["head/treshold"])    # a typo must not freeze everything
    assert model.freeze_batch_norm(keep_trainable=["head/threshold"]) == (len(norms) - 2, 2)
    assert all(layer.trainable == (layer in kept) for layer in norms)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss=DBLoss())
    images, labels = text_batch()
    before = {id(layer): np.array(layer.moving_mean) for layer in norms}
    model.train_on_batch(images, labels, return_dict=True)
    for layer in norms:   # only the kept branch updates its batch statistics
        changed = not np.array_equal(before[id(layer)], np.array(layer.moving_mean))
        assert changed == (layer in kept), layer.gamma.path


@pytest.mark.slow
def test_freeze_batch_norm_keeps_statistics_and_affine_fixed(tiny):
    model = tiny()
    trainable_before = len(model.trainable_variables)
    frozen, kept = model.freeze_batch_norm()
    assert kept == 0
    norms = _batch_norms(model)
    assert frozen == len(norms) > 0
    assert len(model.trainable_variables) == trainable_before - 2 * frozen  # gamma and beta of each
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss=DBLoss())
    images, labels = text_batch()
    before = [np.array(v) for layer in norms for v in layer.weights]
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert logs["nonfinite"] == 0.0
    after = [np.array(v) for layer in norms for v in layer.weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    # and training mode now normalises with the moving statistics, as inference does
    np.testing.assert_allclose(model(images, training=True)["probability"], model(images), atol=1e-5)


@pytest.mark.slow
def test_freeze_parts_trains_only_the_rest(tiny):
    model = tiny()
    with pytest.raises(ValueError, match=r"cannot freeze 'head'"):
        model.freeze_parts(["head"])
    backbone_weights = sum(int(np.prod(w.shape)) for w in model.backbone.weights)
    assert model.freeze_parts(["backbone"]) == backbone_weights > 0
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss=DBLoss())
    images, labels = text_batch()
    before = {w.path: np.array(w) for w in model.weights}
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert logs["nonfinite"] == 0.0
    changed = {w.path for w in model.weights if not np.array_equal(before[w.path], np.array(w))}
    backbone = {w.path for w in model.backbone.weights}
    assert not changed & backbone                      # statistics included: frozen BN runs in inference mode
    assert {w.path for w in model.neck.trainable_weights} <= changed
    assert {w.path for w in model.head.trainable_weights} <= changed


@pytest.mark.slow
def test_freeze_parts_by_layer_prefix_trains_the_deep_stages_only(tiny):
    model = tiny()
    with pytest.raises(ValueError, match=r"no layer of backbone starts with 'stage9'.*stage1_conv"):
        model.freeze_parts(["backbone/stage9"])
    early = [layer for layer in model.backbone.layers if layer.name[:6] in ("stage1", "stage2")]
    assert len(early) == 4                                    # conv + BN of stages 1 and 2
    early_weights = {w.path for layer in early for w in layer.weights}
    assert model.freeze_parts(["backbone/stage1", "backbone/stage2", "backbone/stage1_conv"]) == sum(
        int(np.prod(w.shape)) for layer in early for w in layer.weights)         # each weight counted once
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss=DBLoss())
    images, labels = text_batch()
    before = {w.path: np.array(w) for w in model.weights}
    model.train_on_batch(images, labels)
    changed = {w.path for w in model.weights if not np.array_equal(before[w.path], np.array(w))}
    assert not changed & early_weights
    assert {w.path for w in model.backbone.trainable_weights} <= changed    # stages 3 and 4 learn
    assert len(model.backbone.trainable_weights) == 6                       # their kernel, gamma and beta
