"""File size and CPU latency of one model in every export format, side by side from one run.

    python bench/bench_export.py                         # shipped ppocrv4_mobile (random R18-DB when absent)
    python bench/bench_export.py --weights W --sizes 736x1280 640x640 --repeats 20
    python bench/bench_export.py --val                   # + ICDAR 2015 val hmean of TFLite float32 vs int8

The model is exported (export.py's code) to a temporary folder; every runtime then gets the same
float32 RGB image (batch 1, a synthetic text image of db_tf.synth, so the maps have text to agree on):
    Keras        the DBNet under tf.function (normalised input), as TextDetector runs it
    SavedModel   tf.saved_model.load(...).signatures["serving_float"] (normalisation inside)
    ONNX Runtime CPUExecutionProvider, intra-op threads 2
    TFLite       float32 and dynamic-range int8, 2 threads (LiteRT when installed, else tf.lite)
TensorFlow uses the machine's 2 cores. Each runtime gets --warmup untimed then --repeats timed calls in
a block, the runtimes in turn, and the whole cycle twice (see time_in_blocks); the median is printed.
The SavedModel's image-bytes signature (JPEG decode + resize + normalise + network) is timed on a
720x1280 JPEG as well.

--val (needs ../shared/data/icdar2015_train): images img_901..img_1000 are resized by the model's policy,
run through Keras, TFLite float32 and TFLite int8, post-processed with the model's settings and scored
with the ICDAR 2015 protocol (db_tf.metrics); prints P / R / hmean and ms per image of each.
"""
import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from db_tf import preprocess as pre  # noqa: E402
from db_tf import synth  # noqa: E402
from db_tf.detector import TextDetector  # noqa: E402
from db_tf.export import export  # noqa: E402
from db_tf.export.tflite import TFLiteRunner, interpreter_class  # noqa: E402
from db_tf.presets import PRESETS_DIR, list_presets  # noqa: E402

VAL_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "icdar2015_train"
VAL_IDS = range(901, 1001)
THREADS = 2


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="preset name / folder / .json (default ppocrv4_mobile, else random R18)")
    parser.add_argument("--sizes", nargs="+", default=["736x1280", "640x640"], help="HxW inputs")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=8, help="timed calls per runtime and cycle")
    parser.add_argument("--val", action="store_true", help="also ICDAR 2015 val hmean, TFLite float32 vs int8")
    parser.add_argument("--keep", help="write the exports to this folder instead of a temporary one")
    return parser.parse_args()


def load_detector(weights):
    """(TextDetector, name, the .weights.h5 file or None for a random model)."""
    from db_tf.presets import PresetError, weights_path

    if weights or "ppocrv4_mobile" in list_presets():
        weights = weights or "ppocrv4_mobile"
        detector = TextDetector(weights=weights)
        try:
            weights_file = weights_path(weights)
        except PresetError:  # a bare .weights.h5
            weights_file = Path(weights)
        return detector, detector.meta.get("name") or weights_file.name.split(".")[0], weights_file
    from db_tf.models import DBNet
    print(f"(no shipped model in {PRESETS_DIR}: benchmarking a random-weight R18-DB)")
    return TextDetector(model=DBNet(backbone="resnet18")), "r18_random", None


def folder_size(path):
    path = Path(path)
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def build_runners(detector, name, weights_file, folder):
    """{label: (callable float32 RGB (1, H, W, 3) -> map, file size in bytes)}; failures are reported."""
    model, settings = detector.model, detector.settings
    keras_forward = tf.function(lambda x: model(x, training=False),
                                input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])

    def keras_call(image):
        normalized = pre.normalize(image, settings["mean"], settings["std"], settings["channel_order"])
        return keras_forward(normalized).numpy()

    # the .weights.h5 file; for a random model, what its float32 weights would take
    keras_bytes = weights_file.stat().st_size if weights_file else sum(int(np.prod(v.shape)) * 4 for v in model.weights)
    runners = {"Keras (tf.function)": (keras_call, keras_bytes)}
    saved = None
    try:
        (saved,) = export(model, settings, folder / "saved_model", "saved_model", name=name, overwrite=True)
        signature = tf.saved_model.load(str(saved)).signatures["serving_float"]
        runners["SavedModel serving_float"] = (
            lambda image: signature(images=tf.constant(image))["probability"].numpy(), folder_size(saved))
    except Exception as exc:  # report and go on with the other formats
        print(f"SavedModel export failed: {exc}")
    try:
        import onnxruntime
        (onnx_path,) = export(model, settings, folder, "onnx", name=name, overwrite=True)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
        session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        runners[f"ONNX Runtime ({THREADS} threads)"] = (lambda image: session.run(None, {"images": image})[0],
                                                        folder_size(onnx_path))
    except Exception as exc:
        print(f"ONNX export / onnxruntime failed: {exc}")
    for quantization in ("float32", "dynamic_int8"):
        try:
            (path,) = export(model, settings, folder, "tflite", name=name, overwrite=True,
                             quantizations=(quantization,))
            runners[f"TFLite {quantization} ({THREADS} threads)"] = (TFLiteRunner(path, THREADS), folder_size(path))
        except Exception as exc:
            print(f"TFLite {quantization} export failed:\n{exc}")
    return runners, saved


