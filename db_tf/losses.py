"""The DB loss: L = alpha * L_s + beta * L_t + gamma * L_b.

- L_s ("binarize_loss"): BCE of the probability map inside the training mask, with 3:1 hard-negative
  mining (all positives + the k hardest negatives, k = 3 x positives, over the WHOLE batch), on the
  logits so it is numerically stable.
- L_t ("thresh_loss"): L1 between the threshold map and its label over the threshold mask
  (sum / mask sum).
- L_b ("thresh_binary_loss"): Dice loss of the approximate binary map B inside the training mask.

Defaults are the official code's weighting (MhLiao/DB `L1BalanceCELoss`: 5 x BCE + 10 x L1 + 1 x
Dice). The paper's text instead writes L = L_s + alpha L_b + beta L_t with alpha = 1, beta = 10 and a
BCE (also hard-negative mined) for B: DBLoss(alpha=1, beta=10, gamma=1, binary="bce").

Where we differ from the official code (edge cases only):
- A batch with no positive pixels (images without text, or text all marked "don't care") still
  mines `min_negatives` hard negatives (default 100 pixels per batch) so the model learns to keep
  empty images empty; the official code then mines none and the term is 0.
- Any term whose mask is all zero is 0 (the official Dice would be the constant 1, without gradient).

Distillation (optional, `distill_weight` / `distill_thresh_weight` > 0 and the labels carry the teacher's maps
"teacher_prob", "teacher_thresh", "teacher_mask"): L_d ("distill_loss") = distill_weight x the mean over valid
teacher pixels of a per-pixel divergence between the teacher's and the student's P (bce: the Bernoulli KL
divergence t log(t / p) + (1 - t) log((1 - t) / (1 - p)), i.e. BCE minus the teacher's entropy, so it is 0 when
the maps agree and has BCE's gradient; mse: (t - p)^2; l1: |t - p|) + distill_thresh_weight x the mean
|teacher T - T| over the same pixels. It is added to the total; every other term is as without it.

Hard-negative mining uses static shapes (one sort of the flattened negative losses gives the k-th
largest value, then a mask by value), so it works in graph mode and under XLA, unlike top_k with a
data-dependent k. Mining is over the whole batch, as in the official code.
"""
import tensorflow as tf

EPS = 1e-6  # the official code's epsilon
LABEL_KEYS = ("gt", "mask", "thresh_map", "thresh_mask")
TEACHER_KEYS = ("teacher_prob", "teacher_thresh", "teacher_mask")
LOSS_KEYS = ("binarize_loss", "thresh_loss", "thresh_binary_loss", "distill_loss", "total_loss")
DISTILL_LOSSES = ("bce", "mse", "l1")


def balanced_bce_loss(logits, gt, mask, negative_ratio=3.0, min_negatives=100, eps=EPS):
    """BCE over the positives and the k hardest negatives: sum / (positives + k).

    logits, gt, mask: same shape, float32; gt and mask in {0, 1}. k = min(negatives,
    floor(negative_ratio * positives)), or min(negatives, min_negatives) when there is no positive.
    """
    positive = gt * mask
    negative = (1.0 - gt) * mask
    positive_count = tf.reduce_sum(positive)
    negative_count = tf.reduce_sum(negative)
    wanted = tf.where(positive_count > 0, tf.floor(positive_count * negative_ratio), float(min_negatives))
    k = tf.minimum(wanted, negative_count)

    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=gt, logits=logits)
    hard_negative_sum = sum_of_largest(bce * negative, k)
    return (tf.reduce_sum(bce * positive) + hard_negative_sum) / (positive_count + k + eps)


def sum_of_largest(values, k):
    """Sum of the k largest entries of `values` (any shape; k a float scalar tensor, 0 <= k <= size).

    Only used on non-negative losses where non-candidates are 0, so the k largest are the k hardest
    negatives. One sort (static shape, no gradient) finds the k-th largest value v_k; entries above v_k
    count fully and the n_eq entries equal to v_k share the remaining k - n_gt slots, so the gradient is
    1 per entry above v_k, (k - n_gt) / n_eq per tie, and sums to k like top_k's. (Ties are common: zero
    padding gives identical logits.) This is cheaper than back-propagating through the sort.
    """
    flat = tf.reshape(values, [-1])
    ranked = tf.sort(tf.stop_gradient(flat), direction="DESCENDING")
    count = tf.cast(k, tf.int32)
    kth = ranked[tf.maximum(count - 1, 0)]
    above = tf.cast(tf.stop_gradient(flat) > kth, flat.dtype)
    tied = tf.cast(tf.stop_gradient(flat) == kth, flat.dtype)
    tie_share = tf.math.divide_no_nan(k - tf.reduce_sum(above), tf.reduce_sum(tied))
    total = tf.reduce_sum((above + tie_share * tied) * flat)
    return tf.where(count > 0, total, 0.0)


