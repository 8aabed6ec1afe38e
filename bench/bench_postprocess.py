"""Post-processing speed: db_tf.postprocess vs a straightforward re-implementation of the official steps.

    python bench/bench_postprocess.py [--maps 20] [--repeats 5]

Maps: 736x1280 probability maps made like a DB network's output: 50-150 text-line blobs per map (heights
4-40 px, aspect 1-12, half of them rotated up to 30 degrees, peak probability 0.4-1.0), Gaussian-blurred,
plus sparse noise (tests/test_postprocess.py: random_blob_map). For each mode (box, polygon) the script times
db_tf.postprocess and the loop-by-loop reference (tests/test_postprocess.py: reference_postprocess, which is
what MhLiao/DB's SegDetectorRepresenter does) on the same maps, in one run, and checks they return the same
detections. Reported: median over repeats of the mean milliseconds per map, single thread (cv2 threads = 1).
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_postprocess import random_blob_map, reference_postprocess  # noqa: E402

from db_tf.postprocess import find_candidates, postprocess  # noqa: E402


def time_per_map(functions, maps, repeats):
    """Median over repeats of the mean ms per map, for each function; the functions take turns within
    every repeat so that load from other processes affects them alike."""
    runs = [[] for _ in functions]
    for _ in range(repeats):
        for fn, times in zip(functions, runs):
            start = time.perf_counter()
            for prob in maps:
                fn(prob)
            times.append((time.perf_counter() - start) * 1000 / len(maps))
    return [statistics.median(times) for times in runs]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--maps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(args.seed)
    maps = [random_blob_map(rng, 736, 1280, int(rng.integers(50, 151))) for _ in range(args.maps)]
    dest = (720, 1280)  # an ICDAR 2015 image resized to 736x1280 for the network
    candidates = np.mean([len(find_candidates(m, 0.3)) for m in maps])
    print(f"{len(maps)} maps 736x1280, {candidates:.0f} contours per map on average; "
          f"median of {args.repeats} repeats (db_tf and reference taking turns), ms per map, 1 thread")
    floor, = time_per_map([lambda m: find_candidates(m, 0.3)], maps, args.repeats)
    print(f"  binarize + findContours alone: {floor:6.2f} ms")
    for polygon in (False, True):
        kwargs = dict(thresh=0.3, box_thresh=0.6, polygon=polygon)
        found = 0
        for prob in maps:  # same detections, or the timing comparison would be meaningless
            ours, ref = postprocess(prob, dest, **kwargs), reference_postprocess(prob, dest, **kwargs)
            assert len(ours[0]) == len(ref[0]), "db_tf.postprocess and the reference disagree"
            found += len(ours[0])
        fast, slow = time_per_map([lambda m: postprocess(m, dest, **kwargs),
                                   lambda m: reference_postprocess(m, dest, **kwargs)], maps, args.repeats)
        mode = "polygon" if polygon else "box"
        print(f"  {mode:7s} mode ({found / len(maps):5.1f} detections/map): db_tf {fast:6.2f} ms   "
              f"reference {slow:6.2f} ms   speed-up x{slow / fast:.2f}")


if __name__ == "__main__":
    main()
