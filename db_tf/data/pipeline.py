"""tf.data input pipeline: datasets -> (normalised images, DB label maps) batches.

    dataset = build_dataset(cfg, "train", input_context=None, start_step=0)
    images, labels = next(iter(dataset))
    # images float32 (B, S, S, 3), normalised as db_tf.preprocess.normalize (cfg.DATA.MEAN / STD /
    # CHANNEL_ORDER); labels: dict "gt", "mask", "thresh_map", "thresh_mask", each float32 (B, S, S)

Sources. Each entry of cfg.DATA.TRAIN / cfg.DATA.VAL is a db_tf.data.readers spec, or
{"format": "synth", "num": N, "ratio": r, "level": "word"|"line"|"mixed"} for synthetic scene text
(db_tf.synth; "level" defaults to cfg.DATA.SYNTH.LEVEL if that key exists, else "word"). An empty
cfg.DATA.TRAIN means [{"format": "synth", "num": cfg.DATA.SYNTH.NUM}], so training works on a fresh
clone. Training draws NEW synthetic images every epoch (the image seed is
(DATA.SEED, epoch, index)); validation synthetic images are fixed.

Train split (an infinite stream; the training loop decides where epochs end):
  * The stream is a sequence of positions 0, 1, 2, ...; global step t consumes positions
    [t * G, (t + 1) * G) with G the global batch (TRAIN.BATCH_SIZE x replicas). An epoch is
    `steps_per_epoch(cfg, replicas)` steps (TRAIN.STEPS_PER_EPOCH, or 0 = one pass: the number of
    samples // G). Epoch e, slot k = position - e * L (L = steps x G) is filled by an `EpochPlan`:
    a dataset drawn with probability ratio_d / sum(ratios), then the next item of that dataset's
    seeded permutation. This replaces Dataset.shuffle / sample_from_datasets: a plan is a pure
    function of (DATA.SEED, epoch), so any position can be computed directly.
  * All per-sample randomness (augmentation, synthetic image) comes from a numpy Generator seeded
    with (DATA.SEED, epoch, slot), so two pipelines with the same seed give identical batches
    whatever the parallelism (map runs with deterministic=True).
  * Exact resume: build_dataset(cfg, "train", start_step=s) yields the batches of global steps
    s, s + 1, ... exactly as an uninterrupted run would (epoch e starts at step
    e * steps_per_epoch(cfg, replicas)). Only when bad samples were skipped before s is the resumed
    stream shifted by those samples.
  * Per sample: read image (db_tf.data.image_io) -> augment (db_tf.data.augment, cfg.DATA.AUG, to
    S = cfg.DATA.IMAGE_SIZE) -> make_label_maps (db_tf.data.labels) -> normalize, all in numpy
    inside one tf.numpy_function; then static shapes, batch (drop_remainder), prefetch.
    Parallelism: cfg.DATA.NUM_WORKERS calls (-1 = AUTOTUNE).
  * Distribution: pass the tf.distribute.InputContext given by
    strategy.distribute_datasets_from_function. Input pipeline j of m then makes per-replica
    batches (context.get_per_replica_batch_size) from its share of every global step's positions
    (the j-th contiguous chunk of G / m); consecutive per-replica batches of one pipeline go to its
    replicas in order.

Val split (finite, one pass in file order, no augmentation, no shuffling): each image is resized
keeping its aspect ratio so that it fits in S x S, placed top-left and zero padded (augment with
aug_cfg=None), and labelled like training images (the padding is background, as in training crops).
Batches of TRAIN.BATCH_SIZE (per replica), the last one may be smaller. It is meant for the
validation LOSS; detection quality (hmean) is measured on full images by the evaluator, which
gets the same samples from `evaluation_samples(cfg)`.

Bad samples (unreadable image, broken GT, a sample that fails in augmentation or labelling): with
cfg.DATA.STRICT = False they are logged (logger "db_tf.data.pipeline", naming the file) and
skipped; with STRICT = True iteration raises an error whose message names the file. Either way,
MAX_FAILURES_IN_A_ROW consecutive failures raise (the data as a whole is broken).
"""
import functools
import logging
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from db_tf import presets, synth
from db_tf.data import readers
from db_tf.data.augment import augment
from db_tf.data.image_io import read_image
from db_tf.data.labels import label_kwargs, make_label_maps
from db_tf.data.teacher_maps import (
    TEACHER_KEYS,
    TeacherCache,
    empty_teacher_maps,
    teacher_folder_name,
    warp_teacher_maps,
)
from db_tf.preprocess import normalize

