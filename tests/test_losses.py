"""DB loss terms against plain numpy brute force (OHEM by sorting), edge cases, gradients, XLA."""
import numpy as np
import pytest
import tensorflow as tf

from db_tf.config import load_config
from db_tf.losses import DBLoss, balanced_bce_loss, build_loss, dice_loss, masked_l1_loss, sum_of_largest

SHAPE = (2, 12, 10)


def bce_numpy(logits, gt):
    """-[z log s(x) + (1 - z) log(1 - s(x))] = log(1 + e^x) - z x, in float64 without overflow."""
    x = logits.astype(np.float64)
    return np.logaddexp(0.0, x) - gt * x


def balanced_bce_numpy(logits, gt, mask, ratio=3.0, min_negatives=100, eps=1e-6):
    """Official BalanceCrossEntropyLoss semantics, brute force: sort ALL batch negatives, keep the top k."""
    loss = bce_numpy(logits, gt)
    positive = (gt * mask).astype(bool)
    negative = ((1 - gt) * mask).astype(bool)
    n_pos, n_neg = int(positive.sum()), int(negative.sum())
    k = min(n_neg, int(n_pos * ratio) if n_pos > 0 else min_negatives)
    hardest = np.sort(loss[negative])[::-1][:k]
    return (loss[positive].sum() + hardest.sum()) / (n_pos + k + eps)


def random_batch(seed, positive_rate=0.2, mask_rate=0.9):
    rng = np.random.default_rng(seed)
    labels = {
        "gt": (rng.random(SHAPE) < positive_rate).astype(np.float32),
        "mask": (rng.random(SHAPE) < mask_rate).astype(np.float32),
        "thresh_map": rng.uniform(0.3, 0.7, SHAPE).astype(np.float32),
        "thresh_mask": (rng.random(SHAPE) < 0.5).astype(np.float32),
    }
    logits = rng.normal(0.0, 3.0, SHAPE + (1,)).astype(np.float32)
    threshold = rng.uniform(0.0, 1.0, SHAPE + (1,)).astype(np.float32)
    probability = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    binary_logits = (50.0 * (probability - threshold)).astype(np.float32)
    outputs = {"logits": logits, "threshold": threshold, "binary_logits": binary_logits,
               "binary": (1.0 / (1.0 + np.exp(-binary_logits.astype(np.float64)))).astype(np.float32)}
    return labels, outputs


def to_tf(tensors):
    return {key: tf.constant(value) for key, value in tensors.items()}


def test_hand_worked_balanced_bce():
    """1 positive, ratio 3 -> the 3 hardest of 4 negatives; one masked-out pixel is ignored entirely."""
    logits = np.array([0.0, 2.0, -1.0, 1.0, 3.0, 5.0], np.float32)
    gt = np.array([1, 0, 0, 0, 0, 1], np.float32)
    mask = np.array([1, 1, 1, 1, 1, 0], np.float32)
    # BCE: positive log(2); negatives softplus(2), softplus(-1), softplus(1), softplus(3).
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    expected = (np.log(2) + softplus(3) + softplus(2) + softplus(1)) / (1 + 3 + 1e-6)
    got = balanced_bce_loss(tf.constant(logits), tf.constant(gt), tf.constant(mask))
    assert float(got) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_balanced_bce_matches_brute_force(seed):
    labels, outputs = random_batch(seed, positive_rate=[0.05, 0.2, 0.5, 0.9][seed])
    expected = balanced_bce_numpy(outputs["logits"][..., 0], labels["gt"], labels["mask"])
    got = balanced_bce_loss(tf.constant(outputs["logits"][..., 0]), tf.constant(labels["gt"]),
                            tf.constant(labels["mask"]))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_mining_is_over_the_whole_batch():
    """All positives in image 0, all negatives in image 1: negatives are still mined (from image 1)."""
    logits = np.random.default_rng(5).normal(size=(2, 4, 4)).astype(np.float32)
    gt = np.stack([np.ones((4, 4)), np.zeros((4, 4))]).astype(np.float32)
    mask = np.ones_like(gt)
    expected = balanced_bce_numpy(logits, gt, mask)
    got = balanced_bce_loss(tf.constant(logits), tf.constant(gt), tf.constant(mask))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_sum_of_largest_handles_ties_and_zero():
    values = tf.constant([3.0, 1.0, 2.0, 2.0, 2.0, 0.0])
    assert float(sum_of_largest(values, tf.constant(3.0))) == pytest.approx(7.0)  # 3 + 2 + 2 (ties)
    assert float(sum_of_largest(values, tf.constant(0.0))) == 0.0
    assert float(sum_of_largest(values, tf.constant(6.0))) == pytest.approx(10.0)


