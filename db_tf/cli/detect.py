"""Detect text in an image or a folder of images.

    python inference.py --imgpath photo.jpg                        # default model: the ppocrv4_mobile preset
    python inference.py --imgpath imgs/ --weights runs/db_r18/final.weights.h5 --format icdar --output res/
    python inference.py --imgpath photo.jpg --poly --figures --show
    python inference.py --imgpath page.png --tile 1024 --tile-scale 1   # a large page in 1024-pixel windows
    python inference.py --imgpath imgs/ --precision bfloat16            # forward in bfloat16 (AMX / AVX512-BF16)

Outputs (in --output, default "outputs"): per image ``<stem>.json`` (format json: polygons, scores, size),
``<stem>.txt`` (format txt: ``x1,y1,...,xn,yn,score`` lines) or ``res_<stem>.txt`` (format icdar: integer
``x1,y1,...,x4,y4`` clockwise lines; zip those files for an ICDAR 2015 Challenge 4 submission, which needs box
mode, the default). Two inputs with the same stem (x.jpg, x.png) are written under their whole file names
(``x.jpg.json``, ``x.png.json``) so that no result overwrites another.
Figures (on by default; --no-figures to skip; off for --format icdar unless --figures):
the DB-tf style figures go to ``<output>/figures/``: ``<stem>_poly.jpg``,
``<stem>_bbox.jpg``, ``<stem>_binarize_map.jpg``, ``<stem>_threshold_map.jpg``, ``<stem>_binary_map.jpg``
(the threshold branch runs for these; an imported model's untrained threshold branch still gets drawn).
--show writes ``<stem>_show.jpg`` (all figures combined) there too and opens it when a display is available.

--weights: a .weights.h5 (architecture from cfg.MODEL, unless a .json with the same stem sits beside it),
or a pretrained name / .json. Settings: pretrained metadata, then --set values, then the flags below.
An unreadable image is reported and skipped; the exit status is 1 if any image failed.
"""
import argparse
import json
import sys
import time
from pathlib import Path

from db_tf import defaults
from db_tf.cli.common import add_verbose_flag, positive_float, positive_int, start_tensorflow, unit_interval
from db_tf.config import ConfigError, add_config_args, config_from_args
from db_tf.data.image_io import list_images
from db_tf.output_names import output_stems

FORMATS = ("json", "icdar", "txt")


