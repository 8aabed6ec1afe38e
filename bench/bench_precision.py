"""bfloat16 vs float32 inference (TextDetector(precision=...)): forward speed side by side, and the ICDAR 2015
validation hmean of the fine-tuned presets in each precision.

    python bench/bench_precision.py speed                 # R18-DB and ppocrv4_mobile at 736x1280
    python bench/bench_precision.py speed --models ppocrv4_mobile --runs 6 --block 2
    python bench/bench_precision.py speed --savedmodel    # also SavedModel exports, fp32 vs bf16, side by side
    python bench/bench_precision.py hmean                 # ppocrv4_ic15 and ppocrv4_v6_ic15, img_901..1000
    python bench/bench_precision.py hmean --models ppocrv4_ic15 --limit 20

speed: one forward pass of a (1, 736, 1280, 3) batch to the probability map, as TextDetector runs it
(the frozen inference graph, db_tf.forward.InferenceGraph), float32 and bfloat16 taking turns in one process
(bench_ppocr.time_interleaved: rounds of --block back-to-back calls per engine, first call of each block
dropped), so load from other processes hits both alike. "r18" is DBNet ResNet-18 / FPN 256 with random
weights (speed does not depend on the values). Also printed: max |P_bf16 - P_fp32| on the timing input.
hmean: detect (each preset's own settings) on the 100 validation images in both precisions; precision,
recall, hmean per precision and the hmean difference; bfloat16 is worth it where it is faster and the
difference is small.
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load(name):
    from db_tf.models import DBNet
    from db_tf.presets import load_preset

    if name == "r18":
        return DBNet("resnet18", "fpn", inner_channels=256)
    return load_preset(name)[0]


def speed(args):
    import tensorflow as tf
    from bench_ppocr import time_interleaved

    from db_tf.forward import InferenceGraph
    from db_tf.models.precision import inference_copy

    height, width = args.size
    x = np.random.default_rng(0).normal(size=(1, height, width, 3)).astype(np.float32)
    for name in args.models:
        model = load(name)
        engines = {}
        for precision in ("float32", "bfloat16"):
            graph = InferenceGraph(inference_copy(model, precision), return_maps=False, freeze_weights=True)
            engines[precision] = lambda images, graph=graph: graph(tf.constant(images)).numpy()[0, :, :, 0]
            if args.savedmodel:
                engines[f"savedmodel {precision}"] = saved_model_engine(model, precision)
        difference = np.abs(engines["bfloat16"](x) - engines["float32"](x)).max()
        times = time_interleaved(engines, x, args.runs, args.warmup, args.block)
        medians = {k: float(np.median(v)) for k, v in times.items()}
        for prefix in ("", "savedmodel ") if args.savedmodel else ("",):
            fp32, bf16 = f"{prefix}float32", f"{prefix}bfloat16"
            print(f"{name} {height}x{width} {prefix or 'TextDetector graph '}: float32 {medians[fp32]:.0f} ms, "
                  f"bfloat16 {medians[bf16]:.0f} ms (median of {len(times[fp32])}); bf16/fp32 = "
                  f"{medians[bf16] / medians[fp32]:.2f} (min ratio {times[bf16].min() / times[fp32].min():.2f})",
                  flush=True)
        print(f"  max |P_bf16 - P_fp32| {difference:.3f}", flush=True)


def saved_model_engine(model, precision):
    """The serving_float signature of a SavedModel export of ``model`` in ``precision`` (float RGB 0..255 in;
    the timing input is noise either way)."""
    import tempfile

    import tensorflow as tf

    from db_tf.defaults import detector_defaults
    from db_tf.export.saved_model import write_saved_model
    from db_tf.models.precision import inference_copy

    folder = Path(tempfile.mkdtemp(prefix=f"bench_precision_{precision}_"))
    write_saved_model(inference_copy(model, precision), detector_defaults(), folder, signatures=("serving_float",))
    served = tf.saved_model.load(str(folder)).signatures["serving_float"]
    return lambda images: served(images=tf.constant(images))["probability"].numpy()[0, :, :, 0]


def hmean(args):
    from ic15_val import score, validation_samples

    from db_tf import TextDetector

    samples = list(validation_samples(args.data, limit=args.limit))
    for name in args.models:
        totals = {}
        for precision in args.precisions:
            detector = TextDetector.from_preset(name, precision=precision, batch_size=1)
            totals[precision] = score((detector.detect(image), gt, ignore) for _, image, gt, ignore in samples)
            t = totals[precision]
            print(f"{name} {precision}: precision {t['precision']:.4f} recall {t['recall']:.4f} "
                  f"hmean {t['hmean']:.4f}", flush=True)
        if len(totals) == 2:
            print(f"{name}: hmean bf16 - fp32 = {totals['bfloat16']['hmean'] - totals['float32']['hmean']:+.4f} "
                  f"({len(samples)} images)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    timing = sub.add_parser("speed")
    timing.add_argument("--models", nargs="+", default=["r18", "ppocrv4_mobile"])
    timing.add_argument("--size", type=lambda t: tuple(int(v) for v in t.split("x")), default=(736, 1280))
    timing.add_argument("--runs", type=int, default=8)
    timing.add_argument("--block", type=int, default=3)
    timing.add_argument("--warmup", type=int, default=2)
    timing.add_argument("--savedmodel", action="store_true",
                        help="also time SavedModel exports (export.py --precision) of each precision")
    accuracy = sub.add_parser("hmean")
    accuracy.add_argument("--models", nargs="+", default=["ppocrv4_ic15", "ppocrv4_v6_ic15"])
    accuracy.add_argument("--data", default=None, help="ICDAR 2015 train split folder (imgs/, gts/)")
    accuracy.add_argument("--limit", type=int, default=None, help="only the first N validation images")
    accuracy.add_argument("--precisions", nargs="+", choices=["float32", "bfloat16"], default=["float32", "bfloat16"])
    args = parser.parse_args(argv)
    if getattr(args, "data", 1) is None:
        from ic15_val import DEFAULT_DATA
        args.data = DEFAULT_DATA
    (speed if args.what == "speed" else hmean)(args)


if __name__ == "__main__":
    main()
