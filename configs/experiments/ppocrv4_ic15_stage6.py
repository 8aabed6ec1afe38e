"""Stage 6 of the ICDAR 2015 fine-tuning (issue #8): stage 5 without horizontal flips.

    db-tf train --config configs/experiments/ppocrv4_ic15_stage6.py --time-limit 60   # rerun to continue

Mirrored text is never seen at test time, and the shipped model reads it clearly worse: on the validation
split its hmean is 0.789 on the images and 0.765 on their mirror images (flipped back before scoring), and
averaging the two maps gives 0.776. Every stage so far trained on 50 % mirrored crops (the official DB
augmentation). This stage is stage 5 (from stage 4's best, Adam 5e-5, 50 warm-up steps, window crops at the
test zoom, weight averaging) with DATA.AUG.FLIP = False and 10 epochs, so its curve compares with stage 5's.
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).parents[1] / "ppocrv4_ic15" / "stage1.py")

cfg.MODEL.NAME = "runs/ppocrv4_ic15_stage4/best.json"   # stage 4's best epoch (step 112)

cfg.DATA.AUG.CROP_MODE = "window"            # stage 4: 640 windows at the test zoom
cfg.DATA.AUG.SCALE = [1.2, 2.4]
cfg.DATA.AUG.FLIP = False

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_stage6"
cfg.TRAIN.EPOCHS = 10                        # 10 x 112 = 1120 steps
cfg.TRAIN.LR = 0.00005
cfg.TRAIN.WARMUP_STEPS = 50
cfg.TRAIN.EMA = 0.99
cfg.TRAIN.FREEZE_BN_EXCEPT = ["head/threshold"]
cfg.TRAIN.CHECKPOINT_EVERY = 112
cfg.TRAIN.KEEP_CHECKPOINTS = 6

cfg.POSTPROCESS.SHORT_SIDE = 1280
cfg.POSTPROCESS.BOX_THRESH = 0.5
cfg.POSTPROCESS.UNCLIP_RATIO = 1.3
