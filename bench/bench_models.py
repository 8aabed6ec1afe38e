"""End-to-end CPU latency of every shipped preset (db_tf/presets/), as README's model table reports it.

    python bench/bench_models.py                                  # on figures/demo.jpg
    python bench/bench_models.py --images ../shared/data/icdar2015_train/imgs --limit 20

What is timed: TextDetector.detect(image) for one already-decoded RGB image, i.e. resize + normalise +
forward pass + post-processing, batch 1, each model at ITS OWN shipped settings (short side, thresholds).
The models take turns image by image (rotating order, one untimed warm-up call per model and image size
first), so load from other processes hits all of them alike. Reported per model: input size, median
and 10th-90th percentile ms per image, and detections per image.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEMO = Path(__file__).resolve().parent.parent / "figures" / "demo.jpg"


def load_images(folder, limit):
    from db_tf.data.image_io import read_image
    from db_tf.data.readers import IMAGE_SUFFIXES

    if folder is None:
        return [read_image(DEMO)]
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not paths:
        sys.exit(f"no images in {folder}")
    return [read_image(p) for p in paths]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", help="preset names or folders (default: every shipped preset)")
    parser.add_argument("--images", help="folder of images (default: figures/demo.jpg)")
    parser.add_argument("--limit", type=int, default=20, help="at most this many images of --images")
    parser.add_argument("--repeats", type=int, default=5, help="passes over the images")
    args = parser.parse_args(argv)

    from db_tf.detector import TextDetector
    from db_tf.presets import list_presets

    names = args.models or list_presets()
    images = load_images(args.images, args.limit)
    detectors = {name: TextDetector.from_preset(name, batch_size=1) for name in names}
    print(f"{len(images)} image(s) x {args.repeats} passes; machine: {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    times = {name: [] for name in names}
    counts = {name: [] for name in names}
    for name, detector in detectors.items():   # warm-up: traces (and freezes) the graph for each size
        for image in images:
            detector.detect(image)
    for repeat in range(args.repeats):
        for index, image in enumerate(images):
            shift = (repeat * len(images) + index) % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                result = detectors[name].detect(image)
                times[name].append((time.perf_counter() - start) * 1e3)
                counts[name].append(len(result))
    print(f"{'model':>16} {'short side':>10} {'median ms':>10} {'p10-p90 ms':>15} {'detections/img':>15}")
    for name in names:
        t = np.asarray(times[name])
        print(f"{name:>16} {detectors[name].settings['short_side']:>10} {np.median(t):10.1f} "
              f"{np.percentile(t, 10):7.1f}-{np.percentile(t, 90):<7.1f} {np.mean(counts[name]):15.1f}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
