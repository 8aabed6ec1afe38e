"""Recipe of the shipped preset ppocrv4_ic15: PP-OCRv4 mobile fine-tuned on ICDAR 2015 (issue #8).

This file is the last stage (stage 10, run with five data seeds); stages 1-4 are in configs/ppocrv4_ic15/.
From the shipped starting preset ppocrv4_mobile to the packaged model (ICDAR 2015 train images img_1..img_900;
img_901..img_1000 validate; a stopped command continues when rerun; each stage-10 run takes about 15 min):

    export ICDAR2015_ROOT=/data/icdar2015_train      # imgs/img_N.jpg, gts/gt_img_N.txt
    db-tf train --config configs/ppocrv4_ic15/stage1.py --max-steps 1232        # 1232 steps, Adam 1e-3
    db-tf train --config configs/ppocrv4_ic15/stage2.py --set MODEL.NAME=runs/ppocrv4_ic15/final.json
    db-tf train --config configs/ppocrv4_ic15/stage3.py                        # best epoch: step 560
    db-tf train --config configs/ppocrv4_ic15/stage4.py --set MODEL.NAME=runs/ppocrv4_ic15_stage3/best.json \
        --max-steps 112                                                         # best epoch: step 112
    db-tf train --config configs/ppocrv4_ic15.py                                # seed 0
    for seed in 1 2 3 4; do
      db-tf train --config configs/ppocrv4_ic15.py \
          --set DATA.SEED=$seed TRAIN.RUN_DIR=runs/ppocrv4_ic15_stage10_seed$seed
    done
    db-tf package-weights --from runs/ppocrv4_ic15_stage10/final.json --name ppocrv4_ic15 \
        --average runs/ppocrv4_ic15_stage10/final.weights.h5 runs/ppocrv4_ic15_stage10_seed{1,2,3,4}/final.weights.h5 \
        --short-side 1280 --thresh 0.3 --box-thresh 0.5 --unclip 1.3 --split-by-threshold

(--max-steps counts the steps of one session: if stage 1 or 4 is interrupted, continue it with the rest.
The --set MODEL.NAME values name the previous stage's output: when stages 2 and 4 ran, it was shipped under
the name ppocrv4_ic15, which their files still say.) The post-processing settings were chosen on the
validation split with db-tf sweep-postprocess; docs/ic15_finetuning.md has every stage's numbers and why.

Stage 10 itself: stage 8's recipe (configs/experiments/ppocrv4_ic15_stage8.py: from stage 4's best, backbone
frozen, 5:1 hard negatives, Adam 1e-4) on a 4-epoch schedule. Stage 8 validated 0.792 0.788 0.793 0.790 0.790
and then fell to 0.776 while the training loss kept falling: its best weights were a mid-schedule snapshot at
a high learning rate. Here the same lr decays to zero over 4 epochs (448 steps), so the run ends in the region
stage 8 peaked in, annealed. Repeated with other data seeds (data order and augmentation) to measure the
spread, and the runs' final weights averaged: fine-tuned copies of one starting point can be averaged into
one model.

Result (validation hmean per epoch, shipped settings without split_by_threshold):
  DATA.SEED 0: 0.792 0.786 0.789 0.791     seed 1: 0.787 0.781 0.782 0.787     seed 2: 0.783 0.788 0.789 0.795
  seed 3:      0.790 0.786 0.790 0.791     seed 4: 0.789 0.786 0.785 0.784
The mean of the five final weights: 0.790, and 0.795 with POSTPROCESS.SPLIT_BY_THRESHOLD (shipped).
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).parent / "ppocrv4_ic15" / "stage1.py")

cfg.MODEL.NAME = "runs/ppocrv4_ic15_stage4/best.json"   # stage 4's best epoch (step 112)

cfg.DATA.AUG.CROP_MODE = "window"            # stage 4: 640 windows at the test zoom
cfg.DATA.AUG.SCALE = [1.2, 2.4]

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_stage10"
cfg.TRAIN.EPOCHS = 4                         # 4 x 112 = 448 steps
cfg.TRAIN.LR = 0.0001
cfg.TRAIN.WARMUP_STEPS = 50
cfg.TRAIN.EMA = 0.99
cfg.TRAIN.FREEZE = ["backbone"]              # stage 7
cfg.TRAIN.FREEZE_BN_EXCEPT = ["head/threshold"]
cfg.TRAIN.LOSS.NEGATIVE_RATIO = 5.0          # stage 8
cfg.TRAIN.CHECKPOINT_EVERY = 112
cfg.TRAIN.KEEP_CHECKPOINTS = 6

cfg.POSTPROCESS.SHORT_SIDE = 1280
cfg.POSTPROCESS.BOX_THRESH = 0.5
cfg.POSTPROCESS.UNCLIP_RATIO = 1.3
