"""Training throughput of R18-DB through the real training path (model.fit + DBNet.train_step + SGD).

    python bench/bench_train.py [--size 640] [--batch 8] [--rounds 3] [--steps 2] [--backbone resnet18]
                                [--data auto|synth]

What it measures, and how (after one untimed step that traces the train step):
  (a) model.fit fed ONE cached batch from memory (Dataset.from_tensors(batch).repeat()): the pure step
      time T_compute;
  (b) model.fit fed by the training pipeline (build_dataset "train", DATA.NUM_WORKERS = AUTOTUNE): the step
      time T_step. Keras fetches the batch inside the traced step, so the wait is not observable on its own:
      the input share is (T_step - T_compute) / T_step, which counts waiting for the batch AND the slowdown
      from the pipeline threads using the same cores while the step runs.
      (a) and (b) alternate, --rounds times --steps timed steps each (the first step of every fit call is
      not timed: it starts the iterator), so that load from other processes hits both alike; medians;
  (c) the pipeline alone (no model running): batches/s over 10 batches after 2 warm-up batches
      (prefetched batches are part of the count, so this is an upper bound over a short run).
  images/s = batch / T_step (training as it would run) and batch / T_compute (if input were free).
Per-step times come from a Keras callback (on_train_batch_begin -> on_train_batch_end). Data: ICDAR 2015 train
from ../shared/data when present (unless --data synth), else synthetic text; the printout says which.
The machine's load average is printed too: other processes sharing the cores slow every number down.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import keras  # noqa: E402
import numpy as np  # noqa: E402

ICDAR = REPO.parent / "shared" / "data" / "icdar2015_train"


def configure(args):
    from db_tf.config import load_config

    cfg = load_config()
    cfg.DATA.IMAGE_SIZE, cfg.TRAIN.BATCH_SIZE, cfg.MODEL.BACKBONE = args.size, args.batch, args.backbone
    cfg.DATA.NUM_WORKERS = -1
    if args.data != "synth" and (ICDAR / "imgs").is_dir():
        cfg.DATA.TRAIN = [{"format": "icdar2015", "images": str(ICDAR / "imgs"), "labels": str(ICDAR / "gts")}]
        source = f"ICDAR 2015 train ({ICDAR})"
    else:
        cfg.DATA.TRAIN = []
        source = "synthetic scene text" + ("" if args.data == "synth" else " (../shared ICDAR 2015 not found)")
    return cfg, source


class StepTimer(keras.callbacks.Callback):
    """Records the wall time of every train step."""

    def __init__(self):
        super().__init__()
        self.times, self.start = [], 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def timed_fit(model, dataset, steps):
    """Step times of `steps` steps, after one untimed step (iterator start; tracing on the first call)."""
    timer = StepTimer()
    model.fit(dataset, epochs=1, steps_per_epoch=steps + 1, callbacks=[timer], verbose=0, shuffle=False)
    return timer.times[1:], timer.times[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per round and per feed")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--data", choices=("auto", "synth"), default="auto")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from db_tf.data.pipeline import build_dataset
    from db_tf.losses import build_loss
    from db_tf.training.optim import build_optimizer
    from db_tf.training.run import build_dbnet, model_kwargs_from_config

    cfg, source = configure(args)
    print(f"R18-DB training benchmark: backbone {args.backbone}, {args.size}x{args.size}, batch {args.batch}, "
          f"SGD (coupled L2), fp32, 1 replica; data: {source}")
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} logical CPUs, load average before: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    model = build_dbnet(model_kwargs_from_config(cfg.MODEL))
    model.compile(optimizer=build_optimizer(cfg.TRAIN, total_steps=10_000), loss=build_loss(cfg.TRAIN.LOSS))

    # (c) first: the pipeline alone, then reuse one of its batches for (a).
    iterator = iter(build_dataset(cfg, "train"))
    for _ in range(2):
        batch = next(iterator)
    count = 10
    start = time.perf_counter()
    for _ in range(count):
        next(iterator)
    pipeline_time = (time.perf_counter() - start) / count
    del iterator

    cached = tf.data.Dataset.from_tensors(batch).repeat()
    _, first = timed_fit(model, cached, 0)
    compute_times, step_times = [], []
    for _ in range(args.rounds):
        compute_times += timed_fit(model, cached, args.steps)[0]
        step_times += timed_fit(model, build_dataset(cfg, "train"), args.steps)[0]
    compute, step = float(np.median(compute_times)), float(np.median(step_times))
    share = max(0.0, (step - compute) / step)
    print(f"(a) step on a cached batch:   {compute:.2f} s/step = {args.batch / compute:.2f} images/s "
          f"(first step incl. tracing: {first:.1f} s)")
    print(f"(b) step fed by the pipeline: {step:.2f} s/step = {args.batch / step:.2f} images/s; "
          f"input share of the step time (b - a) / b = {100 * share:.0f}%")
    print(f"(c) pipeline alone: {pipeline_time:.2f} s/batch = {args.batch / pipeline_time:.1f} images/s")
    print(f"fastest steps (least disturbed by other processes): (a) {min(compute_times):.2f} s, "
          f"(b) {min(step_times):.2f} s = {args.batch / min(step_times):.2f} images/s")
    print(f"medians over {len(step_times)} steps each; all (a) {[round(t, 2) for t in compute_times]}, all (b) "
          f"{[round(t, 2) for t in step_times]}; load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