log = logging.getLogger(__name__)

LABEL_KEYS = ("gt", "mask", "thresh_map", "thresh_mask")
MAX_FAILURES_IN_A_ROW = 64
SPLITS = ("train", "val")
# separate seed streams, so that no two uses of DATA.SEED draw the same random numbers
_PLAN_STREAM, _SAMPLE_STREAM, _SYNTH_TRAIN_STREAM, _SYNTH_VAL_STREAM = 1, 2, 3, 4


# ----------------------------------------------------------------------------- sources (numpy only)
class FileDataset:
    """Samples read from disk (a readers.read_dataset result)."""

    def __init__(self, samples, name):
        self.samples, self.name = samples, name

    def __len__(self):
        return len(self.samples)

    def describe(self, index):
        return self.samples[index].image_path

    labelled = True

    def image_path(self, index):
        return self.samples[index].image_path

    def load(self, index, epoch):
        sample = self.samples[index]
        return read_image(sample.image_path), sample.polygons, sample.ignore


class ImageFolderDataset:
    """Images without annotations ({"format": "images", "images": dir, ["select": "a:b"]}): they train only
    through a teacher (TRAIN.DISTILL), their DB-loss masks are all zero."""

    labelled = False

    def __init__(self, folder, select=None, name=None):
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"images folder {folder} not found")
        paths = sorted((p for p in folder.iterdir() if p.suffix.lower() in readers.IMAGE_SUFFIXES),
                       key=lambda p: readers.natural_key(p.name))
        self.paths = [str(p) for p in readers._select(paths, select)]
        if not self.paths:
            raise ValueError(f"images folder {folder} (select {select!r}) holds no images")
        self.name = name or f"images:{folder}"

    def __len__(self):
        return len(self.paths)

    def describe(self, index):
        return self.paths[index]

    def image_path(self, index):
        return self.paths[index]

    def load(self, index, epoch):
        return read_image(self.paths[index]), [], np.zeros(0, bool)


class SynthDataset:
    """Synthetic scene text drawn on the fly; image `index` of `epoch` is a pure function of the seed."""

    def __init__(self, num, seed, size, level="word", stream=_SYNTH_TRAIN_STREAM, new_each_epoch=True):
        if num < 1:
            raise ValueError(f"synthetic dataset needs num >= 1, got {num}")
        self.num, self.seed, self.size, self.level = int(num), int(seed), int(size), level
        self.stream, self.new_each_epoch = stream, new_each_epoch
        self.name = f"synth:{level}"

    labelled = True

    def image_path(self, index):
        return None   # drawn on the fly: no teacher maps

    def __len__(self):
        return self.num

    def describe(self, index):
        return f"synthetic image {index} (seed {self.seed})"

    def load(self, index, epoch):
        epoch = epoch if self.new_each_epoch else 0
        sample = synth.generate((self.seed, self.stream, epoch, index), self.size, self.size, level=self.level)
        return sample.image, sample.polygons, sample.ignore


def _open_dataset(spec, cfg, split):
    if spec.get("format") == "images":
        if split != "train":
            raise ValueError(f"dataset {spec}: images without annotations cannot be used for validation")
        return ImageFolderDataset(spec["images"], spec.get("select"), spec.get("name"))
    if spec.get("format") == "synth":
        stream = _SYNTH_TRAIN_STREAM if split == "train" else _SYNTH_VAL_STREAM
        return SynthDataset(int(spec.get("num", cfg.DATA.SYNTH.NUM)), int(cfg.DATA.SEED), int(cfg.DATA.IMAGE_SIZE),
                            spec.get("level", cfg.DATA.SYNTH.get("LEVEL", "word")), stream,
                            new_each_epoch=split == "train")
    samples = readers.read_dataset(spec, strict=bool(cfg.DATA.STRICT))
    if not samples:
        raise ValueError(f"dataset {spec} has no usable samples")
    return FileDataset(samples, spec.get("name") or f"{spec['format']}:{spec.get('images', '')}")


