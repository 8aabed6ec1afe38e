"""Stage 4b of the ICDAR 2015 fine-tuning (issue #8): stage 4 without its high-lr phase.

    python train.py --config configs/ppocrv4_ic15_stage4b.py --set MODEL.NAME=<stage 3 weights .json>

Stage 4 validated best after its first epoch, during warm-up, and lost 0.02-0.03 at its peak lr of 2e-4. This
variant starts from the same point (stage 3's weights: git show 03128d6:weights/ppocrv4_ic15.weights.h5 and
.json, saved e.g. as /tmp/ppocrv4_ic15_stage3.*) and never goes above Adam 5e-5 (50 warm-up steps, poly decay
to zero over 6 epochs = 672 steps); window crops at the test zoom and weight averaging as stage 4.
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).with_name("ppocrv4_ic15_stage4.py"))

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_stage4b"
cfg.TRAIN.EPOCHS = 6                         # 6 x 112 = 672 steps
cfg.TRAIN.LR = 0.00005
cfg.TRAIN.WARMUP_STEPS = 50