def masked_l1_loss(prediction, target, mask):
    """sum(|prediction - target| * mask) / sum(mask); 0 (with zero gradient) for an all-zero mask."""
    return tf.math.divide_no_nan(tf.reduce_sum(tf.abs(prediction - target) * mask), tf.reduce_sum(mask))


def dice_loss(prediction, gt, mask, eps=EPS):
    """1 - 2 |P n G| / (|P| + |G|) inside the mask, summed over the batch; 0 for an all-zero mask."""
    intersection = tf.reduce_sum(prediction * gt * mask)
    union = tf.reduce_sum(prediction * mask) + tf.reduce_sum(gt * mask) + eps
    return tf.where(tf.reduce_sum(mask) > 0, 1.0 - 2.0 * intersection / union, 0.0)


def bernoulli_kl(logits, target, eps=1e-7):
    """Per-pixel KL(Bernoulli(target) || Bernoulli(sigmoid(logits))) = BCE(logits, target) - H(target)."""
    target = tf.clip_by_value(target, 0.0, 1.0)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits)
    t = tf.clip_by_value(target, eps, 1.0 - eps)
    entropy = -(t * tf.math.log(t) + (1.0 - t) * tf.math.log(1.0 - t))
    return tf.maximum(bce - entropy, 0.0)   # >= 0 up to rounding


def distill_map_loss(logits, teacher_prob, mask, kind="bce", hard_fraction=0.0):
    """Mean over mask of the divergence between the teacher's P and the student's (kind: bce | mse | l1);
    0 for an all-zero mask. logits: the student's pre-sigmoid P.

    hard_fraction in (0, 1]: the mean over only the ceil(fraction x valid pixels) of the batch where the maps
    disagree most, as DB's BCE mines hard negatives: the plain mean is ruled by easy background, while the
    student's and the teacher's errors differ on a few regions (text-like clutter, merged words)."""
    if kind == "bce":
        per_pixel = bernoulli_kl(logits, teacher_prob)
    elif kind == "mse":
        per_pixel = tf.square(tf.sigmoid(logits) - teacher_prob)
    elif kind == "l1":
        per_pixel = tf.abs(tf.sigmoid(logits) - teacher_prob)
    else:
        raise ValueError(f"distillation loss must be one of {DISTILL_LOSSES}, got {kind!r}")
    if not hard_fraction:
        return tf.math.divide_no_nan(tf.reduce_sum(per_pixel * mask), tf.reduce_sum(mask))
    valid = tf.reshape(mask, [-1]) > 0
    count = tf.cast(tf.math.ceil(hard_fraction * tf.reduce_sum(tf.cast(valid, tf.float32))), tf.int32)
    # invalid pixels sort last (divergences are >= 0 up to rounding), so the top `count` are all valid
    candidates = tf.where(valid, tf.reshape(per_pixel, [-1]), -1.0)
    hardest = tf.math.top_k(candidates, k=count, sorted=False).values
    return tf.math.divide_no_nan(tf.reduce_sum(hardest), tf.cast(count, tf.float32))


