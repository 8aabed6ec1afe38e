"""Stage 5 of the ICDAR 2015 fine-tuning (issue #8): stage 4's recipe at a 4x lower learning rate.

    db-tf train --config configs/experiments/ppocrv4_ic15_stage5.py --time-limit 60   # rerun to continue

Stage 4 (configs/ppocrv4_ic15/stage4.py: window crops at the test zoom, weight averaging) validated best after
its first epoch, while its lr was still warming up (0.789), then fell to 0.755-0.770 at the peak lr of 2e-4 and
was only slowly recovering as the lr decayed. So this stage starts from stage 4's best (its step-112 averaged
weights, runs/ppocrv4_ic15_stage4/best.json) and trains at Adam 5e-5 (50 warm-up steps, poly decay to zero
over 14 epochs = 1568 steps), everything else as stage 4.
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).parents[1] / "ppocrv4_ic15" / "stage1.py")

cfg.MODEL.NAME = "runs/ppocrv4_ic15_stage4/best.json"   # stage 4's best epoch (step 112)

cfg.DATA.AUG.CROP_MODE = "window"            # stage 4: 640 windows at the test zoom
cfg.DATA.AUG.SCALE = [1.2, 2.4]

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_stage5"
cfg.TRAIN.EPOCHS = 14                        # 14 x 112 = 1568 steps
cfg.TRAIN.LR = 0.00005
cfg.TRAIN.WARMUP_STEPS = 50
cfg.TRAIN.EMA = 0.99
cfg.TRAIN.FREEZE_BN_EXCEPT = ["head/threshold"]
cfg.TRAIN.CHECKPOINT_EVERY = 112
cfg.TRAIN.KEEP_CHECKPOINTS = 6

cfg.POSTPROCESS.SHORT_SIDE = 1280
cfg.POSTPROCESS.BOX_THRESH = 0.5
cfg.POSTPROCESS.UNCLIP_RATIO = 1.3