def time_in_blocks(runners, image, warmup, repeats, cycles=2):
    """Median ms per runtime: blocks of ``repeats`` calls per runtime, all runtimes in turn, ``cycles`` times.

    Blocks rather than alternating single calls: TensorFlow's and the other runtimes' worker threads
    keep spinning for a while after a call and would slow down whichever runtime runs next; cycling
    the blocks spreads slow phases of a shared machine over all runtimes.
    """
    times = {label: [] for label in runners}
    for _ in range(cycles):
        for label, (run, _) in runners.items():
            for _ in range(warmup):
                run(image)
            for _ in range(repeats):
                start = time.perf_counter()
                run(image)
                times[label].append(time.perf_counter() - start)
            time.sleep(0.5)  # let the previous runtime's threads go idle
    return {label: statistics.median(t) * 1000 for label, t in times.items()}


def parity(runners, image):
    """Max |runtime - Keras| of the probability map on one input."""
    reference = runners["Keras (tf.function)"][0](image)
    return {label: float(np.abs(run(image) - reference).max()) for label, (run, _) in runners.items()}


def bytes_signature_latency(saved, warmup, repeats):
    import cv2
    image = synth.generate(1, height=720, width=1280).image
    jpeg = tf.constant([cv2.imencode(".jpg", image[..., ::-1])[1].tobytes()])
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    for _ in range(warmup):
        signature(image_bytes=jpeg)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        signature(image_bytes=jpeg)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def validate(detector, runners):
    """ICDAR 2015 val (img_901..img_1000) P / R / hmean per runtime, with the model's settings."""
    from db_tf import metrics
    from db_tf.data.image_io import read_image
    from db_tf.data.readers import read_annotation

    settings = detector.settings
    samples = []
    for i in VAL_IDS:
        image = read_image(VAL_DIR / "imgs" / f"img_{i}.jpg")
        gt, ignore, _ = read_annotation(VAL_DIR / "gts" / f"gt_img_{i}.txt", "icdar2015")
        resized, _ = pre.resize_for_inference(image, settings["short_side"], settings["max_side"], settings["size"])
        samples.append((resized.astype(np.float32)[None], image.shape[:2], gt, ignore))
    results = {}
    for label in [k for k in runners if k.startswith(("Keras", "TFLite"))]:
        run = runners[label][0]
        evaluated, elapsed = [], 0.0
        for network_input, original_size, gt, ignore in samples:
            start = time.perf_counter()
            probability = run(network_input)[0, :, :, 0]
            elapsed += time.perf_counter() - start
            found = detector.postprocess({"probability": probability}, original_size)
            evaluated.append((gt, ignore, found.polygons))
        totals, _ = metrics.evaluate(evaluated)
        results[label] = (totals, elapsed * 1000 / len(samples))
    return results


def main():
    args = parse_args()
    detector, name, weights_file = load_detector(args.weights)
    print(f"model {name}: {detector.model.count_params() / 1e6:.2f} M weights; {platform.processor() or 'cpu'}, "
          f"{os.cpu_count()} cores, TF {tf.__version__}, TFLite interpreter {interpreter_class().__module__}; "
          f"load average {os.getloadavg()[0]:.1f} (other processes share the cores: compare within one run)")
    with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        runners, saved = build_runners(detector, name, weights_file, folder)
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
        images = {(h, w): synth.generate(0, height=h, width=w).image.astype(np.float32)[None] for h, w in sizes}
        table = {size: time_in_blocks(runners, images[size], args.warmup, args.repeats) for size in sizes}
        differences = parity(runners, images[sizes[0]])
        print(f"\nmedian latency over 2 cycles of {args.warmup} warm-up + {args.repeats} timed calls per runtime, "
              f"batch 1, "
              f"one synthetic text image (db_tf.synth) per size; max diff = max |map - Keras map| on the "
              f"{sizes[0][0]}x{sizes[0][1]} one")
        header = f"{'runtime':34s} {'file MB':>8s} " + " ".join(f"{f'{h}x{w} ms':>12s}" for h, w in sizes)
        print(header + f" {'max diff':>10s}\n" + "-" * (len(header) + 11))
        for label, (_, size) in runners.items():
            print(f"{label:34s} {size / 1e6:8.2f} " + " ".join(f"{table[s][label]:12.1f}" for s in sizes)
                  + f" {differences[label]:10.1e}")
        print(f"load average after timing: {os.getloadavg()[0]:.1f}")
        if saved is not None:
            print(f"\nSavedModel serving_default (image_bytes: 720x1280 JPEG -> decode, resize to the policy, "
                  f"normalise, network): {bytes_signature_latency(saved, args.warmup, args.repeats):.1f} ms")
        if args.val:
            if not VAL_DIR.is_dir():
                print(f"\n--val: {VAL_DIR} is absent, skipped")
            elif name == "r18_random":
                print("\n--val: random weights have no meaningful hmean, skipped")
            else:
                keys = ("short_side", "max_side", "thresh", "box_thresh", "unclip_ratio")
                print(f"\nICDAR 2015 val (img_901..img_1000 of the train split), settings "
                      f"{ {k: detector.settings[k] for k in keys} }")
                for label, (totals, ms) in validate(detector, runners).items():
                    print(f"  {label:34s} P {totals['precision']:.4f}  R {totals['recall']:.4f}  "
                          f"hmean {totals['hmean']:.4f}  ({ms:.0f} ms per image, network only)")


if __name__ == "__main__":
    main()