def dataset_specs(cfg, split):
    """The dataset specs a split reads (the synthetic default for an empty TRAIN)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    specs = list(cfg.DATA.TRAIN if split == "train" else cfg.DATA.VAL)
    if not specs and split == "train":
        specs = [{"format": "synth", "num": int(cfg.DATA.SYNTH.NUM), "ratio": 1.0}]
    if not specs:
        raise ValueError("cfg.DATA.VAL is empty: no validation data configured "
                         "(use e.g. {'format': 'synth', 'num': 64} for synthetic validation)")
    return specs


def evaluation_samples(cfg):
    """readers.Sample list of cfg.DATA.VAL (file datasets only) for full-image evaluation."""
    return readers.read_datasets([s for s in cfg.DATA.VAL if s.get("format") != "synth"],
                                 strict=bool(cfg.DATA.STRICT))


# ----------------------------------------------------------------------------- the epoch plan
class EpochPlan:
    """Which (dataset, sample) fills each slot of an epoch; a pure function of (seed, epoch).

    Each slot draws dataset d with probability ratio_d / sum(ratios); within a dataset, samples are
    taken in the order of seeded permutations (a new one each time the dataset is exhausted), so an
    epoch sees every sample of a dataset before any repeats (when its share allows).
    """

    def __init__(self, sizes, ratios, epoch_length, seed):
        self.sizes = [int(n) for n in sizes]
        ratios = np.asarray(ratios, np.float64)
        if len(ratios) != len(self.sizes) or np.any(ratios <= 0) or min(self.sizes) < 1:
            raise ValueError(f"bad plan: sizes {self.sizes}, ratios {ratios.tolist()}")
        self.probabilities = ratios / ratios.sum()
        self.epoch_length = int(epoch_length)
        self.seed = int(seed)
        self.epoch = functools.lru_cache(maxsize=4)(self._epoch)  # parallel map calls hit the same epoch

    def _epoch(self, epoch):
        """(dataset ids, sample ids), both int64 arrays of epoch_length."""
        rng = synth.make_rng((self.seed, _PLAN_STREAM, epoch))
        datasets = rng.choice(len(self.sizes), size=self.epoch_length, p=self.probabilities)
        samples = np.zeros(self.epoch_length, np.int64)
        for d, size in enumerate(self.sizes):
            slots = np.flatnonzero(datasets == d)
            rounds = [rng.permutation(size) for _ in range(math.ceil(len(slots) / size))]
            samples[slots] = np.concatenate(rounds)[:len(slots)] if rounds else []
        return datasets.astype(np.int64), samples

    def lookup(self, position):
        """(epoch, slot in the epoch, dataset id, sample id) of a stream position."""
        epoch, slot = divmod(int(position), self.epoch_length)
        datasets, samples = self.epoch(epoch)
        return epoch, slot, int(datasets[slot]), int(samples[slot])


# ----------------------------------------------------------------------------- one example (numpy)
class ExampleMaker:
    """Stream position -> (normalised image, label maps); what the tf.data map runs in numpy.

    train: positions go through the EpochPlan with augmentation; val: position = sample number in
    the concatenated val datasets, resize + pad only.
    """

    def __init__(self, cfg, split="train", num_replicas=1):
        self.split = split
        self.size = int(cfg.DATA.IMAGE_SIZE)
        self.seed = int(cfg.DATA.SEED)
        self.strict = bool(cfg.DATA.STRICT)
        self.mean, self.std, self.channel_order = cfg.DATA.MEAN, cfg.DATA.STD, cfg.DATA.CHANNEL_ORDER
        self.label_kwargs = label_kwargs(cfg.DATA)
        distill = cfg.TRAIN.get("DISTILL", {})
        self.teacher = TeacherCache(teacher_cache_folder(cfg)) if split == "train" and distill.get("TEACHER") else None
        self.label_keys = LABEL_KEYS + (TEACHER_KEYS if self.teacher else ())
        self._failures_in_a_row = 0   # a fuse, so that all-bad data cannot make the pipeline spin forever
        specs = dataset_specs(cfg, split)
        self.datasets = [_open_dataset(spec, cfg, split) for spec in specs]
        # images of datasets marked {"teacher": False} get no teacher targets (mask 0), as synthetic ones
        self.without_teacher = {dataset.image_path(i) for spec, dataset in zip(specs, self.datasets)
                                if spec.get("teacher", True) is False for i in range(len(dataset))}
        if split == "train":
            self.aug_cfg = cfg.DATA.AUG
            self.global_batch = int(cfg.TRAIN.BATCH_SIZE) * int(num_replicas)
            self.steps_per_epoch = _steps_per_epoch(cfg, sum(len(d) for d in self.datasets), self.global_batch)
            ratios = [float(spec.get("ratio", 1.0)) for spec in specs]
            self.plan = EpochPlan([len(d) for d in self.datasets], ratios,
                                  self.steps_per_epoch * self.global_batch, self.seed)
        else:
            self.aug_cfg = None
            self.offsets = np.cumsum([0] + [len(d) for d in self.datasets])

    def __len__(self):
        """Positions in one epoch (train) or in the whole split (val)."""
        return self.plan.epoch_length if self.split == "train" else int(self.offsets[-1])

    def locate(self, position):
        """(epoch, slot, dataset, sample index) of a position."""
        if self.split == "train":
            return self.plan.lookup(position)
        d = int(np.searchsorted(self.offsets, position, side="right")) - 1
        return 0, int(position), d, int(position - self.offsets[d])

    def describe(self, position):
        _, _, d, index = self.locate(position)
        return self.datasets[d].describe(index)

    def example(self, position):
        """(image float32 (S, S, 3), labels dict of float32 (S, S)); raises on a bad sample."""
        epoch, slot, d, index = self.locate(position)
        dataset = self.datasets[d]
        image, polygons, ignore = dataset.load(index, epoch)
        image_size = image.shape[:2]
        rng = synth.make_rng((self.seed, _SAMPLE_STREAM, epoch, slot))
        image, polygons, ignore, info = augment(image, polygons, ignore, self.aug_cfg, self.size, rng,
                                                return_info=True)
        labels = make_label_maps(polygons, ignore, self.size, self.size, **self.label_kwargs)
        if not dataset.labelled:   # no annotations: nothing is known to be text or background
            labels["mask"] = np.zeros_like(labels["mask"])
            labels["thresh_mask"] = np.zeros_like(labels["thresh_mask"])
        if self.teacher is not None:
            labels.update(self._teacher_maps(dataset.image_path(index), image_size, info))
        return normalize(image, self.mean, self.std, self.channel_order), labels

    def _teacher_maps(self, image_path, image_size, info):
        if image_path is None or image_path in self.without_teacher:
            return empty_teacher_maps((self.size, self.size))
        probability, threshold, cached_size = self.teacher.read(image_path)
        if tuple(cached_size) != tuple(image_size):
            raise ValueError(f"teacher maps of {image_path} were made for a {cached_size} image, it is {image_size}")
        return warp_teacher_maps(probability, threshold, image_size, info["matrix"], (self.size, self.size),
                                 info["valid_size"])

    def example_or_skip(self, position):
        """example() plus ok flag; bad samples are logged and flagged (strict: raised, naming the file)."""
        try:
            image, labels = self.example(position)
            self._failures_in_a_row = 0
            return (image, *(labels[k].astype(np.float32, copy=False) for k in self.label_keys), True)
        except Exception as err:  # noqa: BLE001 -- one bad file must never stop a long training run
            name = self.describe(position)
            if self.strict:
                raise ValueError(f"bad sample {name}: {type(err).__name__}: {err}") from err
            log.warning("skipping bad sample %s: %s: %s", name, type(err).__name__, err)
            self._failures_in_a_row += 1
            if self._failures_in_a_row >= MAX_FAILURES_IN_A_ROW:  # the data, not a file, is broken
                raise RuntimeError(f"{self._failures_in_a_row} samples in a row failed, the last one {name}: "
                                   f"{type(err).__name__}: {err}") from err
            blank = np.zeros((self.size, self.size), np.float32)
            return (np.zeros((self.size, self.size, 3), np.float32), *(blank for _ in self.label_keys), False)


def teacher_cache_folder(cfg):
    """The cache folder of cfg.TRAIN.DISTILL's teacher (see db_tf.data.teacher_maps)."""
    distill = cfg.TRAIN.DISTILL
    short_side = int(distill.SHORT_SIDE) or int(presets.read_metadata(distill.TEACHER)["preprocess"]["short_side"])
    return Path(distill.CACHE_DIR) / teacher_folder_name(distill.TEACHER, presets.weights_path(distill.TEACHER),
                                                         short_side)


