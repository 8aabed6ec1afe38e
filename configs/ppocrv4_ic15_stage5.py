"""Stage 5 of the ICDAR 2015 fine-tuning (issue #8): stage 4's recipe at a 4x lower learning rate.

    python train.py --config configs/ppocrv4_ic15_stage5.py --time-limit 60   # rerun to continue

Stage 4 (configs/ppocrv4_ic15_stage4.py: window crops at the test zoom, weight averaging) validated best after
its first epoch, while its lr was still warming up (0.789), then fell to 0.755-0.770 at the peak lr of 2e-4 and
was only slowly recovering as the lr decayed. So this stage starts from stage 4's best (its step-112 averaged
weights, runs/ppocrv4_ic15_stage4/best.json) and trains at Adam 5e-5 (50 warm-up steps, poly decay to zero
over 14 epochs = 1568 steps), everything else as stage 4.
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).with_name("ppocrv4_ic15_stage4.py"))

cfg.MODEL.NAME = "runs/ppocrv4_ic15_stage4/best.json"

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_stage5"
cfg.TRAIN.EPOCHS = 14                        # 14 x 112 = 1568 steps
cfg.TRAIN.LR = 0.00005
cfg.TRAIN.WARMUP_STEPS = 50