def test_sum_of_largest_gradient_counts_k_entries_even_with_ties():
    # [5, 2, 2, 2, 2, 1], k = 2: 5 counts fully, the four tied 2s share the one remaining slot.
    values = tf.Variable([5.0, 2.0, 2.0, 2.0, 2.0, 1.0])
    with tf.GradientTape() as tape:
        total = sum_of_largest(values, tf.constant(2.0))
    grad = tape.gradient(total, values).numpy()
    assert float(total) == pytest.approx(7.0)
    np.testing.assert_allclose(grad, [1.0, 0.25, 0.25, 0.25, 0.25, 0.0])

    # Without ties the gradient is exactly top_k's (1 on the k largest, 0 elsewhere).
    rng = np.random.default_rng(3)
    values = tf.Variable(rng.random(50).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        ours = sum_of_largest(values, tf.constant(7.0))
        reference = tf.reduce_sum(tf.math.top_k(values, 7).values)
    assert float(ours) == pytest.approx(float(reference), rel=1e-6)
    np.testing.assert_array_equal(tape.gradient(ours, values).numpy(), tape.gradient(reference, values).numpy())


@pytest.mark.parametrize("binary", ["dice", "bce"])
def test_db_loss_terms_match_numpy(binary):
    labels, outputs = random_batch(7)
    loss = DBLoss(alpha=5.0, beta=10.0, gamma=1.0, binary=binary)
    got = {key: float(value) for key, value in loss(to_tf(labels), to_tf(outputs)).items()}

    gt, mask = labels["gt"].astype(np.float64), labels["mask"].astype(np.float64)
    binarize = balanced_bce_numpy(outputs["logits"][..., 0], gt, mask)
    tmask = labels["thresh_mask"]
    thresh = (np.abs(outputs["threshold"][..., 0] - labels["thresh_map"]) * tmask).sum() / tmask.sum()
    if binary == "dice":
        b = outputs["binary"][..., 0].astype(np.float64)
        thresh_binary = 1 - 2 * (b * gt * mask).sum() / ((b * mask).sum() + (gt * mask).sum() + 1e-6)
    else:
        thresh_binary = balanced_bce_numpy(outputs["binary_logits"][..., 0], gt, mask)
    assert got["binarize_loss"] == pytest.approx(binarize, rel=1e-5)
    assert got["thresh_loss"] == pytest.approx(thresh, rel=1e-5)
    assert got["thresh_binary_loss"] == pytest.approx(thresh_binary, rel=1e-4)
    assert got["total_loss"] == pytest.approx(5 * binarize + 10 * thresh + thresh_binary, rel=1e-5)


def test_no_positive_pixels_mines_the_fallback_count():
    labels, outputs = random_batch(8)
    labels["gt"][:] = 0.0
    for min_negatives in (5, 100):
        loss = DBLoss(min_negatives=min_negatives)(to_tf(labels), to_tf(outputs))
        assert all(np.isfinite(float(v)) for v in loss.values())
        expected = balanced_bce_numpy(outputs["logits"][..., 0], labels["gt"], labels["mask"],
                                      min_negatives=min_negatives)
        assert expected > 0
        assert float(loss["binarize_loss"]) == pytest.approx(expected, rel=1e-5)


def test_all_zero_masks_give_zero_loss_and_zero_gradients():
    labels, outputs = random_batch(9)
    labels["mask"][:] = 0.0
    labels["thresh_mask"][:] = 0.0
    outputs = to_tf(outputs)
    with tf.GradientTape() as tape:
        tape.watch(list(outputs.values()))
        losses = DBLoss()(to_tf(labels), outputs)
    for key, value in losses.items():
        assert float(value) == 0.0, key
    gradients = tape.gradient(losses["total_loss"], list(outputs.values()))
    for gradient in gradients:
        assert gradient is None or np.all(gradient.numpy() == 0.0)


@pytest.mark.parametrize("binary", ["dice", "bce"])
def test_gradients_are_finite_even_for_saturated_logits(binary):
    labels, outputs = random_batch(10)
    outputs["logits"] *= 100.0  # |logits| up to ~1000: a sigmoid-then-log BCE would give inf
    outputs = to_tf(outputs)
    with tf.GradientTape() as tape:
        tape.watch(list(outputs.values()))
        total = DBLoss(binary=binary)(to_tf(labels), outputs)["total_loss"]
    assert np.isfinite(float(total))
    for gradient in tape.gradient(total, list(outputs.values())):
        assert gradient is None or np.all(np.isfinite(gradient.numpy()))


def test_xla_gives_the_same_value():
    labels, outputs = random_batch(11)
    loss = DBLoss()
    eager = loss(to_tf(labels), to_tf(outputs))
    compiled = tf.function(loss.__call__, jit_compile=True)(to_tf(labels), to_tf(outputs))
    for key in eager:
        assert float(compiled[key]) == pytest.approx(float(eager[key]), rel=1e-5), key


def test_masked_l1_and_dice_hand_examples():
    pred = tf.constant([[0.5, 0.2], [0.9, 0.0]])
    target = tf.constant([[0.3, 0.2], [0.1, 1.0]])
    mask = tf.constant([[1.0, 1.0], [0.0, 1.0]])
    assert float(masked_l1_loss(pred, target, mask)) == pytest.approx((0.2 + 0.0 + 1.0) / 3)
    gt = tf.constant([[1.0, 0.0], [1.0, 1.0]])
    # inside the mask: P = (0.5, 0.2, 0.0), G = (1, 0, 1): 1 - 2 * 0.5 / (0.7 + 2)
    assert float(dice_loss(pred, gt, mask)) == pytest.approx(1 - 1.0 / 2.7, rel=1e-5)


def test_missing_key_and_bad_mode_are_clear_errors():
    labels, outputs = random_batch(12)
    del labels["thresh_mask"]
    with pytest.raises(KeyError, match="thresh_mask"):
        DBLoss()(to_tf(labels), to_tf(outputs))
    with pytest.raises(ValueError, match="dice"):
        DBLoss(binary="l2")


def test_build_loss_from_config():
    cfg = load_config(overrides=["TRAIN.LOSS.ALPHA=1", "TRAIN.LOSS.BINARY=bce"])
    loss = build_loss(cfg.TRAIN.LOSS)
    assert loss.get_config() == {"alpha": 1.0, "beta": 10.0, "gamma": 1.0, "negative_ratio": 3.0,
                                 "binary": "bce", "min_negatives": 100}
