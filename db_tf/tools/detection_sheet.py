"""A sheet of detections on a few images, with the ground truth when there is one (for README figures).

    python -m db_tf.tools.detection_sheet --weights ppocrv4_ic15 --out figures/ic15_val_detections.jpg \\
        --images ICDAR/imgs/img_901.jpg ICDAR/imgs/img_917.jpg --gt ICDAR/gts --gt-format icdar2015

Colours: detections green; ground-truth texts blue (care) and grey (ignored, "###"). A detection that
matches a care text (IoU > 0.5, the ICDAR 2015 rule of db_tf.metrics) is drawn thick, others thin, so
false positives and misses stand out. Each tile is labelled with the image name and its P / R.
"""
import argparse
import sys
from pathlib import Path

import cv2

from db_tf.cli.common import start_tensorflow

DETECTION = (0, 220, 0)
CARE = (40, 120, 255)
IGNORED = (160, 160, 160)


def gt_path(image_path, gt_dir):
    """ICDAR-style GT file of an image: gt_<stem>.txt, else <stem>.txt, in gt_dir."""
    stem = Path(image_path).stem
    for name in (f"gt_{stem}.txt", f"{stem}.txt"):
        if (Path(gt_dir) / name).is_file():
            return Path(gt_dir) / name
    raise FileNotFoundError(f"no ground truth for {image_path} in {gt_dir} (looked for gt_{stem}.txt, {stem}.txt)")


def draw_tile(image, name, polygons, gt=None):
    """RGB image with GT (polygons, ignore flags) and detected polygons drawn -> (tile, label)."""
    from db_tf import metrics
    from db_tf.figures import draw_polygons

    tile, label, matched = image, name, set()
    if gt is not None:
        gt_polygons, ignore = gt
        tile = draw_polygons(tile, [p for p, i in zip(gt_polygons, ignore) if i], IGNORED, 1)
        tile = draw_polygons(tile, [p for p, i in zip(gt_polygons, ignore) if not i], CARE, 2)
        result = metrics.evaluate_image(gt_polygons, ignore, polygons)
        matched = {detection for _, detection in result.pairs}
        label += f"  P {result.precision:.2f} R {result.recall:.2f}"
    width = max(2, round(max(image.shape[:2]) / 400))
    for index, polygon in enumerate(polygons):
        tile = draw_polygons(tile, [polygon], DETECTION, width if index in matched or gt is None else 1)
    return tile, label


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="pretrained name, .json or .weights.h5 (default model)")
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--gt", help="folder of per-image ground truth files (optional)")
    parser.add_argument("--gt-format", default="icdar2015")
    parser.add_argument("--out", required=True)
    parser.add_argument("--columns", type=int, default=2)
    parser.add_argument("--tile-width", type=int, default=800)
    args = parser.parse_args(argv)
    start_tensorflow()

    from db_tf.data.image_io import read_image
    from db_tf.data.readers import read_annotation
    from db_tf.detector import TextDetector
    from db_tf.figures import combined_figure, save_rgb

    detector = TextDetector(weights=args.weights)
    tiles = {}
    for path in args.images:
        image = read_image(path)
        detections = detector.detect(image)
        gt = None
        if args.gt:
            polygons, ignore, _ = read_annotation(gt_path(path, args.gt), args.gt_format)
            gt = (polygons, ignore)
        tile, label = draw_tile(image, Path(path).name, detections.polygons, gt)
        tiles[label] = tile
    sheet = combined_figure(tiles, columns=args.columns, tile_width=args.tile_width)
    save_rgb(args.out, sheet)
    print(f"wrote {args.out} ({len(tiles)} images, {cv2.imencode('.jpg', sheet)[1].size / 1e3:.0f} kB as JPEG)")


if __name__ == "__main__":
    sys.exit(main())
