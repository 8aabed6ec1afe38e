"""Score text detections with the ICDAR 2015 Challenge 4 IoU protocol (db_tf/metrics.py).

    python evaluate.py --pred outputs/ --gt gts/ [--gt-format icdar2015]        # detection files vs GT
    python evaluate.py --images imgs/ --gt gts/ --weights W [--sweep]           # run a model, then score it

--pred: one file per image, as inference.py writes them (``res_<stem>.txt``, ``<stem>.txt`` or
``<stem>.json``; lines ``x1,y1,...,xn,yn[,score]``). As the official script, every GT file is an image of the
set and a missing detection file means no detections (--only-predicted: score only the images that have one);
a detection file without GT is an error.
--images: every image in the folder is detected (with the settings of inference.py) and must have a GT file.
GT files are named as the format's readers expect (icdar2015: gt_<stem>.txt; msra_td500: <stem>.gt;
totaltext: poly_gt_<stem>.txt; ctw1500: <stem>.txt / .xml; polygon_txt: <stem>.txt or gt_<stem>.txt;
labelme: <stem>.json, --gt-ignore-label LABEL to set its don't-care labels) and read by
db_tf.data.readers.read_annotation (non-strict: its polygon checks apply). --gt-format paddleocr: --gt is one
PaddleOCR label file (``image path<TAB>[{"transcription", "points"}]`` lines); each line's image is known by the
stem of its path, and a malformed line is an error (naming file:line), not skipped.

--sweep also reports precision / recall / hmean for a range of box_thresh values and the best hmean (as
MMOCR does), after the fixed-threshold result. Box thresholds only filter detections by score (every other
post-processing step is independent of it: see tests/test_postprocess.py), so the model runs once at the
lowest threshold and each sweep value keeps the detections with score >= value: no map cache is needed, and
the sweep also works on detection files that carry scores.

--bootstrap N prints a 95 % interval of hmean from N resamples of the images; --compare-to B.json (written by
--per-image for another model or setting) prints this result's hmean minus B's with a paired interval: both
are scored on the same resampled images, which tells whether a difference between two models on a small
validation split is more than the images' noise.
"""
import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from db_tf.cli.common import (
    add_verbose_flag,
    non_negative_int,
    positive_float,
    positive_int,
    start_tensorflow,
    unit_interval,
)
from db_tf.cli.detect import add_tile_and_precision_args
from db_tf.config import ConfigError, add_config_args, config_from_args

PRED_SUFFIXES = (".txt", ".json")
GT_FORMATS = ("icdar2015", "msra_td500", "totaltext", "ctw1500", "polygon_txt", "labelme", "paddleocr")
LABEL_FILE_FORMATS = ("paddleocr",)     # --gt is one file holding every image's GT