def train_image_paths(cfg):
    """Image files of the file datasets of cfg.DATA.TRAIN that the teacher labels (all but synthetic ones and those
    marked {"teacher": False}): what a teacher cache must cover, in order."""
    paths = []
    for spec in dataset_specs(cfg, "train"):
        if spec.get("format") == "synth" or spec.get("teacher", True) is False:
            continue
        dataset = _open_dataset(spec, cfg, "train")
        paths += [dataset.image_path(i) for i in range(len(dataset))]
    return list(dict.fromkeys(paths))


def _steps_per_epoch(cfg, num_samples, global_batch):
    configured = int(cfg.TRAIN.STEPS_PER_EPOCH)
    return configured if configured > 0 else max(1, num_samples // global_batch)


def steps_per_epoch(cfg, num_replicas=1):
    """Global steps in one training epoch (TRAIN.STEPS_PER_EPOCH, or one pass over the samples)."""
    if int(cfg.TRAIN.STEPS_PER_EPOCH) > 0:
        return int(cfg.TRAIN.STEPS_PER_EPOCH)
    total = 0
    for spec in dataset_specs(cfg, "train"):
        if spec.get("format") == "synth":
            total += int(spec.get("num", cfg.DATA.SYNTH.NUM))
        elif spec.get("format") == "images":
            total += len(ImageFolderDataset(spec["images"], spec.get("select")))
        else:
            total += len(readers.read_dataset(spec, strict=bool(cfg.DATA.STRICT)))
    return max(1, total // (int(cfg.TRAIN.BATCH_SIZE) * int(num_replicas)))


# ----------------------------------------------------------------------------- tf.data
def build_dataset(cfg, split="train", input_context=None, start_step=0, maker=None):
    """tf.data.Dataset of (images float32 (B, S, S, 3), labels dict of float32 (B, S, S)).

    split: "train" (infinite, augmented, see the module docstring) or "val" (one pass, resize + pad).
    input_context: the tf.distribute.InputContext from distribute_datasets_from_function (None for a
    single replica). start_step: first global step to produce (train; for exact resume).
    maker: an ExampleMaker to reuse (tests, benchmarks); built from cfg when None.
    """
    replicas = input_context.num_replicas_in_sync if input_context else 1
    pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    per_replica = int(cfg.TRAIN.BATCH_SIZE)
    if replicas % pipelines:
        raise ValueError(f"{replicas} replicas cannot be split evenly over {pipelines} input pipelines")
    maker = maker or ExampleMaker(cfg, split, replicas)
    if split == "train":
        positions = _train_positions(per_replica * replicas, per_replica * replicas // pipelines, pipeline_id,
                                     int(start_step))
    else:
        positions = tf.data.Dataset.range(len(maker)).shard(pipelines, pipeline_id)
    workers = int(cfg.DATA.NUM_WORKERS)
    parallel = tf.data.AUTOTUNE if workers < 0 else max(1, workers)
    dataset = positions.map(functools.partial(_tf_example, maker=maker), num_parallel_calls=parallel,
                            deterministic=True)
    dataset = dataset.filter(_is_ok).map(_without_flag)
    dataset = dataset.batch(per_replica, drop_remainder=split == "train")
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF  # sharded above
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def _train_positions(global_batch, chunk, pipeline_id, start_step):
    """Infinite stream of this pipeline's positions: its chunk of every global step from start_step."""
    @tf.autograph.experimental.do_not_convert
    def position(q):
        step = start_step + q // chunk
        return step * global_batch + pipeline_id * chunk + q % chunk

    return tf.data.Dataset.counter().map(position)


# plain graph functions: AutoGraph has nothing to convert in them (and would re-read this file's source)
@tf.autograph.experimental.do_not_convert
def _is_ok(image, labels, ok):
    return ok


@tf.autograph.experimental.do_not_convert
def _without_flag(image, labels, ok):
    return image, labels


@tf.autograph.experimental.do_not_convert
def _tf_example(position, maker):
    size, keys = maker.size, maker.label_keys
    outputs = tf.numpy_function(maker.example_or_skip, [position], [tf.float32] * (1 + len(keys)) + [tf.bool],
                                stateful=False)
    image = tf.ensure_shape(outputs[0], (size, size, 3))
    labels = {key: tf.ensure_shape(value, (size, size)) for key, value in zip(keys, outputs[1:-1])}
    return image, labels, tf.ensure_shape(outputs[-1], ())
