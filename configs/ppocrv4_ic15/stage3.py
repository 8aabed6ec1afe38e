"""ppocrv4_ic15, stage 3 of 5: stage 2 again, 7 epochs at lr 2e-4, validated at short side 1280 (issue #8).

    db-tf train --config configs/ppocrv4_ic15/stage3.py

Historically this stage was run as stage 2's config with
--set TRAIN.RUN_DIR=runs/ppocrv4_ic15_stage3 TRAIN.EPOCHS=7 TRAIN.LR=0.0002 POSTPROCESS.SHORT_SIDE=1280, from
stage 2's final weights packaged as "ppocrv4_ic15" (short side 1280, thresh 0.3, box 0.5, unclip 1.3); this
file writes that down and names the starting weights directly (runs/ppocrv4_ic15_stage2/final.json holds
the same weights; packaging does not change them). Its best epoch (best.json, step 560) was shipped as
ppocrv4_ic15 until stage 4 and is what stage 4 starts from.

Result (validation hmean per epoch, short side 1280, box 0.5, unclip 1.3): 0.754 0.753 0.701 0.747 0.775 0.745
0.759; best epoch P 0.782 R 0.768 H 0.775 (picked on this split: optimistic by about the +-0.03 spread).
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).with_name("stage1.py"))

cfg.MODEL.NAME = "runs/ppocrv4_ic15_stage2/final.json"   # stage 2's final weights

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_stage3"
cfg.TRAIN.EPOCHS = 7                         # 7 x 112 = 784 steps
cfg.TRAIN.LR = 0.0002
cfg.TRAIN.WARMUP_STEPS = 50
cfg.TRAIN.FREEZE_BN_EXCEPT = ["head/threshold"]
cfg.TRAIN.CHECKPOINT_EVERY = 112
cfg.TRAIN.KEEP_CHECKPOINTS = 6

cfg.POSTPROCESS.SHORT_SIDE = 1280
cfg.POSTPROCESS.BOX_THRESH = 0.5
cfg.POSTPROCESS.UNCLIP_RATIO = 1.3
