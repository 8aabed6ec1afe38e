"""Render figures/demo.jpg: a street-corner scene with signs and a poster, drawn with PIL and the
DejaVu fonts (Bitstream Vera licence, free to redistribute). Deterministic: same output every run."""
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu")]
try:
    import matplotlib
    FONT_DIRS.append(Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf")
except ImportError:
    pass


def font(name, size):
    for d in FONT_DIRS:
        if (d / name).is_file():
            return ImageFont.truetype(str(d / name), size)
    raise FileNotFoundError(name)


def vertical_gradient(w, h, top, bottom):
    t = np.linspace(0, 1, h)[:, None, None]
    return (np.array(top) * (1 - t) + np.array(bottom) * t).repeat(w, axis=1)


def rotated_panel(panel, angle):
    return panel.rotate(angle, resample=Image.BICUBIC, expand=True)


def sign(size, fill, border, lines, radius=18):
    """A rounded sign with centred lines [(text, font, colour)]."""
    w, h = size
    panel = Image.new("RGBA", size, (0, 0, 0, 0))
    d = ImageDraw.Draw(panel)
    d.rounded_rectangle((0, 0, w - 1, h - 1), radius, fill=fill, outline=border, width=6)
    heights = [d.textbbox((0, 0), t, font=f)[3] for t, f, _ in lines]
    y = (h - sum(heights) - 14 * (len(lines) - 1)) / 2
    for (text, f, colour), lh in zip(lines, heights):
        tw = d.textlength(text, font=f)
        d.text(((w - tw) / 2, y), text, font=f, fill=colour)
        y += lh + 14
    return panel


def main(out):
    rng = np.random.default_rng(2024)
    w, h = 1280, 720
    sky = vertical_gradient(w, h, (150, 185, 225), (215, 225, 235))
    img = Image.fromarray(sky.astype(np.uint8))
    d = ImageDraw.Draw(img)
    # brick building
    wall = np.full((560, 900, 3), (150, 78, 60), np.float32)
    for row in range(0, 560, 28):
        off = 0 if (row // 28) % 2 == 0 else 40
        for col in range(-off, 900, 80):
            shade = rng.normal(0, 12)
            wall[row + 3:row + 26, max(col + 3, 0):max(col + 77, 0)] += shade
        wall[row:row + 3] = (185, 175, 160)
    wall += rng.normal(0, 6, wall.shape)
    img.paste(Image.fromarray(np.clip(wall, 0, 255).astype(np.uint8)), (0, 90))
    # pavement
    d.rectangle((0, 650, w, h), fill=(120, 120, 118))
    d.line((0, 650, w, 650), fill=(90, 90, 90), width=4)
    # shop window and door
    d.rectangle((60, 330, 520, 620), fill=(55, 70, 80), outline=(40, 40, 40), width=8)
    d.rectangle((600, 360, 760, 650), fill=(95, 60, 40), outline=(40, 30, 20), width=8)
    d.ellipse((730, 500, 744, 514), fill=(210, 180, 90))
    # shop sign
    board = sign((700, 130), (24, 60, 46, 255), (210, 190, 120, 255),
                 [("CORNER BAKERY", font("DejaVuSerif-Bold.ttf", 62), (240, 225, 170))], radius=10)
    img.paste(board, (70, 150), board)
    # opening hours in the window
    hours = sign((300, 170), (245, 245, 240, 255), (30, 30, 30, 255),
                 [("OPEN DAILY", font("DejaVuSans-Bold.ttf", 34), (170, 20, 20)),
                  ("7am - 6pm", font("DejaVuSans.ttf", 32), (20, 20, 20))], radius=6)
    img.paste(hours, (140, 400), hours)
    # poster on the wall, slightly tilted
    poster = sign((250, 330), (250, 215, 60, 255), (60, 60, 60, 255),
                  [("JAZZ", font("DejaVuSans-Bold.ttf", 64), (30, 30, 90)),
                   ("NIGHT", font("DejaVuSans-Bold.ttf", 56), (30, 30, 90)),
                   ("Friday 9pm", font("DejaVuSans.ttf", 30), (40, 40, 40)),
                   ("Free entry", font("DejaVuSansCondensed-Oblique.ttf", 28), (120, 30, 30))], radius=4)
    poster = rotated_panel(poster, 4)
    img.paste(poster, (800, 250), poster)
    # street name sign on a pole, rotated
    d.rectangle((1150, 150, 1162, 650), fill=(70, 75, 80))
    street = sign((315, 76), (20, 110, 60, 255), (240, 240, 240, 255),
                  [("Maple Street", font("DejaVuSans-Bold.ttf", 40), (245, 245, 245))], radius=8)
    street = rotated_panel(street, -8)
    img.paste(street, (935, 105), street)
    parking = sign((170, 210), (245, 245, 245, 255), (200, 30, 30, 255),
                   [("NO", font("DejaVuSans-Bold.ttf", 44), (200, 30, 30)),
                    ("PARKING", font("DejaVuSans-Bold.ttf", 32), (200, 30, 30)),
                    ("8AM-6PM", font("DejaVuSansMono.ttf", 28), (20, 20, 20))], radius=6)
    img.paste(parking, (1071, 330), parking)
    # light, blur and sensor noise for a photographic look
    img = img.filter(ImageFilter.GaussianBlur(0.8))
    arr = np.asarray(img).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    vignette = 1.0 - 0.25 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 2
    arr = arr * vignette[..., None] + rng.normal(0, 3, arr.shape)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(out, quality=88)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "figures/demo.jpg")
