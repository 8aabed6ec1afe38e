"""Synthetic scene text: the dataset db-tf trains on when no real dataset is configured.

    python -m db_tf.synth --out DIR --num N [--size 640] [--seed 0] [--level word|line|mixed]
    python -m db_tf.synth --sheet figures/synth_samples.png      # contact sheet with GT drawn
                                                                 # (care texts green, ignored red)

`generate(seed)` draws one image: a procedural or photographic background, non-text distractors,
3-14 text instances (common words, numbers, a few non-ASCII words; mixed case; 21 bundled fonts;
size, colour, outline, letter spacing, 3D tilt, rotation and circular bending at random; some on
sign panels), then global lighting / blur / noise / JPEG effects. GT polygons are exact images of
the tight ink rectangles (see db_tf.synth_text), 4 points for straight text and up to 16 for bent
text, at word level (ICDAR 2015 / Total-Text style) or line level (MSRA-TD500 / CTW1500 style).
Texts too small to read (ink under ~8 px) are marked ignore with transcription "###".

Everything is a pure function of the seed (an int or a sequence of ints such as
(seed, epoch, index)), so the training pipeline can draw images on the fly reproducibly.
The files written by the CLI use the "polygon_txt" format of db_tf.data.readers:
DIR/images/img_<i>.jpg and DIR/labels/gt_img_<i>.txt with one `x1,y1,...,xk,yk,text` per line.
No TensorFlow here.
"""
import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from db_tf.synth_backgrounds import draw_distractors, linear_ramp, random_background, random_color
from db_tf.synth_text import (
    Arc,
    apply_homography,
    box_outline,
    camera_homography,
    font_charset,
    font_paths,
    patch_outline,
    random_word,
    render_flat,
    warp_patch,
)

IGNORE_TEXT = "###"
LEVELS = ("word", "line", "mixed")


@dataclass
class SynthSample:
    image: np.ndarray                                  # uint8 (H, W, 3) RGB
    polygons: list = field(default_factory=list)       # float32 (K, 2) arrays, K in 4..16
    ignore: np.ndarray = None                          # bool (n,)
    texts: list = field(default_factory=list)          # transcriptions, "###" for ignored