class DBLoss:
    """__call__(labels, outputs) -> {"binarize_loss", "thresh_loss", "thresh_binary_loss", "total_loss"}.

    labels: "gt", "mask", "thresh_map", "thresh_mask", each (B, H, W), and for distillation "teacher_prob",
    "teacher_thresh", "teacher_mask". outputs: DBNet's training dict ("logits", "threshold", "binary", and
    "binary_logits" for binary="bce"), each (B, H, W, 1). The three DB terms are returned unweighted, and with
    distillation weights "distill_loss" weighted (0 for labels without teacher maps); total_loss is the weighted
    sum. float32.
    """

    def __init__(self, alpha=5.0, beta=10.0, gamma=1.0, negative_ratio=3.0, binary="dice", min_negatives=100,
                 distill_weight=0.0, distill_thresh_weight=0.0, distill_loss="bce", distill_hard_fraction=0.0):
        if binary not in ("dice", "bce"):
            raise ValueError(f"DBLoss binary must be 'dice' or 'bce', got {binary!r}")
        if distill_loss not in DISTILL_LOSSES:
            raise ValueError(f"DBLoss distill_loss must be one of {DISTILL_LOSSES}, got {distill_loss!r}")
        self.distill_weight = float(distill_weight)
        self.distill_thresh_weight = float(distill_thresh_weight)
        self.distill_loss = distill_loss
        if not 0.0 <= float(distill_hard_fraction) <= 1.0:
            raise ValueError(f"DBLoss distill_hard_fraction must be in [0, 1] (0 = every pixel), "
                             f"got {distill_hard_fraction}")
        self.distill_hard_fraction = float(distill_hard_fraction)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.negative_ratio = float(negative_ratio)
        self.binary = binary
        self.min_negatives = int(min_negatives)

    def __call__(self, labels, outputs):
        gt, mask, thresh_map, thresh_mask = (_float_map(labels, key, "labels") for key in LABEL_KEYS)
        binarize = balanced_bce_loss(_float_map(outputs, "logits", "outputs"), gt, mask,
                                     self.negative_ratio, self.min_negatives)
        thresh = masked_l1_loss(_float_map(outputs, "threshold", "outputs"), thresh_map, thresh_mask)
        if self.binary == "dice":
            thresh_binary = dice_loss(_float_map(outputs, "binary", "outputs"), gt, mask)
        else:
            thresh_binary = balanced_bce_loss(_float_map(outputs, "binary_logits", "outputs"), gt, mask,
                                              self.negative_ratio, self.min_negatives)
        losses = {"binarize_loss": binarize, "thresh_loss": thresh, "thresh_binary_loss": thresh_binary}
        total = self.alpha * binarize + self.beta * thresh + self.gamma * thresh_binary
        if "distill_loss" in self.reported_keys:
            losses["distill_loss"] = self._distill(labels, outputs)
            total += losses["distill_loss"]
        return {**losses, "total_loss": total}

    @property
    def reported_keys(self):
        """The keys worth reporting: LOSS_KEYS without "distill_loss" when there is no distillation."""
        distilling = bool(self.distill_weight or self.distill_thresh_weight)
        return tuple(key for key in LOSS_KEYS if distilling or key != "distill_loss")

    def _distill(self, labels, outputs):
        """The weighted distillation term; 0 when the labels carry no teacher maps (e.g. validation batches)."""
        if "teacher_prob" not in labels:
            return tf.constant(0.0)
        teacher_prob, teacher_thresh, mask = (_float_map(labels, key, "labels") for key in TEACHER_KEYS)
        total = tf.constant(0.0)
        if self.distill_weight:
            logits = _float_map(outputs, "logits", "outputs")
            total += self.distill_weight * distill_map_loss(logits, teacher_prob, mask, self.distill_loss,
                                                            self.distill_hard_fraction)
        if self.distill_thresh_weight:
            threshold = _float_map(outputs, "threshold", "outputs")
            total += self.distill_thresh_weight * masked_l1_loss(threshold, teacher_thresh, mask)
        return total

    def get_config(self):
        config = {"alpha": self.alpha, "beta": self.beta, "gamma": self.gamma, "negative_ratio": self.negative_ratio,
                  "binary": self.binary, "min_negatives": self.min_negatives}
        if self.distill_weight or self.distill_thresh_weight:   # DBLoss(**config) rebuilds it either way
            config.update(distill_weight=self.distill_weight, distill_thresh_weight=self.distill_thresh_weight,
                          distill_loss=self.distill_loss, distill_hard_fraction=self.distill_hard_fraction)
        return config


def build_loss(loss_cfg, distill_cfg=None):
    """DBLoss from cfg.TRAIN.LOSS (ALPHA, BETA, GAMMA, NEGATIVE_RATIO, BINARY, optional MIN_NEGATIVES) and
    cfg.TRAIN.DISTILL (WEIGHT, THRESH_WEIGHT, LOSS, HARD_FRACTION; only when its TEACHER is set)."""
    distill = {}
    if distill_cfg and distill_cfg.get("TEACHER"):
        distill = {"distill_weight": distill_cfg.WEIGHT, "distill_thresh_weight": distill_cfg.THRESH_WEIGHT,
                   "distill_loss": distill_cfg.LOSS, "distill_hard_fraction": distill_cfg.get("HARD_FRACTION", 0.0)}
    return DBLoss(alpha=loss_cfg.ALPHA, beta=loss_cfg.BETA, gamma=loss_cfg.GAMMA,
                  negative_ratio=loss_cfg.NEGATIVE_RATIO, binary=loss_cfg.BINARY,
                  min_negatives=loss_cfg.get("MIN_NEGATIVES", 100), **distill)


def _float_map(tensors, key, what):
    """tensors[key] as float32 (B, H, W); a missing key names itself."""
    if key not in tensors:
        raise KeyError(f"DBLoss: {what} has no {key!r} (has: {', '.join(sorted(tensors))})")
    value = tf.cast(tensors[key], tf.float32)
    if value.shape.rank == 4:
        value = tf.squeeze(value, axis=-1)
    return value
