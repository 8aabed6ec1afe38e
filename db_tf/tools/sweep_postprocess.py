"""Choose post-processing settings on a validation set: short side x unclip ratio x box threshold.

    python -m db_tf.tools.sweep_postprocess --weights runs/ppocrv4_ic15/best.json \\
        --images VAL_IMAGES/ --gt VAL_GTS/ [--short-sides 736 896 1024] [--unclips 1.5 1.8 2.0] \\
        [--score-modes fast slow] [--dilations 0 1] [--splits 0 1]

For each short side the network runs ONCE per image (the probability maps are kept in memory); each
(thresh, unclip ratio) pair is then post-processed at the lowest box threshold, and each box threshold keeps
the detections scoring >= it (box scores do not depend on box_thresh, as evaluate.py --sweep uses too).
Scores are the ICDAR 2015 protocol of db_tf.metrics. Prints one line per setting and the best hmean.
Use it on a VALIDATION split only: settings picked on a test set make its numbers meaningless.
"""
import argparse
import itertools
import sys
import time

import numpy as np

from db_tf.cli.common import start_tensorflow


def score_setting(detector, maps, gts, sizes, thresh, unclip, box_threshs, **settings):
    """[(box_thresh, totals)] for one (thresh, unclip ratio, other settings) over precomputed maps."""
    from db_tf import metrics

    lowest = min(box_threshs)
    found = [detector.postprocess(m, size, thresh=thresh, unclip_ratio=unclip, box_thresh=lowest, **settings)
             for m, size in zip(maps, sizes)]
    out = []
    for box_thresh in box_threshs:
        samples = []
        for (polygons, ignore), result in zip(gts, found):
            keep = np.asarray(result.scores) >= box_thresh
            samples.append((polygons, ignore, [p for p, k in zip(result.polygons, keep) if k]))
        out.append((box_thresh, metrics.evaluate(samples)[0]))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True, help="a pretrained name / .json (as inference.py)")
    parser.add_argument("--images", required=True)
    parser.add_argument("--gt", required=True)
    parser.add_argument("--gt-format", default="icdar2015")
    parser.add_argument("--gt-ignore-label", action="append", help="labelme: a don't-care label (repeatable)")
    parser.add_argument("--short-sides", type=int, nargs="+", default=[736])
    parser.add_argument("--threshs", type=float, nargs="+", default=[0.3])
    parser.add_argument("--unclips", type=float, nargs="+", default=[1.5])
    parser.add_argument("--box-threshs", type=float, nargs="+", default=[0.4, 0.5, 0.55, 0.6, 0.65, 0.7])
    parser.add_argument("--score-modes", nargs="+", choices=["fast", "slow"], default=None,
                        help="box score: mean over the box (fast) or the contour (slow); default: the model's")
    parser.add_argument("--dilations", type=int, nargs="+", choices=[0, 1], default=None,
                        help="dilate the binary map with a 2x2 kernel (1) or not (0); default: the model's")
    parser.add_argument("--splits", type=int, nargs="+", choices=[0, 1], default=None,
                        help="split candidates where the threshold map parts them (1) or not (0); default: the "
                             "model's")
    args = parser.parse_args(argv)
    start_tensorflow()

    from db_tf.cli.evaluate import gt_files, read_gt
    from db_tf.data.image_io import list_images, read_image
    from db_tf.detector import TextDetector

    gt_paths = gt_files(args.gt, args.gt_format)
    paths = [p for p in list_images(args.images) if p.stem in gt_paths]
    if not paths:
        print(f"error: no image of {args.images} has a GT file in {args.gt}", file=sys.stderr)
        return 2
    images = [read_image(p) for p in paths]
    gts = [read_gt(gt_paths[p.stem], args) for p in paths]
    sizes = [image.shape[:2] for image in images]
    best = (-1.0, None)
    for short_side in args.short_sides:
        detector = TextDetector(weights=args.weights, short_side=short_side)
        start = time.perf_counter()
        splits = args.splits if args.splits is not None else [int(detector.settings["split_by_threshold"])]
        maps = [detector.predict_maps([image], return_maps=any(splits))[0] for image in images]
        print(f"short side {short_side}: {len(images)} images, "
              f"{(time.perf_counter() - start) * 1000 / len(images):.0f} ms per image", flush=True)
        score_modes = args.score_modes or [detector.settings["score_mode"]]
        dilations = args.dilations if args.dilations is not None else [int(detector.settings["dilate"])]
        for thresh, unclip, score_mode, dilate, split in itertools.product(args.threshs, args.unclips, score_modes,
                                                                           dilations, splits):
            extra = f" score {score_mode} dilate {dilate}" if args.score_modes or args.dilations else ""
            extra += f" split {split}" if args.splits else ""
            for box_thresh, totals in score_setting(detector, maps, gts, sizes, thresh, unclip, args.box_threshs,
                                                    score_mode=score_mode, dilate=bool(dilate),
                                                    split_by_threshold=bool(split)):
                print(f"  short {short_side} thresh {thresh:.2f} unclip {unclip:.2f}{extra} box {box_thresh:g}: "
                      f"P {totals['precision']:.4f} R {totals['recall']:.4f} H {totals['hmean']:.4f}",
                      flush=True)
                if totals["hmean"] > best[0]:
                    best = (totals["hmean"], (short_side, thresh, unclip, box_thresh, score_mode, dilate, split,
                                              totals))
    hmean, (short_side, thresh, unclip, box_thresh, score_mode, dilate, split, totals) = best
    print(f"best: short_side {short_side} thresh {thresh} unclip_ratio {unclip} box_thresh {box_thresh} "
          f"score_mode {score_mode} dilate {bool(dilate)} split_by_threshold {bool(split)}: "
          f"P {totals['precision']:.4f} R {totals['recall']:.4f} H {hmean:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