def make_rng(seed):
    """numpy Generator from an int, a sequence of ints (e.g. (seed, epoch, index)) or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(np.random.SeedSequence([int(s) for s in np.atleast_1d(seed)]))


def generate(seed, height=640, width=640, level="word", background=None, distractors=True, panels=True,
             effects=True, max_texts=14):
    """Render one synthetic scene-text image.

    level: "word" (a polygon per word), "line" (a polygon per line of words) or "mixed" (chosen per
    image). background: None = random, a key of synth_backgrounds.BACKGROUNDS, or "flat:R,G,B".
    distractors / panels / effects switch off the non-text marks, sign panels and global image
    effects (tests use a clean image to check the polygons against the ink).
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    rng = make_rng(seed)
    image = random_background(rng, height, width, background)
    if distractors:
        draw_distractors(image, rng, int(rng.integers(2, 14)))
    if level == "mixed":
        level = "word" if rng.random() < 0.5 else "line"
    occupied = np.zeros((height // 4 + 1, width // 4 + 1), np.uint8)
    sample = SynthSample(image, [], None, [])
    ignore = []
    for _ in range(int(rng.integers(3, max_texts + 1))):
        _place_text(sample, ignore, occupied, rng, level, panels)
    sample.ignore = np.array(ignore, bool)
    if effects:
        sample.image = _global_effects(sample.image, rng)
    return sample


# ------------------------------------------------------------------ one text instance


def _text_style(rng, canvas_side):
    tiny = rng.random() < 0.08
    if tiny:  # unreadable small text, annotated as ignore like ICDAR's "###"
        size = int(rng.integers(6, 10))
    else:
        largest = max(0.16 * canvas_side, 12.0)
        size = int(round(math.exp(rng.uniform(math.log(min(14.0, largest / 2)), math.log(largest)))))
    n_words = 1 if rng.random() < 0.5 else int(rng.integers(2, 5))
    return dict(
        tiny=tiny,
        size=size,
        n_words=n_words,
        tracking=rng.uniform(0.05, 0.4) * size if rng.random() < 0.12 else 0,
        stroke=max(1, int(round(size * rng.uniform(0.04, 0.09)))) if rng.random() < 0.12 and size >= 16 else 0,
        bend_degrees=rng.uniform(25, 160) if rng.random() < 0.25 else 0.0,
    )


def _pick_words_and_font(rng, n_words):
    fonts = font_paths()
    for _ in range(10):
        words = [random_word(rng) for _ in range(n_words)]
        font = fonts[int(rng.integers(len(fonts)))]
        if set("".join(words)) <= font_charset(font):
            return words, font
    return [str(w) for w in rng.choice(["OPEN", "SALE", "EXIT"], n_words)], fonts[0]


def _camera(rng, center, patch_side, canvas_side):
    """Homography of a random view: mostly near-horizontal, some any angle, a few vertical; half tilted."""
    roll_kind = rng.random()
    if roll_kind < 0.7:
        roll = rng.normal(0, 0.12)
    elif roll_kind < 0.95:
        roll = rng.uniform(-math.pi / 2, math.pi / 2)
    else:
        roll = math.pi / 2 * rng.choice([-1, 1])  # vertical, reading bottom-up or top-down
    tilt_x = tilt_y = 0.0
    if rng.random() < 0.5:
        tilt_x, tilt_y = np.clip(rng.normal(0, 0.35, 2), -0.9, 0.9)
    focal = rng.uniform(0.8, 2.5) * max(patch_side, canvas_side)
    return camera_homography(tilt_x, tilt_y, roll, focal, center)


def _render_to_fit(words, font, style, rng, width, height):
    """Render and pose the text; shrink the font once if it does not fit the canvas.

    Returns (flat text, arc or None, homography, posed patch border) or None.
    """
    for _attempt in range(2):
        flat = render_flat(words, font, style["size"], style["tracking"], style["stroke"])
        if flat is None:
            return None
        arc = _bend(flat, style["bend_degrees"], rng)
        border = patch_outline(flat.fill.shape, arc)
        center = (border.min(0) + border.max(0)) / 2
        matrix = _camera(rng, center, float(np.ptp(border, 0).max()), max(height, width))
        placed = apply_homography(matrix, border)
        extent = np.ptp(placed, 0)
        if extent[0] < width - 8 and extent[1] < height - 8:
            return flat, arc, matrix, placed
        style["size"] = int(style["size"] * 0.9 * min((width - 8) / extent[0], (height - 8) / extent[1]))
        style["tiny"] = style["tiny"] or style["size"] < 10
        if style["size"] < 6:
            return None
    return None


def _find_free_spot(matrix, placed, keep_out, occupied, size, rng, width, height):
    """Translate the posed text to a random spot where it keeps clear of earlier texts (6 tries).

    Returns the final homography (and marks the spot occupied) or None.
    """
    for _try in range(6):
        low, high = 4 - placed.min(0), np.array([width - 4, height - 4]) - placed.max(0)
        if np.any(high < low):
            return None
        shift = rng.uniform(low, high)
        moved = np.array([[1, 0, shift[0]], [0, 1, shift[1]], [0, 0, 1]]) @ matrix
        footprint = _footprint(apply_homography(moved, keep_out), occupied.shape, size)
        if not np.any(occupied & footprint):
            occupied |= footprint
            return moved
    return None


def _place_text(sample, ignore, occupied, rng, level, panels):
    """Render one text instance (a word or a line of words) somewhere free; returns True if placed."""
    height, width = sample.image.shape[:2]
    style = _text_style(rng, min(height, width))
    words, font = _pick_words_and_font(rng, style["n_words"])
    fitted = _render_to_fit(words, font, style, rng, width, height)
    if fitted is None:
        return False
    flat, arc, matrix, placed = fitted
    panel_box = _panel_box(flat) if panels and rng.random() < 0.2 else None
    keep_out = box_outline(panel_box or flat.line_box, arc)
    moved = _find_free_spot(matrix, placed, keep_out, occupied, style["size"], rng, width, height)
    if moved is None:
        return False
    if panel_box:
        _draw_panel(sample.image, apply_homography(moved, box_outline(panel_box, arc)), rng)
    region = _region(apply_homography(moved, patch_outline(flat.fill.shape, arc)), width, height)
    _composite(sample.image, flat, arc, moved, region, rng)
    boxes = flat.word_boxes if level == "word" else [flat.line_box]
    texts = flat.words if level == "word" else [" ".join(flat.words)]
    for box, text in zip(boxes, texts):
        polygon = apply_homography(moved, box_outline(box, arc)).astype(np.float32)
        sample.polygons.append(polygon)
        sample.texts.append(IGNORE_TEXT if style["tiny"] else text)
        ignore.append(style["tiny"])
    return True


def _bend(flat, degrees, rng):
    if not degrees:
        return None
    u0, u1, v0, v1 = flat.line_box
    radius = (u1 - u0) / math.radians(degrees)
    radius = max(radius, 1.5 * flat.fill.shape[0])  # keep the inner side of the bend a real circle
    sign = 1 if rng.random() < 0.6 else -1
    return Arc(radius=radius, sign=sign, u_mid=(u0 + u1) / 2, v_mid=(v0 + v1) / 2)


def _panel_box(flat):
    u0, u1, v0, v1 = flat.line_box
    margin = 0.35 * (v1 - v0)
    return (u0 - margin, u1 + margin, v0 - margin, v1 + margin)


def _footprint(polygon, shape, size):
    """Quarter-resolution mask of the polygon grown by a margin (keeps texts apart)."""
    mask = np.zeros(shape, np.uint8)
    center = polygon.mean(0)
    grown = center + (polygon - center) * 1.1
    cv2.fillPoly(mask, [np.round(grown / 4).astype(np.int32)], 1)
    grow = max(1, int(size * 0.15 / 4))
    return cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))


