"""Forward (inference) time of DBNet models in one process, so they can be compared.

    python bench/bench_forward.py                       # R18-DB and R50-DB, 736x1280, batch 1
    python bench/bench_forward.py --models resnet18:asf --runs 20 --jit

Each model runs in inference mode (probability map only, no threshold branch) under tf.function
with a fixed input signature; after --warmup untimed calls, --runs calls are timed and the median,
min and max are printed. Weights are random (the timing does not depend on them). Numbers from a
shared machine are noisy: compare models within one run, and prefer the median.
"""
import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from db_tf.models import DBNet  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet18:fpn,resnet50:fpn",
                        help="comma-separated backbone:neck pairs (default: %(default)s)")
    parser.add_argument("--height", type=int, default=736)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (the first one traces)")
    parser.add_argument("--runs", type=int, default=10, help="timed calls")
    parser.add_argument("--jit", action="store_true", help="tf.function(jit_compile=True) (XLA)")
    return parser.parse_args()


def trainable_parameters(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def time_model(backbone, neck, args):
    model = DBNet(backbone, neck)
    spec = tf.TensorSpec((args.batch, args.height, args.width, 3), tf.float32)
    forward = tf.function(lambda images: model(images, training=False), input_signature=[spec],
                          jit_compile=args.jit)
    images = tf.constant(np.random.default_rng(0).standard_normal(spec.shape).astype(np.float32))
    for _ in range(args.warmup):
        forward(images).numpy()
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        forward(images).numpy()  # .numpy() waits for the result
        times.append((time.perf_counter() - start) * 1000.0)
    return model, times


def main():
    args = parse_args()
    print("command:", " ".join([Path(sys.executable).name] + sys.argv))
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs visible, inter/intra op threads "
          f"{tf.config.threading.get_inter_op_parallelism_threads()}/"
          f"{tf.config.threading.get_intra_op_parallelism_threads()} (0 = TF default), jit={args.jit}")
    print(f"input {args.batch}x{args.height}x{args.width}x3 float32, inference mode (probability map only), "
          f"{args.warmup} warm-up + {args.runs} timed runs")
    for pair in args.models.split(","):
        backbone, _, neck = pair.partition(":")
        model, times = time_model(backbone, neck or "fpn", args)
        print(f"{backbone}+{neck or 'fpn'}: {trainable_parameters(model):,} trainable parameters "
              f"({model.count_params():,} with BN statistics); forward ms: median {statistics.median(times):.1f}, "
              f"min {min(times):.1f}, max {max(times):.1f}")


if __name__ == "__main__":
    main()
