"""ICDAR 2015 fine-tuning of PP-OCRv5 mobile in one run, with what stages 1-10 of ppocrv4_ic15 taught (issue #8).

    db-tf train --config configs/experiments/ppocrv5_ic15.py --time-limit 60   # rerun to continue

PP-OCRv5 mobile has PP-OCRv4 mobile's architecture and newer weights (trained by PaddleOCR on more data).
ppocrv4_ic15 took ten stages to learn its recipe; this config starts from ppocrv5_mobile with the settings
that worked there, at once:
  * window crops at the test zoom (stage 4): 640 windows of the image scaled 1.2-2.4x, tested at short side
    1280;
  * validation and exports on a moving average of the weights (TRAIN.EMA = 0.99, stage 4);
  * 5:1 hard negatives in the probability loss (stage 8);
  * imported BatchNorms frozen, the fresh threshold branch's trainable (stage 2);
  * Adam 3e-4 (stage 2's), 100 warm-up steps, poly decay to zero over 12 epochs (1344 steps), so the run ends
    annealed (stage 10).

Result: stopped after 5 of 12 epochs, validating at 0.435 0.564 0.619 0.646 0.644 (P 0.69 R 0.60 at epoch 5):
too slow a start from line-level weights at this lr (ppocrv4_ic15's stage 1 ran at 1e-3), and nothing here
suggested PP-OCRv5 would end above PP-OCRv4; configs/ppocrv4_v6_ic15/ppocrv6_stage1.py took its place.
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).parents[1] / "ppocrv4_ic15" / "stage1.py")

cfg.MODEL.NAME = "ppocrv5_mobile"

cfg.DATA.AUG.CROP_MODE = "window"            # stage 4: 640 windows at the test zoom
cfg.DATA.AUG.SCALE = [1.2, 2.4]

cfg.TRAIN.RUN_DIR = "runs/ppocrv5_ic15"
cfg.TRAIN.EPOCHS = 12                        # 12 x 112 = 1344 steps
cfg.TRAIN.LR = 0.0003
cfg.TRAIN.WARMUP_STEPS = 100
cfg.TRAIN.LOSS.NEGATIVE_RATIO = 5.0
cfg.TRAIN.EMA = 0.99
cfg.TRAIN.FREEZE_BN_EXCEPT = ["head/threshold"]
cfg.TRAIN.CHECKPOINT_EVERY = 112
cfg.TRAIN.KEEP_CHECKPOINTS = 6

cfg.POSTPROCESS.SHORT_SIDE = 1280
cfg.POSTPROCESS.BOX_THRESH = 0.5
cfg.POSTPROCESS.UNCLIP_RATIO = 1.3