def build_parser(default_config=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--imgpath", required=True, help="an image file or a folder of images")
    parser.add_argument("--weights", help="a .weights.h5, a pretrained name or a pretrained .json "
                                          "(default: cfg.MODEL.WEIGHTS, cfg.MODEL.NAME, then ppocrv4_mobile)")
    parser.add_argument("--poly", action="store_true", default=None, help="polygons (curved text) instead of boxes")
    parser.add_argument("--thresh", type=unit_interval, help="binarization threshold (cfg.POSTPROCESS.THRESH)")
    parser.add_argument("--box-thresh", type=unit_interval, help="minimum box score (cfg.POSTPROCESS.BOX_THRESH)")
    parser.add_argument("--unclip", type=positive_float, help="unclip ratio of the chosen mode")
    parser.add_argument("--short-side", type=positive_int, help="resize the short side to this (multiple of 32)")
    parser.add_argument("--output", default="outputs", help="output folder (default: outputs)")
    parser.add_argument("--format", choices=FORMATS, default="json", help="detection file format")
    parser.add_argument("--figures", action=argparse.BooleanOptionalAction, default=None,
                        help="write DB-tf style figures to <output>/figures (default: on, except with --format "
                             "icdar, whose folder must stay a clean submission)")
    parser.add_argument("--show", action="store_true", help="write (and open, with a display) a combined figure")
    parser.add_argument("--batch-size", type=positive_int, default=1,
                        help="images per forward pass (with --tile: windows per forward pass)")
    add_tile_and_precision_args(parser)
    add_verbose_flag(parser)
    return add_config_args(parser, default_config)


def add_tile_and_precision_args(parser):
    """--tile, --tile-overlap, --tile-scale and --precision (db-tf detect and evaluate)."""
    parser.add_argument("--tile", type=positive_int, metavar="SIZE",
                        help="tiled inference: run the network on overlapping SIZE x SIZE windows (network pixels, "
                             "a multiple of 32) and stitch one map, for images too large to resize whole")
    parser.add_argument("--tile-overlap", type=tile_overlap, default=defaults.TILE["overlap"],
                        help="overlap of neighbouring windows: network pixels, or a fraction of SIZE below 1 "
                             f"(default {defaults.TILE['overlap']})")
    parser.add_argument("--tile-scale", type=positive_float, default=None,
                        help="zoom of the tiled image (network pixels per image pixel; default: the resize "
                             "policy's, short side / the image's short side, without the max-side limit)")
    parser.add_argument("--precision", choices=defaults.PRECISIONS, default=defaults.PRECISION,
                        help="inference precision: bfloat16 runs the forward pass in bfloat16 (maps stay float32)")


def tile_overlap(text):
    """--tile-overlap: a fraction of the window in [0, 1) or a whole number of network pixels."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text}") from None
    if 0.0 <= value < 1.0:
        return value
    if value >= 1.0 and value == int(value):
        return int(value)
    raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1) or a whole number of pixels, got {text}")


def tile_from_args(args):
    if getattr(args, "tile", None) is None:
        return None
    return {"size": args.tile, "overlap": args.tile_overlap, "scale": args.tile_scale}


def detector_from_args(args, cfg):
    """TextDetector from the config, --weights and the flags (see TextDetector.from_config for precedence)."""
    from db_tf.detector import TextDetector

    explicit = {item.split("=", 1)[0].strip() for item in args.set}
    flags = {"polygon": args.poly, "thresh": args.thresh, "box_thresh": args.box_thresh,
             "short_side": args.short_side}
    if args.unclip is not None:   # the ratio of the mode that runs (the weights' metadata may choose it)
        if args.poly is None:
            flags["unclip_ratio"] = flags["poly_unclip_ratio"] = args.unclip
        else:
            flags["poly_unclip_ratio" if args.poly else "unclip_ratio"] = args.unclip
    return TextDetector.from_config(cfg, weights=args.weights, explicit_keys=explicit,
                                    batch_size=getattr(args, "batch_size", 1), tile=tile_from_args(args),
                                    precision=getattr(args, "precision", defaults.PRECISION), **flags)


def write_detections(out_dir, stem, detections, fmt):
    """Write one image's detections in the chosen format; returns the file path."""
    out_dir = Path(out_dir)
    if fmt == "icdar":
        path, text = out_dir / f"res_{stem}.txt", detections.to_icdar()
    elif fmt == "txt":
        path, text = out_dir / f"{stem}.txt", detections.to_txt()
    else:
        path, text = out_dir / f"{stem}.json", json.dumps(detections.to_json()) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def save_outputs(detector, stem, result, args):
    """Write the detection file and, when asked, the figures of one image."""
    from db_tf import figures

    write_detections(args.output, stem, result, args.format)
    if not (args.figures or args.show):
        return
    maps = result.extras["maps"]
    # both modes from the same maps: the DB-tf figures show polygons and boxes side by side
    polygon = detector.settings["polygon"]
    decoded = result.extras["image"]
    other = detector.postprocess(maps, decoded.shape[:2], polygon=not polygon)
    other = other.rescaled(result.extras["image_scale"], result.image_size)
    poly_result, box_result = (result, other) if polygon else (other, result)
    pictures = figures.figure_images(decoded, poly_result, box_result, maps)
    figure_dir = Path(args.output) / "figures"
    if args.figures:
        figures.save_figures(figure_dir, stem, pictures)
    if args.show:
        sheet = figures.combined_figure(pictures)
        figures.show(figures.save_rgb(figure_dir / f"{stem}_show.jpg", sheet), sheet)


def main(argv=None, default_config=None, prog=None):
    args = build_parser(default_config, prog).parse_args(argv)
    if args.figures is None:
        args.figures = args.format != "icdar"
    try:
        cfg = config_from_args(args)
        images = list_images(args.imgpath)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    start_tensorflow(args.verbose)
    from db_tf.presets import PresetError

    try:
        detector = detector_from_args(args, cfg)
    except (PresetError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    Path(args.output).mkdir(parents=True, exist_ok=True)
    stems = dict(zip(images, output_stems([path.name for path in images])))
    failed = 0
    for start in range(0, len(images), args.batch_size):
        paths = images[start:start + args.batch_size]
        begin = time.perf_counter()
        results = detector.detect(paths, return_maps=args.figures or args.show, errors="collect")
        elapsed = (time.perf_counter() - begin) * 1000 / len(paths)
        for path, result in zip(paths, results):
            if result.error:   # unreadable / empty / oversized file: report it, go on with the folder
                failed += 1
                print(f"error: {result.error}", file=sys.stderr)
                continue
            save_outputs(detector, stems[path], result, args)
            print(f"{path.name}: {len(result)} texts ({elapsed:.0f} ms)")
    print(f"{len(images) - failed} of {len(images)} images processed; results in {args.output}"
          + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
