"""Tiled inference (TextDetector(tile=...)) on large images, against plain resizing.

    python bench/bench_tiling.py ic15x3                 # ICDAR 2015 val (img_901..1000) upscaled 3x, ppocrv4_mobile
    python bench/bench_tiling.py ic15x3 --model ppocrv4_ic15 --limit 20
    python bench/bench_tiling.py page                   # synthetic 6000x8000 page, 12-20 px words
    python bench/bench_tiling.py page --pages 2 --tile-scale 1.0 0.75

ic15x3: each validation image (1280x720) is upscaled 3x (bicubic, 3840x2160) with its GT coordinates x3, then
detected four ways with the preset's own settings; ICDAR 2015 precision / recall / hmean of each:
  original    the 1280x720 image, the preset's resize policy (the reference),
  policy      the upscaled image, the same policy (short side to short_side: about the same zoom),
  long-side   the upscaled image resized so its long side is max_side (2560: "plain resizing to the default
              long side"; about 2x the model's zoom for a short_side-736 preset),
  tiled       the upscaled image in --tile-size windows (--tile-overlap) at the model's own zoom
              (tile scale None: short_side / the image's short side), stitched, post-processed once;
              global pooling (squeeze-excite) takes its means from a whole-image preview,
  tiled-own   (--own-gates) the same, each window pooling only itself.
page: --pages synthetic document pages (white, black Hershey-font words 12-20 px high, word boxes as GT),
detected without tiles (the policy zoom, and the long side at max_side) and with tiles at each --tile-scale.
Recall (and precision) per mode, and the forward windows used; max_candidates is raised to 20000 for every
mode (a page has thousands of words; the default 1000 would cap recall).
"""
import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def ic15x3(args):
    from ic15_val import score, validation_samples

    from db_tf import TextDetector

    base = TextDetector.from_preset(args.model, batch_size=1)
    model = base.model
    tile = {"size": args.tile_size, "overlap": args.tile_overlap, "scale": None}
    modes = {"original": base,
             "policy": base,
             "long-side": TextDetector(model=model, freeze_weights=True, short_side=10 ** 6, batch_size=1,
                                       **_settings(base, exclude=("short_side",))),
             "tiled": TextDetector(model=model, freeze_weights=True, tile=tile, batch_size=args.batch_size,
                                   **_settings(base))}
    if args.own_gates:
        modes["tiled-own"] = own_gates(TextDetector(model=model, freeze_weights=True, tile=tile,
                                                    batch_size=args.batch_size, **_settings(base)))
    scored = {mode: [] for mode in modes}
    seconds = dict.fromkeys(modes, 0.0)
    originals = validation_samples(args.data, limit=args.limit)
    upscaled = validation_samples(args.data, upscale=3, limit=args.limit)
    for (name, image, gt, ignore), (_, big, big_gt, _) in zip(originals, upscaled):
        for mode, detector in modes.items():
            start = time.perf_counter()
            result = detector.detect(image if mode == "original" else big)
            seconds[mode] += time.perf_counter() - start
            scored[mode].append((result, gt if mode == "original" else big_gt, ignore))
    print(f"{args.model} (short_side {base.settings['short_side']}, max_side {base.settings['max_side']}); "
          f"tiles {tile}; {len(scored['original'])} images")
    for mode, items in scored.items():
        t = score(items)
        print(f"  {mode:10s} precision {t['precision']:.4f} recall {t['recall']:.4f} hmean {t['hmean']:.4f}"
              f"  ({seconds[mode] / len(items):.2f} s/image)", flush=True)


def own_gates(detector):
    """``detector`` with each window pooling only itself (no whole-image context), as tiles did before it."""
    detector._forward.record_context = lambda preview: {}
    return detector


def _settings(detector, exclude=()):
    """A detector's settings as keyword arguments (a second detector sharing its model)."""
    return {k: v for k, v in detector.settings.items() if k not in exclude and k != "size"}


