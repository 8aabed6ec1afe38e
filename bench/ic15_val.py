"""ICDAR 2015 validation split for the benchmarks: img_901..img_1000 of the TRAIN split in
/work/shared/data/icdar2015_train (not part of the project; the benchmarks stop with a message without it)."""
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "icdar2015_train"
VALIDATION = range(901, 1001)


def validation_samples(data_dir=DEFAULT_DATA, upscale=1, limit=None):
    """Yield (name, RGB uint8 image, GT polygons, ignore flags); with upscale the image is resized by that
    factor (bicubic) and the GT coordinates multiplied by it."""
    from db_tf.data.readers import read_annotation

    data_dir = Path(data_dir)
    if not (data_dir / "imgs").is_dir():
        sys.exit(f"ICDAR 2015 train split not found in {data_dir} (give --data)")
    for number in list(VALIDATION)[:limit]:
        path = data_dir / "imgs" / f"img_{number}.jpg"
        image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        polygons, ignore, _ = read_annotation(data_dir / "gts" / f"gt_img_{number}.txt", "icdar2015")
        if upscale != 1:
            image = cv2.resize(image, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
            polygons = [np.asarray(p, np.float32) * upscale for p in polygons]
        yield f"img_{number}", image, polygons, ignore


def score(detections_and_gt):
    """[(Detections, GT polygons, ignore)] -> ICDAR 2015 totals (precision, recall, hmean, counts)."""
    from db_tf import metrics

    totals, _ = metrics.evaluate((gt, ignore, result.polygons) for result, gt, ignore in detections_and_gt)
    return totals