def _region(points, width, height):
    x0, y0 = np.floor(points.min(0)).astype(int) - 3
    x1, y1 = np.ceil(points.max(0)).astype(int) + 4
    return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)


def _luminance(color):
    return 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]


def _contrasting_color(rng, under, min_delta):
    for _ in range(12):
        color = random_color(rng)
        if abs(_luminance(color) - _luminance(under)) >= min_delta:
            return color
    return np.array([20.0, 20.0, 20.0] if _luminance(under) > 128 else [235.0, 235.0, 235.0], np.float32)


def _draw_panel(image, polygon, rng):
    color = random_color(rng).tolist()
    cv2.fillPoly(image, [np.round(polygon * 16).astype(np.int32)], color, cv2.LINE_AA, shift=4)


def _composite(image, flat, arc, matrix, region, rng):
    x0, y0, x1, y1 = region
    fill = warp_patch(flat.fill, arc, matrix, region)[..., None]
    patch = image[y0:y1, x0:x1].astype(np.float32)
    weight = fill[..., 0]
    under = (patch * fill).sum((0, 1)) / max(float(weight.sum()), 1e-6)
    min_delta = 70 if rng.random() < 0.85 else 45
    if flat.outline is not None:
        outline = warp_patch(flat.outline, arc, matrix, region)[..., None]
        edge_color = _contrasting_color(rng, under, min_delta)
        patch = patch * (1 - outline) + edge_color * outline
        under = edge_color
    color = _contrasting_color(rng, under, min_delta)
    if rng.random() < 0.15:  # two-tone gradient fill
        other = np.clip(color + rng.normal(0, 50, 3), 0, 255)
        if abs(_luminance(other) - _luminance(under)) >= min_delta:
            ramp = np.linspace(0, 1, x1 - x0, dtype=np.float32)[None, :, None]
            color = color * (1 - ramp) + other * ramp
    patch = patch * (1 - fill) + color * fill
    image[y0:y1, x0:x1] = np.clip(patch, 0, 255).astype(np.uint8)


