"""configs/ppocrv4_ic15_distill.py with the teacher's maps on the first TEACHER_IMAGES training images only.

    ICDAR2015_ROOT=... python train.py --config configs/experiments/ppocrv4_ic15_distill_part.py --time-limit 60

The teacher (the ensemble, ~1 s per image alone) took much longer on the shared CPU than planned, so the first
run distilled from the images whose maps were cached by then; the other training images keep their labels and
train through the DB loss alone (dataset spec "teacher": False). Same data order and labels as the full recipe.
"""
from pathlib import Path

from db_tf.config import load_config

TEACHER_IMAGES = 200

cfg = load_config(Path(__file__).parents[1] / "ppocrv4_ic15_distill.py")

_ic15 = cfg.DATA.TRAIN[0]
cfg.DATA.TRAIN = [dict(_ic15, select=f"0:{TEACHER_IMAGES}"),
                  dict(_ic15, select=f"{TEACHER_IMAGES}:900", teacher=False)] + cfg.DATA.TRAIN[1:]
for _spec in cfg.DATA.TRAIN[:2]:   # each part in proportion to its size, as one dataset would be sampled
    _spec["ratio"] = {True: TEACHER_IMAGES, False: 900 - TEACHER_IMAGES}[_spec.get("teacher", True)] / 900

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_distill_part"
