"""Text for the synthetic scene-text generator: words, fonts, flat rendering and text geometry.

A text instance is rendered flat (horizontal, PIL + FreeType) into an alpha mask, then mapped onto
the canvas by  canvas = H(C(u, v)):  C bends the flat patch around a circular arc (or leaves it
straight) and H is a homography (3D tilt seen by a pinhole camera, in-plane rotation, placement).
The GT polygon is the image of the tight ink rectangle of each word (or line) under the SAME map,
so it encloses the rendered glyphs by construction:
  * straight text -> 4 points (a homography maps a rectangle to a quadrilateral exactly);
  * curved text   -> 2n points (n = 2..8 per long side); the outer side uses the circumscribed
    polygon of its arc (vertices pushed out by 1 / cos(dphi / 2)) so that chords never cut ink.
No TensorFlow here (numpy / OpenCV / PIL only).
"""
import functools
import math
import string
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# ------------------------------------------------------------------ words

WORDS = tuple("""
the and for you with this that from your are not all new our more open now free sale shop
street road avenue park station exit entrance stop bus taxi hotel cafe coffee restaurant bar
pizza bakery market bank pharmacy hospital police school library museum office parking toilet
welcome thank please push pull closed hours daily menu special offer price only today
north south east west left right city center centre town river bridge tower hall house home
love life time world people good great best first last next day night week year
water fire light green red blue black white yellow orange gold silver star sun moon
food drink tea beer wine juice milk bread fresh hot cold ice cream fruit fish chicken rice
book news music video game sport club team gym health beauty hair nail fashion style shoes
phone mobile service repair car auto tyre tire wash fuel gas oil electric power energy
info help call visit contact online order delivery pickup fast express airport terminal
gate platform ticket tickets lane floor level room suite block building tower plaza mall
limited company group international national global digital studio design art gallery
danger warning caution private keep out no smoking entry only way one speed limit slow
chemist clinic dental doctor optical eye care baby kids toys gift gifts flowers garden
apple orange banana lemon mango cherry grape melon tomato potato onion pepper salt sugar
king queen royal golden lucky happy smile dream magic super mega ultra max pro plus
Hong Kong Tokyo Paris London Berlin Rome Madrid Lisbon Seoul Dubai Sydney Boston Chicago
""".split())

_FOREIGN = ("Straße", "café", "Größe", "niño", "über", "garçon", "ΑΘΗΝΑ", "ΣΤΑΣΗ", "Москва", "МЕТРО",
            "выход", "καφέ")


def _number(rng):
    kind = rng.integers(8)
    d = lambda n: "".join(str(x) for x in rng.integers(0, 10, n))  # noqa: E731
    if kind == 0:
        return f"${rng.integers(1, 1000)}.{d(2)}"
    if kind == 1:
        return f"{d(3)}-{d(4)}"
    if kind == 2:
        return f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}"
    if kind == 3:
        return f"{rng.integers(1, 100)}%"
    if kind == 4:
        return f"{rng.integers(1, 29)}/{rng.integers(1, 13)}/{rng.integers(1990, 2030)}"
    if kind == 5:
        return f"No.{rng.integers(1, 300)}"
    if kind == 6:
        return "".join(rng.choice(list(string.ascii_uppercase), 2)) + "-" + d(int(rng.integers(2, 5)))
    return d(int(rng.integers(1, 7)))


def random_word(rng):
    """A text-like token: a common word (mixed case), a number-like token or a non-ASCII word."""
    r = rng.random()
    if r < 0.18:
        return _number(rng)
    if r < 0.21:
        return str(rng.choice(_FOREIGN))
    word = str(rng.choice(WORDS))
    case = rng.random()
    if case < 0.35:
        return word.upper()
    if case < 0.7:
        return word.capitalize()
    return word


# ------------------------------------------------------------------ fonts

# matplotlib (a dependency of db-tf) bundles these fonts, so they are available offline everywhere.
_MPL_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmb10.ttf", "cmss10.ttf",
    "cmti10.ttf", "cmtt10.ttf",
)
# The TeX (cm*) fonts map some ASCII code points to other glyphs ("<" draws an inverted "!"):
# only these characters are drawn as themselves.
_TEX_SAFE = set(string.ascii_letters + string.digits + " .,:-!?()'/")


@functools.lru_cache(maxsize=1)
def font_paths():
    """Paths of the bundled fonts that exist in this matplotlib installation."""
    import matplotlib  # imported lazily: only its data directory is needed

    root = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    paths = tuple(str(root / name) for name in _MPL_FONTS if (root / name).is_file())
    if not paths:
        raise RuntimeError(f"no fonts found in {root}: the synthetic text generator needs matplotlib's fonts")
    return paths


@functools.lru_cache(maxsize=64)
def font_charset(path):
    """Characters the font draws as themselves."""
    from matplotlib import ft2font

    chars = {chr(code) for code in ft2font.FT2Font(path).get_charmap()}
    if Path(path).name.startswith("cm"):
        chars &= _TEX_SAFE
    return frozenset(chars | {" "})


