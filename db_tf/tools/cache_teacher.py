"""Run a distillation teacher once over the training images and cache its maps (db_tf.data.teacher_maps).

    python -m db_tf.tools.cache_teacher --config configs/ppocrv4_ic15_distill.py   # cfg.TRAIN.DISTILL's teacher
    python -m db_tf.tools.cache_teacher --config ... --set TRAIN.DISTILL.TEACHER=runs/x/final.json

Covers every image of cfg.DATA.TRAIN's file datasets (annotated or "images" folders). Images already cached
are skipped, so an interrupted build continues where it stopped; train.py calls `build_cache` itself before
training when TRAIN.DISTILL.TEACHER is set, so running this first only moves the wait.
"""
import argparse
import sys
import time

from db_tf.config import add_config_args, config_from_args
from db_tf.data.image_io import ImageReadError, read_image
from db_tf.data.pipeline import teacher_cache_folder, train_image_paths
from db_tf.data.teacher_maps import TeacherCache


def build_cache(cfg, log=print):
    """Cache the teacher's maps for every training image that has none yet; returns (cache folder, new count)."""
    distill = cfg.TRAIN.DISTILL
    folder = teacher_cache_folder(cfg)
    cache = TeacherCache(folder)
    todo = [path for path in train_image_paths(cfg) if not cache.has(path)]
    if not todo:
        return folder, 0
    from db_tf.detector import TextDetector  # TensorFlow only when there is work

    settings = {"short_side": int(distill.SHORT_SIDE)} if int(distill.SHORT_SIDE) else {}
    detector = TextDetector(weights=distill.TEACHER, batch_size=1, **settings)
    log(f"teacher {distill.TEACHER}: caching maps of {len(todo)} images at short side "
        f"{detector.settings['short_side']} in {folder}")
    start, done = time.time(), 0
    for path in todo:
        try:
            image = read_image(path)
        except ImageReadError as exc:   # the training pipeline reports and skips it the same way
            log(f"teacher cache: {exc}; skipped")
            continue
        maps = detector.predict_maps([image], return_maps=True)[0]
        cache.write(path, maps["probability"], maps["threshold"], image.shape[:2])
        done += 1
        if done % 50 == 0 or done == len(todo):
            rate = (time.time() - start) / done
            log(f"teacher cache: {done}/{len(todo)} images, {rate:.2f} s per image")
    return folder, done


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_args(parser)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    if not cfg.TRAIN.DISTILL.TEACHER:
        parser.error("TRAIN.DISTILL.TEACHER is empty: name a teacher (a preset or a run's .json)")
    folder, count = build_cache(cfg)
    print(f"{folder}: {count} images added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
