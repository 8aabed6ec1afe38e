"""Backgrounds and non-text distractors for the synthetic scene-text generator.

Backgrounds are procedural (gradients, fractal noise, bokeh blobs, bricks / tiles, stripes) or
photographic: crops of the photo and the terrain model that ship inside matplotlib's sample data
(no download, no extra dependency; the one piece of text in the photo, a name tag, is painted out).
Distractors are the things a detector must learn NOT to fire on: strokes, arcs, hatching, grids,
outlined and filled shapes and isolated symbols that look a bit like glyphs.
Everything is drawn at low resolution first where possible (speed: this runs on the fly).
No TensorFlow here.
"""
import functools
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw


def random_color(rng):
    """RGB float32; half of the colours are muted (pulled towards their grey), as most real scenes are."""
    color = rng.integers(0, 256, 3).astype(np.float32)
    if rng.random() < 0.5:
        grey = color.mean()
        color = grey + (color - grey) * rng.uniform(0.1, 0.6)
    return color


def _lerp_palette(t, colors):
    """Map t in [0, 1] (h, w) through a piecewise-linear palette of colours -> float32 (h, w, 3).

    Done as a 256-entry lookup table (cv2.LUT): ~20x faster than interpolating every pixel.
    """
    colors = np.asarray(colors, np.float32)
    pos = np.linspace(0.0, 1.0, 256) * (len(colors) - 1)
    index = np.minimum(pos.astype(np.int32), len(colors) - 2)
    frac = (pos - index)[:, None]
    table = colors[index] * (1.0 - frac) + colors[index + 1] * frac
    levels = (np.clip(t, 0.0, 1.0) * 255.0).astype(np.uint8)
    lut = np.clip(table, 0, 255).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(cv2.merge([levels, levels, levels]), lut).astype(np.float32)


def _upsample(small, h, w):
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def linear_ramp(angle, h, w):
    """0 -> 1 ramp across the image in direction `angle` (float32 (h, w))."""
    xs = np.arange(w, dtype=np.float32)[None, :] * math.cos(angle)
    ys = np.arange(h, dtype=np.float32)[:, None] * math.sin(angle)
    t = xs + ys
    t -= t.min()
    return t / max(float(t.max()), 1.0)


def fractal_noise(rng, h, w, octaves=4, base_cells=3):
    """Sum of upsampled random grids with halving amplitude, normalised to [0, 1]."""
    total = np.zeros((h, w), np.float32)
    amplitude, cells = 1.0, base_cells
    for _ in range(octaves):
        grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
        total += amplitude * _upsample(grid, h, w)
        amplitude *= 0.5
        cells *= 2
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


def gradient_background(rng, h, w):
    t = linear_ramp(rng.uniform(0, 2 * math.pi), h, w)
    image = _lerp_palette(t, [random_color(rng) for _ in range(2)])
    return image + 12.0 * (fractal_noise(rng, h, w, 3, 4)[..., None] - 0.5)


def noise_background(rng, h, w):
    t = fractal_noise(rng, h, w, octaves=int(rng.integers(3, 7)), base_cells=int(rng.integers(2, 8)))
    return _lerp_palette(t, [random_color(rng) for _ in range(int(rng.integers(2, 4)))])