@functools.lru_cache(maxsize=512)
def _font(path, size):
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


# ------------------------------------------------------------------ flat rendering


@dataclass
class FlatText:
    """A horizontally rendered text patch.

    fill, outline: uint8 (h, w) alpha masks (outline is None without an outline stroke; when
    present it contains the fill). word_boxes / line_box: tight ink rectangles (u0, u1, v0, v1)
    in patch coordinates with pixel centres at integers (cv2's convention), spanning the support
    of the outermost ink pixels under bilinear resampling (their centres +- 1).
    """

    fill: np.ndarray
    outline: np.ndarray
    words: list
    word_boxes: list
    line_box: tuple


INK_LEVEL = 26  # alpha above ~10 % counts as ink when measuring the tight boxes


def render_flat(words, font_path, size, tracking=0, stroke=0):
    """Render words separated by single spaces; return a FlatText cropped to the ink (+2 px).

    tracking: extra pixels between characters (spaced-out sign lettering).
    Returns None if nothing was drawn (e.g. a font without these glyphs).
    """
    font = _font(font_path, int(size))
    text = " ".join(words)
    pad = max(3, int(size) // 3) + stroke
    ascent, descent = font.getmetrics()
    if tracking:
        advances = [font.getlength(ch) + tracking for ch in text]
        starts = np.concatenate([[0.0], np.cumsum(advances)])
    else:  # x of each character start; only the ones around spaces and the end are needed
        starts = np.zeros(len(text) + 1)
        for i in [i for i, ch in enumerate(text) if ch == " "] + [len(text)]:
            starts[i] = font.getlength(text[:i])
            if i < len(text):
                starts[i + 1] = font.getlength(text[:i + 1])
    width = int(math.ceil(starts[-1])) + 2 * pad
    height = ascent + descent + 2 * pad
    fill = _draw(text, font, starts, pad, width, height, tracking, 0)
    outline = _draw(text, font, starts, pad, width, height, tracking, stroke) if stroke else None
    ink = outline if outline is not None else fill
    rows, cols = np.nonzero(ink > INK_LEVEL)
    if rows.size == 0:
        return None
    # crop to the ink plus a 2 px border (less to warp later)
    r0, r1 = max(rows.min() - 2, 0), min(rows.max() + 3, height)
    c0, c1 = max(cols.min() - 2, 0), min(cols.max() + 3, width)
    fill = np.ascontiguousarray(fill[r0:r1, c0:c1])
    outline = None if outline is None else np.ascontiguousarray(outline[r0:r1, c0:c1])
    ink = ink[r0:r1, c0:c1]
    cuts = _word_cuts(words, starts + pad - c0, ink.shape[1])
    word_boxes, kept = [], []
    for word, (a, b) in zip(words, cuts):
        box = _ink_box(ink[:, a:b], a)
        if box is not None:
            word_boxes.append(box)
            kept.append(word)
    if not word_boxes:
        return None
    line_box = (min(b[0] for b in word_boxes), max(b[1] for b in word_boxes),
                min(b[2] for b in word_boxes), max(b[3] for b in word_boxes))
    return FlatText(fill, outline, kept, word_boxes, line_box)


def _draw(text, font, starts, pad, width, height, tracking, stroke):
    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    kwargs = dict(font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    if tracking:
        for ch, x in zip(text, starts):
            draw.text((pad + x, pad), ch, **kwargs)
    else:
        draw.text((pad, pad), text, **kwargs)
    return np.asarray(image)


def _word_cuts(words, char_x, width):
    """Column ranges [a, b) of each word: cut in the middle of the spaces between words."""
    cuts, index, left = [], 0, 0
    for i, word in enumerate(words):
        end = index + len(word)
        if i + 1 < len(words):
            right = int(round((char_x[end] + char_x[end + 1]) / 2))  # middle of the space
        else:
            right = width
        cuts.append((left, max(right, left + 1)))
        left, index = right, end + 1
    return cuts


def _ink_box(ink, col_offset):
    rows, cols = np.nonzero(ink > INK_LEVEL)
    if rows.size == 0:
        return None
    # pixel centres at integers: pixel c covers [c - 0.5, c + 0.5], and bilinear resampling in the
    # warp spreads it over (c - 1, c + 1): the box takes that support so no warped ink falls outside
    return (cols.min() + col_offset - 1.0, cols.max() + col_offset + 1.0, rows.min() - 1.0, rows.max() + 1.0)


# ------------------------------------------------------------------ geometry


@dataclass
class Arc:
    """Bend of the flat patch around a circle.

    The patch row v_mid becomes an arc of `radius` (arc length preserved along it); sign = +1 puts
    the circle centre below the text (an arch: text around the top of a wheel), -1 above it (a bowl).
    """

    radius: float
    sign: int
    u_mid: float
    v_mid: float

    def forward(self, u, v):
        phi = (u - self.u_mid) / self.radius
        rho = self.radius + self.sign * (self.v_mid - v)
        x = self.u_mid + rho * np.sin(phi)
        y = self.v_mid + self.sign * (self.radius - rho * np.cos(phi))
        return x, y

    def inverse(self, x, y):
        dx = x - self.u_mid
        dy = self.sign * (self.v_mid + self.sign * self.radius - y)
        rho = np.hypot(dx, dy)
        u = self.u_mid + self.radius * np.arctan2(dx, dy)
        v = self.v_mid + self.sign * (self.radius - rho)
        return u, v

    def rho(self, v):
        return self.radius + self.sign * (self.v_mid - v)


def box_outline(box, arc, max_points_per_side=8):
    """Polygon (in bent-patch coordinates) that encloses the ink rectangle `box` after bending.

    Straight: the 4 corners. Arc: n points per long side, n chosen so each chord spans <= ~20 deg;
    the outer side's points sit on the circumscribed polygon of its arc.
    """
    u0, u1, v0, v1 = box
    if arc is None:
        return np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], np.float64)
    span = (u1 - u0) / arc.radius
    n = int(np.clip(math.ceil(math.degrees(span) / 20.0) + 1, 2, max_points_per_side))
    us = np.linspace(u0, u1, n)
    half_step = span / (n - 1) / 2.0
    top_outer = arc.rho(v0) > arc.rho(v1)
    outer_v = v0 if top_outer else v1
    outer_rho = arc.rho(outer_v) / math.cos(half_step)
    outer_v = arc.v_mid - arc.sign * (outer_rho - arc.radius)  # v whose rho is outer_rho
    v_top, v_bottom = (outer_v, v1) if top_outer else (v0, outer_v)
    top = np.stack(arc.forward(us, np.full(n, v_top)), axis=1)
    bottom = np.stack(arc.forward(us[::-1], np.full(n, v_bottom)), axis=1)
    return np.concatenate([top, bottom], axis=0)


