"""Input-pipeline benchmark: is the data fast enough to keep an R18-DB train step busy?

    python bench/bench_pipeline.py [--size 640] [--batch 8] [--steps 6] [--no-model] [--data auto|synth]

Measures, and prints how:
  (0) the synthetic generator alone: images/s of db_tf.synth.generate at size x size, one thread;
      and the per-sample cost of each pipeline stage (read, augment, label maps, normalise), one
      thread, on the benchmark data;
  (a) the tf.data pipeline alone (build_dataset "train", cfg.DATA.NUM_WORKERS = AUTOTUNE): samples/s
      over `--pipeline-batches` batches after 3 warm-up batches, on ICDAR 2015 train from
      ../shared/data when present (unless --data synth), else on synthetic text (the printout says
      which);
  (b) an R18-DB (resnet18 + FPN, 256 channels) train step (DBNet.train_step, SGD, DBLoss) at
      size x size, batch `--batch`, fed one cached batch from memory: s/step and samples/s,
      median over `--steps` steps after 2 warm-up steps;
  (c) the same train step fed by the pipeline: time per step split into waiting for the next batch
      (iterator) and the step itself; the waiting share is the input-bound part. The pipeline's
      worker threads run concurrently with the step and share the same cores, so (c)'s step time
      can exceed (b)'s: that slowdown is also input cost.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

ICDAR = REPO.parent / "shared" / "data" / "icdar2015_train"


def configure(size, batch, data="auto"):
    from db_tf.config import load_config

    cfg = load_config()
    cfg.DATA.IMAGE_SIZE = size
    cfg.TRAIN.BATCH_SIZE = batch
    cfg.DATA.NUM_WORKERS = -1
    if data != "synth" and (ICDAR / "imgs").is_dir():
        cfg.DATA.TRAIN = [{"format": "icdar2015", "images": str(ICDAR / "imgs"), "labels": str(ICDAR / "gts")}]
        source = f"ICDAR 2015 train ({ICDAR})"
    else:
        cfg.DATA.TRAIN = []
        source = "synthetic scene text" + ("" if data == "synth" else " (../shared/data/icdar2015_train not found)")
    return cfg, source


def bench_generator(size, count=30):
    from db_tf import synth

    synth.generate((0, 0), size, size)  # font / photo caches
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(count):
        synth.generate((1, i), size, size)
    per_image = (time.perf_counter() - start) / count
    cpu = (time.process_time() - cpu_start) / count
    print(f"(0) synthetic generator: {per_image * 1e3:.1f} ms wall ({cpu * 1e3:.1f} ms CPU) per {size}x{size} image "
          f"= {1 / per_image:.1f} images/s (one thread, mean of {count}, mixed backgrounds/effects, word level)")


def bench_stages(cfg, count=24):
    from db_tf.data.augment import augment
    from db_tf.data.labels import label_kwargs, make_label_maps
    from db_tf.data.pipeline import ExampleMaker
    from db_tf.preprocess import normalize
    from db_tf.synth import make_rng

    maker = ExampleMaker(cfg)
    size = maker.size
    totals = np.zeros(4)
    for position in range(count):
        epoch, slot, d, index = maker.locate(position)
        t0 = time.perf_counter()
        image, polygons, ignore = maker.datasets[d].load(index, epoch)
        t1 = time.perf_counter()
        image, polygons, ignore = augment(image, polygons, ignore, cfg.DATA.AUG, size, make_rng((0, position)))
        t2 = time.perf_counter()
        make_label_maps(polygons, ignore, size, size, **label_kwargs(cfg.DATA))
        t3 = time.perf_counter()
        normalize(image, cfg.DATA.MEAN, cfg.DATA.STD, cfg.DATA.CHANNEL_ORDER)
        t4 = time.perf_counter()
        totals += (t1 - t0, t2 - t1, t3 - t2, t4 - t3)
    ms = totals / count * 1e3
    print(f"    per-sample stages (one thread, mean of {count}): load {ms[0]:.1f} ms, augment {ms[1]:.1f} ms, "
          f"label maps {ms[2]:.1f} ms, normalise {ms[3]:.1f} ms; total {ms.sum():.1f} ms")


def bench_pipeline(cfg, batches):
    from db_tf.data.pipeline import build_dataset

    iterator = iter(build_dataset(cfg))
    for _ in range(3):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    elapsed = time.perf_counter() - start
    samples = batches * cfg.TRAIN.BATCH_SIZE
    print(f"(a) pipeline alone: {samples / elapsed:.1f} samples/s ({samples} samples in {elapsed:.1f} s after "
          f"3 warm-up batches; AUTOTUNE parallelism on {os.cpu_count()} cores)")
    return samples / elapsed


def build_train_step(cfg):
    import keras
    import tensorflow as tf

    from db_tf.losses import build_loss
    from db_tf.models import build_model

    model = build_model(cfg.MODEL)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=cfg.TRAIN.LR, momentum=cfg.TRAIN.MOMENTUM),
                  loss=build_loss(cfg.TRAIN.LOSS))
    size = cfg.DATA.IMAGE_SIZE
    model(tf.zeros((1, size, size, 3)), training=False)
    model.optimizer.build(model.trainable_variables)
    return tf.function(model.train_step), model


def bench_train_step(cfg, steps):
    import tensorflow as tf

    from db_tf.data.pipeline import build_dataset

    step, model = build_train_step(cfg)
    images, labels = next(iter(build_dataset(cfg)))
    images, labels = tf.identity(images), {k: tf.identity(v) for k, v in labels.items()}
    times, cpu_times = [], []
    for i in range(steps + 2):
        start, cpu_start = time.perf_counter(), time.process_time()
        logs = step((images, labels))
        float(logs["total_loss"])  # wait for the step
        if i >= 2:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    median = float(np.median(times))
    batch = cfg.TRAIN.BATCH_SIZE
    print(f"(b) R18-DB train step from memory: {median:.2f} s/step = {batch / median:.2f} samples/s "
          f"(batch {batch}, {cfg.DATA.IMAGE_SIZE}x{cfg.DATA.IMAGE_SIZE}, median of {steps} after 2 warm-up, "
          f"steps {', '.join(f'{t:.2f}' for t in times)}; {np.median(cpu_times):.2f} CPU-s per step)")
    return step, median


def bench_fed(cfg, step, steps, memory_step):
    from db_tf.data.pipeline import build_dataset

    iterator = iter(build_dataset(cfg, start_step=100))
    waits, computes = [], []
    cpu_start = None
    for i in range(steps + 2):
        if i == 2:
            cpu_start = time.process_time()
        start = time.perf_counter()
        batch = next(iterator)
        ready = time.perf_counter()
        logs = step(batch)
        float(logs["total_loss"])
        done = time.perf_counter()
        if i >= 2:
            waits.append(ready - start)
            computes.append(done - ready)
    cpu_per_step = (time.process_time() - cpu_start) / steps
    wait, compute = float(np.sum(waits)), float(np.sum(computes))
    per_step = (wait + compute) / steps
    print(f"(c) train step fed by the pipeline: {per_step:.2f} s/step, of which waiting for input "
          f"{wait / steps:.2f} s ({100 * wait / (wait + compute):.1f} % of step time) and the step "
          f"{compute / steps:.2f} s ({compute / steps / memory_step:.2f}x the from-memory step: the pipeline "
          f"threads share the cores); {cpu_per_step:.2f} CPU-s per step (step + pipeline); {steps} steps "
          f"after 2 warm-up")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6, help="timed train steps for (b) and (c)")
    parser.add_argument("--pipeline-batches", type=int, default=12, help="timed batches for (a)")
    parser.add_argument("--no-model", action="store_true", help="skip (b) and (c)")
    parser.add_argument("--data", choices=("auto", "synth"), default="auto",
                        help="auto: ICDAR 2015 from ../shared when present, else synthetic; synth: synthetic")
    args = parser.parse_args()

    cfg, source = configure(args.size, args.batch, args.data)
    print(f"data: {source}; {args.size}x{args.size}, batch {args.batch}, default augmentation; "
          f"{os.cpu_count()} CPU cores, load average at start {os.getloadavg()[0]:.1f} (other jobs skew wall times)")
    bench_generator(args.size)
    bench_stages(cfg)
    bench_pipeline(cfg, args.pipeline_batches)
    if not args.no_model:
        step, memory_step = bench_train_step(cfg, args.steps)
        bench_fed(cfg, step, args.steps, memory_step)


if __name__ == "__main__":
    main()
