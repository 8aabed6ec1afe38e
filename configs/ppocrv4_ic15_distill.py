"""Distil the ensemble ppocrv4_v6_ic15 into one PP-OCRv4 mobile network (issue #21; docs/distillation.md).

    export ICDAR2015_ROOT=/path/to/icdar2015_train        # holds imgs/img_N.jpg and gts/gt_img_N.txt
    python train.py --config configs/ppocrv4_ic15_distill.py --time-limit 60   # rerun to continue

The student starts from the shipped ppocrv4_ic15 and trains with stage 10's recipe (configs/ppocrv4_ic15.py:
backbone frozen, 5:1 hard negatives, 640 windows at the test zoom, weight averaging, Adam 1e-4 decaying to zero,
batch 8) plus the distillation term: the teacher ppocrv4_v6_ic15's probability map (and threshold map), cached
once per training image at its short side 1280 and warped with each crop's augmentation (db_tf.data.teacher_maps).
train.py builds the cache in TRAIN.DISTILL.CACHE_DIR when it starts (about 1 s per image for this teacher).

Data: ICDAR 2015 Challenge 4 TRAIN img_1..img_900 (img_901..img_1000 = validation, never trained on), from the
folder in the environment variable ICDAR2015_ROOT. Optional extra images without annotations, which train
through the teacher alone: set MSRA_TD500_ROOT (MSRA-TD500 train, its imgs/ folder is used, GT ignored) and
--set DATA.TRAIN=... or see docs/distillation.md for the measured effect.
"""
import os
from pathlib import Path

from db_tf.config import ConfigError, load_config

cfg = load_config(Path(__file__).with_name("ppocrv4_ic15.py"))   # stage 10 of the shipped recipe


def data_root(variable):
    """A dataset folder from an environment variable; a clear error when it is unset or wrong."""
    value = os.environ.get(variable, "")
    if not value:
        raise ConfigError(f"{Path(__file__).name}: set the environment variable {variable} to the dataset folder "
                          f"(it holds imgs/ and gts/)")
    root = Path(value).expanduser()
    if not (root / "imgs").is_dir():
        raise ConfigError(f"{Path(__file__).name}: {variable}={value} has no imgs/ folder")
    return root


_IC15 = data_root("ICDAR2015_ROOT")
cfg.DATA.TRAIN = [{"format": "icdar2015", "images": str(_IC15 / "imgs"), "labels": str(_IC15 / "gts"),
                   "ratio": 1.0, "select": "0:900"}]
cfg.DATA.VAL = [{"format": "icdar2015", "images": str(_IC15 / "imgs"), "labels": str(_IC15 / "gts"),
                 "ratio": 1.0, "select": "900:1000"}]
if os.environ.get("MSRA_TD500_ROOT"):   # unlabelled extra images (the teacher labels them)
    cfg.DATA.TRAIN.append({"format": "images", "images": str(data_root("MSRA_TD500_ROOT") / "imgs"), "ratio": 0.25})

cfg.MODEL.NAME = "ppocrv4_ic15"              # the student starts from the shipped single model

cfg.TRAIN.DISTILL.TEACHER = "ppocrv4_v6_ic15"
cfg.TRAIN.DISTILL.WEIGHT = 10.0
cfg.TRAIN.DISTILL.THRESH_WEIGHT = 0.0
cfg.TRAIN.DISTILL.LOSS = "bce"

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_distill"
cfg.TRAIN.EPOCHS = 4                         # 4 x 112 = 448 steps
cfg.TRAIN.CHECKPOINT_EVERY = 56

cfg.POSTPROCESS.SPLIT_BY_THRESHOLD = True    # validate as shipped
