"""Stage 4b of the ICDAR 2015 fine-tuning (issue #8): stage 4 without its high-lr phase. Exploration, not on the
shipped chain.

    db-tf train --config configs/experiments/ppocrv4_ic15_stage4b.py \
        --set MODEL.NAME=runs/ppocrv4_ic15_stage3/best.json

Stage 4 validated best after its first epoch, during warm-up, and lost 0.02-0.03 at its peak lr of 2e-4. This
variant starts from the same point, stage 3's best epoch, and never goes above Adam 5e-5 (50 warm-up steps, poly
decay to zero over 6 epochs = 672 steps); window crops at the test zoom and weight averaging as stage 4.
What it needs: stage 3's weights. When it ran they were the shipped "ppocrv4_ic15" (hence MODEL.NAME below);
today they come from configs/ppocrv4_ic15/stage3.py (runs/ppocrv4_ic15_stage3/best.json, as in the command
above) or from the commit that shipped them: git show 03128d6:weights/ppocrv4_ic15.weights.h5 >
/tmp/ppocrv4_ic15_stage3.weights.h5, the same for weights/ppocrv4_ic15.json > /tmp/ppocrv4_ic15_stage3.json,
then --set MODEL.NAME=/tmp/ppocrv4_ic15_stage3.json.

Result (validation hmean per epoch): 0.779 0.783 0.779 0.781 0.784 0.782 -- steady, but not above stage 4's first
epoch (best epoch step 560: 0.784; final step 672: 0.782).
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).parents[1] / "ppocrv4_ic15" / "stage1.py")

cfg.MODEL.NAME = "ppocrv4_ic15"              # stage 3's result when this ran: see the docstring

cfg.DATA.AUG.CROP_MODE = "window"            # stage 4: 640 windows at the test zoom
cfg.DATA.AUG.SCALE = [1.2, 2.4]

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_stage4b"
cfg.TRAIN.EPOCHS = 6                         # 6 x 112 = 672 steps
cfg.TRAIN.LR = 0.00005
cfg.TRAIN.WARMUP_STEPS = 50
cfg.TRAIN.EMA = 0.99
cfg.TRAIN.FREEZE_BN_EXCEPT = ["head/threshold"]
cfg.TRAIN.CHECKPOINT_EVERY = 112
cfg.TRAIN.KEEP_CHECKPOINTS = 6

cfg.POSTPROCESS.SHORT_SIDE = 1280
cfg.POSTPROCESS.BOX_THRESH = 0.5
cfg.POSTPROCESS.UNCLIP_RATIO = 1.3