def apply_homography(matrix, points):
    pts = np.asarray(points, np.float64)
    homog = pts @ matrix[:, :2].T + matrix[:, 2]
    return homog[:, :2] / homog[:, 2:3]


def camera_homography(tilt_x, tilt_y, roll, focal, center):
    """Homography of a plane (centred at `center`) rotated in 3D and seen by a pinhole camera.

    tilt_x / tilt_y rotate about the horizontal / vertical axis (radians), roll in-plane; `focal`
    in pixels (smaller = stronger perspective). The plane centre stays where it is.
    """
    cx, cy = center
    rx = np.array([[1, 0, 0], [0, math.cos(tilt_x), -math.sin(tilt_x)], [0, math.sin(tilt_x), math.cos(tilt_x)]])
    ry = np.array([[math.cos(tilt_y), 0, math.sin(tilt_y)], [0, 1, 0], [-math.sin(tilt_y), 0, math.cos(tilt_y)]])
    rz = np.array([[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
    rotation = rz @ ry @ rx
    # plane point (x, y, 0) relative to the centre, placed at depth `focal` and projected back
    to_camera = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], np.float64)
    plane = rotation @ to_camera + np.array([[0, 0, 0], [0, 0, 0], [0, 0, focal]])
    project = np.array([[focal, 0, 0], [0, focal, 0], [0, 0, 1]], np.float64)
    shift_in = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], np.float64)
    shift_out = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]], np.float64)
    matrix = shift_out @ project @ plane @ shift_in
    return matrix / matrix[2, 2]


def warp_patch(alpha, arc, matrix, region):
    """Map the flat alpha patch onto the canvas region (x0, y0, x1, y1) through H(C(.)).

    Straight text uses cv2.warpPerspective; bent text inverts the map per pixel and cv2.remap's it.
    Returns float32 alpha in [0, 1] of the region's shape.
    """
    x0, y0, x1, y1 = region
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
    size = (x1 - x0, y1 - y0)
    if arc is None:
        out = cv2.warpPerspective(alpha, shift @ matrix, size, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return out.astype(np.float32) * (1.0 / 255.0)
    inverse = np.linalg.inv(matrix)
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
    den = inverse[2, 0] * xs + inverse[2, 1] * ys + inverse[2, 2]
    bx = (inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]) / den
    by = (inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]) / den
    u, v = arc.inverse(bx, by)
    out = cv2.remap(alpha, u.astype(np.float32), v.astype(np.float32), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.astype(np.float32) * (1.0 / 255.0)


def patch_outline(shape, arc, samples=12):
    """Points on the border of the whole flat patch, bent (for the canvas bounding region)."""
    h, w = shape
    us = np.linspace(-0.5, w - 0.5, samples)
    vs = np.linspace(-0.5, h - 0.5, samples)
    border = np.concatenate([
        np.stack([us, np.full(samples, -0.5)], 1), np.stack([us, np.full(samples, h - 0.5)], 1),
        np.stack([np.full(samples, -0.5), vs], 1), np.stack([np.full(samples, w - 0.5), vs], 1)])
    if arc is None:
        return border
    return np.stack(arc.forward(border[:, 0], border[:, 1]), axis=1)
