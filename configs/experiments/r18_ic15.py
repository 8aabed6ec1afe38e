"""R18-DB from scratch, step 2 of 2: ICDAR 2015 img_1..img_900 after configs/experiments/r18_synth.py (issue #8).

    export ICDAR2015_ROOT=/data/icdar2015_train      # imgs/img_N.jpg, gts/gt_img_N.txt
    db-tf train --config configs/experiments/r18_ic15.py --init runs/r18_synth/final.weights.h5 --time-limit 45

Same recipe and crop size as step 1 (see there); the learning-rate schedule starts again (Adam 1e-3, warm-up).
Validation on img_901..img_1000 every 2 epochs (short side 736, box_thresh 0.6: the official test settings).
"""
from db_tf.config import data_root, load_config

cfg = load_config()   # a fresh copy of db-tf's defaults

_IC15 = data_root("ICDAR2015_ROOT")

cfg.MODEL.BACKBONE = "resnet18"
cfg.MODEL.NECK = "fpn"
cfg.MODEL.INNER_CHANNELS = 256

cfg.DATA.TRAIN = [{"format": "icdar2015", "images": str(_IC15 / "imgs"), "labels": str(_IC15 / "gts"),
                   "ratio": 1.0, "select": "0:900"}]
cfg.DATA.VAL = [{"format": "icdar2015", "images": str(_IC15 / "imgs"), "labels": str(_IC15 / "gts"),
                 "ratio": 1.0, "select": "900:1000"}]
cfg.DATA.IMAGE_SIZE = 320

cfg.TRAIN.RUN_DIR = "runs/r18_ic15"
cfg.TRAIN.EPOCHS = 4                 # 4 x 112 = 448 steps
cfg.TRAIN.BATCH_SIZE = 8
cfg.TRAIN.OPTIMIZER = "adam"         # as step 1 (the paper's SGD did not leave the empty-map phase in time)
cfg.TRAIN.LR = 0.001
cfg.TRAIN.WARMUP_STEPS = 50
cfg.TRAIN.CHECKPOINT_EVERY = 100
cfg.TRAIN.LOG_EVERY = 10
cfg.TRAIN.IMAGE_EVERY = 0
cfg.TRAIN.VAL_EVERY = 2

cfg.POSTPROCESS.SHORT_SIDE = 736