def draw_page(height, width, seed, min_height=12, max_height=20):
    """A white page of black words (Hershey simplex) in lines, the text height of each paragraph drawn from
    [min_height, max_height] pixels -> (RGB uint8, word boxes as (4, 2) float32 polygons)."""
    from db_tf.synth_text import WORDS

    rng = np.random.default_rng(seed)
    page = np.full((height, width, 3), 255, np.uint8)
    polygons = []
    y, margin = 60, 80
    while True:
        text_height = int(rng.integers(min_height, max_height + 1))
        scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, text_height, 1)
        thickness = max(1, int(round(text_height / 12)))
        for _ in range(int(rng.integers(3, 12))):     # lines of the paragraph
            (_, cap), base = cv2.getTextSize("Hg", cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
            y += cap + base + int(text_height * 0.8)
            if y + base > height - 60:
                return page, polygons
            x = margin
            while True:
                word = str(rng.choice(WORDS))
                (w, h), b = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
                if x + w > width - margin:
                    break
                cv2.putText(page, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness, cv2.LINE_AA)
                polygons.append(np.array([[x, y - h], [x + w, y - h], [x + w, y + b], [x, y + b]], np.float32))
                x += w + int(text_height * 2.5)   # wide gaps: word-level and line-level detectors agree
        y += 2 * text_height   # paragraph gap


def page(args):
    from ic15_val import score

    from db_tf import TextDetector, tiling

    base = TextDetector.from_preset(args.model, batch_size=1, max_candidates=20000)
    settings = _settings(base, exclude=("short_side",))
    modes = {"policy": TextDetector(model=base.model, short_side=base.settings["short_side"], **settings),
             "long-side": TextDetector(model=base.model, short_side=10 ** 6, **settings)}
    for scale in args.tile_scale:
        tile = {"size": args.tile_size, "overlap": args.tile_overlap, "scale": scale}
        modes[f"tiled x{scale}"] = TextDetector(model=base.model, tile=tile, batch_size=args.batch_size,
                                                **settings, short_side=base.settings["short_side"])
        if args.own_gates:
            modes[f"tiled-own x{scale}"] = own_gates(TextDetector(model=base.model, tile=tile,
                                                                  batch_size=args.batch_size, **settings,
                                                                  short_side=base.settings["short_side"]))
    pages = [draw_page(args.height, args.width, seed) for seed in range(args.pages)]
    print(f"{args.model}: {args.pages} page(s) {args.height}x{args.width}, "
          f"{sum(len(p) for _, p in pages)} words 12-20 px high")
    for mode, detector in modes.items():
        start = time.perf_counter()
        results = [(detector.detect(image), gt, np.zeros(len(gt), bool)) for image, gt in pages]
        elapsed = (time.perf_counter() - start) / len(pages)
        windows = ""
        if detector.tile is not None:
            plan = tiling.plan_tiles((args.height, args.width), detector.tile, detector.settings["short_side"])
            windows = f", {len(plan.windows)} windows of {plan.tile_shape}"
        t = score(results)
        print(f"  {mode:12s} recall {t['recall']:.4f} precision {t['precision']:.4f} hmean {t['hmean']:.4f}"
              f"  ({elapsed:.1f} s/page{windows})", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("ic15x3", "page"):
        command = sub.add_parser(name)
        command.add_argument("--model", default="ppocrv4_mobile")
        command.add_argument("--tile-size", type=int, default=1024)
        command.add_argument("--tile-overlap", type=float, default=128)
        command.add_argument("--batch-size", type=int, default=1, help="windows per forward pass")
        command.add_argument("--own-gates", action="store_true",
                             help="also tile with each window's own squeeze-excite means (no whole-image context)")
    ic15 = sub.choices["ic15x3"]
    ic15.add_argument("--data", default=None, help="ICDAR 2015 train split folder (imgs/, gts/)")
    ic15.add_argument("--limit", type=int, default=None, help="only the first N validation images")
    synthetic = sub.choices["page"]
    synthetic.add_argument("--pages", type=int, default=1)
    synthetic.add_argument("--height", type=int, default=6000)
    synthetic.add_argument("--width", type=int, default=8000)
    synthetic.add_argument("--tile-scale", type=float, nargs="+", default=[1.0])
    args = parser.parse_args(argv)
    if args.tile_overlap >= 1:
        args.tile_overlap = int(args.tile_overlap)
    if getattr(args, "data", 1) is None:
        from ic15_val import DEFAULT_DATA
        args.data = DEFAULT_DATA
    (ic15x3 if args.what == "ic15x3" else page)(args)


if __name__ == "__main__":
    main()
