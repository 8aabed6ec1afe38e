"""Stage 10 of the ICDAR 2015 fine-tuning (issue #8): stage 8's recipe on a 4-epoch schedule.

    python train.py --config configs/ppocrv4_ic15_stage10.py --time-limit 60   # rerun to continue

Stage 8 (backbone frozen, 5:1 hard negatives, from stage 4's best, Adam 1e-4 decaying to zero over 10 epochs)
validated 0.792 0.788 0.793 0.790 0.790 and then fell to 0.776 while the training loss kept falling: its
best weights were a mid-schedule snapshot at a high learning rate. Here the same lr decays to zero over
4 epochs (448 steps), so the run ends in the region stage 8 peaked in, with the lr annealed. Repeated with
other data seeds (--set DATA.SEED=1 TRAIN.RUN_DIR=runs/ppocrv4_ic15_stage10_seed1) to measure the spread, and
the runs' final weights averaged (python -m db_tf.tools.package_weights --average ...): fine-tuned copies of
one starting point can be averaged into one model.

Result (validation hmean per epoch, shipped settings without split_by_threshold):
  DATA.SEED 0: 0.792 0.786 0.789 0.791     seed 1: 0.787 0.781 0.782 0.787     seed 2: 0.783 0.788 0.789 0.795
  seed 3:      0.790 0.786 0.790 0.791     seed 4: 0.789 0.786 0.785 0.784
The mean of the five final weights: 0.790, and 0.795 with POSTPROCESS.SPLIT_BY_THRESHOLD (shipped as ppocrv4_ic15).
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).with_name("ppocrv4_ic15_stage8.py"))

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_stage10"
cfg.TRAIN.EPOCHS = 4                         # 4 x 112 = 448 steps