def bokeh_background(rng, h, w):
    """Blurred blobs of colour, like an out-of-focus street behind a sign."""
    scale = 4
    small = np.empty((h // scale, w // scale, 3), np.float32)
    small[:] = random_color(rng)
    for _ in range(int(rng.integers(8, 30))):
        center = (int(rng.integers(0, w // scale)), int(rng.integers(0, h // scale)))
        radius = int(rng.integers(3, max(4, w // scale // 4)))
        cv2.circle(small, center, radius, random_color(rng).tolist(), -1)
    small = cv2.GaussianBlur(small, (0, 0), rng.uniform(2, 6))
    return _upsample(small, h, w)


def tiles_background(rng, h, w):
    """Bricks or tiles with mortar lines and per-tile colour variation (walls, pavements)."""
    tile_w, tile_h = int(rng.integers(24, 160)), int(rng.integers(16, 90))
    base, mortar = random_color(rng), random_color(rng)
    image = np.empty((h, w, 3), np.float32)
    image[:] = mortar
    stagger = rng.random() < 0.6
    gap = int(rng.integers(1, 5))
    for row, y in enumerate(range(0, h, tile_h)):
        offset = (tile_w // 2) * (row % 2) if stagger else 0
        for x in range(-offset, w, tile_w):
            color = base + rng.normal(0, 12, 3)
            image[y:y + tile_h - gap, max(x, 0):max(x + tile_w - gap, 0)] = color
    texture = fractal_noise(rng, h, w, 4, 8)[..., None]
    return image * (0.85 + 0.3 * texture)


def stripes_background(rng, h, w):
    """Wood grain, planks, awnings, corrugated metal: warped sinusoidal stripes."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(6, 80)
    warp = 20.0 * rng.uniform(0, 3) * fractal_noise(rng, h, w, 3, 2)
    t = 0.5 + 0.5 * np.sin((xs * math.cos(angle) + ys * math.sin(angle) + warp) * (2 * math.pi / period))
    return _lerp_palette(t, [random_color(rng), random_color(rng)])


@functools.lru_cache(maxsize=1)
def _photos():
    """The photo and terrain models bundled with matplotlib, as uint8 RGB arrays (loaded once)."""
    import matplotlib  # imported lazily: only its data directory is needed

    root = Path(matplotlib.get_data_path()) / "sample_data"
    photos = []
    portrait = cv2.imread(str(root / "grace_hopper.jpg"), cv2.IMREAD_COLOR)
    if portrait is not None:
        # paint out the name tag (the only text in the photo): unannotated text would be a wrong label
        tag = np.zeros(portrait.shape[:2], np.uint8)
        tag[478:522, 72:172] = 255
        portrait = cv2.inpaint(portrait, tag, 9, cv2.INPAINT_TELEA)
        photos.append(cv2.cvtColor(portrait, cv2.COLOR_BGR2RGB))
    for name, key in (("jacksboro_fault_dem.npz", "elevation"), ("topobathy.npz", "topo")):
        path = root / name
        if path.is_file():
            with np.load(path) as data:
                photos.append(_hillshade(data[key].astype(np.float32)))
    return photos


def _hillshade(elevation):
    """Shaded relief of a terrain model: a natural, photo-like grey texture."""
    gy, gx = np.gradient(elevation)
    scale = 1.0 / max(float(np.percentile(np.hypot(gx, gy), 95)), 1e-6)
    shade = 0.5 + 0.5 * np.clip((gx - gy) * scale, -1, 1)
    return np.repeat((shade * 255).astype(np.uint8)[..., None], 3, axis=2)


def photo_background(rng, h, w):
    photos = _photos()
    if not photos:
        return noise_background(rng, h, w)
    photo = photos[int(rng.integers(len(photos)))]
    ph, pw = photo.shape[:2]
    crop = rng.uniform(0.3, 1.0)
    ch, cw = max(int(ph * crop), 8), max(int(pw * crop), 8)
    y, x = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    image = cv2.resize(photo[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    # recolour: random per-channel gain and offset, so one photo gives many looks
    image = image * rng.uniform(0.6, 1.3, 3).astype(np.float32) + rng.uniform(-40, 40, 3).astype(np.float32)
    if rng.random() < 0.5:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(1, 4))
    return image


BACKGROUNDS = {
    "gradient": gradient_background,
    "noise": noise_background,
    "bokeh": bokeh_background,
    "tiles": tiles_background,
    "stripes": stripes_background,
    "photo": photo_background,
}


def random_background(rng, h, w, kind=None):
    """uint8 (h, w, 3) RGB background; kind = a key of BACKGROUNDS, "flat:R,G,B" or None (random)."""
    if kind is not None and kind.startswith("flat"):
        color = [int(c) for c in kind.split(":")[1].split(",")] if ":" in kind else [128, 128, 128]
        return np.full((h, w, 3), color, np.uint8)
    chosen_here = kind is None
    if chosen_here:
        kind = str(rng.choice(list(BACKGROUNDS)))
    image = BACKGROUNDS[kind](rng, h, w)
    if chosen_here and rng.random() < 0.25:
        # blend with a second background for richer textures
        other = BACKGROUNDS[str(rng.choice(list(BACKGROUNDS)))](rng, h, w)
        image = image * 0.6 + other * 0.4
    return np.clip(image, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ distractors

_SYMBOLS = "→←↑↓⇒⇦★☆♥♦♣♠●○■□▲△▼◆◇✓✗☎⚠♪♫∞☀☂☺"


def draw_distractors(image, rng, count):
    """Draw `count` non-text marks into image (uint8 RGB, in place)."""
    h, w = image.shape[:2]
    for _ in range(count):
        kind = int(rng.integers(7))
        color = random_color(rng).tolist()
        thickness = int(rng.integers(1, 8))
        p = lambda: (int(rng.integers(0, w)), int(rng.integers(0, h)))  # noqa: E731
        if kind == 0:  # straight lines (poles, cables, edges)
            cv2.line(image, p(), p(), color, thickness, cv2.LINE_AA)
        elif kind == 1:  # wandering stroke, like handwriting or cracks
            _random_stroke(image, rng, color, thickness)
        elif kind == 2:  # glyph-sized arcs: the parts of letters a detector may confuse
            axes = (int(rng.integers(4, 40)), int(rng.integers(4, 40)))
            start = float(rng.uniform(0, 360))
            cv2.ellipse(image, p(), axes, float(rng.uniform(0, 180)), start, start + rng.uniform(60, 300),
                        color, thickness, cv2.LINE_AA)
        elif kind == 3:  # outlined or filled boxes and circles
            if rng.random() < 0.5:
                cv2.rectangle(image, p(), p(), color, -1 if rng.random() < 0.3 else thickness)
            else:
                cv2.circle(image, p(), int(rng.integers(3, 60)), color, -1 if rng.random() < 0.4 else thickness,
                           cv2.LINE_AA)
        elif kind == 4:  # hatching / barcodes / railings: repeated parallel strokes
            _hatching(image, rng, color)
        elif kind == 5:  # grid (windows, fences)
            _grid(image, rng, color)
        else:
            _symbol(image, rng, color)


def _random_stroke(image, rng, color, thickness):
    h, w = image.shape[:2]
    n = int(rng.integers(4, 12))
    step = rng.uniform(5, 40)
    heading = rng.uniform(0, 2 * math.pi)
    x, y = rng.uniform(0, w), rng.uniform(0, h)
    points = []
    for _ in range(n):
        points.append((x, y))
        heading += rng.normal(0, 0.6)
        x, y = x + step * math.cos(heading), y + step * math.sin(heading)
    cv2.polylines(image, [np.round(points).astype(np.int32)], False, color, thickness, cv2.LINE_AA)


def _hatching(image, rng, color):
    h, w = image.shape[:2]
    x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
    length, count = int(rng.integers(10, 80)), int(rng.integers(4, 20))
    gap = int(rng.integers(3, 12))
    angle = rng.uniform(0, math.pi)
    dx, dy = math.cos(angle), math.sin(angle)
    for i in range(count):
        sx, sy = x0 + i * gap * dy, y0 - i * gap * dx
        end = (int(sx + length * dx), int(sy + length * dy))
        cv2.line(image, (int(sx), int(sy)), end, color, int(rng.integers(1, 4)), cv2.LINE_AA)


def _grid(image, rng, color):
    h, w = image.shape[:2]
    x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
    cell, n = int(rng.integers(8, 50)), int(rng.integers(2, 7))
    for i in range(n + 1):
        cv2.line(image, (x0 + i * cell, y0), (x0 + i * cell, y0 + n * cell), color, 1 + int(rng.integers(3)))
        cv2.line(image, (x0, y0 + i * cell), (x0 + n * cell, y0 + i * cell), color, 1 + int(rng.integers(3)))


def _symbol(image, rng, color):
    """An isolated pictogram-like glyph (arrow, star, heart...): not text, so not annotated."""
    from db_tf.synth_text import _font, font_paths  # shared font cache

    fonts = [p for p in font_paths() if "DejaVuSans" in p and "Mono" not in p]
    size = int(rng.integers(14, 90))
    font = _font(fonts[int(rng.integers(len(fonts)))], size)
    symbol = _SYMBOLS[int(rng.integers(len(_SYMBOLS)))]
    mask = Image.new("L", (size * 2, size * 2), 0)
    ImageDraw.Draw(mask).text((size // 2, size // 4), symbol, font=font, fill=255)
    alpha = np.asarray(mask, np.float32)[..., None] / 255.0
    h, w = image.shape[:2]
    y, x = int(rng.integers(0, max(h - 2 * size, 1))), int(rng.integers(0, max(w - 2 * size, 1)))
    region = image[y:y + 2 * size, x:x + 2 * size]
    a = alpha[:region.shape[0], :region.shape[1]]
    region[:] = (region * (1 - a) + np.asarray(color, np.float32) * a).astype(np.uint8)