def build_parser(default_config=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pred", help="folder of detection files")
    source.add_argument("--images", help="folder of images to detect with --weights")
    parser.add_argument("--gt", required=True, help="folder of ground-truth files (paddleocr: the label file)")
    parser.add_argument("--gt-format", default="icdar2015", choices=GT_FORMATS)
    parser.add_argument("--gt-ignore-label", action="append", metavar="LABEL",
                        help="labelme: a label meaning don't care (repeatable; default ###)")
    parser.add_argument("--only-predicted", action="store_true",
                        help="--pred: score only the GT images that have a detection file")
    parser.add_argument("--per-image", metavar="FILE.json", help="also write per-image results to this JSON")
    parser.add_argument("--sweep", action="store_true", help="also sweep box_thresh, report the best hmean")
    parser.add_argument("--bootstrap", type=non_negative_int, default=0, metavar="N",
                        help="also print a 95%% interval of hmean from N bootstrap resamples of the images")
    parser.add_argument("--compare-to", metavar="FILE.json",
                        help="another model's --per-image JSON on the same images: print the hmean difference "
                             "with a paired bootstrap interval (--bootstrap resamples, default 1000)")
    parser.add_argument("--sweep-range", nargs=3, type=float, default=[0.3, 0.9, 0.05],
                        metavar=("START", "STOP", "STEP"), help="box_thresh values, STOP included")
    model = parser.add_argument_group("with --images")
    model.add_argument("--weights", help="a .weights.h5, a pretrained name or .json (as inference.py)")
    model.add_argument("--poly", action="store_true", default=None, help="polygon mode")
    model.add_argument("--thresh", type=unit_interval)
    model.add_argument("--box-thresh", type=unit_interval)
    model.add_argument("--unclip", type=positive_float)
    model.add_argument("--short-side", type=positive_int)
    add_tile_and_precision_args(model)
    add_verbose_flag(parser)
    return add_config_args(parser, default_config)


# ------------------------------------------------------------------------------------ file pairing
def gt_key(name, fmt):
    """Image stem of a GT file name for the format, or None when the name does not fit.

    The most specific naming pattern wins: polygon_txt's gt_img_1.txt is img_1's (gt_{stem}.txt), not
    gt_img_1's ({stem}.txt)."""
    from db_tf.data.readers import GT_NAMES

    for pattern in sorted(GT_NAMES[fmt], key=lambda p: len(p.replace("{stem}", "")), reverse=True):
        regex = re.escape(pattern).replace(re.escape("{stem}"), "(.+)")
        match = re.fullmatch(regex, name)
        if match:
            return match.group(1)
    return None


def pred_key(name):
    stem = Path(name).stem
    return stem[4:] if stem.startswith("res_") else stem


def gt_files(gt_dir, fmt):
    """{image stem: GT path, or for a label-file format the line already read}; errors when there is none."""
    if fmt in LABEL_FILE_FORMATS:
        return gt_lines(gt_dir)
    folder = Path(gt_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"--gt {folder} is not a folder")
    files = {}
    for path in sorted(folder.iterdir()):
        key = gt_key(path.name, fmt) if path.is_file() else None
        if key is not None:
            files.setdefault(key, path)  # two files for one image: the first in sorted order wins
    if not files:
        raise FileNotFoundError(f"no {fmt} GT files in {folder}")
    return files


def gt_lines(label_path):
    """{image stem: LabelLine} of a PaddleOCR label file; a malformed line or a stem seen twice is an error."""
    from db_tf.data.readers import read_paddleocr_labels

    if not Path(label_path).is_file():
        raise FileNotFoundError(f"--gt {label_path} is not a file (--gt-format paddleocr reads one label file)")
    lines = {}
    for entry in read_paddleocr_labels(label_path, skip_malformed=False):
        key = Path(entry.image.replace("\\", "/")).stem
        if key in lines:
            raise ValueError(f"{label_path}:{entry.line}: image {entry.image} has the stem {key} of line "
                             f"{lines[key].line} ({lines[key].image}); images are matched by stem")
        lines[key] = entry
    if not lines:
        raise FileNotFoundError(f"no GT lines in {label_path}")
    return lines


def read_gt(source, args):
    """(polygons, ignore) of one image from a gt_files() value."""
    from db_tf.data.readers import LabelLine, read_annotation

    if isinstance(source, LabelLine):
        return source.polygons, source.ignore
    polygons, ignore, _ = read_annotation(source, args.gt_format, ignore_labels=args.gt_ignore_label)
    return polygons, ignore


def pred_files(pred_dir):
    folder = Path(pred_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"--pred {folder} is not a folder")
    return {pred_key(p.name): p for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in PRED_SUFFIXES}


def _names(keys, limit=5):
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f" ... ({len(keys)} in all)" if len(keys) > limit else "")


# ------------------------------------------------------------------------------------ evaluation
def score(samples):
    """samples: {key: (gt polygons, gt ignore, det polygons, det scores or None)} -> (totals, {key: result})."""
    from db_tf import metrics

    keys = sorted(samples)
    totals, results = metrics.evaluate((samples[k][0], samples[k][1], samples[k][2]) for k in keys)
    return totals, dict(zip(keys, results))


def keep_scores(samples, threshold):
    """The samples with only the detections whose score >= threshold."""
    out = {}
    for key, (gt, ignore, dets, det_scores) in samples.items():
        keep = np.asarray(det_scores) >= threshold
        out[key] = (gt, ignore, [d for d, k in zip(dets, keep) if k], np.asarray(det_scores)[keep])
    return out


def sweep(samples, thresholds):
    """[(threshold, totals)] with the detections of score >= threshold."""
    return [(t, score(keep_scores(samples, t))[0]) for t in thresholds]


def samples_from_files(args):
    from db_tf.metrics import read_detections

    gts, preds = gt_files(args.gt, args.gt_format), pred_files(args.pred)
    orphans = set(preds) - set(gts)
    if orphans:
        raise ValueError(f"detection files without a {args.gt_format} GT file in {args.gt}: {_names(orphans)}")
    keys = [k for k in gts if k in preds] if args.only_predicted else list(gts)
    if not keys:
        raise ValueError(f"no detection file in {args.pred} matches a GT file in {args.gt}")
    samples = {}
    for key in keys:
        polygons, ignore = read_gt(gts[key], args)
        dets, det_scores = read_detections(preds[key]) if key in preds else ([], np.zeros(0, np.float32))
        if args.sweep and det_scores is None:
            raise ValueError(f"--sweep needs scores, and {preds[key]} has none (write --format txt or json)")
        samples[key] = (polygons, ignore, dets, det_scores)
    return samples


