"""Distil the ensemble ppocrv4_v6_ic15 into one PP-OCRv4 mobile network (issue #21; docs/distillation.md).

    export ICDAR2015_ROOT=/path/to/icdar2015_train        # holds imgs/img_N.jpg and gts/gt_img_N.txt
    python train.py --config configs/ppocrv4_ic15_distill.py --time-limit 60   # rerun to continue

The student starts from the shipped ppocrv4_ic15 and trains with stage 10's recipe (configs/ppocrv4_ic15.py,
spelled out here:
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

from db_tf.config import data_root, load_config

cfg = load_config()   # a fresh copy of db-tf's defaults

_IC15 = data_root("ICDAR2015_ROOT")
cfg.DATA.TRAIN = [{"format": "icdar2015", "images": str(_IC15 / "imgs"), "labels": str(_IC15 / "gts"),
                   "ratio": 1.0, "select": "0:900"}]
cfg.DATA.VAL = [{"format": "icdar2015", "images": str(_IC15 / "imgs"), "labels": str(_IC15 / "gts"),
                 "ratio": 1.0, "select": "900:1000"}]
if os.environ.get("MSRA_TD500_ROOT"):   # unlabelled extra images (the teacher labels them)
    cfg.DATA.TRAIN.append({"format": "images", "images": str(data_root("MSRA_TD500_ROOT") / "imgs"), "ratio": 0.25})
cfg.DATA.IMAGE_SIZE = 640
cfg.DATA.AUG.CROP_MODE = "window"            # 640 windows at the test zoom (stage 4)
cfg.DATA.AUG.SCALE = [1.2, 2.4]

cfg.MODEL.NAME = "ppocrv4_ic15"              # the student starts from the shipped single model

cfg.TRAIN.DISTILL.TEACHER = "ppocrv4_v6_ic15"
cfg.TRAIN.DISTILL.WEIGHT = 10.0
cfg.TRAIN.DISTILL.THRESH_WEIGHT = 0.0
cfg.TRAIN.DISTILL.LOSS = "bce"

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_distill"
cfg.TRAIN.EPOCHS = 4                         # 4 x 112 = 448 steps
cfg.TRAIN.BATCH_SIZE = 8
cfg.TRAIN.OPTIMIZER = "adam"
cfg.TRAIN.LR = 0.0001
cfg.TRAIN.WEIGHT_DECAY = 5e-5
cfg.TRAIN.WARMUP_STEPS = 50
cfg.TRAIN.EMA = 0.99
cfg.TRAIN.FREEZE = ["backbone"]              # stage 7
cfg.TRAIN.FREEZE_BN = True
cfg.TRAIN.FREEZE_BN_EXCEPT = ["head/threshold"]
cfg.TRAIN.LOSS.NEGATIVE_RATIO = 5.0          # stage 8
cfg.TRAIN.CHECKPOINT_EVERY = 56
cfg.TRAIN.KEEP_CHECKPOINTS = 6
cfg.TRAIN.LOG_EVERY = 10
cfg.TRAIN.IMAGE_EVERY = 0
cfg.TRAIN.VAL_EVERY = 1

cfg.POSTPROCESS.SHORT_SIDE = 1280
cfg.POSTPROCESS.BOX_THRESH = 0.5
cfg.POSTPROCESS.UNCLIP_RATIO = 1.3
cfg.POSTPROCESS.SPLIT_BY_THRESHOLD = True    # validate as shipped
