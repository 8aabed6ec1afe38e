"""Per-sample cost of the DB label maps (shrink + threshold): vectorised vs. per-pixel loops.

    python bench/bench_labels.py [--num 20] [--repeats 3] [--seed 0]

Samples: ICDAR 2015 training images from ../shared/data, augmented with the project's default
cfg.DATA.AUG and cropped to 640x640 (db_tf.data.augment), when that folder exists; otherwise
random word boxes on a 640x640 canvas. The same samples go through three implementations:

  vectorised   db_tf.data.labels.make_label_maps (what training uses)
  loops        a straightforward per-pixel implementation written here: Python loops over every
               pixel of each text's dilated bounding box, true point-to-segment distance; the
               kernels and masks are filled the same way as the vectorised code, so the two must
               agree to float rounding
  official     a re-implementation of the official MhLiao/DB algorithm for reference: distances
               on the whole dilated bounding box as one (K, H, W) array with the official
               end-point formula, float vertices truncated to whole pixels

Times are per sample (shrink + threshold maps), min over --repeats passes, wall clock and CPU,
after one untimed warm-up pass of each fast implementation (see the comment in main()).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pyclipper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db_config import cfg  # noqa: E402
from db_tf.data import labels  # noqa: E402
from db_tf.data.augment import augment  # noqa: E402
from db_tf.data.image_io import read_image  # noqa: E402
from db_tf.data.readers import read_dataset  # noqa: E402

SHARED_ICDAR = ROOT.parent / "shared" / "data" / "icdar2015_train"
SIZE = 640


# ----------------------------------------------------------------------------- samples
def icdar_samples(num, seed):
    samples = read_dataset({"format": "icdar2015", "images": str(SHARED_ICDAR / "imgs"),
                            "labels": str(SHARED_ICDAR / "gts")})
    rng = np.random.default_rng(seed)
    out = []
    for index in rng.permutation(len(samples)):
        sample = samples[index]
        if (~sample.ignore).sum() == 0:
            continue
        _, polygons, ignore = augment(read_image(sample.image_path), sample.polygons, sample.ignore,
                                      cfg.DATA.AUG, SIZE, rng)
        out.append((polygons, ignore))
        if len(out) == num:
            return out, f"ICDAR 2015 train, default augmentation + {SIZE}x{SIZE} crop"
    return out, "ICDAR 2015"


def synthetic_samples(num, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num):
        polygons = []
        for _ in range(int(rng.integers(4, 16))):
            cx, cy = rng.uniform(40, SIZE - 40, 2)
            length, height, angle = rng.uniform(30, 200), rng.uniform(10, 40), rng.uniform(-0.5, 0.5)
            u = np.array([math.cos(angle), math.sin(angle)]) * length / 2
            v = np.array([-math.sin(angle), math.cos(angle)]) * height / 2
            polygons.append(np.array([(cx, cy) - u - v, (cx, cy) + u - v, (cx, cy) + u + v, (cx, cy) - u + v]))
        out.append((polygons, rng.random(len(polygons)) < 0.2))
    return out, f"synthetic word boxes on {SIZE}x{SIZE} (../shared absent)"


# ----------------------------------------------------------------------------- per-pixel loops
def segment_distance(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else min(max(((px - ax) * dx + (py - ay) * dy) / length2, 0.0), 1.0)
    return math.hypot(px - ax - t * dx, py - ay - t * dy)


def loop_threshold_map(polygons, ignore, h, w, shrink_ratio=0.4, thresh_min=0.3, thresh_max=0.7):
    canvas = np.zeros((h, w), np.float32)
    mask = np.zeros((h, w), np.float32)
    for polygon, ignored in zip(polygons, ignore):
        polygon = np.asarray(polygon, np.float64)
        if ignored:
            continue
        d = labels.shrink_distance(polygon, shrink_ratio)
        if d <= 0:
            continue
        labels._fill(mask, labels._offset(polygon, d), 1.0)
        x0 = max(int(math.floor(polygon[:, 0].min() - d)), 0)
        x1 = min(int(math.ceil(polygon[:, 0].max() + d)), w - 1)
        y0 = max(int(math.floor(polygon[:, 1].min() - d)), 0)
        y1 = min(int(math.ceil(polygon[:, 1].max() + d)), h - 1)
        edges = [(polygon[i], polygon[(i + 1) % len(polygon)]) for i in range(len(polygon))]
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                nearest = min(segment_distance(x, y, a[0], a[1], b[0], b[1]) for a, b in edges)
                value = 1.0 - min(nearest / d, 1.0)
                if value > canvas[y, x]:
                    canvas[y, x] = value
    return canvas * (thresh_max - thresh_min) + thresh_min, mask


def loop_label_maps(polygons, ignore, h, w):
    gt, mask, trained = labels._shrink_maps(polygons, ignore, h, w, 0.4, 8)
    thresh_map, thresh_mask = loop_threshold_map(polygons, ~trained, h, w)
    return {"gt": gt, "mask": mask, "thresh_map": thresh_map, "thresh_mask": thresh_mask}


# ----------------------------------------------------------------------------- official-style
def official_distance(xs, ys, a, b):
    d1 = np.square(xs - a[0]) + np.square(ys - a[1])
    d2 = np.square(xs - b[0]) + np.square(ys - b[1])
    d12 = np.square(a[0] - b[0]) + np.square(a[1] - b[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        minus_cos = (d12 - d1 - d2) / (2 * np.sqrt(d1 * d2))
        result = np.sqrt(d1 * d2 * np.nan_to_num(1 - np.square(minus_cos)) / d12)
    acute = minus_cos < 0
    result[acute] = np.sqrt(np.fmin(d1, d2))[acute]
    return result


def official_label_maps(polygons, ignore, h, w, r=0.4, min_size=8):
    gt = np.zeros((h, w), np.float32)
    mask = np.ones((h, w), np.float32)
    canvas = np.zeros((h, w), np.float32)
    thresh_mask = np.zeros((h, w), np.float32)
    for polygon, ignored in zip(polygons, ignore):
        polygon = np.asarray(polygon, np.float64)
        height, width = np.ptp(polygon[:, 1]), np.ptp(polygon[:, 0])
        area, length = labels.area_and_perimeter(polygon)
        d = area * (1 - r * r) / max(length, 1e-9)
        path = [tuple(p) for p in polygon]
        if ignored or min(height, width) < min_size or area < 1:
            cv2.fillPoly(mask, [polygon.astype(np.int32)], 0)
            continue
        offset = pyclipper.PyclipperOffset()
        offset.AddPath(path, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
        shrunk = offset.Execute(-d)
        if not shrunk:
            cv2.fillPoly(mask, [polygon.astype(np.int32)], 0)
            continue
        cv2.fillPoly(gt, [np.array(shrunk[0]).astype(np.int32)], 1)
        offset = pyclipper.PyclipperOffset()
        offset.AddPath(path, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
        padded = np.array(offset.Execute(d)[0])
        cv2.fillPoly(thresh_mask, [padded.astype(np.int32)], 1.0)
        xmin, ymin = padded.min(axis=0)
        xmax, ymax = padded.max(axis=0)
        bw, bh = xmax - xmin + 1, ymax - ymin + 1
        local = polygon - (xmin, ymin)
        xs = np.broadcast_to(np.arange(bw, dtype=np.float64)[None, :], (bh, bw))
        ys = np.broadcast_to(np.arange(bh, dtype=np.float64)[:, None], (bh, bw))
        stack = np.zeros((len(local), bh, bw), np.float32)
        for i in range(len(local)):
            stack[i] = np.clip(official_distance(xs, ys, local[i], local[(i + 1) % len(local)]) / d, 0, 1)
        closeness = 1 - stack.min(axis=0)
        vx0, vx1 = min(max(0, xmin), w - 1), min(max(0, xmax), w - 1)
        vy0, vy1 = min(max(0, ymin), h - 1), min(max(0, ymax), h - 1)
        window = canvas[vy0:vy1 + 1, vx0:vx1 + 1]
        np.fmax(closeness[vy0 - ymin:vy1 - ymin + 1, vx0 - xmin:vx1 - xmin + 1], window, out=window)
    return {"gt": gt, "mask": mask, "thresh_map": canvas * 0.4 + 0.3, "thresh_mask": thresh_mask}


# ----------------------------------------------------------------------------- timing
def time_per_sample(function, samples, repeats):
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        for polygons, ignore in samples:
            function(polygons, ignore, SIZE, SIZE)
        best_wall = min(best_wall, (time.perf_counter() - wall) / len(samples) * 1e3)
        best_cpu = min(best_cpu, (time.process_time() - cpu) / len(samples) * 1e3)
    return best_wall, best_cpu


def max_differences(a_fn, b_fn, samples):
    """Per map: (max |a - b|, pixels differing by > 1e-3 / pixels non-zero in either map)."""
    worst, differing, nonzero = {}, {}, {}
    for polygons, ignore in samples:
        a, b = a_fn(polygons, ignore, SIZE, SIZE), b_fn(polygons, ignore, SIZE, SIZE)
        for key in a:
            background = 1.0 if key == "mask" else 0.3 if key == "thresh_map" else 0.0
            diff = np.abs(a[key] - b[key])
            worst[key] = max(worst.get(key, 0.0), float(diff.max()))
            differing[key] = differing.get(key, 0) + int((diff > 1e-3).sum())
            nonzero[key] = nonzero.get(key, 0) + int(((a[key] != background) | (b[key] != background)).sum())
    return {k: (worst[k], differing[k] / max(nonzero[k], 1)) for k in worst}


def print_differences(title, differences):
    print(title + ", ".join(f"{k} {v:.2e} ({100 * share:.1f}% of its non-background pixels differ)"
                            for k, (v, share) in differences.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=20, help="samples (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the fastest is reported")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if SHARED_ICDAR.is_dir():
        samples, source = icdar_samples(args.num, args.seed)
    else:
        samples, source = synthetic_samples(args.num, args.seed)
    care = sum(int((~np.asarray(ig)).sum()) for _, ig in samples)
    print(f"samples: {len(samples)} x {SIZE}x{SIZE} from {source}; {care} care texts, "
          f"{sum(len(p) for p, _ in samples)} polygons in all; cv2 threads = 1")

    # A fresh process pays page faults for every new 640x640 map until glibc raises its mmap
    # threshold after the first large free (any implementation; ~2-3 ms per sample here). Measure
    # that once, then warm every implementation up so all are timed in the same allocator state.
    cold_wall, cold_cpu = time_per_sample(labels.make_label_maps, samples, 1)
    time_per_sample(official_label_maps, samples, 1)
    time_per_sample(labels.make_label_maps, samples, 1)
    results = {
        "vectorised (db_tf)": time_per_sample(labels.make_label_maps, samples, args.repeats),
        "loops (per pixel)": time_per_sample(loop_label_maps, samples, 1),
        "official-style": time_per_sample(official_label_maps, samples, args.repeats),
    }
    print(f"first pass in a fresh process (cold allocator), vectorised: {cold_wall:.2f} ms wall, "
          f"{cold_cpu:.2f} ms cpu per sample")
    base_wall, base_cpu = results["vectorised (db_tf)"]
    print(f"{'implementation':<22}{'ms/sample (wall)':>18}{'ms/sample (cpu)':>18}{'x vectorised (cpu)':>20}")
    for name, (wall, cpu) in results.items():
        print(f"{name:<22}{wall:>18.2f}{cpu:>18.2f}{cpu / base_cpu:>20.1f}")
    print_differences("max |vectorised - loops|: ", max_differences(labels.make_label_maps, loop_label_maps, samples))
    print_differences("max |vectorised - official-style| (end-point formula, truncated vertices): ",
                      max_differences(labels.make_label_maps, official_label_maps, samples))
    with open("/proc/loadavg") as f:
        print(f"load average while measuring: {f.read().split()[0]} (2 cores shared with other jobs)")


if __name__ == "__main__":
    main()