def samples_from_model(args, cfg, thresholds):
    """Detect every image of --images -> (samples, failed images, the detector's box_thresh).

    The detections are made at the lowest of box_thresh and the sweep thresholds (see the module doc)."""
    from db_tf.cli.detect import detector_from_args
    from db_tf.data.image_io import ImageReadError, list_images, read_image

    images = list_images(args.images)
    gts = gt_files(args.gt, args.gt_format)
    missing = [p.name for p in images if p.stem not in gts]
    if missing:
        raise ValueError(f"images without a {args.gt_format} GT file in {args.gt}: {_names(missing)}")
    detector = detector_from_args(args, cfg)
    fixed = float(detector.settings["box_thresh"])
    lowest = min([fixed, *thresholds])
    samples, failed, elapsed = {}, 0, 0.0
    for path in images:
        try:
            image = read_image(path)
        except ImageReadError as exc:
            failed += 1
            print(f"error: {exc} (left out of the scores)", file=sys.stderr)
            continue
        start = time.perf_counter()
        result = detector.detect(image, box_thresh=lowest)
        elapsed += time.perf_counter() - start
        polygons, ignore = read_gt(gts[path.stem], args)
        samples[path.stem] = (polygons, ignore, result.polygons, result.scores)
    if samples:
        print(f"detected {len(samples)} images, {elapsed * 1000 / len(samples):.0f} ms per image")
    return samples, failed, fixed


def read_per_image_counts(path, names):
    """ImageResult counts per image from a --per-image JSON, in the order of `names` (which it must cover)."""
    from db_tf.metrics import ImageResult

    try:
        images = json.loads(Path(path).read_text(encoding="utf-8"))["images"]
        counts = {name: ImageResult(int(r["gt_care"]), int(r["det_care"]), int(r["matched"]))
                  for name, r in images.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"--compare-to {path}: not a per-image JSON written by evaluate.py --per-image "
                         f"({type(exc).__name__}: {exc})") from None
    if set(counts) != set(names):
        only_here, only_there = _names(set(names) - set(counts)) or "none", _names(set(counts) - set(names)) or "none"
        raise ValueError(f"--compare-to {path}: scored other images (only here: {only_here}; only there: {only_there})")
    return [counts[name] for name in names]


def print_comparison(per_image, path, resamples):
    from db_tf.metrics import paired_bootstrap

    names = sorted(per_image)
    baseline = read_per_image_counts(path, names)
    difference, low, high, higher = paired_bootstrap([per_image[n] for n in names], baseline, resamples)
    print(f"hmean minus {path}'s: {difference:+.4f}, 95% interval {low:+.4f} .. {high:+.4f} ({resamples} paired "
          f"bootstrap resamples of the {len(names)} images; higher in {higher:.0%} of them)")


def _line(totals):
    return (f"precision {totals['precision']:.4f}  recall {totals['recall']:.4f}  hmean {totals['hmean']:.4f}  "
            f"(matched {totals['matched']}, care GT {totals['gt_care']}, care detections {totals['det_care']}, "
            f"{totals['images']} images)")


def main(argv=None, default_config=None, prog=None):
    parser = build_parser(default_config, prog)
    args = parser.parse_args(argv)
    if args.images is None and any(v is not None for v in (args.weights, args.poly, args.thresh, args.box_thresh,
                                                             args.unclip, args.short_side)):
        parser.error("--weights / --poly / --thresh / --box-thresh / --unclip / --short-side need --images")
    start, stop, step = args.sweep_range
    if step <= 0 or start > stop:
        parser.error(f"--sweep-range needs START <= STOP and STEP > 0, got {start} {stop} {step}")
    thresholds = [round(float(t), 6) for t in np.arange(start, stop + step / 2, step)] if args.sweep else []
    if args.gt_ignore_label and args.gt_format != "labelme":
        parser.error(f"--gt-ignore-label applies to --gt-format labelme, not {args.gt_format}")
    if args.images:
        start_tensorflow(args.verbose)
    from db_tf.data.readers import AnnotationError
    from db_tf.presets import PresetError

    try:
        cfg = config_from_args(args)
        if args.pred:
            samples, failed = samples_from_files(args), 0
            fixed_samples, label = samples, ""
        else:
            samples, failed, fixed = samples_from_model(args, cfg, thresholds)
            fixed_samples, label = keep_scores(samples, fixed), f" at box_thresh {fixed:.2f}"
    except (ConfigError, FileNotFoundError, ValueError, AnnotationError, PresetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    totals, per_image = score(fixed_samples)
    print(_line(totals) + label)
    if args.bootstrap > 0 and per_image:
        from db_tf.metrics import bootstrap_interval

        low, high = bootstrap_interval(list(per_image.values()), args.bootstrap)
        print(f"hmean 95% interval {low:.4f} .. {high:.4f} ({args.bootstrap} bootstrap resamples of the "
              f"{len(per_image)} images)")
    if args.compare_to and per_image:
        try:
            print_comparison(per_image, args.compare_to, args.bootstrap or 1000)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    swept = sweep(samples, thresholds)
    if swept:
        print("box_thresh sweep:")
        for threshold, result in swept:
            print(f"  {threshold:.2f}  " + _line(result))
        best_threshold, best = max(swept, key=lambda item: item[1]["hmean"])
        print(f"best hmean {best['hmean']:.4f} at box_thresh {best_threshold:.2f} "
              f"(precision {best['precision']:.4f}, recall {best['recall']:.4f})")
    if args.per_image:
        report = {"totals": totals, "images": {k: r.as_dict() for k, r in per_image.items()},
                  "sweep": [{"box_thresh": t, **r} for t, r in swept]}
        Path(args.per_image).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"per-image results: {args.per_image}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
