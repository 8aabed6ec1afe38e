"""tf.distribute: one step on 2 replicas equals one step on 1 replica with the same global batch, and a
2-process MultiWorkerMirroredStrategy run on 127.0.0.1 trains a few steps and stops by itself.

Both run in subprocesses: logical CPU devices and TF_CONFIG must be set before TensorFlow initialises.
"""
import json
import re
import subprocess
import textwrap
import time

import pytest
from test_train_support import REPO_ROOT, TINY_BACKBONE, TINY_OVERRIDES, free_ports, start, write_tiny_train_script

from db_tf.training.checkpoints import CheckpointManager

pytestmark = pytest.mark.slow   # not in the fast subset (python -m pytest -m "not slow")

REPLICA_SCRIPT = textwrap.dedent('''
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, REPO)
    TINY_BACKBONE_CODE
    import numpy as np
    keras.utils.set_random_seed(0)
    from easydict import EasyDict
    from db_tf.data.labels import make_label_maps
    from db_tf.losses import DBLoss
    from db_tf.models import DBNet
    from db_tf.models.backbones import BACKBONES
    from db_tf.training.optim import build_optimizer
    from db_tf.training.strategy import make_strategy
    BACKBONES["tiny"] = tiny_backbone

    LR, WD = 0.05, 0.01
    TRAIN = EasyDict(OPTIMIZER="sgd", LR=LR, MOMENTUM=0.9, WEIGHT_DECAY=WD, POLY_POWER=0.0, WARMUP_STEPS=0,
                     CLIPNORM=0.0)
    rng = np.random.default_rng(0)

    def sample(shift):  # noise image with two text boxes (so every loss term is active)
        polygons = [np.array([[6 + shift, 8], [44 + shift, 8], [44 + shift, 24], [6 + shift, 24]], np.float32),
                    np.array([[10, 34], [56, 38], [54, 58], [8, 54]], np.float32)]
        return rng.normal(size=(64, 64, 3)).astype(np.float32), make_label_maps(polygons, np.zeros(2, bool), 64, 64)

    def batch(samples):
        labels = {k: np.stack([s[1][k] for s in samples]).astype(np.float32)
                  for k in ("gt", "mask", "thresh_map", "thresh_mask")}
        return np.stack([s[0] for s in samples]), labels

    def worst_difference(got, want, start, keys):
        """max over variables of |got - want| / how far `want` moved that variable (at least 1% of the largest
        move, so variables the step barely touches, e.g. biases followed by BN, do not divide by ~0)."""
        moved = {k: float(np.abs(want[k] - start[k]).max()) for k in keys}
        floor = 0.01 * max(moved.values())
        return max(float(np.abs(got[k] - want[k]).max()) / max(moved[k], floor) for k in keys)

    a, b, c, d = sample(0), sample(12), sample(4), sample(8)
    INIT, FRESH = sys.argv[1], sys.argv[2]
    two = make_strategy(devices=["/cpu:0", "/cpu:1"])
    with two.scope():
        model = DBNet("tiny", inner_channels=16)
        model.compile(optimizer=build_optimizer(TRAIN, 10), loss=DBLoss())
        model.optimizer.build(model.trainable_variables)
    reference = DBNet("tiny", inner_channels=16)  # one device, eager: the independent computation
    reference.save_weights(INIT)
    model.load_weights(INIT)
    model.save_weights(FRESH)  # the same initial weights + zero optimizer state, reloaded before each case
    start = {v.path: v.numpy() for v in reference.weights}
    trainable = [v.path for v in reference.trainable_variables]
    loss = DBLoss()

    def distributed_step(images, labels):
        """One fit step on 2 replicas: each gets a contiguous half of the global batch."""
        model.load_weights(FRESH)
        dataset = two.experimental_distribute_dataset(tf.data.Dataset.from_tensors((images, labels)))
        model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
        return {v.path: v.numpy() for v in model.weights}

    def gradients_on(images, labels):
        """Gradient of the DB loss of one batch on one device (BN in training mode, as in train_step)."""
        with tf.GradientTape() as tape:
            total = loss(labels, reference(images, training=True))["total_loss"]
        return {v.path: g.numpy() for v, g in zip(reference.trainable_variables,
                                                  tape.gradient(total, reference.trainable_variables))}

    def sgd(gradient):  # the first SGD step with coupled L2: momentum buffer = g + wd w
        return {k: w - LR * (gradient[k] + WD * w) for k, w in start.items() if k in gradient}

    report = {"replicas": two.num_replicas_in_sync}
    # A. Global batch [a, b, a, b]: each replica gets [a, b] and sees the statistics of the whole batch, so
    # BN (training mode), the hard-negative mining and the Dice sums agree with one device on the global
    # batch, and the step must give the same weights AND BN moving statistics.
    reference.load_weights(INIT)
    single = dict(start, **sgd(gradients_on(*batch([a, b, a, b]))))
    single.update({v.path: v.numpy() for v in reference.non_trainable_variables})  # moved by the forward pass
    double = distributed_step(*batch([a, b, a, b]))
    report["A"] = worst_difference(double, single, start, list(start))
    report["A_moved"] = max(float(np.abs(single[k] - start[k]).max()) for k in start)

    # B. Global batch [a, b, c, d]: replicas get different data, and the update must follow the MEAN of the
    # replicas' gradients (each computed with its own half's BN statistics, as without SyncBN).
    reference.load_weights(INIT)
    g0, g1 = gradients_on(*batch([a, b])), gradients_on(*batch([c, d]))
    got = distributed_step(*batch([a, b, c, d]))
    report["B"] = worst_difference(got, sgd({k: (g0[k] + g1[k]) / 2 for k in g0}), start, trainable)
    # What a broken all-reduce would give: the sum, or replica 0 alone. The check must tell them apart.
    report["B_vs_sum"] = worst_difference(got, sgd({k: g0[k] + g1[k] for k in g0}), start, trainable)
    report["B_vs_first"] = worst_difference(got, sgd(g0), start, trainable)
    print("REPORT " + json.dumps(report))
''')


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Start both scenarios at once (3 processes): tracing is mostly single-threaded, so they share the
    cores better than one after the other. Each test then waits for its own processes."""
    tmp = tmp_path_factory.mktemp("distributed")
    script = tmp / "replicas.py"
    script.write_text(REPLICA_SCRIPT.replace("REPO", repr(str(REPO_ROOT)), 1)
                      .replace("TINY_BACKBONE_CODE", TINY_BACKBONE, 1))
    replicas = start([script, tmp / "init.weights.h5", tmp / "fresh.weights.h5"], tmp / "replicas.log")

    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    args = [write_tiny_train_script(tmp), "--set", *TINY_OVERRIDES, f"TRAIN.RUN_DIR={tmp / 'run'}",
            "TRAIN.EPOCHS=1", "TRAIN.STEPS_PER_EPOCH=3", "TRAIN.CHECKPOINT_EVERY=2"]
    workers = [start(args, tmp / f"worker{index}.log",
                     TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
               for index in range(2)]
    deadline = time.time() + 300
    yield tmp, replicas, workers, deadline
    for process in (replicas, *workers):
        process.kill()


def wait(process, deadline):
    try:
        return process.wait(timeout=max(1.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
        process.kill()
        return "timeout"


def test_two_replicas_step_equals_one_replica_with_the_same_global_batch(launched):
    tmp, replicas, _, deadline = launched
    code = wait(replicas, deadline)
    text = (tmp / "replicas.log").read_text()
    assert code == 0, text[-3000:]
    report = json.loads(re.search(r"^REPORT (.*)$", text, re.M).group(1))
    assert report["replicas"] == 2
    assert report["A_moved"] > 1e-3                     # the step did move the weights
    assert report["A"] < 1e-3, report                    # ... identically on 1 and 2 replicas
    assert report["B"] < 1e-3, report                    # the replica gradients are averaged
    assert report["B_vs_sum"] > 0.1 and report["B_vs_first"] > 0.1, report


def test_two_worker_multiworker_run_trains_and_stops(launched):
    tmp, _, workers, deadline = launched
    codes = [wait(worker, deadline) for worker in workers]
    logs = [(tmp / f"worker{index}.log").read_text() for index in range(2)]
    assert codes == [0, 0], "\n=====\n".join(log[-2500:] for log in logs)
    for log in logs:
        assert "MultiWorkerMirroredStrategy with 2 replica(s); global batch 2 x 2 = 4" in log
        assert "training finished at step 3" in log
    assert "(worker 1)" in logs[1] and "checkpoint saved" not in logs[1]   # only the chief writes
    state = CheckpointManager.read_state(tmp / "run" / "checkpoints" / "ckpt-00000003")
    assert state["global_batch"] == 4 and state["samples_seen"] == 12 and state["optimizer_iterations"] == 3
    assert (tmp / "run" / "final.weights.h5").is_file() and (tmp / "run" / "final.json").is_file()
