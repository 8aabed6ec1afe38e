"""Forward time of DBNet with the deformable ResNet-18 (DCNv2 in stages 3-5) beside the plain ResNet-18.

    python bench/bench_deform.py                        # 736x1280, batch 1, 10 timed runs per model
    python bench/bench_deform.py --models resnet50,deform_resnet50 --runs 5

Both models are built in one process and timed in alternation (A, B, A, B, ...) so that a shared machine's
load changes hit them alike; inference mode (probability map only) under tf.function with a fixed input
signature, random weights, with the offset convolutions drawn at random too (a zero-initialised one would
sample on the integer grid; the gather costs the same either way, this just keeps the test honest). Also
times one deformable layer against the plain 3x3 convolution it replaces, at the size of layer2's
feature map (stride 8), to show where the extra time goes. Prints medians, min and max.
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
from db_tf.models.deform_conv import ModulatedDeformConv2D  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet18,deform_resnet18", help="comma-separated backbones (FPN neck)")
    parser.add_argument("--height", type=int, default=736)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per model first (the first traces)")
    parser.add_argument("--runs", type=int, default=10, help="timed calls per model")
    return parser.parse_args()


def randomise_offsets(model, rng):
    """Offsets of about a pixel instead of the zero initialisation."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, ModulatedDeformConv2D):
            kernel = layer.conv_offset.kernel
            kernel.assign(rng.normal(0, 1 / np.sqrt(np.prod(kernel.shape[:3])), kernel.shape).astype(np.float32))


def interleaved_times(functions, inputs, warmup, runs):
    """{name: [ms, ...]} timing each function in turn, `runs` rounds."""
    for function in functions.values():
        for _ in range(warmup):
            function(inputs).numpy()
    times = {name: [] for name in functions}
    for _ in range(runs):
        for name, function in functions.items():
            start = time.perf_counter()
            function(inputs).numpy()   # .numpy() waits for the result
            times[name].append((time.perf_counter() - start) * 1000.0)
    return times


def report(times, reference):
    base = statistics.median(times[reference])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name}: median {median:.1f} ms (min {min(values):.1f}, max {max(values):.1f}), "
              f"{median / base:.2f}x {reference}")


def main():
    args = parse_args()
    print("command:", " ".join([Path(sys.executable).name] + sys.argv))
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs visible")
    rng = np.random.default_rng(0)
    spec = tf.TensorSpec((args.batch, args.height, args.width, 3), tf.float32)
    images = tf.constant(rng.standard_normal(spec.shape).astype(np.float32))
    models, functions = {}, {}
    for backbone in args.models.split(","):
        model = models[backbone] = DBNet(backbone)
        randomise_offsets(model, rng)
        functions[backbone] = tf.function(lambda x, model=model: model(x, training=False), input_signature=[spec])
    print(f"DBNet (FPN) forward, input {args.batch}x{args.height}x{args.width}x3, inference mode, "
          f"{args.warmup} warm-up + {args.runs} timed runs each, interleaved")
    report(interleaved_times(functions, images, args.warmup, args.runs), next(iter(functions)))

    # one layer2 3x3 convolution (128 channels at stride 8): plain vs deformable
    feature_spec = tf.TensorSpec((args.batch, args.height // 8, args.width // 8, 128), tf.float32)
    features = tf.constant(rng.standard_normal(feature_spec.shape).astype(np.float32))
    plain = keras.layers.Conv2D(128, 3, padding="same", use_bias=False)
    deformable = ModulatedDeformConv2D(128, 3)
    deformable(features)
    randomise_offsets(keras.Sequential([deformable]), rng)
    layer_functions = {"conv 3x3": tf.function(plain, input_signature=[feature_spec]),
                       "DCNv2 3x3": tf.function(deformable, input_signature=[feature_spec])}
    print(f"one layer2 3x3 convolution, input {tuple(feature_spec.shape)}:")
    report(interleaved_times(layer_functions, features, args.warmup, args.runs), "conv 3x3")


if __name__ == "__main__":
    main()
