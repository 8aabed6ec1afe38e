"""Where the distillation teacher's maps should come from: cached per image, or the teacher run on every crop.

    ICDAR2015_ROOT=... python bench/bench_distill.py --config configs/ppocrv4_ic15_distill.py --repeats 3

Measures, side by side in one process, per training step (a batch of TRAIN.BATCH_SIZE augmented crops):
  * the student's train step (forward + backward + update, the recipe's frozen parts and loss);
  * on the fly: the teacher's forward on the batch of crops (what each step would add);
  * cached: reading + warping the cached maps of the batch's images (what each step adds instead);
  * once per image for the cache: the teacher's forward at its own short side on a full training image.
The cache needs the maps of the images used here (python -m db_tf.tools.cache_teacher --config ...).
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def median_seconds(function, repeats):
    function()   # warm-up: tracing, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import tensorflow as tf

    from db_tf import pretrained
    from db_tf.config import load_config
    from db_tf.data.augment import augment
    from db_tf.data.image_io import read_image
    from db_tf.data.pipeline import ExampleMaker
    from db_tf.detector import TextDetector
    from db_tf.losses import build_loss
    from db_tf.training.optim import build_optimizer

    cfg = load_config(args.config, args.set)
    student, meta = pretrained.load_pretrained(cfg.MODEL.NAME)
    cfg.DATA.CHANNEL_ORDER, cfg.DATA.MEAN, cfg.DATA.STD = (meta["preprocess"][k] for k in ("channel_order", "mean",
                                                                                          "std"))
    maker = ExampleMaker(cfg, "train")
    batch = int(cfg.TRAIN.BATCH_SIZE)
    cached_positions = [p for p in range(len(maker)) if maker.teacher.has(maker.datasets[maker.locate(p)[2]]
                                                                           .image_path(maker.locate(p)[3]))][:batch]
    if len(cached_positions) < batch:
        parser.error(f"fewer than {batch} cached training images: build the cache first")
    examples = [maker.example(p) for p in cached_positions]
    images = np.stack([e[0] for e in examples])
    labels = {k: np.stack([e[1][k] for e in examples]) for k in examples[0][1]}

    if cfg.TRAIN.FREEZE:
        student.freeze_parts(cfg.TRAIN.FREEZE)
    if cfg.TRAIN.FREEZE_BN:
        student.freeze_batch_norm(cfg.TRAIN.FREEZE_BN_EXCEPT)
    student.compile(optimizer=build_optimizer(cfg.TRAIN, 1000), loss=build_loss(cfg.TRAIN.LOSS, cfg.TRAIN.DISTILL))
    step = tf.function(student.train_step)
    data = (tf.constant(images), {k: tf.constant(v) for k, v in labels.items()})
    train_step = median_seconds(lambda: step(data), args.repeats)

    teacher = TextDetector(weights=cfg.TRAIN.DISTILL.TEACHER, batch_size=batch)
    crops = np.stack([e[0] for e in examples])   # already normalised as the student's input; the same cost
    on_the_fly = median_seconds(lambda: teacher._forward(crops, True), args.repeats)

    def read_and_warp():
        for position in cached_positions:
            _, slot, d, index = maker.locate(position)
            path = maker.datasets[d].image_path(index)
            image, polygons, ignore = maker.datasets[d].load(index, 0)
            rng = np.random.default_rng(slot)
            _, _, _, info = augment(image, polygons, ignore, cfg.DATA.AUG, maker.size, rng, return_info=True)
            maker._teacher_maps(path, image.shape[:2], info)

    def augment_only():
        for position in cached_positions:
            _, slot, d, index = maker.locate(position)
            image, polygons, ignore = maker.datasets[d].load(index, 0)
            augment(image, polygons, ignore, cfg.DATA.AUG, maker.size, np.random.default_rng(slot), return_info=True)

    cached = median_seconds(read_and_warp, args.repeats) - median_seconds(augment_only, args.repeats)
    full_image = read_image(maker.datasets[0].image_path(0))
    per_image = median_seconds(lambda: teacher.predict_maps([full_image], return_maps=True), args.repeats)

    print(f"student train step (batch {batch}):             {train_step * 1000:8.0f} ms")
    print(f"on the fly: teacher forward on the {batch} crops:    {on_the_fly * 1000:8.0f} ms per step "
          f"({on_the_fly / train_step:.2f}x the train step)")
    print(f"cached: read + warp of {batch} samples' maps:      {cached * 1000:8.0f} ms per step "
          f"(in the input pipeline, parallel to the step)")
    print(f"cache build: teacher on one full image:        {per_image * 1000:8.0f} ms, once per image "
          f"(= {per_image / on_the_fly:.2f} on-the-fly steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