def _global_effects(image, rng):
    """Uneven lighting, defocus, sensor noise and JPEG artefacts, each with some probability."""
    h, w = image.shape[:2]
    lighting, blur, noise, jpeg = rng.random(4) < (0.3, 0.25, 0.3, 0.3)
    if lighting or noise:
        out = image.astype(np.float32)
        if lighting:
            ramp = linear_ramp(rng.uniform(0, 2 * math.pi), h, w)
            out *= (rng.uniform(0.6, 1.0) + rng.uniform(0, 0.4) * ramp)[..., None]
        if noise:
            out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(rng.uniform(2, 8))
        image = np.clip(out, 0, 255).astype(np.uint8)
    if blur:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.1))
    if jpeg:
        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)  # channel order is irrelevant to the codec
    return image


# ------------------------------------------------------------------ files and CLI


def polygon_txt_lines(sample):
    """GT lines of the polygon_txt format: x1,y1,...,xk,yk,transcription."""
    lines = []
    for polygon, text in zip(sample.polygons, sample.texts):
        coords = ",".join(f"{v:.1f}" for v in polygon.reshape(-1))
        lines.append(f"{coords},{text}")
    return lines


def write_dataset(out_dir, num, size=640, seed=0, level="word", start=0):
    """Write images/img_<i>.jpg and labels/gt_img_<i>.txt for i in [start, start + num)."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    for index in range(start, start + num):
        sample = generate((seed, index), size, size, level=level)
        cv2.imwrite(str(out_dir / "images" / f"img_{index}.jpg"), cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        (out_dir / "labels" / f"gt_img_{index}.txt").write_text("\n".join(polygon_txt_lines(sample)) + "\n",
                                                                 encoding="utf-8")


def draw_annotations(sample, thickness=1):
    """Copy of the image with care polygons in green and ignored ones in red."""
    canvas = sample.image.copy()
    for polygon, ignored in zip(sample.polygons, sample.ignore):
        color = (255, 40, 40) if ignored else (40, 255, 40)
        cv2.polylines(canvas, [np.round(polygon * 16).astype(np.int32)], True, color, thickness, cv2.LINE_AA,
                      shift=4)
    return canvas


def contact_sheet(path, seeds, size=640, tile=256, columns=4, level="mixed"):
    """Grid of size x size samples with their GT polygons drawn, shown at tile x tile, saved as an image."""
    tiles = [cv2.resize(draw_annotations(generate(seed, size, size, level=level), thickness=2), (tile, tile),
                        interpolation=cv2.INTER_AREA) for seed in seeds]
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    rows[-1] = np.pad(rows[-1], ((0, 0), (0, rows[0].shape[1] - rows[-1].shape[1]), (0, 0)))
    sheet = np.concatenate(rows, axis=0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="output directory (images/ and labels/ are created in it)")
    parser.add_argument("--num", type=int, default=100, help="number of images")
    parser.add_argument("--size", type=int, default=640, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--level", choices=LEVELS, default="word", help="GT granularity")
    parser.add_argument("--sheet", help="also write a contact sheet of samples with their GT to this image")
    args = parser.parse_args(argv)
    if not args.out and not args.sheet:
        parser.error("give --out DIR and/or --sheet PATH")
    if args.out:
        write_dataset(args.out, args.num, args.size, args.seed, args.level)
        print(f"wrote {args.num} images and GT files to {args.out}")
    if args.sheet:
        contact_sheet(args.sheet, [(args.seed, 10_000 + i) for i in range(12)], size=args.size)
        print(f"wrote {args.sheet}")


if __name__ == "__main__":
    main()
