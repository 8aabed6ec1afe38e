"""Drawing detections and network maps, as the figures of the TF1 implementation DB-tf.

For an input ``<stem>.jpg`` the figures are ``<stem>_poly.jpg`` (polygon-mode detections),
``<stem>_bbox.jpg`` (box-mode detections), ``<stem>_binarize_map.jpg`` (probability map P),
``<stem>_threshold_map.jpg`` (threshold map T) and ``<stem>_binary_map.jpg`` (the approximate binary map
B = sigmoid(k (P - T))); maps are drawn in gray (0 = black, 1 = white) at the original image size, or
scaled down so the long side is at most FIGURE_MAX_SIDE: a 20000 x 20000 scan must not yield five
1.2 GB pictures.
``<stem>_show.jpg`` combines all of them in one picture. Images are RGB uint8 arrays here; files are
written through OpenCV (which wants BGR).
"""
from pathlib import Path

import cv2
import numpy as np

POLY_COLOR = (0, 255, 0)
BOX_COLOR = (255, 0, 0)
MAP_FIGURES = (("binarize_map", "probability"), ("threshold_map", "threshold"), ("binary_map", "binary"))
FIGURE_MAX_SIDE = 2560


def draw_polygons(image, polygons, color=POLY_COLOR, thickness=None):
    """A copy of the RGB image with the polygons outlined; thickness scales with the image size."""
    canvas = np.ascontiguousarray(image).copy()
    if thickness is None:
        thickness = max(1, round(max(canvas.shape[:2]) / 500))
    paths = [np.round(np.asarray(p)).astype(np.int32).reshape(-1, 1, 2) for p in polygons]
    cv2.polylines(canvas, paths, isClosed=True, color=color, thickness=thickness, lineType=cv2.LINE_AA)
    return canvas


def map_image(prob_map, size=None):
    """(h, w) map in [0, 1] -> gray RGB uint8, resized to size=(height, width) when given."""
    gray = np.clip(np.nan_to_num(np.asarray(prob_map, np.float32)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if size is not None and gray.size and gray.shape != tuple(size):
        gray = cv2.resize(gray, (int(size[1]), int(size[0])), interpolation=cv2.INTER_LINEAR)
    return np.repeat(gray[:, :, None], 3, axis=2)


def figure_size(image_size, max_side=FIGURE_MAX_SIDE):
    """(height, width) of the figures of an image: its own size, scaled down to ``max_side`` if larger."""
    height, width = int(image_size[0]), int(image_size[1])
    scale = min(1.0, max_side / max(height, width, 1))
    return max(1, round(height * scale)), max(1, round(width * scale))


def figure_images(image, poly_detections, box_detections, maps, max_side=FIGURE_MAX_SIDE):
    """Name suffix -> RGB uint8 figure, for the figures the available data allows.

    The detections' coordinates are in their ``image_size`` frame; ``image`` may be that image or a
    reduced decode of it. Every figure is drawn at figure_size(image_size, max_side).
    """
    frame = next((d.image_size for d in (poly_detections, box_detections) if d is not None), image.shape[:2])
    size = figure_size(frame, max_side)
    canvas = image if image.shape[:2] == size else cv2.resize(image, (size[1], size[0]),
                                                              interpolation=cv2.INTER_AREA)
    to_canvas = np.asarray([size[1] / max(frame[1], 1), size[0] / max(frame[0], 1)], np.float32)
    figures = {}
    for name, detections, color in (("poly", poly_detections, POLY_COLOR), ("bbox", box_detections, BOX_COLOR)):
        if detections is not None:
            figures[name] = draw_polygons(canvas, [np.asarray(p) * to_canvas for p in detections.polygons], color)
    for suffix, key in MAP_FIGURES:
        if maps is not None and key in maps and maps[key].size:
            figures[suffix] = map_image(maps[key], size)
    return figures


def combined_figure(figures, columns=3, tile_width=640):
    """All figures tiled in one RGB image, each labelled with its name."""
    tiles = []
    for name, picture in figures.items():
        scale = tile_width / picture.shape[1]
        tile = cv2.resize(picture, (tile_width, max(1, round(picture.shape[0] * scale))))
        cv2.putText(tile, name, (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 0), 2, cv2.LINE_AA)
        tiles.append(tile)
    tile_height = max(t.shape[0] for t in tiles)
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.zeros((rows * tile_height, columns * tile_width, 3), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * tile_height:r * tile_height + tile.shape[0], c * tile_width:(c + 1) * tile_width] = tile
    return sheet


def save_rgb(path, image):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write image {path}")
    return path


def save_figures(out_dir, stem, figures):
    """Write ``<stem>_<name>.jpg`` for every figure; returns the written paths."""
    return [save_rgb(Path(out_dir) / f"{stem}_{name}.jpg", picture) for name, picture in figures.items()]


def show(path, image):
    """Open the image in a window when matplotlib has an interactive backend; headless: nothing (the
    figure has been saved already)."""
    import matplotlib

    if matplotlib.get_backend().lower() in ("agg", "pdf", "svg", "ps", "cairo", "template"):
        return False
    import matplotlib.pyplot as plt

    plt.figure(str(path))
    plt.imshow(image)
    plt.axis("off")
    plt.show()
    return True
